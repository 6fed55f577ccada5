package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/release/config"
	"github.com/second-inc/second-release/internal/release/cut"
	"github.com/second-inc/second-release/internal/release/oci"
	"github.com/second-inc/second-release/internal/release/publish"
	"github.com/second-inc/second-release/internal/release/sign"
	"github.com/second-inc/second-release/internal/release/verify"
	"github.com/second-inc/second-release/internal/release/version"
)

func newCutCmd(g *globals) *cobra.Command {
	var (
		f  publishFlags
		bf buildFlags
	)
	cmd := &cobra.Command{
		Use:   "cut V",
		Short: "Cut a release: build, publish payloads then launcher, images, sign, verify, tags",
		Long: `The one command for a real release. Builds V (reusing an intact build of V in
dist/), publishes every payload and then the launcher, builds, pushes, signs and
verifies the images when release.yaml configures them (images.repository,
sign.key), and moves the dist-tags last. It stops at the first failure and
says what to do; running it again resumes (dist/cut-state.json and
dist/publish-state.json record the progress).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			v, err := version.Parse(args[0])
			if err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			po := f.options(cfg, g, stderr)
			bo := bf.options(g, cfg, stderr)
			bo.Version, bo.Out = v.String(), po.Dist
			log := bo.Log
			images := cfg.Images.Repository != ""
			if _, err := checkFirst(cmd.Context(), cfg, bo, images, false, "", func(ctx context.Context) error {
				return publish.CheckRegistry(ctx, po, cfg.LauncherName())
			}); err != nil {
				return fmt.Errorf("cut %s: %w", v, err)
			}
			o := cut.Options{
				Version: v.String(), Dist: po.Dist, Publish: po, Log: log,
				Build: builder(bo),
			}
			o.Images, o.Sign, o.Verify = imageHooks(cfg, po.Dist, log)
			st, err := cut.Run(cmd.Context(), o)
			if st != nil {
				if eerr := g.emit(cmd.OutOrStdout(), st, st.WriteTable); eerr != nil {
					return eerr
				}
			}
			return err
		},
	}
	f.register(cmd, false)
	bf.register(cmd.Flags(), "comma-separated platforms (default: release.yaml platforms)")
	return cmd
}

// imageHooks returns the image steps when release.yaml configures them
// (images.repository; sign.key for sign and verify), through the image
// pipeline's functions that `release images`, `sign` and `verify` also use.
func imageHooks(cfg *config.Config, dist string, log *slog.Logger) (images, signHook, verifyHook cut.Hook) {
	repo := cfg.Images.Repository
	if repo == "" {
		return nil, nil, nil
	}
	images = func(ctx context.Context) error {
		_, err := oci.BuildRelease(ctx, oci.ReleaseOptions{Config: cfg, Dist: dist, Push: repo, Log: log})
		return err
	}
	if cfg.Sign.Key == "" {
		return images, nil, nil
	}
	key := cfg.Path(cfg.Sign.Key)
	ro := verify.ReleaseOptions{Dist: dist, Prefix: repo, Log: log}
	signHook = func(ctx context.Context) error {
		_, err := sign.Release(ctx, sign.ReleaseOptions{Dist: dist, Prefix: repo, Key: key, Log: log})
		return err
	}
	verifyHook = func(ctx context.Context) error {
		_, err := verify.VerifyRelease(ctx, ro, strings.TrimSuffix(key, filepath.Ext(key))+".pub")
		return err
	}
	return images, signHook, verifyHook
}
