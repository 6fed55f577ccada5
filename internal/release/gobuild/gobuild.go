// Package gobuild builds the Go binaries through a pinned GoReleaser, run with
// the Go toolchain (`go run …@v2.15.1`) rather than whatever is on PATH, and
// reads dist/go/artifacts.json to find each binary.
package gobuild

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/second-inc/second-release/internal/release/platform"
)

// GoReleaser is the pinned module the build runs.
const GoReleaser = "github.com/goreleaser/goreleaser/v2@v2.15.1"

// DistDir is GoReleaser's output dir (dist: in .goreleaser.yaml), relative to the repo.
const DistDir = "dist/go"

// Options says what to build.
type Options struct {
	RepoDir string   // holds .goreleaser.yaml
	Version string   // stamped into the binaries (SECOND_VERSION → snapshot.version_template)
	IDs     []string // GoReleaser build ids, e.g. ["second"]; empty: all
	Log     *slog.Logger
	// Output receives GoReleaser's own progress lines (nil: discarded, kept for errors).
	Output io.Writer
}

// Binary is one built binary.
type Binary struct {
	ID       string // build id: second | release
	Platform platform.Platform
	Path     string // absolute
}

// Build runs GoReleaser and returns the binaries it made.
func Build(ctx context.Context, o Options) ([]Binary, error) {
	args := []string{"run", GoReleaser, "build", "--snapshot", "--clean"}
	for _, id := range o.IDs {
		args = append(args, "--id", id)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = o.RepoDir
	cmd.Env = append(os.Environ(), "SECOND_VERSION="+o.Version)
	var tail bytes.Buffer
	out := io.Writer(&tail)
	if o.Output != nil {
		out = io.MultiWriter(&tail, o.Output)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if o.Log != nil {
		o.Log.Info("goreleaser build", "ids", strings.Join(o.IDs, ","), "version", o.Version)
	}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("goreleaser build (go %s) in %s: %w\n%s", strings.Join(args, " "), o.RepoDir, err, lastLines(tail.String(), 30))
	}
	return ReadArtifacts(o.RepoDir)
}

// goreleaserArtifact is the part of an artifacts.json entry we use.
type goreleaserArtifact struct {
	Name   string         `json:"name"`
	Path   string         `json:"path"`
	Goos   string         `json:"goos"`
	Goarch string         `json:"goarch"`
	Type   string         `json:"type"`
	Extra  map[string]any `json:"extra"`
}

// ReadArtifacts reads <repo>/dist/go/artifacts.json and returns the binaries
// for supported platforms.
func ReadArtifacts(repoDir string) ([]Binary, error) {
	path := filepath.Join(repoDir, DistDir, "artifacts.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read GoReleaser's artifact list: %w", err)
	}
	var arts []goreleaserArtifact
	if err := json.Unmarshal(b, &arts); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var bins []Binary
	for _, a := range arts {
		if a.Type != "Binary" {
			continue
		}
		p, err := platform.FromGo(a.Goos, a.Goarch)
		if err != nil {
			continue
		}
		id, _ := a.Extra["ID"].(string)
		abs := a.Path
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(repoDir, abs)
		}
		bins = append(bins, Binary{ID: id, Platform: p, Path: abs})
	}
	if len(bins) == 0 {
		return nil, fmt.Errorf("%s lists no binaries", path)
	}
	return bins, nil
}

// Find returns the binary of a build id for a platform.
func Find(bins []Binary, id string, p platform.Platform) (Binary, error) {
	for _, b := range bins {
		if b.ID == id && b.Platform.ID == p.ID {
			return b, nil
		}
	}
	return Binary{}, fmt.Errorf("GoReleaser built no %q binary for %s: check .goreleaser.yaml builds[id=%s]", id, p.ID, id)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
