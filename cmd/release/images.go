package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/artifact"
	"github.com/second-inc/second-release/internal/config"
	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/nodemods"
	"github.com/second-inc/second-release/internal/oci"
	"github.com/second-inc/second-release/internal/platform"
)

func init() { subcommands = append(subcommands, newImagesCmd) }

type imagesFlags struct {
	push, platforms, out string
	web, worker, version string
	webBase, workerBase  string
	devBase              bool
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

--dev-base builds on a minimal base made on the spot (no node binary: the
images do not run). It lets an offline rehearsal build, push, sign and verify.`,
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
	fl.BoolVar(&f.devBase, "dev-base", false, "build on a minimal offline base without node (rehearsals; images do not run)")
	return cmd
}

func runImages(ctx context.Context, g *globals, cfg *config.Config, f imagesFlags, stdout, stderr io.Writer) error {
	log := g.logger(stderr)
	dist := cfg.OutDir()
	if f.out != "" {
		var err error
		if dist, err = filepath.Abs(f.out); err != nil {
			return err
		}
	}
	rel, err := artifact.Read(dist)
	if err != nil {
		if f.version == "" || f.web == "" {
			return fmt.Errorf("%w (or pass --version with --web and --worker)", err)
		}
		rel = &artifact.Release{Version: f.version}
	}
	if f.version != "" {
		rel.Version = f.version
	}
	epoch, err := imagesEpoch(rel)
	if err != nil {
		return err
	}
	rel.SourceDateEpoch = epoch.Unix()

	platforms := cfg.Images.Platforms
	if f.platforms != "" {
		platforms = strings.Split(f.platforms, ",")
	}
	var src oci.Source = oci.PayloadSource{Dist: dist, Release: rel}
	if f.web != "" || f.worker != "" {
		if f.web == "" || f.worker == "" {
			return errors.New("--web and --worker go together")
		}
		src = oci.DirSource{Web: f.web, Worker: f.worker, Retarget: func(ctx context.Context, dir string, p platform.Platform) error {
			_, err := nodemods.Retarget(ctx, nodemods.Options{Dir: dir, Target: p, Log: log})
			return err
		}}
	}
	webBase, err := pickBase("images.web.base", "--web-base", cfg.Images.Web.Base, f.webBase, f.devBase)
	if err != nil {
		return err
	}
	workerBase, err := pickBase("images.worker.base", "--worker-base", cfg.Images.Worker.Base, f.workerBase, f.devBase)
	if err != nil {
		return err
	}
	layoutDir := filepath.Join(dist, "oci")
	built, err := oci.Build(ctx, oci.BuildOptions{
		Out: layoutDir, Platforms: platforms, Source: src,
		Version: rel.Version, Revision: rel.Commit, SourceURL: cfg.Images.Source, Epoch: epoch, Log: log,
		Images: []oci.ImageSpec{
			{Kind: oci.Web, Name: cfg.Images.Web.Name, Port: cfg.Images.Web.Port, Base: webBase},
			{Kind: oci.Worker, Name: cfg.Images.Worker.Name, Port: cfg.Images.Worker.Port, Base: workerBase},
		},
	})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dist, 0o755); err != nil {
		return err
	}
	if err := oci.Record(dist, layoutDir, rel, built); err != nil {
		return err
	}
	result := struct {
		Layout string       `json:"layout"`
		Images []oci.Built  `json:"images"`
		Pushed []oci.Pushed `json:"pushed,omitempty"`
	}{Layout: layoutDir, Images: built}
	if f.push != "" {
		if result.Pushed, err = oci.Push(ctx, oci.PushOptions{Layout: layoutDir, Prefix: f.push, Version: rel.Version, Log: log}); err != nil {
			return err
		}
	}
	return g.emit(stdout, result, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "IMAGE\tPLATFORM\tDIGEST\tAPP LAYER")
		for _, b := range built {
			fmt.Fprintf(tw, "%s\tindex\t%s\t\n", b.Name, b.Digest)
			for _, m := range b.Manifests {
				fmt.Fprintf(tw, "\t%s\t%s\t%s\n", m.Platform, m.Digest, humanSize(m.LayerSize))
			}
		}
		tw.Flush()
		fmt.Fprintf(w, "OCI layout: %s\n", layoutDir)
		for _, p := range result.Pushed {
			fmt.Fprintf(w, "pushed %s (tags %s; %s of blobs uploaded)\n", p.Ref, strings.Join(p.Tags, ", "), humanSize(p.BlobBytes))
		}
	})
}

// imagesEpoch: $SOURCE_DATE_EPOCH, else the one `release build` recorded.
func imagesEpoch(rel *artifact.Release) (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a Unix time in seconds", s)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	if rel.SourceDateEpoch == 0 {
		return time.Time{}, errors.New("no SOURCE_DATE_EPOCH: set it (e.g. to the commit time) or run `release build` first")
	}
	return time.Unix(rel.SourceDateEpoch, 0).UTC(), nil
}

func pickBase(field, flag, fromConfig, fromFlag string, dev bool) (oci.Base, error) {
	ref := fromConfig
	if fromFlag != "" {
		ref = fromFlag
	}
	switch {
	case ref != "" && !strings.Contains(ref, "@sha256:"):
		src := field
		if fromFlag != "" {
			src = flag
		}
		return nil, fmt.Errorf("%s %q is not pinned by digest: write it as name@sha256:<64 hex> (a tag can move under a release)", src, ref)
	case ref != "":
		cacheDir, _ := home.OCILayerCacheDir()                   // no cache dir: download every time
		return oci.RemoteBase{Ref: ref, CacheDir: cacheDir}, nil // RemoteBase checks the digest again when it fetches
	case dev:
		return oci.DevBase{}, nil
	default:
		return nil, fmt.Errorf("%s is empty: set it in %s to an image pinned by digest, e.g. docker.io/library/node:20-alpine@sha256:<digest> "+
			"with the digest from `skopeo inspect --format '{{.Digest}}' docker://docker.io/library/node:20-alpine`, or pass %s; "+
			"for an offline rehearsal pass --dev-base (a minimal base without node: the images do not run)", field, config.FileName, flag)
	}
}
