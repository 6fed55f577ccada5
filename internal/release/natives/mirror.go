package natives

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// MirrorOptions configures FillMirror.
type MirrorOptions struct {
	Locks []string // lock files to serve
	To    string   // mirror directory to fill
	// Fetch options (cache, upstream mirror, client, progress) as for Materialize.
	Options
}

// MirrorEntry is one archive in a mirror's index.json.
type MirrorEntry struct {
	SHA256   string `json:"sha256"`
	Name     string `json:"name"`
	Version  string `json:"version"`
	Platform string `json:"platform"`
	Source   string `json:"source"`
	Path     string `json:"path"` // relative to the mirror root
}

// FillMirror copies every archive the locks pin into To as sha256/<hex>,
// ready for SECOND_RELEASE_MIRROR=<To> (or serving To over HTTP), and
// writes To/index.json saying what each digest is. Archives already in To
// with the right digest are kept.
func FillMirror(ctx context.Context, o MirrorOptions) ([]MirrorEntry, error) {
	if o.To == "" {
		return nil, fmt.Errorf("fill mirror: no target directory")
	}
	f, err := o.fetcher()
	if err != nil {
		return nil, err
	}
	var entries []MirrorEntry
	for _, lp := range o.Locks {
		lock, err := ReadLock(lp)
		if err != nil {
			return nil, err
		}
		for _, n := range lock.Natives {
			dst := CachePath(o.To, n.SHA256)
			e := MirrorEntry{SHA256: n.SHA256, Name: n.Name, Version: n.Version, Platform: lock.Platform, Source: n.Source, Path: "sha256/" + n.SHA256}
			entries = append(entries, e)
			if sum, err := hashFile(dst); err == nil && sum == n.SHA256 {
				continue
			}
			src, err := f.Fetch(ctx, n)
			if err != nil {
				return nil, fmt.Errorf("fill mirror %s: %w", o.To, err)
			}
			if err := copyVerified(src, dst, n.SHA256); err != nil {
				return nil, fmt.Errorf("fill mirror %s: %s: %w", o.To, n.Name, err)
			}
		}
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].Platform != entries[j].Platform {
			return entries[i].Platform < entries[j].Platform
		}
		return entries[i].Name < entries[j].Name
	})
	b, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(o.To, "index.json"), append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("fill mirror: write index: %w", err)
	}
	return entries, nil
}

func copyVerified(src, dst, sha string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".partial-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if sum, err := hashFile(tmp.Name()); err != nil || sum != sha {
		return fmt.Errorf("copy of %s changed on the way (sha256 %s, want %s)", src, sum, sha)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
