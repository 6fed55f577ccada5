package main

import (
	"encoding/json"
	"os"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/local/doctor"
	"github.com/second-inc/second-release/internal/local/stack"
)

// exitError carries an exit status without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return "some checks found problems" }
func (e exitError) ExitCode() int { return e.code }

func newDoctorCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the payload, mongod, redis-server, node, free disk and home permissions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := g.layout()
			if err != nil {
				return err
			}
			// Examine whatever is there: a missing piece is a finding, not an abort.
			p, _ := stack.Discover(stack.DiscoverOptions{Need: map[string]bool{}})
			o := doctor.Options{
				PayloadRoot: p.Root, Node: p.Node, Mongod: p.Mongod, RedisServer: p.RedisServer,
				NativeEnv: stack.NativeEnv(p, os.Environ()), Home: l.Root, SecretDir: l.SecretsDir(),
			}
			if p.Manifest == "" {
				o.PayloadRoot = ""
			}
			for _, s := range stack.SecretFiles(l) {
				o.Secrets = append(o.Secrets, s)
			}
			rs := doctor.Run(cmd.Context(), o)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(rs); err != nil {
					return err
				}
			} else {
				doctor.Write(cmd.OutOrStdout(), rs)
			}
			if doctor.Failed(rs) {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
