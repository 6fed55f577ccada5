// Package artifact is the list of everything a release produced, written to
// dist/release.json (with SHA256SUMS beside it). Every command after
// `release build` (publish, images, sign, verify, cut) starts from it.
package artifact

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Kinds of artifacts.
const (
	KindPayload  = "payload"  // a payload npm tarball
	KindLauncher = "launcher" // the launcher npm tarball
	KindBinary   = "binary"   // a Go binary built by GoReleaser
	KindImage    = "image"    // an OCI image index (Digest set)
)

// Artifact is one output of a release.
type Artifact struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`               // npm package name, binary or image name
	Version   string `json:"version"`            // release version
	Platform  string `json:"platform,omitempty"` // darwin-arm64 … (payloads, binaries)
	Path      string `json:"path,omitempty"`     // slash path relative to dist/
	Size      int64  `json:"size,omitempty"`
	Integrity string `json:"integrity,omitempty"` // npm's sha512-<base64>
	SHA256    string `json:"sha256,omitempty"`    // hex
	Digest    string `json:"digest,omitempty"`    // OCI digest (images)
	// ManifestSHA256 is the payload manifest.json's digest the launcher records.
	ManifestSHA256 string `json:"manifestSha256,omitempty"`
}

// Release is dist/release.json.
type Release struct {
	Version         string     `json:"version"`
	Commit          string     `json:"commit"`
	SourceDateEpoch int64      `json:"sourceDateEpoch"`
	Artifacts       []Artifact `json:"artifacts"`
}

// FileName is the artifact list's name inside dist/.
const FileName = "release.json"

// Digests hashes a file: hex sha256, npm sha512 integrity and size.
func Digests(path string) (sha256hex, integrity string, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", 0, err
	}
	defer f.Close()
	h256, h512 := sha256.New(), sha512.New()
	size, err = io.Copy(io.MultiWriter(h256, h512), f)
	if err != nil {
		return "", "", 0, fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h256.Sum(nil)), "sha512-" + base64.StdEncoding.EncodeToString(h512.Sum(nil)), size, nil
}

// FromFile builds an artifact for a file under dist, filling path and digests.
func FromFile(dist, path string, a Artifact) (Artifact, error) {
	rel, err := filepath.Rel(dist, path)
	if err != nil {
		return a, err
	}
	a.Path = filepath.ToSlash(rel)
	a.SHA256, a.Integrity, a.Size, err = Digests(path)
	return a, err
}

// Filter returns the artifacts of one kind.
func (r *Release) Filter(kind string) []Artifact {
	var out []Artifact
	for _, a := range r.Artifacts {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

// Write saves dist/release.json and dist/SHA256SUMS (files with a sha256, sorted by path).
func Write(dist string, r *Release) error {
	sort.SliceStable(r.Artifacts, func(i, j int) bool {
		if r.Artifacts[i].Kind != r.Artifacts[j].Kind {
			return r.Artifacts[i].Kind < r.Artifacts[j].Kind
		}
		return r.Artifacts[i].Name+r.Artifacts[i].Platform < r.Artifacts[j].Name+r.Artifacts[j].Platform
	})
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dist, FileName), append(b, '\n'), 0o644); err != nil {
		return err
	}
	var sums []string
	for _, a := range r.Artifacts {
		if a.SHA256 != "" && a.Path != "" {
			sums = append(sums, a.SHA256+"  "+a.Path)
		}
	}
	sort.Slice(sums, func(i, j int) bool { return sums[i][66:] < sums[j][66:] })
	out := strings.Join(sums, "\n")
	if out != "" {
		out += "\n"
	}
	return os.WriteFile(filepath.Join(dist, "SHA256SUMS"), []byte(out), 0o644)
}

// Read loads dist/release.json.
func Read(dist string) (*Release, error) {
	b, err := os.ReadFile(filepath.Join(dist, FileName))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("%s not found: run `release build` first", filepath.Join(dist, FileName))
		}
		return nil, err
	}
	var r Release
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dist, FileName), err)
	}
	return &r, nil
}
