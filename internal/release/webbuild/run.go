package webbuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// run executes a build command, logging its output at debug level and
// putting the tail of it into the error when it fails.
func run(ctx context.Context, log *slog.Logger, dir string, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 10 * time.Second
	log.Info("running", "cmd", filepath.Base(name)+" "+strings.Join(args, " "), "dir", dir)
	err := cmd.Run()
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		log.Debug(line)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, tail(out.String(), 40))
	}
	return nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// lockStage takes an exclusive lock on <stage>.lock, waiting (cancellably)
// while another build holds it.
func lockStage(ctx context.Context, stage string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(stage), 0o755); err != nil {
		return nil, fmt.Errorf("web build: create %s: %w", filepath.Dir(stage), err)
	}
	f, err := os.OpenFile(stage+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("web build: open lock %s.lock: %w", stage, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("web build: lock %s.lock: %w", stage, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("web build: waiting for another build to release %s.lock: %w", stage, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
