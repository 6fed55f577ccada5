package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/release/artifact"
	"github.com/second-inc/second-release/internal/release/compose"
	"github.com/second-inc/second-release/internal/release/oci"
)

func newComposeCmd(g *globals) *cobra.Command {
	var repo, file, out, distFlag string
	cmd := &cobra.Command{
		Use:   "compose [--repo REPO_PREFIX]",
		Short: "Render dist/compose/docker-compose.release.yml with web and worker pinned by digest",
		Long: `Takes docker-compose.yml and writes dist/compose/docker-compose.release.yml with
the web and worker images replaced by <REPO_PREFIX>/<name>@sha256:… from
dist/release.json (the indexes ` + "`release images --push`" + ` pushed). Verify it, then run it:

  release verify --key cosign.pub --compose dist/compose/docker-compose.release.yml
  docker compose -f dist/compose/docker-compose.release.yml up -d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if repo == "" {
				repo = cfg.Images.Repository
			}
			if repo == "" {
				return errors.New("no repository prefix: pass --repo REPO_PREFIX or set images.repository in release.yaml")
			}
			dist := cfg.OutDir()
			if distFlag != "" {
				dist = distFlag
			}
			rel, err := artifact.Read(dist)
			if err != nil {
				return err
			}
			refs, err := oci.ImageRefs(repo, rel)
			if err != nil {
				return err
			}
			pins := map[string]string{}
			for svc, imgName := range map[string]string{"web": cfg.Images.Web.Name, "worker": cfg.Images.Worker.Name} {
				r, ok := refs[imgName]
				if !ok {
					return fmt.Errorf("%s lists no %s image: run `release images` first", filepath.Join(dist, artifact.FileName), imgName)
				}
				pins[svc] = r
			}
			if file == "" {
				file = cfg.Path("docker-compose.yml")
			}
			if out == "" {
				out = filepath.Join(dist, "compose", "docker-compose.release.yml")
			}
			if err := compose.Render(compose.RenderOptions{Source: file, Out: out, Pins: pins, Version: rel.Version}); err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), map[string]any{"file": out, "images": pins}, func(w io.Writer) {
				fmt.Fprintf(w, "wrote %s\n  web:    %s\n  worker: %s\n", out, pins["web"], pins["worker"])
			})
		},
	}
	cmd.Flags().StringVar(&repo, "repo", "", "repository prefix the images were pushed to (default: images.repository)")
	cmd.Flags().StringVar(&file, "file", "", "source Compose file (default: docker-compose.yml next to release.yaml)")
	cmd.Flags().StringVar(&distFlag, "out", "", "dist dir holding release.json (default: release.yaml out)")
	cmd.Flags().StringVar(&out, "output", "", "file to write (default: <dist>/compose/docker-compose.release.yml)")
	return cmd
}
