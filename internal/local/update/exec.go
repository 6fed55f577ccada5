package update

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
)

// ExecRunner starts commands as real processes in their own session, so the
// new version outlives the old one that started it.
type ExecRunner struct{}

// Start runs cmd with output appended to cmd.LogPath.
func (ExecRunner) Start(_ context.Context, c Command) (Process, error) {
	path := c.Path
	if filepath.Base(path) == path {
		p, err := exec.LookPath(path)
		if err != nil {
			return nil, fmt.Errorf("find %s on PATH: %w", path, err)
		}
		path = p
	}
	cmd := exec.Command(path, c.Args...)
	cmd.Env, cmd.Dir = c.Env, c.Dir
	if c.LogPath != "" {
		if err := os.MkdirAll(filepath.Dir(c.LogPath), 0o700); err != nil {
			return nil, fmt.Errorf("create log dir for %s: %w", c.LogPath, err)
		}
		f, err := os.OpenFile(c.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open update log %s: %w", c.LogPath, err)
		}
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	p := &execProcess{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

type execProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	kill sync.Once
}

func (p *execProcess) Done() <-chan struct{} { return p.done }

func (p *execProcess) Err() error {
	<-p.done
	return p.err
}

// Kill ends the whole session's process group (npx, node, the runtime).
func (p *execProcess) Kill() {
	p.kill.Do(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	})
}
