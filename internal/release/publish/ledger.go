package publish

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// LedgerFile is the publish ledger's name inside dist/.
const LedgerFile = "publish-state.json"

// Package states in the ledger.
const (
	StatePlanned   = "planned"   // will be published
	StatePublished = "published" // published by this or an earlier run of this ledger
	StateSkipped   = "skipped"   // already in the registry with the same integrity
	StateFailed    = "failed"    // the last attempt failed; rerun publish
)

// Entry is one package's line in the ledger.
type Entry struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"` // payload | launcher
	Platform  string `json:"platform,omitempty"`
	Version   string `json:"version"`
	Integrity string `json:"integrity"`
	Tarball   string `json:"tarball"` // relative to dist/
	State     string `json:"state"`
	// Tagged is true once the release dist-tag points at this version.
	Tagged bool   `json:"tagged"`
	Error  string `json:"error,omitempty"`
	// PreviousTag is where the release tag pointed before this run, if anywhere.
	PreviousTag string    `json:"previousTag,omitempty"`
	At          time.Time `json:"at,omitzero"`
}

// Ledger is dist/publish-state.json: what publish planned and did, per package.
type Ledger struct {
	Version    string    `json:"version"`
	Registry   string    `json:"registry"`
	Tag        string    `json:"tag"`
	Access     string    `json:"access,omitempty"`
	User       string    `json:"user,omitempty"`
	DryRun     bool      `json:"dryRun,omitempty"`
	Complete   bool      `json:"complete"`
	Error      string    `json:"error,omitempty"`
	Next       string    `json:"next,omitempty"` // what to do after a failure
	Runs       int       `json:"runs"`
	UpdatedAt  time.Time `json:"updatedAt"`
	Packages   []Entry   `json:"packages"`
	StagingTag string    `json:"stagingTag"`
}

// ReadLedger loads dist/publish-state.json; nil, nil when there is none.
func ReadLedger(dist string) (*Ledger, error) {
	p := filepath.Join(dist, LedgerFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var l Ledger
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s: %w (delete it to start the ledger over; the registry is the source of truth)", p, err)
	}
	return &l, nil
}

// WriteLedger saves the ledger atomically (write then rename), so a crash
// never leaves half a file.
func WriteLedger(dist string, l *Ledger) error {
	l.UpdatedAt = time.Now().UTC()
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(dist, LedgerFile)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write publish ledger: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("write publish ledger: %w", err)
	}
	return nil
}

// Entry finds a package by name.
func (l *Ledger) Entry(name string) *Entry {
	for i := range l.Packages {
		if l.Packages[i].Name == name {
			return &l.Packages[i]
		}
	}
	return nil
}

// Counts tallies packages per state.
func (l *Ledger) Counts() map[string]int {
	c := map[string]int{}
	for _, e := range l.Packages {
		c[e.State]++
	}
	return c
}

// WriteTable prints the summary table.
func (l *Ledger) WriteTable(w io.Writer) {
	mode := ""
	if l.DryRun {
		mode = " (dry run: nothing was changed)"
	}
	fmt.Fprintf(w, "publish %s to %s, tag %q%s\n", l.Version, l.Registry, l.Tag, mode)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PACKAGE\tVERSION\tKIND\tSTATE\tTAG\tINTEGRITY")
	for _, e := range l.Packages {
		tag := "-"
		if e.Tagged {
			tag = l.Tag
		}
		integ := e.Integrity
		if len(integ) > 20 {
			integ = integ[:20] + "…"
		}
		state := e.State
		if state == StateSkipped {
			state = "skipped (already published)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Version, e.Kind, state, tag, integ)
	}
	tw.Flush()
	c := l.Counts()
	var parts []string
	for _, s := range []string{StatePublished, StateSkipped, StatePlanned, StateFailed} {
		if c[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[s], s))
		}
	}
	fmt.Fprintf(w, "%s\n", strings.Join(parts, ", "))
	if l.Error != "" {
		fmt.Fprintf(w, "error: %s\n", l.Error)
	}
	if l.Next != "" {
		fmt.Fprintf(w, "next: %s\n", l.Next)
	}
}
