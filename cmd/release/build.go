package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/pipeline"
)

func init() { subcommands = append(subcommands, newBuildCmd) }

func newBuildCmd(g *globals) *cobra.Command {
	var (
		o         pipeline.Options
		platforms string
	)
	cmd := &cobra.Command{
		Use:   "build (--version V | --snapshot)",
		Short: "Build every payload package and the launcher into dist/npm",
		Long: `Builds the web app and the worker, the Go binaries (GoReleaser), one payload
package per platform (web, worker, second, mongod, redis-server, libraries) and
the launcher, then packs byte-reproducible tarballs into dist/npm and writes
dist/release.json and dist/SHA256SUMS.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			o.Config = cfg
			if platforms != "" {
				o.Platforms = strings.Split(platforms, ",")
			}
			o.Log = g.logger(cmd.ErrOrStderr())
			if g.verbose {
				o.Progress = cmd.ErrOrStderr()
			}
			c, err := pipeline.Build(cmd.Context(), o)
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), c.Release, func(w io.Writer) {
				fmt.Fprintf(w, "built %s (%s)\n", c.Release.Version, c.Dist)
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "KIND\tNAME\tPLATFORM\tSIZE\tFILE")
				for _, a := range c.Release.Artifacts {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Kind, a.Name, a.Platform, humanSize(a.Size), a.Path)
				}
				tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&o.Version, "version", "", "release version (semver, e.g. 1.2.3 or 1.3.0-rc.1)")
	cmd.Flags().BoolVar(&o.Snapshot, "snapshot", false, "build <next patch>-snapshot.<commit> from git")
	cmd.Flags().StringVar(&platforms, "platform", "", "comma-separated platforms (default: release.yaml platforms)")
	cmd.Flags().StringVar(&o.Out, "out", "", "output dir (default: release.yaml out)")
	cmd.Flags().BoolVar(&o.SkipNatives, "skip-natives", os.Getenv("SECOND_RELEASE_SKIP_NATIVES") == "1",
		"leave dist/runtime empty (no mongod/redis-server) when the pinned sources and mirror are out of reach")
	return cmd
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d B", n)
	}
}
