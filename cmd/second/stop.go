package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/local/stack"
)

func newStopCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "stop",
		Short: "Stop the running runtime (worker, web, redis, then mongod)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := g.layout()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			// The control server stops it cleanly from inside; signals are the fallback.
			asked := stack.ControlStop(cmd.Context(), l) == nil
			stopped, err := stack.StopRunning(cmd.Context(), stack.StopOptions{Layout: l, Out: out, Asked: asked})
			if err != nil {
				return err
			}
			if stopped || asked {
				fmt.Fprintln(out, "Second stopped.")
			} else {
				fmt.Fprintln(out, "Second is not running.")
			}
			return nil
		},
	}
}
