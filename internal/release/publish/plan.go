package publish

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"text/tabwriter"

	"github.com/second-inc/second-release/internal/release/artifact"
	"github.com/second-inc/second-release/internal/release/config"
)

// ReleasePlan is `release plan`: the packages build would write and what
// publish would do with each, given what the registry already holds.
type ReleasePlan struct {
	Version  string `json:"version"`
	Tag      string `json:"tag"`
	Access   string `json:"access"`
	Registry string `json:"registry"`
	User     string `json:"user,omitempty"`
	Dist     string `json:"dist"`
	// Built is true when dist/ already holds this version (integrities compared).
	Built    bool         `json:"built"`
	Warning  string       `json:"warning,omitempty"`
	Packages []PlannedPkg `json:"packages"`
	Steps    []string     `json:"steps"`
}

// PlannedPkg is one package in the plan.
type PlannedPkg struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Platform string `json:"platform,omitempty"`
	Tarball  string `json:"tarball"`
	// Action: "publish", "skip (already published)", "conflict" or "unknown".
	Action    string `json:"action"`
	Remote    string `json:"remoteIntegrity,omitempty"`
	TagNow    string `json:"tagNow,omitempty"` // where the tag points today
	Published bool   `json:"published"`
}

// PlanOptions configure MakePlan.
type PlanOptions struct {
	Config    *config.Config
	Version   string
	Platforms []string // platform ids being built
	Publish   Options  // registry, access, tag, env, dist
	// Images says whether images are configured (release.yaml images.repository).
	Images bool
}

// MakePlan inspects the registry (and dist/, when it holds this version).
func MakePlan(ctx context.Context, o PlanOptions) (*ReleasePlan, error) {
	cfg := o.Config
	tag := o.Publish.Tag
	if tag == "" {
		tag = DefaultTag(o.Version)
	}
	p := &ReleasePlan{Version: o.Version, Tag: tag, Access: o.Publish.Access, Dist: o.Publish.Dist}
	type item struct{ name, kind, platform string }
	var items []item
	for _, id := range o.Platforms {
		items = append(items, item{cfg.PayloadName(id), artifact.KindPayload, id})
	}
	items = append(items, item{cfg.LauncherName(), artifact.KindLauncher, ""})
	var names []string
	for _, it := range items {
		names = append(names, it.name)
	}
	rep, err := Inspect(ctx, RemoteOptions{Registry: o.Publish.Registry, Env: o.Publish.Env, ProjectDir: o.Publish.ProjectDir, Reader: o.Publish.Reader}, names, o.Version)
	if err != nil {
		return nil, err
	}
	p.Registry, p.User, p.Warning = rep.Registry, rep.User, rep.Error

	// With this version built, the local integrities decide skip vs conflict.
	local := map[string]string{}
	if rel, err := artifact.Read(o.Publish.Dist); err == nil && rel.Version == o.Version {
		p.Built = true
		for _, a := range rel.Artifacts {
			local[a.Name] = a.Integrity
		}
	}
	for i, it := range items {
		r := rep.Packages[i]
		pp := PlannedPkg{Name: it.name, Kind: it.kind, Platform: it.platform,
			Tarball: path.Join("npm", tarballName(it.name, o.Version)), Remote: r.Integrity, Published: r.Published}
		if r.DistTags != nil {
			pp.TagNow = r.DistTags[tag]
		}
		switch {
		case r.Error != "":
			pp.Action = "unknown"
		case !r.Published:
			pp.Action = "publish"
		case p.Built && local[it.name] != "" && local[it.name] != r.Integrity:
			pp.Action = "conflict"
		default:
			pp.Action = "skip (already published)"
		}
		p.Packages = append(p.Packages, pp)
	}
	if !p.Built {
		p.Steps = append(p.Steps, fmt.Sprintf("build %s for %s into %s", o.Version, strings.Join(o.Platforms, ", "), o.Publish.Dist))
	}
	toPublish, launcherToo := 0, false
	for _, pp := range p.Packages {
		if pp.Action == "publish" || pp.Action == "unknown" {
			if pp.Kind == artifact.KindLauncher {
				launcherToo = true
			} else {
				toPublish++
			}
		}
	}
	if toPublish > 0 {
		p.Steps = append(p.Steps, fmt.Sprintf("publish %d payload(s) under the staging tag %q, then check each is visible with its integrity", toPublish, DefaultStagingTag))
	}
	if launcherToo {
		p.Steps = append(p.Steps, "publish the launcher "+cfg.LauncherName()+"@"+o.Version+" (only once every payload is visible)")
	}
	if o.Images {
		p.Steps = append(p.Steps, "build, push, sign and verify the images")
	}
	p.Steps = append(p.Steps, fmt.Sprintf("move dist-tag %q to %s on every package", tag, o.Version))
	return p, nil
}

func tarballName(name, version string) string {
	return strings.ReplaceAll(strings.TrimPrefix(name, "@"), "/", "-") + "-" + version + ".tgz"
}

// WriteTable prints the plan for people.
func (p *ReleasePlan) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "plan for %s: registry %s, tag %q, access %s\n", p.Version, p.Registry, p.Tag, p.Access)
	if p.Warning != "" {
		fmt.Fprintf(w, "warning: %s\n", p.Warning)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PACKAGE\tKIND\tTARBALL\tACTION\tTAG NOW")
	for _, pp := range p.Packages {
		now := pp.TagNow
		if now == "" {
			now = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", pp.Name, pp.Kind, pp.Tarball, pp.Action, now)
	}
	tw.Flush()
	fmt.Fprintln(w, "steps:")
	for i, s := range p.Steps {
		fmt.Fprintf(w, "  %d. %s\n", i+1, s)
	}
}
