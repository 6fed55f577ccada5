package main

import (
	"context"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/second-inc/second-release/internal/release/artifact"
	"github.com/second-inc/second-release/internal/release/config"
	"github.com/second-inc/second-release/internal/release/pipeline"
)

// buildFlags are the build flags of every command that builds (build, cut, rehearse).
type buildFlags struct {
	platforms   string
	skipNatives bool
}

func (f *buildFlags) register(fl *pflag.FlagSet, platformsHelp string) {
	fl.StringVar(&f.platforms, "platform", "", platformsHelp)
	fl.BoolVar(&f.skipNatives, "skip-natives", os.Getenv("SECOND_RELEASE_SKIP_NATIVES") == "1",
		"leave dist/runtime empty (no mongod/redis-server) when the pinned sources and mirror are out of reach (env SECOND_RELEASE_SKIP_NATIVES=1)")
}

// options are the pipeline options the flags give; version and output dir are the caller's.
func (f *buildFlags) options(g *globals, cfg *config.Config, stderr io.Writer) pipeline.Options {
	o := pipeline.Options{Config: cfg, SkipNatives: f.skipNatives, Log: g.logger(stderr)}
	if f.platforms != "" {
		o.Platforms = strings.Split(f.platforms, ",")
	}
	if g.verbose {
		o.Progress = stderr
	}
	return o
}

// builder adapts pipeline.Build to the Build hooks of cut and rehearse.
func builder(o pipeline.Options) func(context.Context) (*artifact.Release, error) {
	return func(ctx context.Context) (*artifact.Release, error) {
		c, err := pipeline.Build(ctx, o)
		if err != nil {
			return nil, err
		}
		return c.Release, nil
	}
}
