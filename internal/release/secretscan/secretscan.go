// Package secretscan refuses files that look like secrets (.env files, npm
// credentials, private keys) before anything is packed or published, so a
// stray credential in a build tree never reaches a registry.
package secretscan

import (
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Finding is one file that looks like a secret.
type Finding struct {
	Path string // slash path relative to the scanned root
	Rule string // which rule matched, e.g. ".env*"
}

// Error lists every offending file of one scan, so a build reports them all at once.
type Error struct {
	Root     string
	Findings []Finding
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "refusing to package %s: %d file(s) look like secrets (remove them from the build output or the source tree):", e.Root, len(e.Findings))
	for _, f := range e.Findings {
		fmt.Fprintf(&b, "\n  %s (matches %s)", f.Path, f.Rule)
	}
	return b.String()
}

// Match reports which rule a file's base name matches, or "" if none.
// The rules are deliberately broad: a false alarm costs a rename, a miss
// leaks a credential to a public registry.
func Match(name string) string {
	base := strings.ToLower(path.Base(filepath.ToSlash(name)))
	switch {
	case strings.HasPrefix(base, ".env"):
		return ".env*"
	case base == ".npmrc":
		return ".npmrc"
	case base == "cosign.key":
		return "cosign.key"
	case strings.HasSuffix(base, ".pem"):
		return "*.pem"
	case strings.HasSuffix(base, ".key"):
		return "*.key"
	case strings.HasPrefix(base, "id_"):
		return "id_* (ssh key)"
	}
	return ""
}

// Check returns an *Error if any of the slash paths matches a rule.
func Check(root string, paths []string) error {
	var found []Finding
	for _, p := range paths {
		if r := Match(p); r != "" {
			found = append(found, Finding{Path: p, Rule: r})
		}
	}
	if len(found) == 0 {
		return nil
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Path < found[j].Path })
	return &Error{Root: root, Findings: found}
}

// Scan walks root and returns an *Error listing every file (or directory
// named like a secret) that matches, or nil.
func Scan(root string) error {
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		paths = append(paths, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return fmt.Errorf("scan %s for secrets: %w", root, err)
	}
	return Check(root, paths)
}
