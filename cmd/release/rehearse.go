package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/release/rehearse"
	"github.com/second-inc/second-release/internal/release/verdaccio"
	"github.com/second-inc/second-release/internal/release/verify"
)

func newRehearseCmd(g *globals) *cobra.Command {
	var (
		keep, noImages bool
		ver, out       string
		bf             buildFlags
	)
	cmd := &cobra.Command{
		Use:   "rehearse [--keep] [--version V]",
		Short: "Rehearse a whole release against a private local registry",
		Long: `Builds a snapshot (or --version V), starts a private Verdaccio on a free
loopback port whose @scope packages only authenticated users can read or
publish, publishes with --access restricted, then checks what a new user would
meet: anonymous reads are refused; with the rehearsal .npmrc,
npx --yes <launcher>@<V> version installs this host's payload through the
launcher and prints <V>; as another new user, npx --yes <launcher>@<V> start
--no-open brings the whole stack up from the payload's own natives (web and
worker health answer), then status and stop leave nothing running (twice: with
and without the install, both timed); publishing again skips everything. Prints a summary and
removes everything it started. It also builds the images (on the offline dev
base where release.yaml pins none), pushes them to a private OCI registry,
signs them with a fresh cosign key and verifies them, then pulls this host's
platform images from that registry with podman and runs them (uid 1000,
read-only root) until /api/health and /health answer 200, as a check of its
own (--no-images skips the image checks). --keep leaves the registry running and prints
its URL and the new user's .npmrc.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			if out == "" {
				out = filepath.Join(cfg.OutDir(), "rehearsal")
			}
			bo := bf.options(g, cfg, stderr)
			bo.Version, bo.Snapshot, bo.Out = ver, ver == "", out
			log := bo.Log
			o := rehearse.Options{
				Dist: out, Scope: cfg.Scope, Keep: keep, Log: log,
				Build: builder(bo),
			}
			if bin, err := verdaccio.FindBin(cfg.Dir); err == nil {
				o.VerdaccioBin = bin
			}
			pre, err := checkFirst(cmd.Context(), cfg, bo, !noImages, true, "pass --no-images", nil)
			if err != nil {
				return fmt.Errorf("rehearsal: %w", err)
			}
			if !noImages {
				// The image half: build on the offline dev base, push to a
				// private OCI registry, re-push uploading nothing, sign with
				// a fresh key, verify the pinned compose file, refuse an
				// unsigned image; then pull the host platform's images with
				// podman from that registry and run them until healthy.
				var imgs *verify.ImagesReport
				defer func() { imgs.Close() }()
				o.Images = func(ctx context.Context, work string) (string, error) {
					r, err := verify.ImagesCheck(ctx, verify.ImagesCheckOptions{Config: cfg, Dist: out, WorkDir: work, Platforms: pre.ImagePlatforms, Hold: true, Log: log})
					imgs = r
					if err != nil {
						return "", err
					}
					return strings.Join(append([]string{r.Summary()}, pre.Notes...), "; "), nil
				}
				o.RunImages = func(ctx context.Context) (string, error) {
					return verify.RunHostImages(ctx, imgs, log)
				}
			}
			rep, err := rehearse.Rehearse(cmd.Context(), o)
			if rep != nil {
				if eerr := g.emit(cmd.OutOrStdout(), rep, rep.WriteTable); eerr != nil {
					return eerr
				}
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&keep, "keep", false, "leave the registry running and print its URL and .npmrc")
	fl.StringVar(&ver, "version", "", "rehearse this version instead of the snapshot of this commit")
	bf.register(fl, "comma-separated platforms (default: release.yaml platforms; must include this host's)")
	fl.StringVar(&out, "out", "", "build output (default: <release.yaml out>/rehearsal)")
	fl.BoolVar(&noImages, "no-images", false, "skip building, pushing, signing and verifying the images")
	return cmd
}
