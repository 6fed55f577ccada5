package pipeline

import (
	"context"
	"fmt"
	"github.com/second-inc/second-release/internal/release/progress"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/manifest"
	"github.com/second-inc/second-release/internal/release/artifact"
	"github.com/second-inc/second-release/internal/release/gobuild"
	"github.com/second-inc/second-release/internal/release/launcher"
	"github.com/second-inc/second-release/internal/release/natives"
	"github.com/second-inc/second-release/internal/release/nodemods"
	"github.com/second-inc/second-release/internal/release/pack"
	"github.com/second-inc/second-release/internal/release/payload"
	"github.com/second-inc/second-release/internal/release/webbuild"
	"github.com/second-inc/second-release/internal/release/workerbuild"
)

type webStep struct{}

func (webStep) String() string { return "web" }

func (webStep) Run(ctx context.Context, c *Context) error {
	c.WebDir = filepath.Join(c.Stage, "host", "web")
	return webbuild.Build(ctx, webbuild.Options{
		AppDir:          c.Config.Path(c.Config.Apps.Web),
		OutDir:          c.WebDir,
		BuildID:         buildID(c),
		SourceDateEpoch: c.Epoch,
		Log:             c.Log,
	})
}

// buildID is the Next.js build id: the commit when there is one, so two
// builds of one commit agree; else the version.
func buildID(c *Context) string {
	if c.Git.Commit != "" {
		return c.Git.Commit
	}
	return c.Version.String()
}

type workerStep struct{}

func (workerStep) String() string { return "worker" }

func (workerStep) Run(ctx context.Context, c *Context) error {
	c.WorkerDir = filepath.Join(c.Stage, "host", "worker")
	return workerbuild.Build(ctx, workerbuild.Options{
		AppDir:          c.Config.Path(c.Config.Apps.Worker),
		Entry:           c.Config.Apps.WorkerEntry,
		OutDir:          c.WorkerDir,
		SourceDateEpoch: c.Epoch,
		Log:             c.Log,
	})
}

type goStep struct{}

func (goStep) String() string { return "go binaries" }

func (goStep) Run(ctx context.Context, c *Context) error {
	bins, err := gobuild.Build(ctx, gobuild.Options{
		RepoDir: c.Config.Dir,
		Version: c.Version.String(),
		IDs:     []string{"second"},
		Log:     c.Log,
		Output:  c.Progress,
	})
	if err != nil {
		return err
	}
	for _, p := range c.Platforms {
		if _, err := gobuild.Find(bins, "second", p); err != nil {
			return err
		}
	}
	c.Binaries = bins
	return nil
}

type nativesStep struct{}

func (nativesStep) String() string { return "natives" }

func (nativesStep) Run(ctx context.Context, c *Context) error {
	cache, err := home.ReleaseCacheDir()
	if err != nil {
		return err
	}
	skipped := 0
	for _, p := range c.Platforms {
		dir := filepath.Join(c.Stage, p.ID, "runtime")
		skip := c.SkipNatives || slices.Contains(c.SkipNativesFor, p.ID)
		lock := lockPath(c, p.ID)
		if !skip && c.NativesLocks != "" {
			if _, err := os.Stat(filepath.Join(c.NativesLocks, p.ID, natives.LockFileName)); err != nil {
				return fmt.Errorf("--natives-locks %s has no %s/%s for %s: add it, or leave %s out (--platform) or without natives (--skip-natives=%s)",
					c.NativesLocks, p.ID, natives.LockFileName, p.ID, p.ID, p.ID)
			}
		}
		got, err := natives.Materialize(ctx, natives.Options{
			LockPath:   lock,
			Platform:   p,
			RuntimeDir: dir,
			CacheDir:   filepath.Join(cache, "natives"),
			Mirror:     os.Getenv("SECOND_RELEASE_MIRROR"),
			Skip:       skip,
			Progress:   progress.Transfer(c.Log, "download"),
			Log:        c.Log,
		})
		if err != nil {
			return fmt.Errorf("%w\n(to build payloads without mongod and redis-server, pass --skip-natives, or --skip-natives=%s for this platform only)", err, p.ID)
		}
		if skip {
			skipped++
		} else {
			c.Log.Info("natives", "platform", p.ID, "lock", lock)
		}
		c.Runtimes[p.ID] = Runtime{Dir: dir, Natives: got}
	}
	if skipped == len(c.Platforms) {
		return Skip{Reason: "--skip-natives: payloads carry no mongod/redis-server (dist/runtime is empty)"}
	}
	return nil
}

// lockPath is the natives lock of a platform: from --natives-locks when it
// has one (a platform built without natives may lack it), else the committed one.
func lockPath(c *Context, id string) string {
	if c.NativesLocks != "" {
		if p := filepath.Join(c.NativesLocks, id, natives.LockFileName); isFile(p) {
			return p
		}
	}
	return filepath.Join(packagingDir(c), id, natives.LockFileName)
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func packagingDir(c *Context) string { return c.Config.Path("packaging") }

type payloadsStep struct{}

func (payloadsStep) String() string { return "payloads" }

func (payloadsStep) Run(ctx context.Context, c *Context) error {
	cache, err := home.ReleaseCacheDir()
	if err != nil {
		return err
	}
	for _, p := range c.Platforms {
		bin, err := gobuild.Find(c.Binaries, "second", p)
		if err != nil {
			return err
		}
		// Each payload gets its own copy of the host builds with the
		// target's native node modules swapped in.
		trees := map[string]string{"web": c.WebDir, "worker": c.WorkerDir}
		targetDirs := map[string]string{}
		for name, src := range trees {
			dst := filepath.Join(c.Stage, p.ID, name)
			if err := copyTree(src, dst); err != nil {
				return fmt.Errorf("%s: copy %s tree: %w", p.ID, name, err)
			}
			rep, err := nodemods.Retarget(ctx, nodemods.Options{Dir: dst, Target: p, CacheDir: filepath.Join(cache, "nodemods"), Log: c.Log})
			if err != nil {
				return fmt.Errorf("%s: native node modules of %s: %w", p.ID, name, err)
			}
			if len(rep.Replaced) > 0 {
				c.Log.Info("native modules retargeted", "platform", p.ID, "tree", name, "packages", strings.Join(rep.Replaced, ", "))
			}
			targetDirs[name] = dst
		}
		name := c.Config.PayloadName(p.ID)
		dir := filepath.Join(c.Stage, "npm", p.ID)
		rt := c.Runtimes[p.ID]
		_, mbytes, err := payload.Assemble(ctx, payload.Options{
			Name:            name,
			Version:         c.Version.String(),
			Platform:        p,
			TemplateDir:     filepath.Join(packagingDir(c), p.ID),
			Dir:             dir,
			SecondBinary:    bin.Path,
			WebDir:          targetDirs["web"],
			WorkerDir:       targetDirs["worker"],
			LinkTrees:       true, // the per-platform copies above are the payload's alone
			RuntimeDir:      rt.Dir,
			Natives:         rt.Natives,
			SourceDateEpoch: c.Epoch,
		})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		// Last guard: every binary in the payload is for this platform and
		// loads only system libraries or ones it ships (natives' rule).
		if err := natives.CheckPayload(dir, lockPath(c, p.ID), p); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if left, err := nodemods.Check(dir, p); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		} else if len(left) > 0 {
			return fmt.Errorf("%s holds native node modules for another platform: %s", name, strings.Join(left, ", "))
		}
		c.Payloads[p.ID] = Package{Name: name, Dir: dir, Platform: p.ID, ManifestSHA256: manifest.Digest(mbytes)}
	}
	return nil
}

type launcherStep struct{}

func (launcherStep) String() string { return "launcher" }

func (launcherStep) Run(ctx context.Context, c *Context) error {
	var pls []launcher.Payload
	for _, p := range c.Platforms {
		pk := c.Payloads[p.ID]
		pls = append(pls, launcher.Payload{Platform: p.ID, Name: pk.Name, ManifestSHA256: pk.ManifestSHA256})
	}
	c.Launcher = Package{Name: c.Config.LauncherName(), Dir: filepath.Join(c.Stage, "npm", "launcher")}
	return launcher.Assemble(ctx, launcher.Options{
		TemplateDir:     filepath.Join(packagingDir(c), "npm"),
		Dir:             c.Launcher.Dir,
		Name:            c.Launcher.Name,
		Version:         c.Version.String(),
		Payloads:        pls,
		SourceDateEpoch: c.Epoch,
	})
}

type packStep struct{}

func (packStep) String() string { return "pack" }

func (packStep) Run(ctx context.Context, c *Context) error {
	c.Release = &artifact.Release{Version: c.Version.String(), Commit: c.Git.Commit, SourceDateEpoch: c.Epoch.Unix()}
	npmDir := filepath.Join(c.Dist, "npm")
	if err := os.MkdirAll(npmDir, 0o755); err != nil {
		return err
	}
	add := func(pk Package, kind string) error {
		out := filepath.Join(npmDir, TarballName(pk.Name, c.Version.String()))
		if err := pack.Tarball(ctx, pk.Dir, out, c.Epoch); err != nil {
			return fmt.Errorf("pack %s: %w", pk.Name, err)
		}
		a, err := artifact.FromFile(c.Dist, out, artifact.Artifact{
			Kind: kind, Name: pk.Name, Version: c.Version.String(), Platform: pk.Platform, ManifestSHA256: pk.ManifestSHA256,
		})
		if err != nil {
			return err
		}
		c.Release.Artifacts = append(c.Release.Artifacts, a)
		c.Log.Info("packed", "package", pk.Name, "file", a.Path, "size", a.Size)
		return nil
	}
	for _, p := range c.Platforms {
		if err := add(c.Payloads[p.ID], artifact.KindPayload); err != nil {
			return err
		}
	}
	return add(c.Launcher, artifact.KindLauncher)
}

// TarballName is npm's file name for a package tarball: @scope/name@1.2.3 → scope-name-1.2.3.tgz.
func TarballName(name, version string) string {
	return strings.ReplaceAll(strings.TrimPrefix(name, "@"), "/", "-") + "-" + version + ".tgz"
}

type releaseStep struct{}

func (releaseStep) String() string { return "release file" }

func (releaseStep) Run(_ context.Context, c *Context) error {
	for _, p := range c.Platforms {
		b, err := gobuild.Find(c.Binaries, "second", p)
		if err != nil {
			return err
		}
		a, err := artifact.FromFile(c.Dist, b.Path, artifact.Artifact{Kind: artifact.KindBinary, Name: "second", Version: c.Version.String(), Platform: p.ID})
		if err != nil {
			return err
		}
		// GoReleaser writes into <repo>/dist/go; keep the path only when it is under dist.
		if strings.HasPrefix(a.Path, "../") {
			a.Path = ""
		}
		c.Release.Artifacts = append(c.Release.Artifacts, a)
	}
	return artifact.Write(c.Dist, c.Release)
}
