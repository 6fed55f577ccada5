// Package preflight checks what can be known before the first slow step of
// a build, cut or rehearsal (the platforms the images need, tools on PATH,
// free disk space, the registry and the login) and reports every problem at
// once with its fix, instead of failing minutes into a build.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/second-inc/second-release/internal/release/platform"
)

// Options say what the coming run needs.
type Options struct {
	// Platforms are the payload platforms being built.
	Platforms []platform.Platform
	// ImagePlatforms are the OCI platforms (linux/amd64, ...) the images are
	// built for, from the linux payloads; nil when no images are built.
	ImagePlatforms []string
	// SubsetImages lets the images be built for only the linux platforms
	// being built (a rehearsal); otherwise a missing one is refused (a cut).
	SubsetImages bool
	// ImagesFix is how to do without the images, for the refusal ("pass --no-images").
	ImagesFix string
	// Tools must be on PATH.
	Tools []string
	// OutDir needs FreeBytes free (the nearest existing parent is checked).
	OutDir    string
	FreeBytes uint64
	// Registry, when set, checks the npm registry is reachable and the login
	// valid (see publish.CheckRegistry).
	Registry func(ctx context.Context) error
}

// Result is what the run should do given the checks.
type Result struct {
	// ImagePlatforms are the OCI platforms to build images for.
	ImagePlatforms []string
	// Notes say what was narrowed, for the user.
	Notes []string
}

// Run checks everything and returns all problems in one error.
func Run(ctx context.Context, o Options) (*Result, error) {
	res := &Result{}
	var problems []string
	if p := res.images(o); p != "" {
		problems = append(problems, p)
	}
	for _, t := range o.Tools {
		if _, err := exec.LookPath(t); err != nil {
			problems = append(problems, fmt.Sprintf("%s is not on PATH: install it (scripts/setup installs the release tools) or add its directory to PATH", t))
		}
	}
	if o.OutDir != "" && o.FreeBytes > 0 {
		if p := freeSpace(o.OutDir, o.FreeBytes); p != "" {
			problems = append(problems, p)
		}
	}
	if o.Registry != nil {
		if err := o.Registry(ctx); err != nil {
			problems = append(problems, err.Error())
		}
	}
	switch len(problems) {
	case 0:
		return res, nil
	case 1:
		return res, errors.New("preflight: " + problems[0])
	}
	return res, fmt.Errorf("preflight: %d problems:\n  - %s", len(problems), strings.Join(problems, "\n  - "))
}

// images decides the image platforms: each needs the linux payload of its
// architecture from this build.
func (r *Result) images(o Options) string {
	if len(o.ImagePlatforms) == 0 {
		return ""
	}
	var have, missing []string
	var missingIDs []string
	for _, ip := range o.ImagePlatforms {
		osName, arch, _ := strings.Cut(ip, "/")
		p, err := platform.FromGo(osName, arch)
		if err != nil {
			return fmt.Sprintf("images.platforms: %s has no payload platform: %v", ip, err)
		}
		if slices.ContainsFunc(o.Platforms, func(b platform.Platform) bool { return b.ID == p.ID }) {
			have = append(have, ip)
		} else {
			missing = append(missing, ip)
			missingIDs = append(missingIDs, p.ID)
		}
	}
	if len(missing) == 0 {
		r.ImagePlatforms = have
		return ""
	}
	built := make([]string, len(o.Platforms))
	for i, p := range o.Platforms {
		built[i] = p.ID
	}
	all := append(append([]string{}, built...), missingIDs...)
	fix := fmt.Sprintf("pass --platform %s (or no --platform: every platform of release.yaml)", strings.Join(all, ","))
	if o.ImagesFix != "" {
		fix += ", or " + o.ImagesFix
	}
	if o.SubsetImages && len(have) > 0 {
		r.ImagePlatforms = have
		r.Notes = append(r.Notes, fmt.Sprintf("images for %s only: %s not being built (%s)", strings.Join(have, ", "), strings.Join(missingIDs, ", "), fix))
		return ""
	}
	return fmt.Sprintf("the images need the %s payloads for %s, but this run builds only %s: %s",
		strings.Join(missingIDs, ", "), strings.Join(missing, ", "), strings.Join(built, ", "), fix)
}

func freeSpace(dir string, need uint64) string {
	d := dir
	for {
		if _, err := os.Stat(d); err == nil {
			break
		}
		parent := filepath.Dir(d)
		if parent == d {
			return ""
		}
		d = parent
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(d, &st); err != nil {
		return ""
	}
	free := st.Bavail * uint64(st.Bsize)
	if free >= need {
		return ""
	}
	return fmt.Sprintf("%s has %s free, the build needs about %s: free some space or pass --out on a larger disk", d, gib(free), gib(need))
}

func gib(b uint64) string { return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30)) }

// BuildBytes is about what a build of n platforms writes (host builds, a
// staged copy and a tarball per platform).
func BuildBytes(n int) uint64 { return uint64(n+1) << 30 }
