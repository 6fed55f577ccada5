//go:build unix && !linux

package procutil

import (
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// SetParentDeath does nothing here: only Linux has a parent-death signal.
// On macOS the watchdog (StartWatchdog) is what kills the children.
func SetParentDeath(attr *syscall.SysProcAttr) {}

// ParentDeathSignal reports whether SetParentDeath does anything here.
const ParentDeathSignal = false

func isZombie(pid int) bool {
	out, err := exec.Command("ps", "-o", "stat=", "-p", strconv.Itoa(pid)).Output()
	return err == nil && strings.HasPrefix(strings.TrimSpace(string(out)), "Z")
}

// groupAlive uses kill(-pgid, 0). Unreaped zombies count as alive; launchd
// reaps orphans promptly, so that only delays, never blocks, a wait.
func groupAlive(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// GroupMembers lists the processes in group pgid.
func GroupMembers(pgid int) []int {
	out, err := exec.Command("ps", "-A", "-o", "pid=,pgid=,stat=").Output()
	if err != nil {
		return nil
	}
	var pids []int
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || strings.HasPrefix(f[2], "Z") {
			continue
		}
		pid, err1 := strconv.Atoi(f[0])
		g, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil && g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// commandLine asks ps, whose output joins argv with spaces: good enough to
// compare argv[0] when paths have no spaces.
func commandLine(pid int) ([]string, error) {
	out, err := exec.Command("ps", "-ww", "-o", "command=", "-p", strconv.Itoa(pid)).Output()
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return nil, syscall.ESRCH
	}
	return f, nil
}

// Stopped reports whether pid is stopped by a signal (SIGSTOP, Ctrl-Z).
func Stopped(pid int) bool {
	out, err := exec.Command("ps", "-o", "stat=", "-p", strconv.Itoa(pid)).Output()
	return err == nil && strings.HasPrefix(strings.TrimSpace(string(out)), "T")
}

// SocketInodes: no /proc here.
func SocketInodes(int) []string { return nil }
