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
	"github.com/second-inc/second-release/internal/release/preflight"
)

// buildFlags are the build flags of every command that builds (build, cut, rehearse).
type buildFlags struct {
	platforms    string
	skipNatives  string
	nativesLocks string
}

func (f *buildFlags) register(fl *pflag.FlagSet, platformsHelp string) {
	fl.StringVar(&f.platforms, "platform", "", platformsHelp)
	fl.StringVar(&f.skipNatives, "skip-natives", os.Getenv("SECOND_RELEASE_SKIP_NATIVES"),
		"leave dist/runtime empty (no mongod/redis-server) for all payloads, or for the listed platforms (--skip-natives=linux-arm64,darwin-x64), when their pinned sources and mirror are out of reach (env SECOND_RELEASE_SKIP_NATIVES=1 or a list)")
	fl.Lookup("skip-natives").NoOptDefVal = "all"
	fl.StringVar(&f.nativesLocks, "natives-locks", os.Getenv("SECOND_RELEASE_NATIVES_LOCKS"),
		"directory of <platform>/natives.lock.json files used instead of packaging/<platform>/natives.lock.json (env SECOND_RELEASE_NATIVES_LOCKS)")
}

// skipNativesFor reads --skip-natives: every platform, none, or a list
// (checked against the platform ids by the pipeline).
func skipNativesFor(v string) (all bool, ids []string) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "false", "no":
		return false, nil
	case "1", "true", "yes", "all":
		return true, nil
	}
	for _, id := range strings.Split(v, ",") {
		ids = append(ids, strings.TrimSpace(id))
	}
	return false, ids
}

// options are the pipeline options the flags give; version and output dir are the caller's.
func (f *buildFlags) options(g *globals, cfg *config.Config, stderr io.Writer) pipeline.Options {
	all, ids := skipNativesFor(f.skipNatives)
	o := pipeline.Options{Config: cfg, SkipNatives: all, SkipNativesFor: ids, NativesLocks: f.nativesLocks, Log: g.logger(stderr)}
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

// checkFirst runs the preflight of a cut or rehearsal before anything slow:
// the version and platforms as the build will resolve them, the platforms
// the images need (images: whether they are built; subset: a rehearsal may
// narrow them to the linux platforms being built), and registry when set.
func checkFirst(ctx context.Context, cfg *config.Config, bo pipeline.Options, images, subset bool, imagesFix string, registry func(context.Context) error) (*preflight.Result, error) {
	c, err := pipeline.Resolve(ctx, bo)
	if err != nil {
		return nil, err
	}
	o := preflight.Options{Platforms: c.Platforms, SubsetImages: subset, ImagesFix: imagesFix, Registry: registry}
	if images {
		o.ImagePlatforms = cfg.Images.Platforms
	}
	res, err := preflight.Run(ctx, o)
	if err != nil {
		return nil, err
	}
	for _, n := range res.Notes {
		bo.Log.Warn(n)
	}
	return res, nil
}
