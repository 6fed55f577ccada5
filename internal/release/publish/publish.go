// Package publish puts a built release's npm tarballs into a registry in the
// one safe order: preflight (reachable, authenticated, nothing conflicting),
// every payload, a check that each payload is visible with the right
// integrity, the launcher, then the dist-tags. Re-running it after any
// failure finishes the job: packages already in the registry with the same
// integrity are skipped, a different one aborts before anything is published.
package publish

import (
	"context"
	"errors"
	"fmt"
	"github.com/second-inc/second-release/internal/release/progress"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/second-inc/second-release/internal/npmconf"
	"github.com/second-inc/second-release/internal/npmregistry"
	"github.com/second-inc/second-release/internal/release/artifact"
)

// DefaultStagingTag is the dist-tag packages are uploaded under, so the
// user-facing tag moves only once every package of the version is in.
const DefaultStagingTag = "release-staging"

// Options configure Run and Plan.
type Options struct {
	// Dist is the build output holding release.json and npm/*.tgz.
	Dist string
	// Release is the artifact list; nil reads Dist/release.json.
	Release *artifact.Release
	// Registry overrides the registry npm config names for the scope.
	Registry string
	// Access is "public", "restricted" or "" (npm's default).
	Access string
	// Tag is the dist-tag to move; "" means latest, or next for a prerelease.
	Tag string
	// OTP is a one-time password for registries with 2FA.
	OTP string
	// Provenance asks npm for a provenance statement (needs public access).
	Provenance bool
	// Force lets latest move to a version lower than it points at.
	Force bool
	// DryRun runs the preflight and reports, changing nothing.
	DryRun bool
	// NoTags publishes every package but leaves the dist-tag for a later run
	// (release cut moves tags last, after images are signed and verified).
	NoTags bool
	// Env is the environment npm config is read from and npm runs with;
	// nil means os.Environ().
	Env []string
	// ProjectDir holds a project .npmrc (npm's working directory).
	ProjectDir string
	// Reader and Uploader replace the real HTTP reader and npm CLI (tests).
	Reader   Registry
	Uploader Uploader
	// NPMBin is the npm executable for the default Uploader.
	NPMBin string
	// Prompt asks the user for a one-time password; nil: never ask.
	Prompt func(ctx context.Context, question string) (string, error)
	// Log receives progress; nil discards.
	Log *slog.Logger
	// Progress is told how far each upload has got; nil: reported through
	// Log (progress.Transfer).
	Progress progress.Func
	// VisibleTimeout bounds the wait for published payloads to show up, default 2m.
	VisibleTimeout time.Duration
	// StagingTag defaults to DefaultStagingTag.
	StagingTag string
}

// pkg is one tarball to publish.
type pkg struct {
	artifact.Artifact
	tarball string // absolute path
}

// RefusalError is a preflight refusal: nothing was published.
type RefusalError struct{ Reason string }

func (e *RefusalError) Error() string { return e.Reason + " (nothing was published)" }

func refuse(format string, args ...any) error {
	return &RefusalError{Reason: fmt.Sprintf(format, args...)}
}

type run struct {
	opts     Options
	log      *slog.Logger
	rel      *artifact.Release
	payloads []pkg
	launcher pkg
	scope    string
	args     UploadArgs
	ledger   *Ledger
	reader   Registry
	up       Uploader
	infos    map[string]*npmregistry.PackageInfo
}

// Run publishes the release. The ledger it returns (also written to
// dist/publish-state.json) says what happened to each package, even when err
// is not nil; it is nil when the preflight refused (nothing was published).
func Run(ctx context.Context, opts Options) (*Ledger, error) {
	r, err := prepare(ctx, opts)
	if err != nil {
		// A refusal: nothing happened, so there is no ledger to show.
		return nil, err
	}
	if opts.DryRun {
		r.ledger.Next = "run `release publish` without --dry-run to publish the planned packages"
		return r.ledger, nil
	}
	if err := r.publishAll(ctx); err != nil {
		r.ledger.Error = err.Error()
		r.ledger.Next = "fix the cause above and run `release publish` again: packages already in the registry are skipped, the launcher waits for every payload"
		_ = WriteLedger(r.opts.Dist, r.ledger)
		return r.ledger, err
	}
	r.ledger.Complete, r.ledger.Error, r.ledger.Next = !opts.NoTags, "", ""
	if err := WriteLedger(r.opts.Dist, r.ledger); err != nil {
		return r.ledger, err
	}
	return r.ledger, nil
}

// prepare loads the release, checks flags and the registry: reachable,
// authenticated, no conflicting version, latest not moving back.
func prepare(ctx context.Context, opts Options) (*run, error) {
	r := &run{opts: opts, log: opts.Log, infos: map[string]*npmregistry.PackageInfo{}}
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if r.opts.StagingTag == "" {
		r.opts.StagingTag = DefaultStagingTag
	}
	if r.opts.VisibleTimeout == 0 {
		r.opts.VisibleTimeout = 2 * time.Minute
	}
	if err := r.loadRelease(); err != nil {
		return nil, err
	}
	if err := r.checkFlags(); err != nil {
		return nil, err
	}
	if err := r.resolveRegistry(); err != nil {
		return nil, err
	}
	r.ledger = r.newLedger()
	if err := r.inspect(ctx); err != nil {
		return r, err
	}
	if !opts.DryRun {
		if err := WriteLedger(r.opts.Dist, r.ledger); err != nil {
			return r, err
		}
	}
	return r, nil
}

func (r *run) loadRelease() error {
	if r.opts.Dist == "" {
		r.opts.Dist = "dist"
	}
	rel := r.opts.Release
	if rel == nil {
		var err error
		if rel, err = artifact.Read(r.opts.Dist); err != nil {
			return err
		}
	}
	r.rel = rel
	if _, err := semver.StrictNewVersion(rel.Version); err != nil {
		return fmt.Errorf("%s: version %q is not semver: %w", filepath.Join(r.opts.Dist, artifact.FileName), rel.Version, err)
	}
	var launchers []pkg
	for _, a := range rel.Artifacts {
		if a.Kind != artifact.KindPayload && a.Kind != artifact.KindLauncher {
			continue
		}
		if a.Version != rel.Version {
			return fmt.Errorf("%s: %s has version %s but the release is %s: rebuild with `release build`", filepath.Join(r.opts.Dist, artifact.FileName), a.Name, a.Version, rel.Version)
		}
		if a.Path == "" {
			return fmt.Errorf("%s: %s has no tarball path", filepath.Join(r.opts.Dist, artifact.FileName), a.Name)
		}
		p := pkg{Artifact: a, tarball: filepath.Join(r.opts.Dist, filepath.FromSlash(a.Path))}
		if abs, err := filepath.Abs(p.tarball); err == nil {
			p.tarball = abs
		}
		// The tarball must be the one the build recorded: publishing is final.
		_, integrity, _, err := artifact.Digests(p.tarball)
		if err != nil {
			return fmt.Errorf("read tarball of %s: %w (run `release build`)", a.Name, err)
		}
		if a.Integrity != "" && integrity != a.Integrity {
			return fmt.Errorf("%s changed since it was built (integrity %s, release.json says %s): rebuild with `release build`", p.tarball, integrity, a.Integrity)
		}
		p.Integrity = integrity
		if a.Kind == artifact.KindLauncher {
			launchers = append(launchers, p)
		} else {
			r.payloads = append(r.payloads, p)
		}
	}
	if len(launchers) != 1 {
		return fmt.Errorf("%s lists %d launcher packages, want exactly 1: rebuild with `release build`", filepath.Join(r.opts.Dist, artifact.FileName), len(launchers))
	}
	if len(r.payloads) == 0 {
		return fmt.Errorf("%s lists no payload packages: rebuild with `release build`", filepath.Join(r.opts.Dist, artifact.FileName))
	}
	sort.Slice(r.payloads, func(i, j int) bool { return r.payloads[i].Name < r.payloads[j].Name })
	r.launcher = launchers[0]
	if i := strings.IndexByte(r.launcher.Name, '/'); strings.HasPrefix(r.launcher.Name, "@") && i > 0 {
		r.scope = r.launcher.Name[:i]
	}
	return nil
}

func (r *run) checkFlags() error {
	switch r.opts.Access {
	case "", "public", "restricted":
	default:
		return refuse("--access %q: use public or restricted", r.opts.Access)
	}
	if r.opts.Provenance && r.opts.Access == "restricted" {
		return refuse("--provenance cannot be used with --access restricted: npm only attaches provenance to public packages; drop --provenance or publish with --access public")
	}
	v := semver.MustParse(r.rel.Version)
	tag := r.opts.Tag
	if _, err := semver.NewVersion(strings.TrimPrefix(tag, "v")); tag != "" && err == nil {
		return refuse("--tag %q looks like a version; npm refuses such tags: use a name such as latest, next or beta", tag)
	}
	if v.Prerelease() != "" {
		if tag == "latest" {
			return refuse("%s is a prerelease and cannot be tagged latest: pass --tag next (the default for prereleases) or another tag", r.rel.Version)
		}
		if tag == "" {
			tag = "next"
		}
	} else if tag == "" {
		tag = "latest"
	}
	if tag == r.opts.StagingTag {
		return refuse("--tag %q is the staging tag publish uses internally: choose another", tag)
	}
	r.opts.Tag = tag
	return nil
}

func (r *run) resolveRegistry() error {
	env := r.opts.Env
	if env == nil {
		env = os.Environ()
	}
	conf, err := npmconf.Load(npmconf.Options{Env: env, ProjectDir: r.opts.ProjectDir})
	if err != nil {
		return fmt.Errorf("read npm configuration: %w", err)
	}
	reg := r.opts.Registry
	if reg == "" {
		reg = conf.RegistryFor(r.launcher.Name)
	}
	reg = strings.TrimSuffix(reg, "/") + "/"
	r.args = UploadArgs{Registry: reg, Scope: r.scope, Access: r.opts.Access, OTP: r.opts.OTP, Provenance: r.opts.Provenance}
	r.reader = r.opts.Reader
	if r.reader == nil {
		r.reader = &npmregistry.Client{Registry: reg, Config: conf}
	}
	r.up = r.opts.Uploader
	if r.up == nil {
		report := r.opts.Progress
		if report == nil {
			report = progress.Transfer(r.log, "upload")
		}
		r.up = &NPMCLI{Bin: r.opts.NPMBin, Env: env, Dir: r.opts.ProjectDir, Redact: conf.Redact, Progress: report}
	}
	return nil
}

func (r *run) newLedger() *Ledger {
	l := &Ledger{Version: r.rel.Version, Registry: r.args.Registry, Tag: r.opts.Tag, Access: r.opts.Access,
		DryRun: r.opts.DryRun, StagingTag: r.opts.StagingTag, Runs: 1}
	if prev, err := ReadLedger(r.opts.Dist); err == nil && prev != nil && prev.Version == l.Version && prev.Registry == l.Registry {
		l.Runs = prev.Runs + 1
	}
	for _, p := range append(append([]pkg{}, r.payloads...), r.launcher) {
		l.Packages = append(l.Packages, Entry{Name: p.Name, Kind: p.Kind, Platform: p.Platform, Version: p.Version,
			Integrity: p.Integrity, Tarball: p.Path, State: StatePlanned})
	}
	return l
}

// inspect asks the registry about every package and refuses to go on when
// it is unreachable, we are not authenticated, a version exists with other
// bytes, or latest would move back.
func (r *run) inspect(ctx context.Context) error {
	reg := r.args.Registry
	if err := r.reader.Ping(ctx); err != nil {
		return refuse("registry %s is unreachable: %v; check --registry or the %s:registry / registry setting in your npm config", reg, err, r.scope)
	}
	user, err := r.reader.Whoami(ctx)
	switch {
	case err != nil && !refused(err):
		return refuse("ask %s who we are (GET -/whoami): %v", reg, err)
	case err != nil || user == "":
		return refuse("not authenticated to %s: npm has no valid token for it; run `npm login --registry %s` or add %s:_authToken=<token> to ~/.npmrc", reg, reg, nerf(reg))
	}
	r.ledger.User = user
	if err := r.inspectPackages(ctx); err != nil {
		return err
	}
	return r.checkLatestNotBackwards()
}

// inspectPackages marks what the registry already holds: skipped (same
// bytes), tagged, and the tag's previous version; a version held with other
// bytes is a conflict.
func (r *run) inspectPackages(ctx context.Context) error {
	var conflicts []string
	for i := range r.ledger.Packages {
		e := &r.ledger.Packages[i]
		info, err := r.reader.Package(ctx, e.Name)
		if err != nil {
			return refuse("preflight: %v", err)
		}
		r.infos[e.Name] = info
		if info == nil {
			continue
		}
		if got, ok := info.Versions[e.Version]; ok {
			if got == e.Integrity {
				e.State = StateSkipped
			} else {
				conflicts = append(conflicts, fmt.Sprintf("%s@%s is already in %s with integrity %s, but the local tarball %s has %s", e.Name, e.Version, r.args.Registry, got, e.Tarball, e.Integrity))
			}
		}
		if info.DistTags[r.opts.Tag] == e.Version {
			e.Tagged = true
		}
		if cur := info.DistTags[r.opts.Tag]; cur != "" && cur != e.Version {
			e.PreviousTag = cur
		}
	}
	if len(conflicts) > 0 {
		return refuse("integrity conflict: %s. A published version can never change: bump the version, or rebuild the exact sources that were published", strings.Join(conflicts, "; "))
	}
	return nil
}

// checkLatestNotBackwards refuses to point latest at a lower version than it
// has unless --force.
func (r *run) checkLatestNotBackwards() error {
	if r.opts.Tag != "latest" || r.opts.Force {
		return nil
	}
	v := semver.MustParse(r.rel.Version)
	for _, e := range r.ledger.Packages {
		if e.PreviousTag == "" {
			continue
		}
		if cur, err := semver.NewVersion(e.PreviousTag); err == nil && cur.GreaterThan(v) {
			return refuse("%s: latest points at %s, higher than %s; publish with --tag <name> (e.g. a maintenance tag) or pass --force to move latest back", e.Name, e.PreviousTag, r.rel.Version)
		}
	}
	return nil
}

func nerf(reg string) string {
	s, err := npmconf.NerfDart(reg)
	if err != nil {
		return reg
	}
	return s
}

// publishAll runs the ordered steps after the preflight.
func (r *run) publishAll(ctx context.Context) error {
	for _, p := range r.payloads {
		if err := r.publishOne(ctx, p); err != nil {
			return err
		}
	}
	// The launcher resolves exactly this version of every payload: they must be
	// readable, with the bytes we built, before it may exist.
	if err := r.waitVisible(ctx, r.payloads); err != nil {
		return err
	}
	if err := r.publishOne(ctx, r.launcher); err != nil {
		return err
	}
	if err := r.waitVisible(ctx, []pkg{r.launcher}); err != nil {
		return err
	}
	if r.opts.NoTags {
		return nil
	}
	return r.moveTags(ctx)
}

func (r *run) publishOne(ctx context.Context, p pkg) error {
	e := r.ledger.Entry(p.Name)
	if e.State == StateSkipped {
		r.log.Info("already published", "package", p.Name, "version", p.Version)
		return nil
	}
	r.log.Info("publishing", "package", p.Name, "version", p.Version, "registry", r.args.Registry)
	args := r.args
	args.Tag = r.opts.StagingTag
	err := r.withOTP(ctx, func(a UploadArgs) error { return r.up.Publish(ctx, p.tarball, a) }, args)
	e.At = time.Now().UTC()
	if err != nil {
		// The upload may have landed although the client saw an error (a
		// timeout after the registry stored it): trust the registry.
		if info, qerr := r.reader.Package(ctx, p.Name); qerr == nil && info != nil && info.Versions[p.Version] == p.Integrity {
			r.log.Warn("npm reported an error but the registry holds the package", "package", p.Name, "error", err)
		} else {
			e.State, e.Error = StateFailed, err.Error()
			_ = WriteLedger(r.opts.Dist, r.ledger)
			return fmt.Errorf("publish %s@%s: %w", p.Name, p.Version, err)
		}
	}
	e.State, e.Error = StatePublished, ""
	return WriteLedger(r.opts.Dist, r.ledger)
}

// withOTP runs f, asking once for a one-time password when the registry wants one.
func (r *run) withOTP(ctx context.Context, f func(UploadArgs) error, a UploadArgs) error {
	err := f(a)
	if !errors.Is(err, ErrOTP) || r.opts.Prompt == nil {
		return err
	}
	otp, perr := r.opts.Prompt(ctx, fmt.Sprintf("one-time password for %s: ", r.args.Registry))
	if perr != nil || strings.TrimSpace(otp) == "" {
		return err
	}
	r.args.OTP = strings.TrimSpace(otp)
	a.OTP = r.args.OTP
	return f(a)
}

// waitVisible polls until each package's version is readable with the
// expected integrity, backing off from 250ms to 5s.
func (r *run) waitVisible(ctx context.Context, ps []pkg) error {
	deadline := time.Now().Add(r.opts.VisibleTimeout)
	delay := 250 * time.Millisecond
	pending := append([]pkg{}, ps...)
	var polls, failed int // registry reads, and those that errored
	var lastErr error
	for {
		var still []pkg
		var last string
		for _, p := range pending {
			info, err := r.reader.Package(ctx, p.Name)
			polls++
			switch {
			case err != nil:
				failed++
				lastErr = err
				last = err.Error()
				r.log.Warn("visibility check failed", "package", p.Name, "error", err, "failed_polls", failed)
				still = append(still, p)
			case info == nil || info.Versions[p.Version] == "":
				last = p.Name + "@" + p.Version + " not visible yet"
				still = append(still, p)
			case info.Versions[p.Version] != p.Integrity:
				return fmt.Errorf("%s@%s is visible with integrity %s, not the published %s: stop and investigate the registry", p.Name, p.Version, info.Versions[p.Version], p.Integrity)
			}
		}
		if len(still) == 0 {
			if failed > 0 {
				r.log.Warn("packages visible after failed checks", "failed_polls", failed, "polls", polls)
			}
			return nil
		}
		pending = still
		if time.Now().Add(delay).After(deadline) {
			msg := fmt.Sprintf("waiting for %d package(s) to become visible in %s: %s", len(pending), r.args.Registry, last)
			if failed > 0 {
				msg += fmt.Sprintf(" (%d of %d registry reads failed, the last with: %v)", failed, polls, lastErr)
			}
			return errors.New(msg)
		}
		r.log.Info("waiting for packages to become visible", "pending", len(pending), "retry_in", delay, "failed_polls", failed)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// moveTags points the release tag at the version, payloads first, then
// removes the staging tag.
func (r *run) moveTags(ctx context.Context) error {
	v := semver.MustParse(r.rel.Version)
	for i := range r.ledger.Packages {
		e := &r.ledger.Packages[i]
		info, err := r.reader.Package(ctx, e.Name)
		if err != nil {
			return fmt.Errorf("read dist-tags of %s: %w", e.Name, err)
		}
		cur := ""
		if info != nil {
			cur = info.DistTags[r.opts.Tag]
		}
		if cur == e.Version {
			e.Tagged = true
		} else {
			if cv, err := semver.NewVersion(cur); r.opts.Tag == "latest" && !r.opts.Force && err == nil && cv.GreaterThan(v) {
				return fmt.Errorf("%s: latest moved to %s meanwhile, higher than %s; pass --force to move it back", e.Name, cur, e.Version)
			}
			r.log.Info("moving dist-tag", "package", e.Name, "tag", r.opts.Tag, "from", cur, "to", e.Version)
			if err := r.withOTP(ctx, func(a UploadArgs) error { return r.up.SetTag(ctx, e.Name, e.Version, r.opts.Tag, a) }, r.args); err != nil {
				_ = WriteLedger(r.opts.Dist, r.ledger)
				return fmt.Errorf("set dist-tag %s of %s to %s: %w", r.opts.Tag, e.Name, e.Version, err)
			}
			e.Tagged = true
		}
		if err := WriteLedger(r.opts.Dist, r.ledger); err != nil {
			return err
		}
		if info != nil && info.DistTags[r.opts.StagingTag] != "" {
			// Best effort: a leftover staging tag is harmless.
			if err := r.up.RemoveTag(ctx, e.Name, r.opts.StagingTag, r.args); err != nil {
				r.log.Debug("remove staging tag", "package", e.Name, "error", err)
			}
		}
	}
	return nil
}
