package filetree

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/testsupport"
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
			if l, _ := testsupport.Symlinks(root); len(l) != 0 {
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

func TestCopyLinkPolicy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		policy  LinkPolicy
		fifo    bool
		wantErr string
	}{
		{name: "keep", policy: KeepLinks},
		{name: "refuse", policy: RefuseLinks, wantErr: "not a regular file or directory (symbolic link to ../a/x.js)"},
		{name: "keep with fifo", policy: KeepLinks, fifo: true, wantErr: "not a regular file or directory"},
		{name: "refuse with fifo", policy: RefuseLinks, fifo: true, wantErr: "not a regular file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := t.TempDir(), filepath.Join(t.TempDir(), "out")
			links := map[string]string{"b/link.js": "../a/x.js"}
			if tc.fifo {
				links = nil
			}
			build(t, src, map[string]string{"a/x.js": "x"}, links)
			bad := filepath.Join(src, "b", "link.js")
			if tc.fifo {
				bad = filepath.Join(src, "a", "pipe")
				if err := syscall.Mkfifo(bad, 0o644); err != nil {
					t.Skipf("needs mkfifo: %v", err)
				}
			}
			err := Copy(src, dst, CopyOptions{Symlinks: tc.policy})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), bad) {
					t.Fatalf("err = %v, want one naming %s and saying %q", err, bad, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.Readlink(filepath.Join(dst, "b", "link.js"))
			if err != nil || got != "../a/x.js" {
				t.Errorf("link = %q, %v; want it kept as a link to ../a/x.js", got, err)
			}
		})
	}
}

func TestCopyModePolicy(t *testing.T) {
	// 0700 and 0600 survive any umask a build machine sets, so the expected
	// SourceModes result does not depend on the environment.
	for _, tc := range []struct {
		name   string
		policy ModePolicy
		want   map[string]fs.FileMode
	}{
		{name: "exec bit", policy: ExecBitModes, want: map[string]fs.FileMode{"run": 0o755, "data": 0o644}},
		{name: "source", policy: SourceModes, want: map[string]fs.FileMode{"run": 0o700, "data": 0o600}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := t.TempDir(), filepath.Join(t.TempDir(), "out")
			build(t, src, map[string]string{"run": "#!/bin/sh\n", "data": "d"}, nil)
			if err := os.Chmod(filepath.Join(src, "run"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := Copy(src, dst, CopyOptions{Modes: tc.policy}); err != nil {
				t.Fatal(err)
			}
			for name, want := range tc.want {
				p := filepath.Join(dst, name)
				st, err := os.Stat(p)
				if err != nil || st.Mode().Perm() != want {
					t.Errorf("%s: mode %v (%v), want %v", name, st.Mode().Perm(), err, want)
				}
				if b, err := os.ReadFile(p); err != nil || len(b) == 0 {
					t.Errorf("%s: content %q, %v", name, b, err)
				}
			}
		})
	}
}
