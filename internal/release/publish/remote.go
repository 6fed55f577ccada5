package publish

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/second-inc/second-release/internal/npmconf"
	"github.com/second-inc/second-release/internal/npmregistry"
)

// Remote is what the registry says about one package at one version, for
// plans made before anything is built.
type Remote struct {
	Name      string            `json:"name"`
	Version   string            `json:"version"`
	Published bool              `json:"published"`
	Integrity string            `json:"integrity,omitempty"`
	DistTags  map[string]string `json:"distTags,omitempty"`
	Error     string            `json:"error,omitempty"`
}

// RemoteOptions configure Inspect.
type RemoteOptions struct {
	Registry   string   // override; "" uses npm config for the first name's scope
	Env        []string // nil: os.Environ()
	ProjectDir string
	Reader     Registry // nil: HTTP with the user's npm auth
}

// RemoteReport is Inspect's answer.
type RemoteReport struct {
	Registry string   `json:"registry"`
	User     string   `json:"user,omitempty"`
	Error    string   `json:"error,omitempty"` // registry-wide problem (unreachable, not logged in)
	Packages []Remote `json:"packages"`
}

// Inspect asks the registry which of names already have version. It never
// fails on registry problems: they are reported in the answer.
func Inspect(ctx context.Context, o RemoteOptions, names []string, version string) (*RemoteReport, error) {
	env := o.Env
	if env == nil {
		env = os.Environ()
	}
	conf, err := npmconf.Load(npmconf.Options{Env: env, ProjectDir: o.ProjectDir})
	if err != nil {
		return nil, fmt.Errorf("read npm configuration: %w", err)
	}
	reg := o.Registry
	if reg == "" && len(names) > 0 {
		reg = conf.RegistryFor(names[0])
	}
	reg = strings.TrimSuffix(reg, "/") + "/"
	reader := o.Reader
	if reader == nil {
		reader = &npmregistry.Client{Registry: reg, Config: conf}
	}
	rep := &RemoteReport{Registry: reg}
	if err := reader.Ping(ctx); err != nil {
		rep.Error = fmt.Sprintf("registry %s unreachable: %v", reg, err)
		for _, n := range names {
			rep.Packages = append(rep.Packages, Remote{Name: n, Version: version, Error: "unknown: registry unreachable"})
		}
		return rep, nil
	}
	user, err := reader.Whoami(ctx)
	switch {
	case err != nil && !refused(err):
		rep.Error = fmt.Sprintf("whoami at %s: %v", reg, err)
	case err != nil || user == "":
		rep.Error = fmt.Sprintf("not authenticated to %s (publish would refuse; run `npm login --registry %s`)", reg, reg)
	}
	rep.User = user
	for _, n := range names {
		r := Remote{Name: n, Version: version}
		info, err := reader.Package(ctx, n)
		switch {
		case err != nil:
			r.Error = err.Error()
		case info != nil:
			r.DistTags = info.DistTags
			if integ, ok := info.Versions[version]; ok {
				r.Published, r.Integrity = true, integ
			}
		}
		rep.Packages = append(rep.Packages, r)
	}
	return rep, nil
}

// DefaultTag is the dist-tag publish moves for version when none is given.
func DefaultTag(version string) string {
	if v, err := semver.NewVersion(version); err == nil && v.Prerelease() != "" {
		return "next"
	}
	return "latest"
}
