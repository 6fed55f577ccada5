// Command release builds, packs, publishes, signs and verifies Second releases.
// It is wiring only: each subcommand lives in its own file and calls into internal/.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/buildinfo"
	"github.com/second-inc/second-release/internal/release/config"
	"github.com/second-inc/second-release/internal/release/progress"
)

// globals are the flags every subcommand shares.
type globals struct {
	configPath string
	json       bool
	verbose    bool
}

func (g *globals) loadConfig() (*config.Config, error) { return config.Load(g.configPath) }

// emit prints v as JSON with --json, else calls human.
func (g *globals) emit(w io.Writer, v any, human func(io.Writer)) error {
	if g.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	human(w)
	return nil
}

// logger is the command's log on w: steps and durations for a person at a
// terminal, logfmt with -v or when w is a file or a pipe.
func (g *globals) logger(w io.Writer) *slog.Logger { return progress.Logger(w, g.verbose) }

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "release",
		Short:         "Build, publish, sign and verify Second releases",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.configPath, "config", config.FileName, "path to release.yaml")
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print machine-readable JSON")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "print debug logs")
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the release tool's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.emit(cmd.OutOrStdout(), map[string]string{"version": buildinfo.Version, "commit": buildinfo.Commit},
				func(w io.Writer) { fmt.Fprintln(w, buildinfo.Version) })
		},
	})
	// In the order a release runs them; each lives in its own file.
	for _, sub := range []func(*globals) *cobra.Command{
		newNativesCmd, newBuildCmd, newComposeCmd, newImagesCmd, newSignCmd, newVerifyCmd,
		newPlanCmd, newPublishCmd, newCutCmd, newRehearseCmd,
	} {
		root.AddCommand(sub(g))
	}
	return root
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		var exit interface{ ExitCode() int }
		if errors.As(err, &exit) {
			os.Exit(exit.ExitCode())
		}
		os.Exit(1)
	}
}
