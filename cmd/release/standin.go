package main

import (
	"fmt"
	"io"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/release/natives"
	"github.com/second-inc/second-release/internal/release/natives/standin"
	"github.com/second-inc/second-release/internal/release/platform"
)

func newNativesStandinCmd(g *globals) *cobra.Command {
	var o standin.Options
	cmd := &cobra.Command{
		Use:   "standin --to DIR --redis-server PATH [--mongod PATH]",
		Short: "Synthesize a stand-in natives mirror for this host from local binaries (tests, offline rehearsals)",
		Long: `Writes archives shaped exactly like the upstream ones (MongoDB's
mongodb-linux-<arch>-ubuntu2204-<v>.tgz; Homebrew's Linux redis and openssl@3
bottles, with Homebrew's placeholder interpreter and RUNPATH) made from a real
redis-server (scripts/standin-natives builds one from Debian's source), this
host's OpenSSL 3 libraries and a mongod (--mongod, else mongod on PATH), into
DIR/sha256/<hex>, and a lock pinning them into DIR/locks/<platform>/natives.lock.json.
Then: SECOND_RELEASE_MIRROR=DIR release build --natives-locks DIR/locks.
Never publish what is built from it: it is not the pinned upstream natives.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Dir == "" {
				return fmt.Errorf("--to: required (the directory to write the mirror and locks into)")
			}
			if o.RedisServer == "" {
				return fmt.Errorf("--redis-server: required (a redis-server linking libssl.so.3; scripts/standin-natives builds one)")
			}
			if o.Mongod == "" {
				p, err := exec.LookPath("mongod")
				if err != nil {
					return fmt.Errorf("--mongod: required when no mongod is on PATH (a real mongod, or the shared stand-in)")
				}
				o.Mongod = p
			}
			host, err := platform.Host()
			if err != nil {
				return err
			}
			o.Platform = host
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			o.BaseLock = natives.LockPath(cfg.Dir, host.ID)
			if o.Dir, err = filepath.Abs(o.Dir); err != nil {
				return err
			}
			res, err := standin.Synthesize(cmd.Context(), o)
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), res, func(w io.Writer) {
				fmt.Fprintf(w, "%s\n", res.Summary())
				for _, n := range res.Lock.Natives {
					fmt.Fprintf(w, "  %s %s sha256 %s\n", n.Name, n.Version, n.SHA256)
				}
				fmt.Fprintf(w, "use: %s=%s release build --natives-locks %s\n", natives.MirrorEnv, res.Mirror, res.LocksDir)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Dir, "to", "", "directory to write DIR/sha256/<hex> and DIR/locks/<platform>/natives.lock.json into")
	fl.StringVar(&o.RedisServer, "redis-server", "", "a real redis-server linking libssl.so.3 and libcrypto.so.3")
	fl.StringVar(&o.RedisOrigin, "redis-origin", "", "where that redis-server came from, recorded in the lock")
	fl.StringVar(&o.Mongod, "mongod", "", "mongod (real or stand-in) to ship (default: mongod on PATH)")
	fl.StringVar(&o.OpenSSLDir, "openssl-dir", "", "directory with libssl.so.3 and libcrypto.so.3 (default: the host's)")
	return cmd
}
