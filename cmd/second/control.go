package main

import (
	"context"
	"os"
	"strings"

	"github.com/second-inc/second-release/internal/local/control"
	"github.com/second-inc/second-release/internal/local/stack"
	"github.com/second-inc/second-release/internal/local/update"
	"github.com/second-inc/second-release/internal/local/updatecheck"
	"github.com/second-inc/second-release/internal/npmconf"
	"github.com/second-inc/second-release/internal/npmregistry"
)

// controlStarter returns the hook that starts the local control server
// inside a run. With a nil updater POST /update/install answers 503.
func controlStarter(updater control.Updater) func(ctx context.Context, rt *stack.Runtime) (*stack.Control, error) {
	var checker *updatecheck.Checker // shared by the runs of this process, with its cache
	return func(ctx context.Context, rt *stack.Runtime) (*stack.Control, error) {
		opts := control.Options{
			Layout:      rt.Layout(),
			Runtime:     runtimeView{rt},
			Version:     rt.Version(),
			PackageName: rt.PackageName(),
			Token:       rt.Secrets().ControlToken,
			Updater:     updater,
		}
		if checker == nil {
			checker = newReleaseChecker(rt.Version())
		}
		if checker != nil {
			opts.Release = checker
		}
		srv, err := control.Start(ctx, opts)
		if err != nil {
			return nil, err
		}
		return &stack.Control{URL: srv.URL(), Stop: srv.Close}, nil
	}
}

// newReleaseChecker reads the user's npm configuration (~/.npmrc, the
// .npmrc of npm's project dir around the working directory, npm_config_*);
// nil when it cannot be read, and /release/status then answers 503.
func newReleaseChecker(current string) *updatecheck.Checker {
	wd, _ := os.Getwd()
	cfg, err := npmconf.Load(npmconf.Options{ProjectDir: npmconf.LocalPrefix(wd)})
	if err != nil {
		return nil
	}
	return updatecheck.New(updatecheck.Options{
		Package: updatecheck.PackageFromEnv(os.Getenv),
		Current: current,
		Lookup:  &npmregistry.Client{Config: cfg},
	})
}

// runtimeView adapts *stack.Runtime to control.Runtime.
type runtimeView struct{ rt *stack.Runtime }

func (v runtimeView) Snapshot() control.Snapshot {
	st := v.rt.Status()
	snap := control.Snapshot{Phase: st.Phase, URL: st.URL}
	if st.StartedAt != nil {
		snap.StartedAt = *st.StartedAt
	}
	snap.Services = st.Services
	return snap
}

func (v runtimeView) Stop(context.Context) error {
	v.rt.RequestStop()
	return nil
}

// runWithUpdates runs the runtime opts describe and enables POST
// /update/install: an update stops this run (data kept), starts the new
// version through the launcher with the same flags, and either returns
// (the new version runs) or runs this version again. runStart calls it in
// place of stack.New(opts).Run(ctx).
func runWithUpdates(ctx context.Context, opts stack.Options, args []string) error {
	loop := update.NewLoop()
	inst := update.New(update.Options{
		Layout:    opts.Layout,
		Package:   updatecheck.PackageFromEnv(os.Getenv),
		Current:   opts.Version,
		StartArgs: updateStartArgs(args),
		Target:    loop,
	})
	opts.Control = controlStarter(inst)
	return loop.Run(ctx, func() (func(context.Context) error, func()) {
		rt := stack.New(opts)
		return rt.Run, rt.RequestStop
	})
}

// updateStartArgs are the flags of this start (os.Args[1:] without the command
// name) for the new version's `start`.
func updateStartArgs(args []string) []string {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		args = args[1:] // "start" or "run"
	}
	return append([]string(nil), args...)
}
