package state

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ErrLocked means another live process holds the lock.
var ErrLocked = errors.New("another second runtime holds the lock")

// Lock is a held single-instance lock (flock on a file in the home). The
// kernel releases it when the holder dies, SIGKILL included, so a stale lock
// file never blocks a start; the file's content (the holder's pid) is only
// informational.
type Lock struct {
	f    *os.File
	path string
}

// TryLock takes the lock without waiting; ErrLocked if someone holds it.
func TryLock(path string) (*Lock, error) {
	f, err := flock(path)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f, path: path}, nil
}

func flock(path string) (*os.File, error) {
	// os.OpenFile sets O_CLOEXEC, so children never inherit (and so never
	// keep) the lock after the supervisor dies.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// Release drops the lock. The file stays: removing it would race with a
// concurrent TryLock that already opened it.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := l.f.Close() // closing the only fd drops the flock
	l.f = nil
	return err
}

// Holder returns the pid written by the current holder, 0 if unknown.
func Holder(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// Held reports whether some process holds the lock right now.
func Held(path string) bool {
	f, err := flock(path)
	if err != nil {
		return errors.Is(err, ErrLocked)
	}
	f.Close()
	return false
}
