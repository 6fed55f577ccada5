// Package pipeline is `release build` read top to bottom: a fixed list of
// small steps (version, natives, web, worker, Go binaries, payloads,
// launcher, pack, release file), each with String and Run, handing results
// to the next through one Context. A step that does not apply returns a Skip.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/second-inc/second-release/internal/manifest"
	"github.com/second-inc/second-release/internal/release/artifact"
	"github.com/second-inc/second-release/internal/release/config"
	"github.com/second-inc/second-release/internal/release/gobuild"
	"github.com/second-inc/second-release/internal/release/platform"
	"github.com/second-inc/second-release/internal/release/preflight"
	"github.com/second-inc/second-release/internal/release/version"
)

// Options is what `release build` was asked to do.
type Options struct {
	Config    *config.Config
	Version   string   // explicit version; empty with Snapshot
	Snapshot  bool     // <next patch>-snapshot.<commit>
	Platforms []string // subset of the config's platforms; empty: all of them
	Out       string   // output dir; empty: the config's
	// SkipNatives builds payloads with an empty dist/runtime (no mongod/redis),
	// for machines that cannot reach the pinned sources or a mirror.
	SkipNatives bool
	// SkipNativesFor does the same for the listed platform ids only.
	SkipNativesFor []string
	// NativesLocks is a directory of <platform>/natives.lock.json files used
	// instead of packaging/<platform>/natives.lock.json (a stand-in mirror's
	// locks, say); empty: the committed locks.
	NativesLocks string
	Log          *slog.Logger
	// Progress receives long-running tools' output (npm, next, goreleaser); nil: quiet.
	Progress io.Writer
}

// Context carries the build's state from step to step.
type Context struct {
	Options
	Version   *semver.Version
	Git       version.Git
	Epoch     time.Time // SOURCE_DATE_EPOCH: every mtime in every package
	Dist      string    // absolute output dir
	Stage     string    // Dist/stage: unpacked packages and intermediate trees
	Platforms []platform.Platform

	WebDir, WorkerDir string // host builds, before per-target native modules
	Binaries          []gobuild.Binary
	Runtimes          map[string]Runtime // by platform id
	Payloads          map[string]Package // by platform id
	Launcher          Package
	Release           *artifact.Release
}

// Runtime is one platform's dist/runtime tree and what it holds.
type Runtime struct {
	Dir     string
	Natives map[string]manifest.Native
}

// Package is an assembled npm package directory.
type Package struct {
	Name, Dir      string
	Platform       string
	ManifestSHA256 string
}

// StepOf is one stage of a run over state C: the build's Context here, the
// cut's record in package cut.
type StepOf[C any] interface {
	String() string
	Run(ctx context.Context, c C) error
}

// Step is one stage of the build.
type Step = StepOf[*Context]

// Skip is returned by a step that does not apply; the runner logs it and goes on.
type Skip struct{ Reason string }

func (s Skip) Error() string { return "skipped: " + s.Reason }

// BuildSteps are run in this order by Build.
var BuildSteps = []Step{
	versionStep{},   // decide the version and SOURCE_DATE_EPOCH
	preflightStep{}, // tools on PATH and free disk space, before anything slow
	cleanStep{},     // empty the output dir (keeping nothing stale)
	nativesStep{},   // mongod, redis-server, OpenSSL per platform (first: fails fast when unreachable)
	webStep{},       // Next.js standalone server
	workerStep{},    // bundled worker.mjs
	goStep{},        // `second` for every platform through GoReleaser
	payloadsStep{},  // one payload package per platform, per-target native modules
	launcherStep{},  // the launcher, recording each payload manifest's digest
	packStep{},      // byte-reproducible tarballs in dist/npm
	releaseStep{},   // dist/release.json and SHA256SUMS
}

// Build runs every build step.
func Build(ctx context.Context, o Options) (*Context, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &Context{Options: o, Runtimes: map[string]Runtime{}, Payloads: map[string]Package{}}
	return c, RunSteps(ctx, o.Log, c, BuildSteps, nil)
}

// RunSteps runs steps in order on c: it logs each one, logs a Skip and goes
// on, and stops at the first error, returned as "<step>: <error>". ended,
// when set, is told how each step ended (nil, a Skip, or the error) and
// how long it took.
func RunSteps[C any](ctx context.Context, log *slog.Logger, c C, steps []StepOf[C], ended func(step StepOf[C], took time.Duration, err error)) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, step := range steps {
		start := time.Now()
		log.Info("step", "name", step.String())
		err := step.Run(ctx, c)
		if ended != nil {
			ended(step, time.Since(start), err)
		}
		var skip Skip
		switch {
		case errors.As(err, &skip):
			log.Info("step skipped", "name", step.String(), "reason", skip.Reason)
		case err != nil:
			log.Error("step failed", "name", step.String(), "took", time.Since(start).Round(time.Millisecond))
			return fmt.Errorf("%s: %w", step, err)
		default:
			log.Info("step done", "name", step.String(), "took", time.Since(start).Round(time.Millisecond))
		}
	}
	return nil
}

// Resolve decides the version, epoch and platforms without building anything
// (shared by build and plan).
func Resolve(ctx context.Context, o Options) (*Context, error) {
	c := &Context{Options: o, Runtimes: map[string]Runtime{}, Payloads: map[string]Package{}}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c, versionStep{}.Run(ctx, c)
}

type versionStep struct{}

func (versionStep) String() string { return "version" }

func (versionStep) Run(ctx context.Context, c *Context) error {
	if c.Config == nil {
		return errors.New("no configuration loaded")
	}
	switch {
	case c.Options.Version != "" && c.Snapshot:
		return errors.New("--version and --snapshot exclude each other: pass one")
	case c.Options.Version == "" && !c.Snapshot:
		return errors.New("no version: pass --version V (e.g. 1.2.3) or --snapshot")
	}
	git, gitErr := version.ReadGit(ctx, c.Config.Dir)
	c.Git = git
	if c.Snapshot {
		if gitErr != nil {
			return gitErr
		}
		c.Version = version.Snapshot(git)
	} else {
		v, err := version.Parse(c.Options.Version)
		if err != nil {
			return err
		}
		c.Version = v
	}
	epoch, err := sourceDateEpoch(git, gitErr)
	if err != nil {
		return err
	}
	c.Epoch = epoch
	ids := c.Options.Platforms
	if len(ids) == 0 {
		ids = c.Config.Platforms
	}
	c.Platforms = nil
	for _, id := range ids {
		p, err := platform.Parse(id)
		if err != nil {
			return fmt.Errorf("--platform: %w", err)
		}
		c.Platforms = append(c.Platforms, p)
	}
	for _, id := range c.SkipNativesFor {
		if _, err := platform.Parse(id); err != nil {
			return fmt.Errorf("--skip-natives: %w", err)
		}
	}
	if c.NativesLocks != "" {
		if st, err := os.Stat(c.NativesLocks); err != nil || !st.IsDir() {
			return fmt.Errorf("--natives-locks %s: not a directory (want <dir>/<platform>/%s files)", c.NativesLocks, "natives.lock.json")
		}
	}
	out := c.Out
	if out == "" {
		out = c.Config.OutDir()
	}
	if c.Dist, err = filepath.Abs(out); err != nil {
		return err
	}
	c.Stage = filepath.Join(c.Dist, "stage")
	c.Log.Info("version", "version", c.Version.String(), "commit", git.ShortCommit, "source_date_epoch", c.Epoch.Unix())
	return nil
}

// sourceDateEpoch is $SOURCE_DATE_EPOCH, else the commit time.
func sourceDateEpoch(g version.Git, gitErr error) (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		var sec int64
		if _, err := fmt.Sscanf(s, "%d", &sec); err != nil || sec < 0 {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a Unix time in seconds", s)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	if gitErr != nil {
		return time.Time{}, fmt.Errorf("no SOURCE_DATE_EPOCH and no git commit to take it from: %w", gitErr)
	}
	return g.CommitTime, nil
}

type cleanStep struct{}

func (cleanStep) String() string { return "clean" }

func (cleanStep) Run(_ context.Context, c *Context) error {
	// Only what this build writes: dist/go belongs to GoReleaser (--clean),
	// other dirs (oci, publish-state.json) to later commands.
	for _, p := range []string{"npm", "stage", artifact.FileName, "SHA256SUMS"} {
		if err := os.RemoveAll(filepath.Join(c.Dist, p)); err != nil {
			return err
		}
	}
	return os.MkdirAll(c.Stage, 0o755)
}

type preflightStep struct{}

func (preflightStep) String() string { return "preflight" }

func (preflightStep) Run(ctx context.Context, c *Context) error {
	_, err := preflight.Run(ctx, preflight.Options{
		Tools:  []string{"npm", "node", "go"},
		OutDir: c.Dist, FreeBytes: preflight.BuildBytes(len(c.Platforms)),
	})
	return err
}
