package workerbuild

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/second-inc/second-release/internal/release/filetree"
)

// copyExternals copies the named packages and everything they depend on from
// the stage to out/node_modules, keeping each package's place in the
// node_modules hierarchy so Node resolves them from worker.mjs as it did
// from the app (app is the worker's path in a staged workspace, else ".").
func copyExternals(stage, app, out string, names []string) error {
	seen := map[string]bool{}
	type want struct {
		name, from string // resolve name starting at directory from
		optional   bool
	}
	queue := make([]want, 0, len(names))
	for _, n := range names {
		queue = append(queue, want{name: n, from: filepath.Join(stage, app)})
	}
	var dirs []string
	for len(queue) > 0 {
		w := queue[0]
		queue = queue[1:]
		dir, ok := resolve(stage, w.from, w.name)
		if !ok {
			if w.optional {
				continue // optional deps for other platforms are not installed
			}
			return fmt.Errorf("external package %s (needed from %s) is not installed", w.name, rel(stage, w.from))
		}
		if seen[dir] {
			continue
		}
		seen[dir] = true
		dirs = append(dirs, dir)
		var pj struct {
			Dependencies         map[string]string `json:"dependencies"`
			OptionalDependencies map[string]string `json:"optionalDependencies"`
		}
		data, err := os.ReadFile(filepath.Join(dir, "package.json"))
		if err != nil {
			return fmt.Errorf("read %s: %w", filepath.Join(dir, "package.json"), err)
		}
		if err := json.Unmarshal(data, &pj); err != nil {
			return fmt.Errorf("read %s: %w", filepath.Join(dir, "package.json"), err)
		}
		for _, d := range sortedKeys(pj.Dependencies) {
			queue = append(queue, want{name: d, from: dir})
		}
		for _, d := range sortedKeys(pj.OptionalDependencies) {
			queue = append(queue, want{name: d, from: dir, optional: true})
		}
	}
	sort.Strings(dirs)
	dest := map[string]string{} // out path -> staged dir
	for _, dir := range dirs {
		r, err := filepath.Rel(stage, dir)
		if err != nil {
			return err
		}
		r = filepath.ToSlash(r)
		if app != "." {
			r = strings.TrimPrefix(r, filepath.ToSlash(app)+"/") // the app's own node_modules move up with it
		}
		if !strings.HasPrefix(r, "node_modules/") {
			return fmt.Errorf("external package at %s lies outside node_modules", r)
		}
		if prev, ok := dest[r]; ok {
			return fmt.Errorf("two versions of external package %s (%s and %s) would land in the same place", r, rel(stage, prev), rel(stage, dir))
		}
		dest[r] = dir
		// Nested node_modules are copied when something resolves into them.
		err = filetree.Copy(dir, filepath.Join(out, filepath.FromSlash(r)), filetree.CopyOptions{Skip: func(p string, d fs.DirEntry) bool {
			return d.IsDir() && p == "node_modules"
		}})
		if err != nil {
			return fmt.Errorf("copy external package %s: %w", r, err)
		}
	}
	return nil
}

// resolve finds package name the way Node does from directory from: its
// node_modules, then each parent's, up to the stage root.
func resolve(stage, from, name string) (string, bool) {
	for dir := from; ; dir = filepath.Dir(dir) {
		cand := filepath.Join(dir, "node_modules", filepath.FromSlash(name))
		if st, err := os.Stat(filepath.Join(cand, "package.json")); err == nil && !st.IsDir() {
			return cand, true
		}
		if dir == stage || len(dir) < len(stage) {
			return "", false
		}
	}
}

func rel(base, p string) string {
	r, err := filepath.Rel(base, p)
	if err != nil || r == "." {
		return "the app"
	}
	return filepath.ToSlash(r)
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
