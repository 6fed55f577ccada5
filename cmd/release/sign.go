package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/release/artifact"
	"github.com/second-inc/second-release/internal/release/oci"
	"github.com/second-inc/second-release/internal/release/sign"
)

func newSignCmd(g *globals) *cobra.Command {
	var (
		key, images, out string
		generate         bool
	)
	cmd := &cobra.Command{
		Use:   "sign --key cosign.key (REF... | --images REPO_PREFIX) | --generate-key",
		Short: "Sign pushed images (each index and platform manifest, by digest) with a cosign key",
		Long: `Signs each reference by digest (a tag is resolved first) and, for an index, every
platform manifest in it. Signatures are stored as the cosign CLI stores them
(<repo>:sha256-<hex>.sig) so ` + "`cosign verify --key cosign.pub`" + ` finds them; key mode
only, nothing is sent to a transparency log. The key's password comes from
COSIGN_PASSWORD, as for cosign.

--generate-key writes a new pair: --key (default cosign.key, mode 0600) and
the same name with .pub.
--images REPO_PREFIX signs the images dist/release.json lists, at that prefix.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, cfgErr := g.loadConfig()
			if key == "" && cfgErr == nil && cfg.Sign.Key != "" {
				key = cfg.Path(cfg.Sign.Key)
			}
			pw, err := sign.PasswordFromEnv()
			if err != nil {
				return err
			}
			if generate {
				if key == "" {
					key = "cosign.key"
				}
				pub := strings.TrimSuffix(key, filepath.Ext(key)) + ".pub"
				if err := sign.GenerateKeyPair(key, pub, pw); err != nil {
					return err
				}
				return g.emit(cmd.OutOrStdout(), map[string]string{"privateKey": key, "publicKey": pub}, func(w io.Writer) {
					fmt.Fprintf(w, "wrote %s (private, 0600) and %s (public: give it to whoever verifies)\n", key, pub)
				})
			}
			if key == "" {
				return errors.New("no signing key: pass --key cosign.key, set sign.key in release.yaml, or create one with --generate-key")
			}
			refs := args
			if images != "" {
				if cfgErr != nil {
					return cfgErr
				}
				dist := cfg.OutDir()
				if out != "" {
					dist = out
				}
				rel, err := artifact.Read(dist)
				if err != nil {
					return err
				}
				m, err := oci.ImageRefs(images, rel)
				if err != nil {
					return err
				}
				for _, r := range m {
					refs = append(refs, r)
				}
			}
			if len(refs) == 0 {
				return errors.New("nothing to sign: pass image references or --images REPO_PREFIX")
			}
			sv, err := sign.LoadSigner(key, pw)
			if err != nil {
				return err
			}
			signed, err := sign.Sign(cmd.Context(), sign.Options{Signer: sv, Refs: refs, Log: g.logger(cmd.ErrOrStderr())})
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), signed, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "KIND\tPLATFORM\tSIGNED\tSIGNATURE")
				for _, s := range signed {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Kind, dashIfEmpty(s.Platform), s.Ref, s.SignatureTag)
				}
				tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "cosign private key (default: sign.key in release.yaml)")
	cmd.Flags().BoolVar(&generate, "generate-key", false, "write a new cosign key pair (--key and its .pub) and exit")
	cmd.Flags().StringVar(&images, "images", "", "sign dist/release.json's images at this repository prefix")
	cmd.Flags().StringVar(&out, "out", "", "dist dir for --images (default: release.yaml out)")
	return cmd
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
