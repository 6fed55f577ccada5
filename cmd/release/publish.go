package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/release/artifact"
	"github.com/second-inc/second-release/internal/release/config"
	"github.com/second-inc/second-release/internal/release/publish"
	"github.com/second-inc/second-release/internal/release/sign"
)

// publishFlags are shared by publish, cut and plan.
type publishFlags struct {
	registry, access, tag, otp, dist string
	provenance, force, dryRun        bool
}

func (f *publishFlags) register(cmd *cobra.Command, withDryRun bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.registry, "registry", "", "registry URL (default: release.yaml npm.registry, else your npm config for the scope)")
	fl.StringVar(&f.access, "access", "", "public or restricted (default: release.yaml npm.access)")
	fl.StringVar(&f.tag, "tag", "", "dist-tag to move once every package is in (default latest; next for prereleases)")
	fl.StringVar(&f.otp, "otp", "", "one-time password for registries with two-factor auth")
	fl.BoolVar(&f.provenance, "provenance", false, "publish with npm provenance (public access only)")
	fl.BoolVar(&f.force, "force", false, "let latest move to a version lower than it points at")
	fl.StringVar(&f.dist, "dist", "", "build output to publish (default: release.yaml out)")
	if withDryRun {
		fl.BoolVar(&f.dryRun, "dry-run", false, "check and show what would be published, change nothing")
	}
}

// options turns flags and release.yaml into publish options.
func (f *publishFlags) options(cfg *config.Config, g *globals, errw io.Writer) publish.Options {
	o := publish.Options{
		Dist: f.dist, Registry: f.registry, Access: f.access, Tag: f.tag, OTP: f.otp,
		Provenance: f.provenance, Force: f.force, DryRun: f.dryRun,
		ProjectDir: cfg.Dir, Log: g.logger(errw), Prompt: terminalPrompt(errw),
	}
	if o.Dist == "" {
		o.Dist = cfg.OutDir()
	}
	if o.Registry == "" {
		o.Registry = cfg.NPM.Registry
	}
	if o.Access == "" {
		o.Access = cfg.NPM.Access
	}
	return o
}

// terminalPrompt asks on the terminal for a one-time password; nil when
// stdin is not a terminal (CI), so an EOTP fails with advice to pass --otp.
func terminalPrompt(w io.Writer) func(context.Context, string) (string, error) {
	st, err := os.Stdin.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return func(_ context.Context, q string) (string, error) {
		fmt.Fprint(w, q)
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil {
			return "", fmt.Errorf("read one-time password: %w", err)
		}
		return line, nil
	}
}

func newPublishCmd(g *globals) *cobra.Command {
	var f publishFlags
	cmd := &cobra.Command{
		Use:   "publish",
		Short: "Publish dist/npm: every payload, then the launcher, then the dist-tag",
		Long: `Publishes the tarballs release build wrote, as they are, with npm and your npm
configuration (.npmrc, scoped registries, tokens). Preflight first: the
registry answers, you are logged in, and every version already in the
registry has the same integrity as the local tarball (then it is skipped). Then
all payloads, a check that each is visible with the expected integrity, the
launcher, and finally the dist-tag. Writes dist/publish-state.json; run it
again after any failure to finish.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			o := f.options(cfg, g, cmd.ErrOrStderr())
			l, err := publish.Run(cmd.Context(), o)
			if err == nil && !o.DryRun {
				err = signIfConfigured(cmd.Context(), cfg, o.Dist, o.Log)
			}
			switch {
			case l != nil:
				if eerr := g.emit(cmd.OutOrStdout(), l, l.WriteTable); eerr != nil {
					return eerr
				}
			case err != nil && g.json:
				var refusal *publish.RefusalError
				_ = g.emit(cmd.OutOrStdout(), map[string]any{"error": err.Error(), "refused": errors.As(err, &refusal)}, nil)
			}
			return err
		},
	}
	f.register(cmd, true)
	return cmd
}

// signIfConfigured signs the pushed images dist/release.json lists when
// release.yaml sets sign.key and images.repository: a configured publish
// leaves no unsigned image behind. Signing again adds nothing, so reruns are safe.
func signIfConfigured(ctx context.Context, cfg *config.Config, dist string, log *slog.Logger) error {
	if cfg.Sign.Key == "" || cfg.Images.Repository == "" {
		return nil
	}
	rel, err := artifact.Read(dist)
	if err != nil || len(rel.Filter(artifact.KindImage)) == 0 {
		return nil // no images pushed yet: `release images --push` first, or `release cut`
	}
	_, err = sign.Release(ctx, sign.ReleaseOptions{Dist: dist, Prefix: cfg.Images.Repository, Key: cfg.Path(cfg.Sign.Key), Log: log})
	if err != nil {
		return fmt.Errorf("sign the release's images: %w", err)
	}
	return nil
}
