// Package cut is the real release, `release cut`: build, publish the
// payloads then the launcher, images, signatures, verification, dist-tags,
// recorded in dist/cut-state.json so a failed cut resumes where it stopped.
package cut

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/second-inc/second-release/internal/release/artifact"
	"github.com/second-inc/second-release/internal/release/pipeline"
	"github.com/second-inc/second-release/internal/release/publish"
)

// StateFile records `release cut` progress inside dist/.
const StateFile = "cut-state.json"

// Step states in the cut record.
const (
	StepPending = "pending"
	StepDone    = "done"
	StepSkipped = "skipped"
	StepFailed  = "failed"
)

// Hook is an optional stage (images, sign, verify); nil means not configured.
type Hook func(ctx context.Context) error

// Options configure Run.
type Options struct {
	Version string
	Dist    string
	// Build builds Version into Dist (pipeline.Build in the CLI).
	Build func(ctx context.Context) (*artifact.Release, error)
	// Publish is the publish configuration (Dist and Release are set by Run).
	Publish publish.Options
	// Images, Sign and Verify run when set, between the packages and the tags.
	Images, Sign, Verify Hook
	Log                  *slog.Logger
}

// StepRecord is one line of the cut record.
type StepRecord struct {
	Name   string    `json:"name"`
	State  string    `json:"state"`
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at,omitzero"`
}

// State is dist/cut-state.json.
type State struct {
	Version  string       `json:"version"`
	Steps    []StepRecord `json:"steps"`
	Complete bool         `json:"complete"`
	Next     string       `json:"next,omitempty"`
	// Ledger is the last publish ledger.
	Ledger *publish.Ledger `json:"publish,omitempty"`
}

func (s *State) step(name string) *StepRecord {
	for i := range s.Steps {
		if s.Steps[i].Name == name {
			return &s.Steps[i]
		}
	}
	return nil
}

// steps are the cut, in this order.
var steps = []pipeline.StepOf[*cut]{
	buildStep{},   // build the version, or reuse an intact build of it in dist
	publishStep{}, // every payload, then the launcher; no dist-tag moves yet
	imagesStep{},  // build and push the images (when release.yaml configures them)
	signStep{},    // sign them (when release.yaml has a key)
	verifyStep{},  // verify the signatures, on every run
	tagsStep{},    // move the dist-tags, last
}

// cut is what the steps share: the options, the record they fill, and the
// running step's detail for its line.
type cut struct {
	Options
	state  *State
	pub    publish.Options
	detail string
}

// Run runs a whole release: build, publish payloads then the launcher,
// images, signatures, verification, then the dist-tags. It stops at the first
// failure with what to do next; running it again resumes: an intact build of
// the version is reused, published packages are skipped, done image steps are
// not repeated.
func Run(ctx context.Context, o Options) (*State, error) {
	st := &State{Version: o.Version}
	for _, s := range steps {
		st.Steps = append(st.Steps, StepRecord{Name: s.String(), State: StepPending})
	}
	prev := readState(o.Dist)
	if prev != nil && prev.Version == o.Version {
		for _, p := range prev.Steps {
			if s := st.step(p.Name); s != nil && p.State == StepDone {
				*s = p
			}
		}
	}
	c := &cut{Options: o, state: st, pub: o.Publish}
	c.pub.Dist = o.Dist
	err := pipeline.RunSteps(ctx, o.Log, c, steps, func(step pipeline.StepOf[*cut], _ time.Duration, err error) {
		s := st.step(step.String())
		s.At = time.Now().UTC()
		var skip pipeline.Skip
		switch {
		case errors.As(err, &skip):
			s.State, s.Detail = StepSkipped, skip.Reason
		case err != nil:
			s.State, s.Detail = StepFailed, err.Error()
			st.Next = fmt.Sprintf("fix the %s problem above, then run `release cut %s` again: it resumes from %s", step, o.Version, StateFile)
		default:
			s.State, s.Detail = StepDone, c.detail
		}
		c.detail = ""
		_ = writeState(o.Dist, st)
	})
	if err != nil {
		return st, fmt.Errorf("cut %s: %w", o.Version, err)
	}
	st.Complete, st.Next = true, ""
	_ = writeState(o.Dist, st)
	return st, nil
}

type buildStep struct{}

func (buildStep) String() string { return "build" }

func (buildStep) Run(ctx context.Context, c *cut) error {
	if rel, err := intactBuild(c.Dist, c.Version); err == nil {
		c.detail = fmt.Sprintf("reused the build in %s (%d artifacts, integrities checked)", c.Dist, len(rel.Artifacts))
		return nil
	}
	if c.Build == nil {
		return errors.New("no build configured")
	}
	rel, err := c.Build(ctx)
	if err != nil {
		return err
	}
	c.detail = fmt.Sprintf("built %d artifacts", len(rel.Artifacts))
	return nil
}

type publishStep struct{}

func (publishStep) String() string { return "publish" }

func (publishStep) Run(ctx context.Context, c *cut) error {
	p := c.pub
	p.NoTags = true
	l, err := publish.Run(ctx, p)
	c.state.Ledger = l
	if err != nil {
		return err
	}
	n := l.Counts()
	c.detail = fmt.Sprintf("%d published, %d already there", n[publish.StatePublished], n[publish.StateSkipped])
	return nil
}

type imagesStep struct{}

func (imagesStep) String() string { return "images" }

func (s imagesStep) Run(ctx context.Context, c *cut) error { return c.once(ctx, s.String(), c.Images) }

type signStep struct{}

func (signStep) String() string { return "sign" }

func (s signStep) Run(ctx context.Context, c *cut) error { return c.once(ctx, s.String(), c.Sign) }

// once runs an optional hook once per version: a done step is not redone.
func (c *cut) once(ctx context.Context, name string, h Hook) error {
	if h == nil {
		return pipeline.Skip{Reason: "not configured"}
	}
	if s := c.state.step(name); s.State == StepDone {
		c.detail = s.Detail + " (earlier run)"
		return nil
	}
	return h(ctx)
}

type verifyStep struct{}

func (verifyStep) String() string { return "verify" }

func (verifyStep) Run(ctx context.Context, c *cut) error {
	// Always re-verified: cheap, read-only, and the point of a resumed cut.
	if c.Verify == nil {
		return pipeline.Skip{Reason: "no images configured"}
	}
	return c.Verify(ctx)
}

type tagsStep struct{}

func (tagsStep) String() string { return "tags" }

func (tagsStep) Run(ctx context.Context, c *cut) error {
	// This run finds every package in; show what the publish step did.
	before := map[string]string{}
	if c.state.Ledger != nil {
		for _, e := range c.state.Ledger.Packages {
			before[e.Name] = e.State
		}
	}
	l, err := publish.Run(ctx, c.pub)
	if l != nil {
		for i := range l.Packages {
			if before[l.Packages[i].Name] == publish.StatePublished {
				l.Packages[i].State = publish.StatePublished
			}
		}
	}
	c.state.Ledger = l
	if err != nil {
		return err
	}
	c.detail = fmt.Sprintf("dist-tag %q -> %s", l.Tag, c.Version)
	return nil
}

// intactBuild returns dist's release when it is version and every npm
// tarball still has its recorded integrity.
func intactBuild(dist, version string) (*artifact.Release, error) {
	rel, err := artifact.Read(dist)
	if err != nil {
		return nil, err
	}
	if rel.Version != version {
		return nil, fmt.Errorf("dist holds %s", rel.Version)
	}
	n := 0
	for _, a := range rel.Artifacts {
		if a.Kind != artifact.KindPayload && a.Kind != artifact.KindLauncher {
			continue
		}
		n++
		_, integ, _, err := artifact.Digests(filepath.Join(dist, filepath.FromSlash(a.Path)))
		if err != nil || integ != a.Integrity {
			return nil, fmt.Errorf("%s changed or missing", a.Path)
		}
	}
	if n == 0 {
		return nil, errors.New("no packages")
	}
	return rel, nil
}

func readState(dist string) *State {
	b, err := os.ReadFile(filepath.Join(dist, StateFile))
	if err != nil {
		return nil
	}
	var s State
	if json.Unmarshal(b, &s) != nil {
		return nil
	}
	return &s
}

func writeState(dist string, s *State) error {
	if err := os.MkdirAll(dist, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(dist, StateFile)
	if err := os.WriteFile(p+".tmp", append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(p+".tmp", p)
}

// WriteTable prints the cut's steps.
func (s *State) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "cut %s\n", s.Version)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tSTATE\tDETAIL")
	for _, st := range s.Steps {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", st.Name, st.State, st.Detail)
	}
	tw.Flush()
	if s.Ledger != nil {
		fmt.Fprintln(w)
		s.Ledger.WriteTable(w)
	}
	if s.Next != "" {
		fmt.Fprintf(w, "next: %s\n", s.Next)
	}
}
