package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/artifact"
	"github.com/second-inc/second-release/internal/pipeline"
	"github.com/second-inc/second-release/internal/rehearse"
	"github.com/second-inc/second-release/internal/verdaccio"
)

func init() { subcommands = append(subcommands, newRehearseCmd) }

func newRehearseCmd(g *globals) *cobra.Command {
	var (
		keep, skipNatives   bool
		noImages, realBases bool
		ver, platforms, out string
	)
	cmd := &cobra.Command{
		Use:   "rehearse [--keep] [--version V]",
		Short: "Rehearse a whole release against a private local registry",
		Long: `Builds a snapshot (or --version V), starts a private Verdaccio on a free
loopback port whose @scope packages only authenticated users can read or
publish, publishes with --access restricted, then checks what a new user would
meet: anonymous reads are refused; with the rehearsal .npmrc,
npx --yes <launcher>@<V> version installs this host's payload through the
launcher and prints <V>; publishing again skips everything. Prints a summary and
removes everything it started. When the images command is available it also
builds the images, pushes them to a private OCI registry, signs them with a
fresh cosign key and verifies them (on an offline dev base unless
--real-bases). --keep leaves the registry running and prints
its URL and the new user's .npmrc.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			log := g.logger(stderr)
			if out == "" {
				out = filepath.Join(cfg.OutDir(), "rehearsal")
			}
			o := rehearse.Options{
				Dist: out, Scope: cfg.Scope, Keep: keep, Log: log,
				Build: func(ctx context.Context) (*artifact.Release, error) {
					bo := pipeline.Options{Config: cfg, Version: ver, Snapshot: ver == "", Out: out, SkipNatives: skipNatives, Log: log}
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
			if bin, err := verdaccio.FindBin(cfg.Dir); err == nil {
				o.VerdaccioBin = bin
			}
			if !noImages && hasSubcommand(g, "images") {
				if regBin, ok := findTool(cfg.Dir, "registry"); ok {
					o.Images = func(ctx context.Context, work string) (string, error) {
						return rehearse.ImagesCheck(ctx, rehearse.ImagesOptions{
							Dist: out, WorkDir: work, RegistryBin: regBin,
							BuildPush: func(ctx context.Context, prefix string) error {
								args := []string{"--push", prefix, "--out", out}
								if !realBases {
									args = append(args, "--dev-base")
								}
								return runSubcommand(ctx, g, stderr, "images", args...)
							},
						})
					}
				} else {
					log.Warn("no distribution registry binary (.tools/bin/registry): the rehearsal skips the images; run scripts/setup")
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
	fl.StringVar(&platforms, "platform", "", "comma-separated platforms (default: release.yaml platforms; must include this host's)")
	fl.StringVar(&out, "out", "", "build output (default: <release.yaml out>/rehearsal)")
	fl.BoolVar(&noImages, "no-images", false, "skip building, pushing, signing and verifying the images")
	fl.BoolVar(&realBases, "real-bases", false, "build the images on release.yaml's pinned bases (needs them reachable or cached) instead of the offline dev base")
	fl.BoolVar(&skipNatives, "skip-natives", os.Getenv("SECOND_RELEASE_SKIP_NATIVES") == "1",
		"leave dist/runtime empty (no mongod/redis-server) when the pinned sources are out of reach")
	return cmd
}

// findTool looks for a tool scripts/setup installs: .tools/bin under dir or
// one of its parents, then $PATH.
func findTool(dir, name string) (string, bool) {
	for d := dir; ; d = filepath.Dir(d) {
		p := filepath.Join(d, ".tools", "bin", name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, true
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	return "", false
}
