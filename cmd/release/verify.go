package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/release/compose"
	"github.com/second-inc/second-release/internal/release/sign"
	"github.com/second-inc/second-release/internal/release/verify"
)

func newVerifyCmd(g *globals) *cobra.Command {
	var (
		key, composeFile string
		services         []string
		printPolicy      string
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
--service picks services explicitly.

--print-policy REPO_PREFIX writes, next to the key, a policy.json and
registries.d/second.yaml that make podman, CRI-O and skopeo (containers/image)
refuse images under REPO_PREFIX unless signed by this key, by tag or by
digest, and prints them. Install them as /etc/containers/policy.json and
/etc/containers/registries.d/second.yaml (or merge them into yours).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if key == "" {
				return errors.New("--key cosign.pub is required")
			}
			if printPolicy != "" {
				if len(args) > 0 || composeFile != "" {
					return errors.New("--print-policy takes no image references or --compose")
				}
				return runPrintPolicy(g, cmd.OutOrStdout(), printPolicy, key)
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
	cmd.Flags().StringVar(&printPolicy, "print-policy", "", "write and print a containers/image policy.json + registries.d file enforcing --key for this repository prefix")
	return cmd
}

func runPrintPolicy(g *globals, w io.Writer, prefix, key string) error {
	p, err := verify.Policy(prefix, key)
	if err != nil {
		return err
	}
	if err := p.WritePolicy(filepath.Dir(key), "second"); err != nil {
		return err
	}
	return g.emit(w, map[string]string{"policy": p.PolicyPath, "registriesD": p.RegistryDir, "policyJSON": string(p.Policy), "registriesYAML": string(p.Registries)}, func(w io.Writer) {
		fmt.Fprintf(w, "# %s  (install as /etc/containers/policy.json, or merge its transports.docker entry)\n%s\n", p.PolicyPath, p.Policy)
		fmt.Fprintf(w, "# %s  (install as /etc/containers/registries.d/second.yaml)\n%s", filepath.Join(p.RegistryDir, "second.yaml"), p.Registries)
	})
}
