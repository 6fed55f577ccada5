package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/local/logfile"
	"github.com/second-inc/second-release/internal/local/procutil"
	"github.com/second-inc/second-release/internal/local/secrets"
	"github.com/second-inc/second-release/internal/local/stack"
	"github.com/second-inc/second-release/internal/local/state"
	"github.com/second-inc/second-release/internal/local/supervise"
)

// keptInfra is what a kept infrastructure (SECOND_DEV_KEEP_INFRA=1) says
// about itself in .second-dev/infra.json.
type keptInfra struct {
	PID       int  `json:"pid"`
	MongoPort int  `json:"mongoPort"`
	RedisPort int  `json:"redisPort"`
	Ready     bool `json:"ready"`
}

func (s *Stack) infraLock() string { return filepath.Join(s.Layout.Root, "infra.lock") }
func (s *Stack) infraFile() string { return filepath.Join(s.Layout.Root, "infra.json") }

// kept returns the running kept infrastructure, if any.
func (s *Stack) kept() (keptInfra, bool) {
	if !state.Held(s.infraLock()) {
		return keptInfra{}, false
	}
	b, err := os.ReadFile(s.infraFile())
	if err != nil {
		return keptInfra{}, false
	}
	var k keptInfra
	if json.Unmarshal(b, &k) != nil || !k.Ready {
		return keptInfra{}, false
	}
	return k, true
}

// keepInfra reports whether the developer asked to keep the infrastructure.
func (s *Stack) keepInfra() bool {
	v := s.opts.Getenv("SECOND_DEV_KEEP_INFRA")
	return v == "1" || v == "true"
}

// RunInfra runs only mongod and redis-server, until ctx ends: the process
// SECOND_DEV_KEEP_INFRA=1 leaves behind, stopped by `second dev down`.
func (s *Stack) RunInfra(ctx context.Context, mongoPort, redisPort int) error {
	if mongoPort <= 0 || redisPort <= 0 {
		return errors.New("dev infra needs --mongo-port and --redis-port")
	}
	lock, err := state.TryLock(s.infraLock())
	if errors.Is(err, state.ErrLocked) {
		return fmt.Errorf("the infrastructure of %s is already running (pid %d)", s.Repo, state.Holder(s.infraLock()))
	}
	if err != nil {
		return err
	}
	defer lock.Release()
	logw, err := logfile.Open(s.Layout.Log("infra"), logfile.Options{})
	if err != nil {
		return err
	}
	defer logw.Close()
	log := slog.New(slog.NewTextHandler(logw, nil))
	natives, err := stack.FindNatives(stack.NativesOptions{Executable: s.opts.Executable, PayloadsDir: s.opts.Home.PayloadsDir(), Getenv: s.opts.Getenv})
	if err != nil {
		return err
	}
	creds, err := secrets.Ensure(secrets.Options{Layout: s.Layout, Getenv: s.opts.Getenv})
	if err != nil {
		return err
	}
	infra := stack.Infra{Layout: s.Layout, Payload: natives, MongoPort: mongoPort, RedisPort: redisPort,
		Credentials: creds.Databases, Environ: s.opts.Environ, Log: log, ReadyTimeout: s.opts.ReadyTimeout}
	if err := infra.Prepare(); err != nil {
		return err
	}
	mongo, redis := infra.Processes()
	sup := supervise.New(supervise.Options{Log: log})
	if err := sup.Start(ctx, []*supervise.Process{mongo, redis}); err != nil {
		return fmt.Errorf("start the infrastructure: %w", err)
	}
	k := keptInfra{PID: os.Getpid(), MongoPort: mongoPort, RedisPort: redisPort, Ready: true}
	b, _ := json.Marshal(k)
	if err := state.WriteFileAtomic(s.infraFile(), b, 0o600); err != nil {
		return err
	}
	defer os.Remove(s.infraFile())
	log.Info("kept infrastructure ready", "mongo", mongoPort, "redis", redisPort)
	select {
	case <-ctx.Done():
	case <-sup.Done():
		return fmt.Errorf("infrastructure stopped: %w", sup.Err())
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stack.MongoGrace+30*time.Second)
	defer cancel()
	return sup.Stop(sctx)
}

// startKept starts `second dev infra` detached from this process and its
// terminal, and waits until it is ready.
func (r *run) startKept(ctx context.Context, mongoPort, redisPort int) error {
	exe := r.opts.Executable
	if exe == "" {
		e, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the second executable: %w", err)
		}
		exe = e
	}
	logPath := r.Layout.Log("infra-start")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(exe, "dev", "infra", "--repo", r.Repo, "--home", r.opts.Home.Root,
		"--mongo-port", strconv.Itoa(mongoPort), "--redis-port", strconv.Itoa(redisPort))
	cmd.Env = append(append([]string{}, r.opts.Environ...), "SECOND_DEV_ID="+r.ID)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the kept infrastructure: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	timeout := 3 * time.Minute
	if r.opts.ReadyTimeout > 0 {
		timeout = r.opts.ReadyTimeout
	}
	deadline := time.After(timeout)
	for {
		if _, ok := r.kept(); ok {
			r.out.Printf("MongoDB and Redis run in the background (pid %d) and stay after exit: `second dev down` stops them", cmd.Process.Pid)
			return nil
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("the kept infrastructure exited (%v):\n%s", err, b)
		case <-deadline:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return fmt.Errorf("the kept infrastructure was not ready after %s; see %s", timeout, r.Layout.LogsDir())
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Down stops this worktree's `second dev` and its kept infrastructure;
// with volumes it then deletes .second-dev/ once confirm agrees (nil
// confirm: no question).
func (s *Stack) Down(ctx context.Context, volumes bool, confirm func(dir string) (bool, error)) error {
	if volumes && confirm != nil {
		ok, err := confirm(s.Layout.Root)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("nothing deleted")
		}
	}
	out := &output{w: s.opts.Out}
	stopped := false
	for _, h := range []struct{ lock, what string }{{s.Layout.LockFile(), "second dev"}, {s.infraLock(), "the kept MongoDB and Redis"}} {
		did, err := stopHolder(ctx, h.lock)
		if err != nil {
			return fmt.Errorf("stop %s: %w", h.what, err)
		}
		if did {
			stopped = true
			out.Printf("stopped %s", h.what)
		}
	}
	if !stopped {
		out.Printf("nothing was running in %s", s.Repo)
	}
	if volumes {
		if err := os.RemoveAll(s.Layout.Root); err != nil {
			return fmt.Errorf("delete %s: %w", s.Layout.Root, err)
		}
		_ = os.Remove(s.InfoPath())
		out.Printf("deleted %s", s.Layout.Root)
	}
	return nil
}

// stopHolder sends SIGTERM to the process holding lock and waits until
// the lock is free (that process stops its children first).
func stopHolder(ctx context.Context, lock string) (bool, error) {
	if !state.Held(lock) {
		return false, nil
	}
	pid := state.Holder(lock)
	if pid <= 0 || !procutil.Alive(pid) {
		return false, fmt.Errorf("%s is locked by an unknown process", lock)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return false, fmt.Errorf("signal pid %d: %w", pid, err)
	}
	ctx, cancel := context.WithTimeout(ctx, stack.MongoGrace+30*time.Second)
	defer cancel()
	for state.Held(lock) {
		select {
		case <-ctx.Done():
			return true, fmt.Errorf("pid %d still holds %s: %w", pid, lock, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return true, nil
}

// PrintStatus lists every running dev stack on the machine.
func PrintStatus(w io.Writer, l home.Layout) error {
	recs, err := (&Registry{Dir: RegistryDir(l)}).Running()
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		fmt.Fprintln(w, "No dev stacks are running.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DEV ID\tURL\tWEB\tWORKER\tMONGO\tREDIS\tPID\tWORKTREE")
	for _, r := range recs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", r.DevID, r.URL, r.WebPort, r.WorkerPort, r.MongoPort, r.RedisPort, r.PID, r.Worktree)
	}
	return tw.Flush()
}
