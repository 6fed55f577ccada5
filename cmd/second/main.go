// Command second is the local runtime shipped in every payload package: it
// supervises mongod, redis-server, the web server and the worker on loopback.
// Wiring only; the logic lives in internal/ packages that never pull in
// release-side dependencies (see deps_test.go).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/buildinfo"
)

// globals are the flags every subcommand shares.
type globals struct {
	home string
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "second",
		Short:         "Run Second locally: MongoDB, Redis, the web app and the worker on loopback",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
	}
	bindStart(root, g) // `second` alone means `second start`
	root.PersistentFlags().StringVar(&g.home, "home", "", "home directory (default $SECOND_HOME or ~/.second)")
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the runtime's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), buildinfo.Version)
		},
	})
	for _, sub := range []func(*globals) *cobra.Command{
		newStartCmd, newStatusCmd, newLogsCmd, newStopCmd, newResetCmd, newDoctorCmd, newDevCmd,
	} {
		root.AddCommand(sub(g))
	}
	return root
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "second:", err)
		// Only our own exitError picks the status: a child's *exec.ExitError
		// deep in the chain must not become second's exit code.
		var exit exitError
		if errors.As(err, &exit) {
			os.Exit(exit.ExitCode())
		}
		os.Exit(1)
	}
}
