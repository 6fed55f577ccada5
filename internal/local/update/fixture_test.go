package update_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/local/control"
	"github.com/second-inc/second-release/internal/local/runstatus"
	"github.com/second-inc/second-release/internal/local/state"
	"github.com/second-inc/second-release/internal/local/update"
	"github.com/second-inc/second-release/internal/local/updatecheck"
	"github.com/second-inc/second-release/internal/npmconf"
	"github.com/second-inc/second-release/internal/npmregistry"
)

// The test binary doubles as a tiny "runtime" that the launcher-like test
// package starts through npx: it holds the home's lock, runs one "service"
// that records each start in data/, and serves the real control server with
// the real installer.
func TestMain(m *testing.M) {
	if os.Getenv("SECOND_UPDATE_FIXTURE") == "1" {
		os.Exit(fixtureMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

type fixture struct {
	layout  home.Layout
	version string
	pkg     string
	args    []string
	log     *slog.Logger
	cancel  context.CancelFunc

	mu     sync.Mutex
	lock   *state.Lock
	srv    *control.Server
	inst   *update.Installer
	checks *updatecheck.Checker
	ready  bool
}

func fixtureMain(args []string) int {
	if len(args) == 0 || args[0] != "start" {
		fmt.Fprintln(os.Stderr, "fixture: usage: start --home DIR [--note X]")
		return 2
	}
	fs := flag.NewFlagSet("start", flag.ContinueOnError)
	homeDir := fs.String("home", "", "")
	fs.String("note", "", "")
	if err := fs.Parse(args[1:]); err != nil || *homeDir == "" {
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	ctx, cancelRun := context.WithCancel(ctx)
	f := &fixture{
		layout:  home.Layout{Root: *homeDir},
		version: os.Getenv("SECOND_CLI_RELEASE_VERSION"),
		pkg:     os.Getenv("SECOND_CLI_RELEASE_PACKAGE"),
		args:    args[1:],
		log:     slog.New(slog.NewTextHandler(os.Stderr, nil)),
		cancel:  cancelRun,
	}
	cfg, err := npmconf.Load(npmconf.Options{})
	if err != nil {
		f.log.Error("npm config", "err", err)
		return 1
	}
	f.checks = updatecheck.New(updatecheck.Options{Package: f.pkg, Current: f.version, Lookup: &npmregistry.Client{Config: cfg}})
	f.inst = update.New(update.Options{
		Layout: f.layout, Package: f.pkg, Current: f.version, StartArgs: f.args,
		Target: f, ReadyTimeout: 90 * time.Second, Log: f.log,
	})
	if err := f.Resume(ctx); err != nil {
		f.log.Error("start", "err", err)
		return 1
	}
	<-ctx.Done()
	f.mu.Lock()
	handedOver := !f.ready && f.inst.State().Phase == update.PhaseSucceeded
	f.mu.Unlock()
	if !handedOver {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		f.Suspend(sctx)
	}
	return 0
}

func (f *fixture) record(event string) error {
	fh, err := os.OpenFile(filepath.Join(f.layout.DataDir(), "history.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer fh.Close()
	_, err = fmt.Fprintf(fh, "%s %s\n", event, f.version)
	return err
}

// Resume takes the lock, starts the "service" and the control server.
func (f *fixture) Resume(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := os.MkdirAll(f.layout.DataDir(), 0o700); err != nil {
		return err
	}
	var err error
	// The old version may still be releasing the lock for a moment.
	for i := 0; i < 50; i++ {
		if f.lock, err = state.TryLock(f.layout.LockFile()); !errors.Is(err, state.ErrLocked) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	if err := f.record("started"); err != nil {
		return err
	}
	f.srv, err = control.Start(context.WithoutCancel(ctx), control.Options{
		Layout: f.layout, Runtime: fixtureRuntime{f}, Version: f.version, PackageName: f.pkg,
		Release: f.checks, Updater: f.inst, Log: f.log,
	})
	if err != nil {
		return err
	}
	f.ready = true
	return nil
}

// Suspend stops the control server and the "service" and releases the home.
func (f *fixture) Suspend(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ready {
		return nil
	}
	f.srv.Close(ctx)
	f.record("stopped")
	f.lock.Release()
	f.ready = false
	return nil
}

func (f *fixture) Exit() { f.cancel() }

type fixtureRuntime struct{ f *fixture }

func (r fixtureRuntime) Snapshot() control.Snapshot {
	return control.Snapshot{Phase: "running", Services: []runstatus.Service{{Name: "fixture", State: "ready", PID: os.Getpid()}}}
}

func (r fixtureRuntime) Stop(ctx context.Context) error { r.f.cancel(); return nil }
