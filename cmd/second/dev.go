package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/local/devstack"
)

type devFlags struct {
	repo             string
	disableTelemetry bool
}

func newDevCmd(g *globals) *cobra.Command {
	f := &devFlags{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run this worktree's development stack: native MongoDB and Redis, the worker and next dev with hot reload, at http://<dev-id>.second.localhost:1355",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runDev(cmd, g, f) },
	}
	cmd.PersistentFlags().StringVar(&f.repo, "repo", "", "the checkout (default: the one holding the current directory)")
	cmd.Flags().BoolVar(&f.disableTelemetry, "disable-telemetry", false, "turn off product telemetry")
	cmd.Flags().BoolVar(&f.disableTelemetry, "no-analytics", false, "same as --disable-telemetry")
	cmd.AddCommand(newDevStatusCmd(g), newDevDownCmd(g, f), newDevInfraCmd(g, f))
	return cmd
}

// devOptions is what every dev subcommand resolves the stack with.
// devStack resolves the worktree's dev stack from the flags.
func devStack(cmd *cobra.Command, g *globals, f *devFlags) (*devstack.Stack, error) {
	l, err := g.layout()
	if err != nil {
		return nil, err
	}
	return devstack.Resolve(devstack.Options{Repo: f.repo, Home: l, Out: cmd.OutOrStdout(), DisableTelemetry: f.disableTelemetry,
		Color: isTerminal(os.Stdout) && os.Getenv("NO_COLOR") == ""})
}

func runDev(cmd *cobra.Command, g *globals, f *devFlags) error {
	s, err := devStack(cmd, g, f)
	if err != nil {
		return err
	}
	err = s.Run(cmd.Context())
	var running *devstack.AlreadyRunningError
	if errors.As(err, &running) {
		fmt.Fprintf(cmd.OutOrStdout(), "second dev is already running in %s (pid %d) at %s\n", s.Repo, running.PID, running.URL)
		return nil
	}
	return err
}

func newDevStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "List every running dev stack on this machine",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := g.layout()
			if err != nil {
				return err
			}
			return devstack.PrintStatus(cmd.OutOrStdout(), l)
		},
	}
}

func newDevDownCmd(g *globals, f *devFlags) *cobra.Command {
	var volumes, yes bool
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop this worktree's dev stack, kept infrastructure included; --volumes also deletes its .second-dev/ (asks first)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := devStack(cmd, g, f)
			if err != nil {
				return err
			}
			var confirm func(string) (bool, error)
			if volumes && !yes {
				confirm = func(dir string) (bool, error) {
					return askYes(cmd, fmt.Sprintf("This stops the dev stack and permanently deletes %s (its MongoDB and Redis data, logs and secrets).\nContinue? [y/N] ", dir),
						"dev down --volumes deletes local data and needs confirmation: run it in a terminal, or pass --yes")
				}
			}
			return s.Down(cmd.Context(), volumes, confirm)
		},
	}
	cmd.Flags().BoolVar(&volumes, "volumes", false, "also delete the worktree's .second-dev/ (data, logs, secrets)")
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return cmd
}

// newDevInfraCmd is what SECOND_DEV_KEEP_INFRA=1 starts in the background:
// the worktree's mongod and redis-server, outliving `second dev`.
func newDevInfraCmd(g *globals, f *devFlags) *cobra.Command {
	var mongoPort, redisPort int
	cmd := &cobra.Command{
		Use:    "infra",
		Short:  "Run only the worktree's MongoDB and Redis (started by second dev when SECOND_DEV_KEEP_INFRA=1)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := devStack(cmd, g, f)
			if err != nil {
				return err
			}
			return s.RunInfra(cmd.Context(), mongoPort, redisPort)
		},
	}
	cmd.Flags().IntVar(&mongoPort, "mongo-port", 0, "mongod's port")
	cmd.Flags().IntVar(&redisPort, "redis-port", 0, "redis-server's port")
	return cmd
}
