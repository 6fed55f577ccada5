// Package procutil is the small amount of Unix process control the runtime
// needs: process groups (signal, wait until empty), a pid's command line so
// a stale pid is only killed when it is still ours, and making children die
// with their supervisor (parent-death signal, watchdog).
package procutil

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"
)

// NewGroup sets attr so the child leads a new process group whose id is its
// pid: one signal to -pid then reaches it and everything it spawned, and a
// terminal's Ctrl-C (sent to the supervisor's group) does not reach it.
func NewGroup(attr *syscall.SysProcAttr) {
	attr.Setpgid = true
	attr.Pgid = 0
}

// SignalGroup sends sig to every process in group pgid. A group that is
// already empty is not an error.
func SignalGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 1 {
		// kill(-1) and kill(0) mean "everyone" and "my group": never wanted.
		return fmt.Errorf("signal process group %d: refusing a pgid <= 1", pgid)
	}
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal process group %d with %v: %w", pgid, sig, err)
	}
	return nil
}

// Alive reports whether pid exists and is not a zombie.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	return !isZombie(pid)
}

// GroupAlive reports whether any live (non-zombie, where the OS lets us
// tell) process is in group pgid.
func GroupAlive(pgid int) bool {
	if pgid <= 1 {
		return false
	}
	return groupAlive(pgid)
}

// WaitGroupEmpty polls until group pgid has no live process or ctx ends.
func WaitGroupEmpty(ctx context.Context, pgid int) error {
	tick := 5 * time.Millisecond
	for GroupAlive(pgid) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for process group %d to exit: %w", pgid, context.Cause(ctx))
		case <-time.After(tick):
		}
		if tick < 100*time.Millisecond {
			tick *= 2
		}
	}
	return nil
}

// KillGroup sends SIGKILL to group pgid and waits (bounded by ctx) until it
// is empty.
func KillGroup(ctx context.Context, pgid int) error {
	if err := SignalGroup(pgid, syscall.SIGKILL); err != nil {
		return err
	}
	return WaitGroupEmpty(ctx, pgid)
}

// CommandLine returns the argv of a running process.
func CommandLine(pid int) ([]string, error) {
	args, err := commandLine(pid)
	if err != nil {
		return nil, fmt.Errorf("read command line of pid %d: %w", pid, err)
	}
	return args, nil
}
