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
	"github.com/second-inc/second-release/internal/release/publish"
)

// CutStateFile records `release cut` progress inside dist/.
const CutStateFile = "cut-state.json"

// Step states in the cut record.
const (
	StepPending = "pending"
	StepDone    = "done"
	StepSkipped = "skipped"
	StepFailed  = "failed"
)

// Hook is an optional stage (images, sign, verify); nil means not configured.
type Hook func(ctx context.Context) error

// CutOptions configure Cut.
type CutOptions struct {
	Version string
	Dist    string
	// Build builds Version into Dist (pipeline.Build in the CLI).
	Build func(ctx context.Context) (*artifact.Release, error)
	// Publish is the publish configuration (Dist and Release are set by Cut).
	Publish publish.Options
	// Images, Sign and Verify run when set, between the packages and the tags.
	Images, Sign, Verify Hook
	Log                  *slog.Logger
}

// CutStep is one line of the cut record.
type CutStep struct {
	Name   string    `json:"name"`
	State  string    `json:"state"`
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at,omitzero"`
}

// CutState is dist/cut-state.json.
type CutState struct {
	Version  string    `json:"version"`
	Steps    []CutStep `json:"steps"`
	Complete bool      `json:"complete"`
	Next     string    `json:"next,omitempty"`
	// Ledger is the last publish ledger.
	Ledger *publish.Ledger `json:"publish,omitempty"`
}

func (s *CutState) step(name string) *CutStep {
	for i := range s.Steps {
		if s.Steps[i].Name == name {
			return &s.Steps[i]
		}
	}
	return nil
}

// Cut runs a whole release: build, publish payloads then the launcher,
// images, signatures, verification, then the dist-tags. It stops at the first
// failure with what to do next; running it again resumes: an intact build of
// the version is reused, published packages are skipped, done image steps are
// not repeated.
func Cut(ctx context.Context, o CutOptions) (*CutState, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	st := &CutState{Version: o.Version}
	for _, n := range []string{"build", "publish", "images", "sign", "verify", "tags"} {
		st.Steps = append(st.Steps, CutStep{Name: n, State: StepPending})
	}
	prev := readCutState(o.Dist)
	if prev != nil && prev.Version == o.Version {
		for _, p := range prev.Steps {
			if s := st.step(p.Name); s != nil && p.State == StepDone {
				*s = p
			}
		}
	}
	save := func() { _ = writeCutState(o.Dist, st) }

	run := func(name string, f func(context.Context) (string, error)) error {
		s := st.step(name)
		detail, err := f(ctx)
		s.At = time.Now().UTC()
		var skip skipped
		switch {
		case errors.As(err, &skip):
			s.State, s.Detail = StepSkipped, string(skip)
			log.Info("cut step skipped", "step", name, "reason", string(skip))
		case err != nil:
			s.State, s.Detail = StepFailed, err.Error()
			st.Next = fmt.Sprintf("fix the %s problem above, then run `release cut %s` again: it resumes from %s", name, o.Version, CutStateFile)
			save()
			return fmt.Errorf("cut %s: %s: %w", o.Version, name, err)
		default:
			s.State, s.Detail = StepDone, detail
			log.Info("cut step done", "step", name, "detail", detail)
		}
		save()
		return nil
	}

	pub := o.Publish
	pub.Dist = o.Dist
	steps := []struct {
		name string
		f    func(context.Context) (string, error)
	}{
		{"build", func(ctx context.Context) (string, error) {
			if rel, err := intactBuild(o.Dist, o.Version); err == nil {
				return fmt.Sprintf("reused the build in %s (%d artifacts, integrities checked)", o.Dist, len(rel.Artifacts)), nil
			}
			if o.Build == nil {
				return "", errors.New("no build configured")
			}
			rel, err := o.Build(ctx)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("built %d artifacts", len(rel.Artifacts)), nil
		}},
		{"publish", func(ctx context.Context) (string, error) {
			p := pub
			p.NoTags = true
			l, err := publish.Run(ctx, p)
			st.Ledger = l
			if err != nil {
				return "", err
			}
			c := l.Counts()
			return fmt.Sprintf("%d published, %d already there", c[publish.StatePublished], c[publish.StateSkipped]), nil
		}},
		{"images", hookStep(st, "images", o.Images)},
		{"sign", hookStep(st, "sign", o.Sign)},
		{"verify", func(ctx context.Context) (string, error) {
			// Always re-verified: cheap, read-only, and the point of a resumed cut.
			if o.Verify == nil {
				return "", skipped("no images configured")
			}
			return "", o.Verify(ctx)
		}},
		{"tags", func(ctx context.Context) (string, error) {
			// This run finds every package in; show what the publish step did.
			before := map[string]string{}
			if st.Ledger != nil {
				for _, e := range st.Ledger.Packages {
					before[e.Name] = e.State
				}
			}
			l, err := publish.Run(ctx, pub)
			if l != nil {
				for i := range l.Packages {
					if before[l.Packages[i].Name] == publish.StatePublished {
						l.Packages[i].State = publish.StatePublished
					}
				}
			}
			st.Ledger = l
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("dist-tag %q -> %s", l.Tag, o.Version), nil
		}},
	}
	for _, s := range steps {
		if err := run(s.name, s.f); err != nil {
			return st, err
		}
	}
	st.Complete, st.Next = true, ""
	save()
	return st, nil
}

// skipped is a step that does not apply.
type skipped string

func (s skipped) Error() string { return string(s) }

// hookStep runs an optional hook once per version: a done step is not redone.
func hookStep(st *CutState, name string, h Hook) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		if h == nil {
			return "", skipped("not configured")
		}
		if s := st.step(name); s.State == StepDone {
			return s.Detail + " (earlier run)", nil
		}
		return "", h(ctx)
	}
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

func readCutState(dist string) *CutState {
	b, err := os.ReadFile(filepath.Join(dist, CutStateFile))
	if err != nil {
		return nil
	}
	var s CutState
	if json.Unmarshal(b, &s) != nil {
		return nil
	}
	return &s
}

func writeCutState(dist string, s *CutState) error {
	if err := os.MkdirAll(dist, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(dist, CutStateFile)
	if err := os.WriteFile(p+".tmp", append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(p+".tmp", p)
}

// WriteTable prints the cut's steps.
func (s *CutState) WriteTable(w io.Writer) {
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
