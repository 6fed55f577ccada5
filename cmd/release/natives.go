package main

import (
	"fmt"
	"github.com/second-inc/second-release/internal/release/progress"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/release/binarycheck"
	"github.com/second-inc/second-release/internal/release/natives"
	"github.com/second-inc/second-release/internal/release/platform"
)

func newNativesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "natives",
		Short: "Manage the pinned mongod, redis-server and OpenSSL in packaging/<platform>/natives.lock.json",
	}
	cmd.AddCommand(newNativesFetchCmd(g), newNativesUpdateCmd(g), newNativesCheckCmd(g), newNativesStandinCmd(g))
	return cmd
}

// nativesPlatforms resolves --platform against release.yaml's list.
func nativesPlatforms(flag string, cfgPlatforms []string) ([]platform.Platform, error) {
	ids := cfgPlatforms
	if flag != "" {
		ids = strings.Split(flag, ",")
	}
	if len(ids) == 0 {
		ids = platform.IDs()
	}
	var out []platform.Platform
	for _, id := range ids {
		p, err := platform.Parse(strings.TrimSpace(id))
		if err != nil {
			return nil, fmt.Errorf("--platform: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

func newNativesFetchCmd(g *globals) *cobra.Command {
	var to, platforms string
	cmd := &cobra.Command{
		Use:   "fetch --to DIR",
		Short: "Download every pinned archive into DIR/sha256/<hex>, a mirror for SECOND_RELEASE_MIRROR",
		Long: `Fetches (through the cache, verifying every sha256) each archive the platform locks
pin and copies it to DIR/sha256/<hex>, with DIR/index.json saying what each is.
Point SECOND_RELEASE_MIRROR at DIR (or at a server serving it) to build without
reaching the upstream sources.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return fmt.Errorf("--to: required (the mirror directory to fill)")
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			ps, err := nativesPlatforms(platforms, cfg.Platforms)
			if err != nil {
				return err
			}
			var locks []string
			for _, p := range ps {
				locks = append(locks, natives.LockPath(cfg.Dir, p.ID))
			}
			log := g.logger(cmd.ErrOrStderr())
			entries, err := natives.FillMirror(cmd.Context(), natives.MirrorOptions{Locks: locks, To: to,
				Options: natives.Options{Log: log, Progress: progress.Transfer(log, "download")}})
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), entries, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "PLATFORM\tNAME\tVERSION\tPATH")
				for _, e := range entries {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Platform, e.Name, e.Version, e.Path)
				}
				tw.Flush()
				fmt.Fprintf(w, "mirror ready: export %s=%s\n", natives.MirrorEnv, to)
			})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "mirror directory to fill")
	cmd.Flags().StringVar(&platforms, "platform", "", "comma-separated platforms (default: release.yaml platforms)")
	return cmd
}

func newNativesUpdateCmd(g *globals) *cobra.Command {
	var platforms string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Move each lock's pins to the newest published release of their track and rewrite the lock",
		Long: `Reads MongoDB's release feed and Homebrew's formula API (both publish the sha256
of every archive), moves each pin with a "track" to the newest release of that
track, and rewrites packaging/<platform>/natives.lock.json. The new archives are
downloaded (into the release cache, verified against the published digest) to read
their real member names, also with --dry-run. Builds never do this.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			ps, err := nativesPlatforms(platforms, cfg.Platforms)
			if err != nil {
				return err
			}
			all := map[string][]natives.Change{}
			for _, p := range ps {
				ch, err := natives.Update(cmd.Context(), natives.UpdateOptions{LockPath: natives.LockPath(cfg.Dir, p.ID), DryRun: dryRun,
					Progress: progress.Transfer(g.logger(cmd.ErrOrStderr()), "download")})
				if err != nil {
					return err
				}
				all[p.ID] = ch
			}
			return g.emit(cmd.OutOrStdout(), all, func(w io.Writer) {
				for _, p := range ps {
					if len(all[p.ID]) == 0 {
						fmt.Fprintf(w, "%s: up to date\n", p.ID)
					}
					for _, c := range all[p.ID] {
						fmt.Fprintf(w, "%s: %s %s -> %s (sha256 %s)\n", p.ID, c.Name, c.From, c.To, c.SHA256)
						for _, m := range slices.Sorted(maps.Keys(c.Members)) {
							fmt.Fprintf(w, "    %s -> %s\n", m, c.Members[m])
						}
					}
				}
			})
		},
	}
	cmd.Flags().StringVar(&platforms, "platform", "", "comma-separated platforms (default: release.yaml platforms)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would change without writing the locks")
	return cmd
}

func newNativesCheckCmd(g *globals) *cobra.Command {
	var platformID string
	cmd := &cobra.Command{
		Use:   "check PAYLOAD_DIR --platform P",
		Short: "Check every Mach-O/ELF file in a payload directory against the platform and its lock's floors",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if platformID == "" {
				return fmt.Errorf("--platform: required (one of %s)", strings.Join(platform.IDs(), ", "))
			}
			p, err := platform.Parse(platformID)
			if err != nil {
				return fmt.Errorf("--platform: %w", err)
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			lock, err := natives.ReadLock(natives.LockPath(cfg.Dir, p.ID))
			if err != nil {
				return err
			}
			if st, err := os.Stat(args[0]); err != nil || !st.IsDir() {
				return fmt.Errorf("PAYLOAD_DIR %s: not a directory", args[0])
			}
			vs, err := binarycheck.Check(args[0], binarycheck.PayloadOptions(p, lock.Floors, lock.SystemLibraries))
			if err != nil {
				return err
			}
			if vs == nil {
				vs = []binarycheck.Violation{}
			}
			if err := g.emit(cmd.OutOrStdout(), vs, func(w io.Writer) {
				if len(vs) == 0 {
					fmt.Fprintf(w, "%s: no problems\n", args[0])
				}
			}); err != nil {
				return err
			}
			return binarycheck.AsError(vs)
		},
	}
	cmd.Flags().StringVar(&platformID, "platform", "", "the payload's platform")
	return cmd
}
