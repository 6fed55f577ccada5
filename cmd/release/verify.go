package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/release/compose"
	"github.com/second-inc/second-release/internal/release/sign"
	"github.com/second-inc/second-release/internal/release/verify"
)

func newVerifyCmd(g *globals) *cobra.Command {
	var (
		key, composeFile string
		services         []string
	)
	cmd := &cobra.Command{
		Use:   "verify --key cosign.pub (REF... | --compose FILE)",
		Short: "Check that image references are pinned by digest and signed with a key",
		Long: `Every reference must be pinned by digest (image@sha256:…) and carry a valid
cosign signature from the public key; for an index, so must each platform
manifest in it. Prints a table and exits non-zero naming each unsigned, wrongly
signed or tag-only reference.

--compose FILE checks the images of a Compose file (${VAR} resolved from the
environment). By default the services whose images release builds (web and
worker) are checked and third-party ones (mongo, redis) are listed as skipped;
--service picks services explicitly.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if key == "" {
				return errors.New("--key cosign.pub is required")
			}
			var targets []verify.Target
			for _, a := range args {
				targets = append(targets, verify.Target{Ref: a})
			}
			var skipped []compose.Service
			if composeFile != "" {
				svcs, err := compose.Images(composeFile, nil)
				if err != nil {
					return err
				}
				want := map[string]bool{}
				for _, s := range services {
					want[s] = true
				}
				if len(services) == 0 {
					want["web"], want["worker"] = true, true
				}
				for _, s := range svcs {
					if want[s.Name] {
						targets = append(targets, verify.Target{Ref: s.Image, Service: s.Name})
						delete(want, s.Name)
					} else {
						skipped = append(skipped, s)
					}
				}
				for s := range want {
					return fmt.Errorf("%s: no service %q with an image", composeFile, s)
				}
			}
			v, err := sign.LoadVerifier(key)
			if err != nil {
				return err
			}
			rows, verr := verify.Verify(cmd.Context(), verify.Options{Verifier: v, Targets: targets})
			if rows == nil && verr != nil {
				return verr
			}
			err = g.emit(cmd.OutOrStdout(), map[string]any{"ok": verr == nil, "rows": rows, "skipped": skipped}, func(w io.Writer) {
				verify.WriteTable(w, rows)
				for _, s := range skipped {
					fmt.Fprintf(w, "skipped  %s  %s (not a release image; pass --service %s to require a signature)\n", s.Name, s.Image, s.Name)
				}
			})
			if verr != nil {
				return verr
			}
			return err
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "cosign public key (cosign.pub)")
	cmd.Flags().StringVar(&composeFile, "compose", "", "check the images of this Compose file")
	cmd.Flags().StringSliceVar(&services, "service", nil, "with --compose: services to check (default web,worker)")
	return cmd
}
