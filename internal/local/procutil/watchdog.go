package procutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// watchdogScript reads its stdin, the read end of a pipe whose only writer
// is the supervisor. A line means "disarm": exit quietly. End of file
// without a line means the supervisor is gone, however it died (even
// SIGKILL: the kernel closes its fds), so kill the child's whole group.
// HUP/INT are ignored so a closing terminal cannot disarm it by accident.
const watchdogScript = `trap '' HUP INT
if IFS= read -r _; then exit 0; fi
kill -s KILL -- "-$1" 2>/dev/null
exit 0`

// Watchdog kills one process group when the supervisor process dies.
//
// It is a tiny /bin/sh process in its own process group. On macOS it is
// the only thing that kills children of a dead supervisor; on Linux the
// parent-death signal already kills the direct child, and the watchdog
// kills the grandchildren left in its group. Limits: a child that moves
// its descendants to other process groups (setsid, daemonizing) escapes
// both; the runtime's next start sweeps recorded pids.
type Watchdog struct {
	w   *os.File
	cmd *exec.Cmd
}

// StartWatchdog starts a watchdog for group pgid.
func StartWatchdog(pgid int) (*Watchdog, error) {
	if pgid <= 1 {
		return nil, fmt.Errorf("start watchdog: refusing pgid %d", pgid)
	}
	r, w, err := os.Pipe() // O_CLOEXEC: no other child inherits the write end
	if err != nil {
		return nil, fmt.Errorf("start watchdog for group %d: %w", pgid, err)
	}
	cmd := exec.Command("/bin/sh", "-c", watchdogScript, "second-watchdog", strconv.Itoa(pgid))
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	NewGroup(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("start watchdog for group %d: %w", pgid, err)
	}
	r.Close()
	return &Watchdog{w: w, cmd: cmd}, nil
}

// PID is the watchdog's own pid.
func (d *Watchdog) PID() int { return d.cmd.Process.Pid }

// Disarm tells the watchdog to exit without killing anything and reaps it.
// Call it once the group is empty (or when the child is deliberately left
// running). Safe to call more than once.
func (d *Watchdog) Disarm() error {
	if d.w == nil {
		return nil
	}
	_, werr := d.w.Write([]byte("disarm\n"))
	d.w.Close()
	d.w = nil
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		return errors.Join(werr, err)
	case <-time.After(5 * time.Second):
		_ = d.cmd.Process.Kill()
		return fmt.Errorf("watchdog %d did not exit after disarm", d.cmd.Process.Pid)
	}
}
