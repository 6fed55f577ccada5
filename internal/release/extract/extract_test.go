package extract

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mholt/archives"
)

// entry is one archive member for the test builders.
type entry struct {
	name string
	typ  byte // tar typeflag; zip supports reg, dir, symlink
	body string
	link string
	mode int64
}

func file(name, body string) entry {
	return entry{name: name, typ: tar.TypeReg, body: body, mode: 0o644}
}
func exe(name, body string) entry {
	return entry{name: name, typ: tar.TypeReg, body: body, mode: 0o755}
}
func dir(name string) entry { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}

func tarBytes(t testing.TB, es []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if e.typ == tar.TypeChar || e.typ == tar.TypeBlock {
			h.Devmajor, h.Devminor = 1, 3
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			io.WriteString(tw, e.body)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func compress(t testing.TB, c archives.Compressor, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := c.OpenWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tgz(t testing.TB, es []entry) []byte { return compress(t, archives.Gz{}, tarBytes(t, es)) }
func txz(t testing.TB, es []entry) []byte { return compress(t, archives.Xz{}, tarBytes(t, es)) }

func zipBytes(t testing.TB, es []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range es {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		switch e.typ {
		case tar.TypeDir:
			h.SetMode(fs.ModeDir | 0o755)
			if !strings.HasSuffix(h.Name, "/") {
				h.Name += "/"
			}
		case tar.TypeSymlink:
			h.SetMode(fs.ModeSymlink | 0o777)
		case tar.TypeReg:
			h.SetMode(fs.FileMode(e.mode))
		default:
			t.Fatalf("zip cannot hold typeflag %q", e.typ)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeSymlink {
			io.WriteString(w, e.link)
		} else {
			io.WriteString(w, e.body)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func run(t testing.TB, data []byte, o Options) (*Result, error) {
	return Reader(context.Background(), bytes.NewReader(data), o)
}

var goodLayout = []entry{
	dir("mongodb-macos-aarch64-8.2.6/"),
	dir("mongodb-macos-aarch64-8.2.6/bin/"),
	exe("mongodb-macos-aarch64-8.2.6/bin/mongod", "MONGOD"),
	file("mongodb-macos-aarch64-8.2.6/LICENSE-Community.txt", "license"),
	symlink("mongodb-macos-aarch64-8.2.6/bin/mongod-link", "mongod"),
}

func TestFormatsExtractSameTree(t *testing.T) {
	builders := map[string]func(testing.TB, []entry) []byte{"tar": tarBytes, "tar.gz": tgz, "tar.xz": txz, "zip": zipBytes}
	for name, build := range builders {
		t.Run(name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "out")
			res, err := run(t, build(t, goodLayout), Options{Dest: dest})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"mongodb-macos-aarch64-8.2.6/LICENSE-Community.txt", "mongodb-macos-aarch64-8.2.6/bin/mongod"}
			if strings.Join(res.Files, ",") != strings.Join(want, ",") {
				t.Fatalf("files = %v, want %v", res.Files, want)
			}
			st, err := os.Stat(filepath.Join(dest, "mongodb-macos-aarch64-8.2.6/bin/mongod"))
			if err != nil || st.Mode().Perm() != 0o755 {
				t.Fatalf("mongod: %v %v", st, err)
			}
			if b, _ := os.ReadFile(filepath.Join(dest, "mongodb-macos-aarch64-8.2.6/bin/mongod-link")); string(b) != "MONGOD" {
				t.Fatalf("in-tree symlink not usable: %q", b)
			}
			if res.Bytes != int64(len("MONGOD")+len("license")) {
				t.Fatalf("bytes = %d", res.Bytes)
			}
		})
	}
}

func TestMembers(t *testing.T) {
	data := tgz(t, goodLayout)
	dest := filepath.Join(t.TempDir(), "runtime")
	res, err := run(t, data, Options{Dest: dest, Members: map[string]string{"mongodb-macos-aarch64-8.2.6/bin/mongod": "bin/mongod"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 1 || res.Files[0] != "bin/mongod" {
		t.Fatalf("files = %v", res.Files)
	}
	if _, err := os.Stat(filepath.Join(dest, "mongodb-macos-aarch64-8.2.6")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("unselected entries written: %v", err)
	}

	_, err = run(t, data, Options{Dest: t.TempDir(), Members: map[string]string{"nope/bin/mongod": "bin/mongod"}})
	if err == nil || !strings.Contains(err.Error(), "archive lacks member(s) nope/bin/mongod (its top-level entries: mongodb-macos-aarch64-8.2.6)") {
		t.Fatalf("missing member: %v", err)
	}
	_, err = run(t, data, Options{Dest: t.TempDir(), Members: map[string]string{"mongodb-macos-aarch64-8.2.6/bin/mongod-link": "bin/mongod"}})
	if !errors.Is(err, ErrUnsafe) {
		t.Fatalf("selected symlink: %v", err)
	}
	_, err = run(t, data, Options{Dest: t.TempDir(), Members: map[string]string{"mongodb-macos-aarch64-8.2.6/bin/mongod": "../bin/mongod"}})
	if err == nil {
		t.Fatal("destination with .. accepted")
	}
}

func TestList(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.tgz")
	os.WriteFile(p, tgz(t, goodLayout), 0o644)
	es, err := List(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	var regular []string
	for _, e := range es {
		if e.Regular {
			regular = append(regular, e.Name)
		}
	}
	if !slices.Contains(regular, "mongodb-macos-aarch64-8.2.6/bin/mongod") || slices.Contains(regular, "mongodb-macos-aarch64-8.2.6/bin/mongod-link") {
		t.Fatalf("regular files: %v", regular)
	}
	bad := filepath.Join(t.TempDir(), "b.tgz")
	os.WriteFile(bad, tgz(t, []entry{file("../evil", "x")}), 0o644)
	if _, err := List(context.Background(), bad); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("unsafe name listed: %v", err)
	}
}

// attacks lists archives that must be refused, each as tar entries; the
// ones zip can express run as zip too.
var attacks = []struct {
	name    string
	entries []entry
	zipOK   bool
}{
	{"absolute path", []entry{file("/tmp/evil", "x")}, true},
	{"dot-dot", []entry{file("../evil", "x")}, true},
	{"nested dot-dot", []entry{dir("a/"), file("a/../../evil", "x")}, true},
	{"dot-dot that cleans inside", []entry{file("a/../b", "x")}, true},
	{"backslash dot-dot", []entry{file(`..\evil`, "x")}, true},
	{"symlink absolute", []entry{symlink("l", "/etc")}, true},
	{"symlink up", []entry{symlink("l", "../outside")}, true},
	{"symlink up via subdir", []entry{dir("d/"), symlink("d/l", "x/../../..")}, true},
	{"symlink to own dir then write through", []entry{symlink("l", "."), file("l/x", "x")}, true},
	{"write through symlink", []entry{dir("d/"), symlink("l", "d"), file("l/x", "x")}, true},
	{"overwrite via duplicate symlink", []entry{symlink("l", "d"), file("l", "x")}, true},
	{"duplicate file", []entry{file("a", "1"), file("a", "2")}, true},
	{"hard link", []entry{file("a", "1"), {name: "b", typ: tar.TypeLink, link: "a"}}, false},
	{"hard link outside", []entry{{name: "b", typ: tar.TypeLink, link: "/etc/passwd"}}, false},
	{"char device", []entry{{name: "null", typ: tar.TypeChar, mode: 0o666}}, false},
	{"block device", []entry{{name: "sda", typ: tar.TypeBlock, mode: 0o660}}, false},
	{"fifo", []entry{{name: "pipe", typ: tar.TypeFifo, mode: 0o644}}, false},
}

func TestAttacksRefused(t *testing.T) {
	for _, a := range attacks {
		builders := map[string]func(testing.TB, []entry) []byte{"tar.gz": tgz, "tar.xz": txz}
		if a.zipOK {
			builders["zip"] = zipBytes
		}
		for format, build := range builders {
			t.Run(a.name+"/"+format, func(t *testing.T) {
				parent := t.TempDir()
				dest := filepath.Join(parent, "out")
				_, err := run(t, build(t, a.entries), Options{Dest: dest})
				if !errors.Is(err, ErrUnsafe) {
					t.Fatalf("want ErrUnsafe, got %v", err)
				}
				assertContained(t, parent, dest, DefaultMaxBytes)
			})
		}
	}
}

func TestLimits(t *testing.T) {
	big := tgz(t, []entry{file("a", strings.Repeat("x", 4096)), file("b", strings.Repeat("y", 4096))})
	if _, err := run(t, big, Options{Dest: t.TempDir(), MaxBytes: 6000}); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("size limit: %v", err)
	}
	if _, err := run(t, big, Options{Dest: t.TempDir(), MaxBytes: 8192}); err != nil {
		t.Fatalf("exactly at the limit: %v", err)
	}
	var many []entry
	for i := 0; i < 20; i++ {
		many = append(many, dir(strings.Repeat("d", i+1)+"/"))
	}
	if _, err := run(t, tgz(t, many), Options{Dest: t.TempDir(), MaxEntries: 10}); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("entry limit: %v", err)
	}
	// A gzip bomb: tiny compressed, large expanded; the limit stops it early.
	bomb := compress(t, archives.Gz{}, tarBytes(t, []entry{file("zeros", string(make([]byte, 8<<20)))}))
	if len(bomb) > 64<<10 {
		t.Fatalf("bomb not small: %d", len(bomb))
	}
	if _, err := run(t, bomb, Options{Dest: t.TempDir(), MaxBytes: 1 << 20}); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("bomb: %v", err)
	}
}

func TestNotAnArchive(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("hello"), []byte("BZh91AY&SY")} {
		if _, err := run(t, data, Options{Dest: t.TempDir()}); !errors.Is(err, ErrFormat) {
			t.Fatalf("%q: %v", data, err)
		}
	}
}

// assertContained checks nothing appeared in parent besides dest, that
// every link under dest resolves inside it, that only regular files,
// directories and links exist, and that the bytes written respect max.
func assertContained(t testing.TB, parent, dest string, max int64) {
	t.Helper()
	ents, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if filepath.Join(parent, e.Name()) != dest && e.Name() != "sentinel" {
			t.Fatalf("escaped: %s appeared next to the target", e.Name())
		}
	}
	if b, err := os.ReadFile(filepath.Join(parent, "sentinel")); err == nil && string(b) != "keep" {
		t.Fatalf("sentinel overwritten: %q", b)
	}
	var total int64
	filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			if filepath.IsAbs(target) {
				t.Fatalf("absolute link %s -> %s", p, target)
			}
			if real, err := filepath.EvalSymlinks(p); err == nil {
				rd, _ := filepath.EvalSymlinks(dest)
				if real != rd && !strings.HasPrefix(real, rd+string(filepath.Separator)) {
					t.Fatalf("link %s resolves outside: %s", p, real)
				}
			}
		case d.Type().IsRegular():
			info, _ := d.Info()
			total += info.Size()
		case d.IsDir():
		default:
			t.Fatalf("special file %s (%s)", p, d.Type())
		}
		return nil
	})
	if total > max {
		t.Fatalf("wrote %d bytes, limit %d", total, max)
	}
}

func FuzzReader(f *testing.F) {
	f.Add(tgz(f, goodLayout))
	f.Add(zipBytes(f, goodLayout))
	f.Add(txz(f, goodLayout))
	for _, a := range attacks {
		f.Add(tarBytes(f, a.entries))
		f.Add(tgz(f, a.entries))
		if a.zipOK {
			f.Add(zipBytes(f, a.entries))
		}
	}
	f.Add(compress(f, archives.Gz{}, tarBytes(f, []entry{file("zeros", string(make([]byte, 1<<20)))})))
	const max = 256 << 10
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		if err := os.WriteFile(filepath.Join(parent, "sentinel"), []byte("keep"), 0o644); err != nil {
			t.Fatal(err)
		}
		dest := filepath.Join(parent, "out")
		run(t, data, Options{Dest: dest, MaxBytes: max, MaxEntries: 200})
		assertContained(t, parent, dest, max)
	})
}
