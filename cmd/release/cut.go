package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/artifact"
	"github.com/second-inc/second-release/internal/config"
	"github.com/second-inc/second-release/internal/pipeline"
	"github.com/second-inc/second-release/internal/rehearse"
	"github.com/second-inc/second-release/internal/version"
)

func init() { subcommands = append(subcommands, newCutCmd) }

func newCutCmd(g *globals) *cobra.Command {
	var (
		f           publishFlags
		platforms   string
		skipNatives bool
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
			log := g.logger(stderr)
			po := f.options(cfg, g, stderr)
			o := rehearse.CutOptions{
				Version: v.String(), Dist: po.Dist, Publish: po, Log: log,
				Build: func(ctx context.Context) (*artifact.Release, error) {
					bo := pipeline.Options{Config: cfg, Version: v.String(), Out: po.Dist, SkipNatives: skipNatives, Log: log}
					if platforms != "" {
						bo.Platforms = strings.Split(platforms, ",")
					}
					if g.verbose {
						bo.Progress = stderr
					}
					c, err := pipeline.Build(ctx, bo)
					if err != nil {
						return nil, err
					}
					return c.Release, nil
				},
			}
			o.Images, o.Sign, o.Verify = imageHooks(g, cfg, po.Dist, stderr)
			st, err := rehearse.Cut(cmd.Context(), o)
			if st != nil {
				if eerr := g.emit(cmd.OutOrStdout(), st, st.WriteTable); eerr != nil {
					return eerr
				}
			}
			return err
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringVar(&platforms, "platform", "", "comma-separated platforms (default: release.yaml platforms)")
	cmd.Flags().BoolVar(&skipNatives, "skip-natives", os.Getenv("SECOND_RELEASE_SKIP_NATIVES") == "1",
		"leave dist/runtime empty (no mongod/redis-server) when the pinned sources are out of reach")
	return cmd
}

// imageHooks returns the image steps when release.yaml configures them. They
// run the images, sign and verify subcommands through their command lines
// (contract §8), so cut follows whatever those commands do.
func imageHooks(g *globals, cfg *config.Config, dist string, w io.Writer) (images, sign, verify rehearse.Hook) {
	repo := cfg.Images.Repository
	if repo == "" || !hasSubcommand(g, "images") {
		return nil, nil, nil
	}
	images = func(ctx context.Context) error {
		return runSubcommand(ctx, g, w, "images", "--push", repo, "--out", dist)
	}
	if cfg.Sign.Key == "" || !hasSubcommand(g, "sign") {
		return images, nil, nil
	}
	key := cfg.Path(cfg.Sign.Key)
	sign = func(ctx context.Context) error {
		return runSubcommand(ctx, g, w, "sign", "--key", key, "--images", repo, "--out", dist)
	}
	if !hasSubcommand(g, "verify") {
		return images, sign, nil
	}
	verify = func(ctx context.Context) error {
		rel, err := artifact.Read(dist)
		if err != nil {
			return err
		}
		args := []string{"--key", strings.TrimSuffix(key, ".key") + ".pub"}
		for _, a := range rel.Filter(artifact.KindImage) {
			args = append(args, strings.TrimSuffix(repo, "/")+"/"+a.Name+"@"+a.Digest)
		}
		if len(args) == 2 {
			return errors.New("dist/release.json lists no images to verify")
		}
		return runSubcommand(ctx, g, w, "verify", args...)
	}
	return images, sign, verify
}

func hasSubcommand(g *globals, name string) bool {
	for _, sub := range subcommands {
		if sub(g).Name() == name {
			return true
		}
	}
	return false
}

// runSubcommand runs another release subcommand with args, its output going to w.
func runSubcommand(ctx context.Context, g *globals, w io.Writer, name string, args ...string) error {
	for _, sub := range subcommands {
		c := sub(g)
		if c.Name() != name {
			continue
		}
		c.SetArgs(args)
		c.SetOut(w)
		c.SetErr(w)
		c.SilenceUsage, c.SilenceErrors = true, true
		if err := c.ExecuteContext(ctx); err != nil {
			return fmt.Errorf("release %s: %w", name, err)
		}
		return nil
	}
	return fmt.Errorf("release %s is not available in this build", name)
}
