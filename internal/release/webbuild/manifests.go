package webbuild

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// sortManifests rewrites Next.js's *manifest.json files under dir with their
// object keys sorted. next build fills several of them (app-build-manifest,
// app-path-routes-manifest, server/app-paths-manifest) from parallel
// workers, so their key order follows which worker finished first; Next.js
// looks entries up by key, so sorting changes nothing but the bytes.
func sortManifests(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), "manifest.json") {
			return nil
		}
		if err := sortJSONKeys(path); err != nil {
			return fmt.Errorf("web build: sort keys of %s: %w", path, err)
		}
		return nil
	})
}

func sortJSONKeys(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // keep numbers exactly as written
	var v any
	if err := dec.Decode(&v); err != nil {
		return err
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // maps encode with sorted keys
		return err
	}
	sorted := bytes.TrimSuffix(out.Bytes(), []byte("\n"))
	if bytes.Equal(sorted, b) {
		return nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, sorted, st.Mode().Perm())
}
