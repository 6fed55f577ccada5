package main

import (
	"context"
	"fmt"
	"github.com/second-inc/second-release/internal/release/progress"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/release/config"
	"github.com/second-inc/second-release/internal/release/oci"
)

type imagesFlags struct {
	push, platforms, out string
	web, worker, version string
	webBase, workerBase  string
	devBase              bool
	devNode              string
}

func newImagesCmd(g *globals) *cobra.Command {
	var f imagesFlags
	cmd := &cobra.Command{
		Use:   "images [--push REPO_PREFIX] [--platform linux/amd64,linux/arm64]",
		Short: "Build the web and worker OCI images into dist/oci (and push them by digest)",
		Long: `Builds one image index per app (web: node server.js, worker: node worker.mjs) for
every platform with go-containerregistry, no Docker daemon: the base from
release.yaml pinned by digest plus one deterministic app layer (sorted, mtimes
from SOURCE_DATE_EPOCH, root-owned files, non-root user 1000:1000).

The app trees come from the linux payloads in dist/release.json (they already
carry each architecture's native node modules); --web/--worker take directories
instead, retargeted per platform with the same native-module resolution.

--push pushes each index by digest, tags it <version>, and tags latest only for
a stable version that is the highest in the repository. Layers the registry
already has are not uploaded again.

--dev-base builds on a base made on the spot, for offline rehearsals and tests:
on the host's platform it carries the host's Node 20 (--dev-node, default node
on PATH) with the shared libraries it loads, so that image runs; the other
platforms keep a minimal base without node (their images do not run). The
output says which is which.

Native node modules follow each base's C library, read from its files: a musl
base (Alpine: /lib/ld-musl-*) gets the musl builds (@img/sharp-linuxmusl-*),
a glibc base the glibc ones; a module left built for the other C library
fails the build, naming it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			return runImages(cmd.Context(), g, cfg, f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.push, "push", "", "push to this repository prefix (e.g. ghcr.io/second-inc or 127.0.0.1:5000/second)")
	fl.StringVar(&f.platforms, "platform", "", "comma-separated OCI platforms (default: images.platforms)")
	fl.StringVar(&f.out, "out", "", "dist dir (default: release.yaml out)")
	fl.StringVar(&f.web, "web", "", "web standalone tree (server.js …) instead of the payloads")
	fl.StringVar(&f.worker, "worker", "", "worker bundle dir (worker.mjs …) instead of the payloads")
	fl.StringVar(&f.version, "version", "", "release version when dist/release.json does not exist")
	fl.StringVar(&f.webBase, "web-base", "", "web base image pinned by digest (overrides images.web.base)")
	fl.StringVar(&f.workerBase, "worker-base", "", "worker base image pinned by digest (overrides images.worker.base)")
	fl.BoolVar(&f.devBase, "dev-base", false, "build on an offline base: the host's node on the host platform, no node elsewhere (rehearsals, tests)")
	fl.StringVar(&f.devNode, "dev-node", "", "with --dev-base: the Node 20 binary for the host platform (default: node on PATH)")
	return cmd
}

func runImages(ctx context.Context, g *globals, cfg *config.Config, f imagesFlags, stdout, stderr io.Writer) error {
	log := g.logger(stderr)
	o := oci.ReleaseOptions{
		Config: cfg, Dist: f.out, Web: f.web, Worker: f.worker, Version: f.version,
		WebBase: f.webBase, WorkerBase: f.workerBase, DevBase: f.devBase, DevNode: f.devNode, Push: f.push, Log: log, PushProgress: progress.Transfer(log, "push"),
	}
	if f.platforms != "" {
		o.Platforms = strings.Split(f.platforms, ",")
	}
	res, err := oci.BuildRelease(ctx, o)
	if err != nil {
		return err
	}
	return g.emit(stdout, res, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "IMAGE\tPLATFORM\tDIGEST\tSIZE\tAPP LAYER\tNODE_MODULES LAYER\tLIBC\tBASE")
		for _, b := range res.Images {
			fmt.Fprintf(tw, "%s\tindex\t%s\t\t\t\t\t\n", b.Name, b.Digest)
			for _, m := range b.Manifests {
				deps := "-"
				if m.DepsLayer != "" {
					deps = humanSize(m.DepsSize)
				}
				fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Platform, m.Digest, humanSize(m.Size), humanSize(m.LayerSize), deps, dashIfEmpty(m.Libc), m.Base)
			}
		}
		tw.Flush()
		if line := oci.DevBaseSummary(res.Images); line != "" {
			fmt.Fprintln(w, line)
		}
		fmt.Fprintf(w, "OCI layout: %s\n", res.Layout)
		for _, p := range res.Pushed {
			fmt.Fprintf(w, "pushed %s (tags %s; %s of blobs uploaded)\n", p.Ref, strings.Join(p.Tags, ", "), humanSize(p.BlobBytes))
		}
	})
}
