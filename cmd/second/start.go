package main

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/buildinfo"
	"github.com/second-inc/second-release/internal/local/browser"
	"github.com/second-inc/second-release/internal/local/stack"
	"github.com/second-inc/second-release/internal/manifest"
)

type startFlags struct {
	port             int
	noOpen           bool
	disableTelemetry bool
}

func newStartCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "start",
		Aliases: []string{"run"},
		Short:   "Start MongoDB, Redis, the web app and the worker, and open the browser (the default command)",
		Args:    cobra.NoArgs,
	}
	bindStart(cmd, g)
	return cmd
}

// bindStart gives cmd the start flags and behaviour; the root command gets
// it too, so `second` alone starts.
func bindStart(cmd *cobra.Command, g *globals) {
	f := &startFlags{}
	cmd.Flags().IntVar(&f.port, "port", 0, fmt.Sprintf("web port (default %d, or a free port if that one is taken)", stack.DefaultWebPort))
	cmd.Flags().BoolVar(&f.noOpen, "no-open", false, "do not open the browser")
	cmd.Flags().BoolVar(&f.disableTelemetry, "disable-telemetry", false, "turn off product telemetry")
	cmd.Flags().BoolVar(&f.disableTelemetry, "no-analytics", false, "same as --disable-telemetry")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return runStart(cmd, g, f) }
}

func runStart(cmd *cobra.Command, g *globals, f *startFlags) error {
	if f.port < 0 || f.port > 65535 {
		return fmt.Errorf("--port %d: must be between 1 and 65535", f.port)
	}
	layout, err := g.layout()
	if err != nil {
		return err
	}
	payload, err := stack.Discover(stack.DiscoverOptions{})
	if err != nil {
		return fmt.Errorf("the Second payload is incomplete:\n%w", err)
	}
	version, pkg := releaseIdentity(payload)
	out := cmd.OutOrStdout()
	var openOnce sync.Once // a run resumed after a failed update must not open a second tab
	opts := stack.Options{
		Layout:           layout,
		Payload:          payload,
		Port:             f.port,
		PortExplicit:     cmd.Flags().Changed("port") && f.port > 0, // --port 0: any free port
		DisableTelemetry: f.disableTelemetry,
		Version:          version,
		PackageName:      pkg,
		Out:              out,
		OnReady: func(url string) {
			if f.noOpen || !isTerminal(os.Stdout) {
				return
			}
			openOnce.Do(func() {
				if err := browser.Open(cmd.Context(), url, browser.Options{Getenv: os.Getenv}); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "second: could not open a browser (%v); open %s yourself\n", err, url)
				}
			})
		},
	}
	// runWithUpdates (control.go) adds the control server and self-update.
	err = runWithUpdates(cmd.Context(), opts, os.Args[1:])
	var running *stack.AlreadyRunningError
	if errors.As(err, &running) {
		fmt.Fprintf(out, "Second is already running at %s (pid %d)\n", running.URL, running.PID)
		return nil
	}
	return err
}

// releaseIdentity is the version and package name the children are told:
// the launcher's word first, then the payload's manifest, then the binary's.
func releaseIdentity(p *stack.Payload) (version, pkg string) {
	version, pkg = os.Getenv("SECOND_CLI_RELEASE_VERSION"), os.Getenv("SECOND_CLI_RELEASE_PACKAGE")
	if (version == "" || pkg == "") && p.Manifest != "" {
		if m, _, err := manifest.Read(p.Root); err == nil {
			if version == "" {
				version = m.Version
			}
			if pkg == "" {
				pkg = m.Name
			}
		}
	}
	if version == "" {
		version = buildinfo.Version
	}
	return version, pkg
}

// isTerminal reports whether f is a character device (a terminal), without
// pulling in a terminal library for one bit.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
