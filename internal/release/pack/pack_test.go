package pack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

var epoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// tree writes files (slash path → content; a leading "x:" marks executable)
// under a new temp dir, in the given order, with a given on-disk mtime.
func tree(t *testing.T, files map[string]string, order []string, mtime time.Time, umaskish os.FileMode) string {
	t.Helper()
	root := t.TempDir()
	for _, rel := range order {
		content := files[rel]
		mode := 0o644 &^ umaskish
		if strings.HasPrefix(content, "x:") {
			mode = 0o755 &^ umaskish
		}
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

var sample = map[string]string{
	"package.json":       `{"name":"x","version":"1.0.0"}`,
	"bin/second":         "x:#!/bin/sh\necho hi\n",
	"dist/web/server.js": "console.log(1)\n",
	"dist/web/node_modules/next/package.json":                                            `{"name":"next"}`,
	"dist/web/node_modules/next/dist/a.js":                                               strings.Repeat("a long line of javascript;\n", 500),
	"dist/web/.next/static/chunks/" + strings.Repeat("very-long-chunk-name-", 8) + ".js": "x",
	"dist/worker/worker.mjs":                                                             "export {}\n",
	"manifest.json":                                                                      "{}\n",
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func sha(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha512.Sum512(b)
	return hex.EncodeToString(s[:])
}

func TestTarballReproducible(t *testing.T) {
	ctx := context.Background()
	forward := keys(sample)
	backward := append([]string(nil), forward...)
	sort.Sort(sort.Reverse(sort.StringSlice(backward)))

	a := tree(t, sample, forward, time.Now(), 0)
	b := tree(t, sample, backward, time.Now().Add(-72*time.Hour), 0o022|0o004) // other order, times, read bits
	outA := filepath.Join(t.TempDir(), "a.tgz")
	outB := filepath.Join(t.TempDir(), "nested", "b.tgz")
	if err := Tarball(ctx, a, outA, epoch); err != nil {
		t.Fatal(err)
	}
	if err := Tarball(ctx, b, outB, epoch.Add(300*time.Millisecond)); err != nil { // sub-second part dropped
		t.Fatal(err)
	}
	if sa, sb := sha(t, outA), sha(t, outB); sa != sb {
		t.Fatalf("tarballs differ:\n%s\n%s", sa, sb)
	}

	// A different epoch must change the bytes (the mtime really is recorded).
	outC := filepath.Join(t.TempDir(), "c.tgz")
	if err := Tarball(ctx, a, outC, epoch.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if sha(t, outA) == sha(t, outC) {
		t.Fatal("tarballs with different mtimes are identical")
	}
}

func TestTarballHeaders(t *testing.T) {
	src := tree(t, sample, keys(sample), time.Now(), 0)
	out := filepath.Join(t.TempDir(), "p.tgz")
	if err := Tarball(context.Background(), src, out, epoch); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// gzip header: magic, deflate, flags 0 (no name/comment), mtime 0.
	if !bytes.Equal(raw[:8], []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0}) {
		t.Errorf("gzip header = % x, want 1f 8b 08 00 00000000", raw[:8])
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() && zr.ModTime.Unix() != 0 {
		t.Errorf("gzip name %q mtime %v, want empty and zero", zr.Name, zr.ModTime)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		rel := strings.TrimPrefix(h.Name, Prefix)
		if h.Name == rel {
			t.Errorf("%s: not under %s", h.Name, Prefix)
		}
		if h.Typeflag != tar.TypeReg {
			t.Errorf("%s: type %c, want regular file", h.Name, h.Typeflag)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d/%d %q/%q, want 0/0 and empty names", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if !h.ModTime.Equal(epoch) {
			t.Errorf("%s: mtime %v, want %v", h.Name, h.ModTime, epoch)
		}
		wantMode := int64(0o644)
		if strings.HasPrefix(sample[rel], "x:") {
			wantMode = 0o755
		}
		if h.Mode != wantMode {
			t.Errorf("%s: mode %o, want %o", h.Name, h.Mode, wantMode)
		}
		body, _ := io.ReadAll(tr)
		if string(body) != sample[rel] {
			t.Errorf("%s: content differs", h.Name)
		}
	}
	if !sort.StringsAreSorted(names) || len(names) != len(sample) {
		t.Errorf("entries not sorted or incomplete: %v", names)
	}
}

func TestTarballRefuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, root string)
		want  []string
	}{
		{"secrets", func(t *testing.T, root string) {
			write(t, root, "dist/web/.env.production")
			write(t, root, "keys/cosign.key")
			write(t, root, ".npmrc")
		}, []string{"dist/web/.env.production", "keys/cosign.key", ".npmrc"}},
		{"symlink", func(t *testing.T, root string) {
			if err := os.Symlink("ok.js", filepath.Join(root, "link.js")); err != nil {
				t.Fatal(err)
			}
		}, []string{"link.js", "symbolic link"}},
		{"gitignore", func(t *testing.T, root string) {
			write(t, root, "dist/web/node_modules/x/.gitignore")
		}, []string{"dist/web/node_modules/x/.gitignore", ".npmignore"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			write(t, root, "ok.js")
			tc.setup(t, root)
			out := filepath.Join(t.TempDir(), "p.tgz")
			err := Tarball(context.Background(), root, out, epoch)
			if err == nil {
				t.Fatal("Tarball succeeded, want refusal")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("refused tarball exists at %s", out)
			}
		})
	}
}

func write(t *testing.T, root, rel string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}
