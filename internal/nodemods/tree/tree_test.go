package tree

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func build(t *testing.T, root string, files map[string]string, links map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range links {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDereference(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret.txt")
	os.WriteFile(outside, []byte("s"), 0o644)
	for _, tc := range []struct {
		name    string
		links   map[string]string
		wantErr string
		check   map[string]string // path -> content after
	}{
		{name: "file and dir links", links: map[string]string{
			"node_modules/b":          "a",        // dir, relative
			"node_modules/a/alias.js": "index.js", // file link inside a linked dir
			"top.js":                  "node_modules/a/index.js",
		}, check: map[string]string{"node_modules/b/index.js": "A", "node_modules/b/alias.js": "A", "top.js": "A"}},
		{name: "outside", links: map[string]string{"leak": outside}, wantErr: "leak points outside the tree"},
		{name: "dangling", links: map[string]string{"gone": "nowhere"}, wantErr: "gone: target missing"},
		{name: "loop", links: map[string]string{"node_modules/a/self": ".."}, wantErr: "loop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			build(t, root, map[string]string{"node_modules/a/index.js": "A"}, tc.links)
			err := Dereference(root)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l, _ := Links(root); len(l) != 0 {
				t.Errorf("links left: %v", l)
			}
			for p, want := range tc.check {
				got, err := os.ReadFile(filepath.Join(root, p))
				if err != nil || string(got) != want {
					t.Errorf("%s = %q, %v; want %q", p, got, err, want)
				}
			}
		})
	}
}

func TestCopySkipAndNormalize(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "out")
	build(t, src, map[string]string{"a/x.js": "x", "node_modules/y/i.js": "y", "bin/run": "#!/bin/sh\n"}, nil)
	os.Chmod(filepath.Join(src, "bin/run"), 0o700)
	err := Copy(src, dst, CopyOptions{Skip: func(rel string, d fs.DirEntry) bool { return rel == "node_modules" }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dst, "node_modules")); !os.IsNotExist(err) {
		t.Errorf("skipped dir was copied")
	}
	epoch := time.Unix(1700000000, 0)
	if err := Normalize(dst, epoch); err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]fs.FileMode{"a/x.js": 0o644, "bin/run": 0o755, "a": fs.ModeDir | 0o755, ".": fs.ModeDir | 0o755} {
		st, err := os.Stat(filepath.Join(dst, p))
		if err != nil || st.Mode() != mode || !st.ModTime().Equal(epoch) {
			t.Errorf("%s: mode %v mtime %v (%v), want %v %v", p, st.Mode(), st.ModTime(), err, mode, epoch)
		}
	}
}
