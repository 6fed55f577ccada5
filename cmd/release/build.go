package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/release/pipeline"
)

func newBuildCmd(g *globals) *cobra.Command {
	var (
		f            buildFlags
		version, out string
		snapshot     bool
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
			o := f.options(g, cfg, cmd.ErrOrStderr())
			o.Version, o.Snapshot, o.Out = version, snapshot, out
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
	cmd.Flags().StringVar(&version, "version", "", "release version (semver, e.g. 1.2.3 or 1.3.0-rc.1)")
	cmd.Flags().BoolVar(&snapshot, "snapshot", false, "build <next patch>-snapshot.<commit> from git")
	cmd.Flags().StringVar(&out, "out", "", "output dir (default: release.yaml out)")
	f.register(cmd.Flags(), "comma-separated platforms (default: release.yaml platforms)")
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
