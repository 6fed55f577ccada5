// Package manifest is the payload's manifest.json: what a payload holds and
// the sha256 of every file, written by `release build` and checked by the
// launcher (via the manifest's own digest) and by `second doctor`.
package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// FileName is the manifest's name at the payload root.
const FileName = "manifest.json"

// Manifest describes one payload package.
type Manifest struct {
	Name     string            `json:"name"`
	Version  string            `json:"version"`
	Platform string            `json:"platform"`
	Natives  map[string]Native `json:"natives"` // mongod, redis, openssl
	Files    map[string]File   `json:"files"`   // slash paths relative to the package root
}

// Native records one packaged runtime and where it came from.
type Native struct {
	Version string `json:"version"`
	Source  string `json:"source"` // URL or OCI reference
	SHA256  string `json:"sha256"` // digest of the source archive
	// Rewrites lists what the build changed in the archive's files to make
	// them load on the target (Linux: Homebrew's placeholder interpreter
	// and search paths); the files' digests below are of the result.
	Rewrites []Rewrite `json:"rewrites,omitempty"`
}

// Rewrite is one string the build replaced inside a native file.
type Rewrite struct {
	File  string `json:"file"`  // slash path relative to the package root
	Field string `json:"field"` // PT_INTERP, DT_RUNPATH or DT_RPATH
	Old   string `json:"old"`
	New   string `json:"new"`
}

// File is one file of the package.
type File struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Mode   string `json:"mode"` // "0644" or "0755"
}

// Marshal renders the manifest deterministically (sorted keys, 2-space indent, trailing newline).
func (m *Manifest) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Read loads dir/manifest.json.
func Read(dir string) (*Manifest, []byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		return nil, nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", filepath.Join(dir, FileName), err)
	}
	return &m, b, nil
}

// Digest is the hex sha256 of the manifest's bytes, the value the launcher records.
func Digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// HashFile returns the hex sha256 and size of a file.
func HashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Problem is one difference between a payload on disk and its manifest.
type Problem struct {
	Path   string `json:"path"`
	Reason string `json:"reason"` // missing, changed, unexpected
}

// Verify checks every file in m against dir. Files on disk that the
// manifest does not list are reported as unexpected, except skip(path) ones.
func Verify(dir string, m *Manifest, skip func(rel string) bool) ([]Problem, error) {
	var problems []Problem
	paths := make([]string, 0, len(m.Files))
	for p := range m.Files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		want := m.Files[p]
		sum, size, err := HashFile(filepath.Join(dir, filepath.FromSlash(p)))
		switch {
		case os.IsNotExist(err):
			problems = append(problems, Problem{p, "missing"})
		case err != nil:
			return nil, err
		case sum != want.SHA256 || size != want.Size:
			problems = append(problems, Problem{p, "changed"})
		}
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		if rel == FileName || (skip != nil && skip(rel)) {
			return nil
		}
		if _, ok := m.Files[rel]; !ok {
			problems = append(problems, Problem{rel, "unexpected"})
		}
		return nil
	})
	return problems, err
}
