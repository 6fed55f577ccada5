package procutil

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// SetParentDeath makes the kernel SIGKILL the child when its parent dies.
//
// Linux delivers the parent-death signal when the *thread* that forked the
// child exits, not the process. Go may retire an OS thread at any time, so
// the caller must start the child from a goroutine that holds
// runtime.LockOSThread and keeps holding it until the child has exited;
// otherwise the child can be killed while the supervisor is fine.
func SetParentDeath(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGKILL }

// ParentDeathSignal reports whether SetParentDeath does anything here.
const ParentDeathSignal = true

// stat returns the state letter and process group of pid from
// /proc/<pid>/stat ("pid (comm) S ppid pgrp ..."; comm may hold spaces
// and parentheses, so parse after the last ')').
func stat(pid int) (state byte, pgrp int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 {
		return 0, 0, false
	}
	g, err := strconv.Atoi(f[2])
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], g, true
}

func isZombie(pid int) bool {
	s, _, ok := stat(pid)
	return ok && (s == 'Z' || s == 'X')
}

// groupAlive scans /proc: kill(-pgid, 0) would also count zombies, which
// linger forever when PID 1 (a container init) does not reap orphans.
func groupAlive(pgid int) bool {
	return len(GroupMembers(pgid)) > 0
}

// GroupMembers lists the live processes in group pgid.
func GroupMembers(pgid int) []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	var pids []int
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		s, g, ok := stat(pid)
		if ok && g == pgid && s != 'Z' && s != 'X' {
			pids = append(pids, pid)
		}
	}
	return pids
}

func commandLine(pid int) ([]string, error) {
	// A process caught mid-execve (its exec already closed the parent's
	// CLOEXEC pipe, so exec.Cmd.Start has returned) briefly has a new
	// address space without its argument pages: cmdline reads empty. Give
	// it a moment; zombies and kernel threads stay empty for good.
	for try := 0; ; try++ {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil {
			return nil, err
		}
		b = bytes.TrimRight(b, "\x00")
		if len(b) > 0 {
			return strings.Split(string(b), "\x00"), nil
		}
		if try == 20 || isZombie(pid) {
			return nil, syscall.ESRCH
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Stopped reports whether pid is stopped by a signal (SIGSTOP, Ctrl-Z) or
// a tracer: it runs no code until SIGCONT.
func Stopped(pid int) bool {
	s, _, ok := stat(pid)
	return ok && (s == 'T' || s == 't')
}

// SocketInodes lists the inode numbers (decimal, as /proc/net/tcp and the
// kernel's socket diagnostics name them) of pid's open sockets, read from
// its /proc/<pid>/fd links ("socket:[N]"). A pid that is gone or not ours
// to read has none.
func SocketInodes(pid int) []string {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		target, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue
		}
		if ino, ok := strings.CutPrefix(target, "socket:["); ok {
			out = append(out, strings.TrimSuffix(ino, "]"))
		}
	}
	return out
}
