package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/release/pipeline"
	"github.com/second-inc/second-release/internal/release/publish"
)

func newPlanCmd(g *globals) *cobra.Command {
	var (
		f         publishFlags
		ver       string
		snapshot  bool
		platforms string
	)
	cmd := &cobra.Command{
		Use:   "plan --version V",
		Short: "Show what build and publish would do, and what is already published",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			po := pipeline.Options{Config: cfg, Version: ver, Snapshot: snapshot}
			if platforms != "" {
				po.Platforms = strings.Split(platforms, ",")
			}
			c, err := pipeline.Resolve(cmd.Context(), po)
			if err != nil {
				return err
			}
			var ids []string
			for _, p := range c.Platforms {
				ids = append(ids, p.ID)
			}
			o := f.options(cfg, g, cmd.ErrOrStderr())
			plan, err := publish.MakePlan(cmd.Context(), publish.PlanOptions{
				Config: cfg, Version: c.Version.String(), Platforms: ids, Publish: o,
				Images: cfg.Images.Repository != "",
			})
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), plan, plan.WriteTable)
		},
	}
	cmd.Flags().StringVar(&ver, "version", "", "release version to plan (semver)")
	cmd.Flags().BoolVar(&snapshot, "snapshot", false, "plan the snapshot version of this commit")
	cmd.Flags().StringVar(&platforms, "platform", "", "comma-separated platforms (default: release.yaml platforms)")
	f.register(cmd, false)
	return cmd
}
