// Package version decides the release version: an explicit --version parsed
// as semver, or a snapshot derived from git (<next patch>-snapshot.<commit>).
package version

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
)

// Parse validates an explicit version (a leading "v" is accepted and dropped).
func Parse(s string) (*semver.Version, error) {
	if s == "" {
		return nil, fmt.Errorf("--version is empty: pass a semantic version such as 1.2.3 or use --snapshot")
	}
	v, err := semver.StrictNewVersion(strings.TrimPrefix(s, "v"))
	if err != nil {
		return nil, fmt.Errorf("--version %q is not a semantic version (MAJOR.MINOR.PATCH[-PRERELEASE]): %v", s, err)
	}
	return v, nil
}

// Git describes the commit being released.
type Git struct {
	Commit      string    // full hash
	ShortCommit string    // 7+ chars
	CommitTime  time.Time // committer time, the default SOURCE_DATE_EPOCH
	LatestTag   string    // highest v* semver tag reachable, "" if none
}

// ReadGit inspects the repository containing dir.
func ReadGit(ctx context.Context, dir string) (Git, error) {
	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				return "", fmt.Errorf("git %s in %s: %v: %s", strings.Join(args, " "), dir, err, strings.TrimSpace(string(ee.Stderr)))
			}
			return "", fmt.Errorf("git %s in %s: %w", strings.Join(args, " "), dir, err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	var g Git
	var err error
	if g.Commit, err = run("rev-parse", "HEAD"); err != nil {
		return g, fmt.Errorf("%w (a snapshot needs a git checkout with at least one commit)", err)
	}
	if g.ShortCommit, err = run("rev-parse", "--short=7", "HEAD"); err != nil {
		return g, err
	}
	ts, err := run("log", "-1", "--format=%ct", "HEAD")
	if err != nil {
		return g, err
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return g, fmt.Errorf("git commit time %q: %w", ts, err)
	}
	g.CommitTime = time.Unix(sec, 0).UTC()
	tags, err := run("tag", "--merged", "HEAD", "--list", "v*")
	if err == nil {
		var best *semver.Version
		for _, t := range strings.Fields(tags) {
			v, err := semver.StrictNewVersion(strings.TrimPrefix(t, "v"))
			if err != nil {
				continue
			}
			if best == nil || v.GreaterThan(best) {
				best, g.LatestTag = v, t
			}
		}
	}
	return g, nil
}

// Snapshot is <next patch after the latest tag>-snapshot.<short commit>;
// 0.0.1-snapshot.<commit> when there is no tag yet.
func Snapshot(g Git) *semver.Version {
	base := semver.New(0, 0, 0, "", "")
	if g.LatestTag != "" {
		if v, err := semver.StrictNewVersion(strings.TrimPrefix(g.LatestTag, "v")); err == nil {
			base = v
		}
	}
	next := base.IncPatch()
	if base.Prerelease() != "" {
		// 1.3.0-rc.1 → the snapshot still sorts before 1.3.0
		next = *semver.New(base.Major(), base.Minor(), base.Patch(), "", "")
	}
	id := g.ShortCommit
	if strings.Trim(id, "0123456789") == "" && strings.HasPrefix(id, "0") {
		id = "g" + id // semver forbids numeric identifiers with a leading zero
	}
	v, _ := next.SetPrerelease("snapshot." + id)
	return &v
}
