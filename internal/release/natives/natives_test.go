package natives

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/mholt/archives"

	"github.com/second-inc/second-release/internal/manifest"
	"github.com/second-inc/second-release/internal/release/binarycheck"
	"github.com/second-inc/second-release/internal/release/platform"
	"github.com/second-inc/second-release/internal/testsupport"
	"github.com/second-inc/second-release/internal/testsupport/craft"
)

// member is one archive entry for the builders below.
type member struct {
	name, body, link string
	exec             bool
}

func tarOf(t *testing.T, ms []member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, m := range ms {
		// Real archives list parent directories first.
		parts := strings.Split(m.name, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/") + "/"
			if !dirs[d] {
				dirs[d] = true
				tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755})
			}
		}
		h := &tar.Header{Name: m.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(m.body))}
		if m.exec {
			h.Mode = 0o755
		}
		if m.link != "" {
			h = &tar.Header{Name: m.name, Typeflag: tar.TypeSymlink, Linkname: m.link, Mode: 0o777}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, m.body)
	}
	tw.Close()
	return buf.Bytes()
}

func tgzOf(t *testing.T, ms []member) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(tarOf(t, ms))
	zw.Close()
	return buf.Bytes()
}

func txzOf(t *testing.T, ms []member) []byte {
	var buf bytes.Buffer
	w, err := archives.Xz{}.OpenWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(tarOf(t, ms))
	w.Close()
	return buf.Bytes()
}

func zipOf(t *testing.T, ms []member) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range ms {
		h := &zip.FileHeader{Name: m.name, Method: zip.Deflate}
		h.SetMode(0o644)
		if m.exec {
			h.SetMode(0o755)
		}
		w, _ := zw.CreateHeader(h)
		io.WriteString(w, m.body)
	}
	zw.Close()
	return buf.Bytes()
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Thin arm64 Mach-Os shaped like the real ones: MongoDB's mongod loads only
// system libraries; Homebrew's redis and libssl load OpenSSL through
// Homebrew's relocation placeholders.
var (
	libSystem = craft.Dylib("/usr/lib/libSystem.B.dylib")
	macos14   = craft.BuildVersion(craft.Version(14, 0))
)

func darwinMongod() string {
	return string(craft.Executable(craft.CPUARM64, libSystem,
		craft.Dylib("/System/Library/Frameworks/Security.framework/Versions/A/Security"), craft.BuildVersion(craft.Version(11, 0))))
}

func darwinRedis(cpu uint32) string {
	return string(craft.Executable(cpu,
		craft.Dylib("@@HOMEBREW_PREFIX@@/opt/openssl@3/lib/libssl.3.dylib"),
		craft.Dylib("@@HOMEBREW_PREFIX@@/opt/openssl@3/lib/libcrypto.3.dylib"), libSystem, macos14))
}

func darwinLibssl() string {
	return string(craft.Library(craft.CPUARM64, craft.ID("@@HOMEBREW_PREFIX@@/opt/openssl@3/lib/libssl.3.dylib"),
		craft.Dylib("@@HOMEBREW_CELLAR@@/openssl@3/3.6.0/lib/libcrypto.3.dylib"), libSystem, macos14))
}

func darwinLibcrypto() string {
	return string(craft.Library(craft.CPUARM64, craft.ID("@@HOMEBREW_PREFIX@@/opt/openssl@3/lib/libcrypto.3.dylib"), libSystem, macos14))
}

// world is a local stand-in for the upstream sources: an HTTP file server
// (fastdl.mongodb.org) and an OCI registry (ghcr.io), both counting requests.
type world struct {
	t        *testing.T
	files    map[string][]byte
	http     *httptest.Server
	httpHits atomic.Int64
	fail     atomic.Int64 // answer this many requests with 503 first
	reg      *httptest.Server
	regHits  atomic.Int64
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, files: map[string][]byte{}}
	w.http = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.httpHits.Add(1)
		if w.fail.Load() > 0 {
			w.fail.Add(-1)
			http.Error(rw, "try later", http.StatusServiceUnavailable)
			return
		}
		b, ok := w.files[r.URL.Path]
		if !ok {
			http.NotFound(rw, r)
			return
		}
		http.ServeContent(rw, r, "", time.Time{}, bytes.NewReader(b))
	}))
	t.Cleanup(w.http.Close)
	regHandler := registry.New(registry.Logger(nilLogger()))
	w.reg = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.regHits.Add(1)
		regHandler.ServeHTTP(rw, r)
	}))
	t.Cleanup(w.reg.Close)
	return w
}

// serve publishes b at an HTTP path and returns its URL.
func (w *world) serve(p string, b []byte) string {
	w.files[p] = b
	return w.http.URL + p
}

// push uploads b as a blob to repo on the given registry host and returns
// the oci:// source for it.
func push(t *testing.T, host, repo string, b []byte) string {
	t.Helper()
	r, err := name.NewRepository(host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteLayer(r, static.NewLayer(b, types.MediaType("application/vnd.oci.image.layer.v1.tar+gzip"))); err != nil {
		t.Fatalf("push blob to %s: %v", r, err)
	}
	return "oci://" + host + "/" + repo + "@sha256:" + sum(b)
}

func hostOf(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

// darwinLock publishes a darwin-arm64 set in the layouts of the real
// sources — MongoDB's tarball over HTTP, Homebrew bottles as OCI blobs —
// and writes the lock for it.
func (w *world) darwinLock(t *testing.T, regHost string) (string, *Lock) {
	mongo := tgzOf(t, []member{
		{name: "mongodb-macos-aarch64-8.2.6/LICENSE-Community.txt", body: "SSPL"},
		{name: "mongodb-macos-aarch64-8.2.6/bin/mongod", body: darwinMongod(), exec: true},
		{name: "mongodb-macos-aarch64-8.2.6/bin/mongos", body: "mongos", exec: true},
	})
	redis := tgzOf(t, []member{
		{name: "redis/8.10.0/bin/redis-server", body: darwinRedis(craft.CPUARM64), exec: true},
		{name: "redis/8.10.0/bin/redis-cli", body: "cli", exec: true},
		{name: "redis/8.10.0/.brew/redis.rb", body: "class Redis"},
	})
	openssl := tgzOf(t, []member{
		{name: "openssl@3/3.6.0/lib/libssl.3.dylib", body: darwinLibssl()},
		{name: "openssl@3/3.6.0/lib/libcrypto.3.dylib", body: darwinLibcrypto()},
		{name: "openssl@3/3.6.0/lib/libssl.dylib", link: "libssl.3.dylib"},
		{name: "openssl@3/3.6.0/bin/openssl", body: "openssl", exec: true},
	})
	l := &Lock{
		Schema: 1, Platform: "darwin-arm64", Floors: binarycheck.Floors{MacOS: "14.0"},
		Natives: []Native{
			{Name: "mongod", Version: "8.2.6", Source: w.serve("/osx/mongodb-macos-arm64-8.2.6.tgz", mongo), SHA256: sum(mongo),
				Members: map[string]string{"mongodb-macos-aarch64-8.2.6/bin/mongod": "bin/mongod"}, PinSource: "test"},
			{Name: "redis", Version: "8.10.0", Source: push(t, regHost, "homebrew/core/redis", redis), SHA256: sum(redis),
				Members: map[string]string{"redis/8.10.0/bin/redis-server": "bin/redis-server"}, PinSource: "test"},
			{Name: "openssl", Version: "3.6.0", Source: push(t, regHost, "homebrew/core/openssl/3", openssl), SHA256: sum(openssl),
				Members: map[string]string{
					"openssl@3/3.6.0/lib/libssl.3.dylib":    "lib/libssl.3.dylib",
					"openssl@3/3.6.0/lib/libcrypto.3.dylib": "lib/libcrypto.3.dylib",
				}, PinSource: "test"},
		},
	}
	return writeLock(t, l), l
}

func writeLock(t *testing.T, l *Lock) string {
	t.Helper()
	b, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), LockFileName)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func darwinArm64(t *testing.T) platform.Platform {
	p, err := platform.Parse("darwin-arm64")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func fastRetry() Retry { return Retry{Attempts: 4, Base: time.Millisecond, Max: 5 * time.Millisecond} }

// tree lists files under dir as "path mode".
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, _ := d.Info()
		out = append(out, filepath.ToSlash(rel)+" "+info.Mode().String())
		return nil
	})
	sort.Strings(out)
	return out
}

func TestMaterializeLayoutManifestAndCache(t *testing.T) {
	w := newWorld(t)
	lockPath, lock := w.darwinLock(t, hostOf(w.reg))
	cache := t.TempDir()
	var mu sync.Mutex
	completed := map[string]int64{} // item -> bytes, for items reported complete
	calls := 0
	report := func(item string, done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if total > 0 && done == total {
			completed[item] = done
		}
	}
	opts := Options{LockPath: lockPath, Platform: darwinArm64(t), RuntimeDir: filepath.Join(t.TempDir(), "runtime"),
		CacheDir: cache, Mirror: "-", Progress: report, Retry: fastRetry()}
	got, err := Materialize(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"bin/mongod -rwxr-xr-x",
		"bin/redis-server -rwxr-xr-x",
		"lib/libcrypto.3.dylib -rw-r--r--",
		"lib/libssl.3.dylib -rw-r--r--",
	}
	if g := tree(t, opts.RuntimeDir); strings.Join(g, "\n") != strings.Join(want, "\n") {
		t.Fatalf("runtime dir:\n%s\nwant:\n%s", strings.Join(g, "\n"), strings.Join(want, "\n"))
	}
	for _, n := range lock.Natives {
		if !reflect.DeepEqual(got[n.Name], manifest.Native{Version: n.Version, Source: n.Source, SHA256: n.SHA256}) {
			t.Errorf("manifest entry %s = %+v", n.Name, got[n.Name])
		}
		if _, err := os.Stat(CachePath(cache, n.SHA256)); err != nil {
			t.Errorf("%s not cached: %v", n.Name, err)
		}
	}
	if len(got) != 3 {
		t.Fatalf("manifest natives: %v", got)
	}
	for _, n := range lock.Natives {
		st, err := os.Stat(CachePath(cache, n.SHA256))
		if err != nil {
			continue // reported above
		}
		if got := completed[progressName(n)]; got != st.Size() {
			t.Errorf("progress for %s: completed at %d bytes, want the archive's %d (completed: %v, %d calls)", progressName(n), got, st.Size(), completed, calls)
		}
	}

	// Second build: everything comes from the cache, no request at all.
	httpBefore, regBefore := w.httpHits.Load(), w.regHits.Load()
	opts.RuntimeDir = filepath.Join(t.TempDir(), "runtime")
	mu.Lock()
	calls = 0
	mu.Unlock()
	got2, err := Materialize(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if w.httpHits.Load() != httpBefore || w.regHits.Load() != regBefore {
		t.Fatalf("cache hit made requests: http %d->%d, registry %d->%d", httpBefore, w.httpHits.Load(), regBefore, w.regHits.Load())
	}
	if len(got2) != 3 || calls != 0 {
		t.Fatalf("cached build: %v, %d progress reports (want none: nothing was downloaded)", got2, calls)
	}

	// A corrupt cache entry is detected, dropped and fetched again.
	mongoCache := CachePath(cache, lock.Natives[0].SHA256)
	os.WriteFile(mongoCache, []byte("bit rot"), 0o644)
	opts.RuntimeDir = filepath.Join(t.TempDir(), "runtime")
	if _, err := Materialize(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if s, _ := hashFile(mongoCache); s != lock.Natives[0].SHA256 {
		t.Fatal("corrupt cache entry not replaced")
	}
	if w.httpHits.Load() != httpBefore+1 {
		t.Fatalf("refetch made %d requests, want 1", w.httpHits.Load()-httpBefore)
	}
}

func TestWrongDigestRefusedAndNotKept(t *testing.T) {
	w := newWorld(t)
	real := tgzOf(t, []member{{name: "m/bin/mongod", body: "x", exec: true}})
	tampered := tgzOf(t, []member{{name: "m/bin/mongod", body: "evil", exec: true}})
	for _, tc := range []struct {
		name   string
		source string
	}{
		{"http", w.serve("/osx/mongodb-macos-arm64-8.2.6.tgz", tampered)},
		// The registry refuses to serve a blob under another digest, so the
		// OCI case pins a digest and serves different bytes via a mirror URL.
		{"mirror", "oci://ghcr.io/homebrew/core/redis@sha256:" + sum(real)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			n := Native{Name: "mongod", Version: "8.2.6", Source: tc.source, SHA256: sum(real), Members: map[string]string{"m/bin/mongod": "bin/mongod"}, PinSource: "test"}
			f := &Fetcher{CacheDir: cache, Retry: fastRetry()}
			if tc.name == "mirror" {
				f.Mirror = w.http.URL + "/mirror"
				w.files["/mirror/sha256/"+sum(real)] = tampered
			}
			before := w.httpHits.Load()
			_, err := f.Fetch(context.Background(), n)
			var mm *MismatchError
			if !errors.As(err, &mm) {
				t.Fatalf("want MismatchError, got %v", err)
			}
			for _, s := range []string{sum(real), sum(tampered), "expected", "actual"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
			if tc.name == "http" && !strings.Contains(err.Error(), "mongodb-macos-arm64-8.2.6.tgz") {
				t.Errorf("error does not name the file: %v", err)
			}
			if w.httpHits.Load()-before != 1 {
				t.Errorf("a digest mismatch was retried (%d requests)", w.httpHits.Load()-before)
			}
			left, _ := filepath.Glob(filepath.Join(cache, "sha256", "*"))
			if len(left) != 0 {
				t.Fatalf("bad download kept: %v", left)
			}
		})
	}
}

func TestRetryTransient(t *testing.T) {
	w := newWorld(t)
	b := tgzOf(t, []member{{name: "m/bin/mongod", body: "x", exec: true}})
	n := Native{Name: "mongod", Version: "1", Source: w.serve("/a.tgz", b), SHA256: sum(b), Members: map[string]string{"m/bin/mongod": "bin/mongod"}, PinSource: "test"}

	w.fail.Store(2)
	f := &Fetcher{CacheDir: t.TempDir(), Retry: fastRetry()}
	if _, err := f.Fetch(context.Background(), n); err != nil {
		t.Fatalf("two 503s then success: %v", err)
	}
	if h := w.httpHits.Load(); h != 3 {
		t.Fatalf("requests = %d, want 3", h)
	}

	w.fail.Store(100)
	f = &Fetcher{CacheDir: t.TempDir(), Retry: fastRetry()}
	_, err := f.Fetch(context.Background(), n)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "after 4 attempts") {
		t.Fatalf("persistent 503: %v", err)
	}
	w.fail.Store(0)

	before := w.httpHits.Load()
	n.Source = w.http.URL + "/missing.tgz"
	_, err = (&Fetcher{CacheDir: t.TempDir(), Retry: fastRetry()}).Fetch(context.Background(), n)
	if err == nil || !strings.Contains(err.Error(), "404") || w.httpHits.Load()-before != 1 {
		t.Fatalf("404 must fail at once: %v (%d requests)", err, w.httpHits.Load()-before)
	}
}

func TestMirrorDirAndURL(t *testing.T) {
	w := newWorld(t)
	lockPath, lock := w.darwinLock(t, hostOf(w.reg))
	mirror := filepath.Join(t.TempDir(), "mirror")
	entries, err := FillMirror(context.Background(), MirrorOptions{Locks: []string{lockPath}, To: mirror,
		Options: Options{CacheDir: t.TempDir(), Mirror: "-", Retry: fastRetry()}})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Fatalf("entries: %v", entries)
	}
	for _, n := range lock.Natives {
		if s, err := hashFile(filepath.Join(mirror, "sha256", n.SHA256)); err != nil || s != n.SHA256 {
			t.Fatalf("mirror copy of %s: %v", n.Name, err)
		}
	}
	var idx []MirrorEntry
	b, _ := os.ReadFile(filepath.Join(mirror, "index.json"))
	if err := json.Unmarshal(b, &idx); err != nil || len(idx) != 3 {
		t.Fatalf("index.json: %v %s", err, b)
	}

	// Upstream goes away: only the mirror can serve now.
	w.http.Close()
	w.reg.Close()
	mirrorSrv := httptest.NewServer(http.FileServer(http.Dir(mirror)))
	defer mirrorSrv.Close()
	for _, m := range []string{mirror, mirrorSrv.URL, mirrorSrv.URL + "/"} {
		t.Run(m, func(t *testing.T) {
			t.Setenv(MirrorEnv, m) // Options.Mirror "" reads the environment
			opts := Options{LockPath: lockPath, Platform: darwinArm64(t), RuntimeDir: filepath.Join(t.TempDir(), "runtime"),
				CacheDir: t.TempDir(), Retry: fastRetry()}
			got, err := Materialize(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 || len(tree(t, opts.RuntimeDir)) != 4 {
				t.Fatalf("from mirror: %v %v", got, tree(t, opts.RuntimeDir))
			}
		})
	}

	// A digest the mirror lacks says how to fill it.
	os.Remove(filepath.Join(mirror, "sha256", lock.Natives[0].SHA256))
	_, err = Materialize(context.Background(), Options{LockPath: lockPath, Platform: darwinArm64(t),
		RuntimeDir: filepath.Join(t.TempDir(), "runtime"), CacheDir: t.TempDir(), Mirror: mirror, Retry: fastRetry()})
	if err == nil || !strings.Contains(err.Error(), "release natives fetch --to "+mirror) {
		t.Fatalf("missing mirror entry: %v", err)
	}
}

func TestMaterializeFailsCheckWithFullList(t *testing.T) {
	w := newWorld(t)
	// redis built for x86_64 and no OpenSSL shipped: three problems.
	redis := tgzOf(t, []member{{name: "redis/8.10.0/bin/redis-server", body: darwinRedis(craft.CPUAMD64), exec: true}})
	l := &Lock{Schema: 1, Platform: "darwin-arm64", Floors: binarycheck.Floors{MacOS: "14.0"}, Natives: []Native{
		{Name: "redis", Version: "8.10.0", Source: push(t, hostOf(w.reg), "homebrew/core/redis", redis), SHA256: sum(redis),
			Members: map[string]string{"redis/8.10.0/bin/redis-server": "bin/redis-server"}, PinSource: "test"},
	}}
	_, err := Materialize(context.Background(), Options{LockPath: writeLock(t, l), Platform: darwinArm64(t),
		RuntimeDir: t.TempDir(), CacheDir: t.TempDir(), Mirror: "-", Retry: fastRetry()})
	if !isCheckFailure(err) {
		t.Fatalf("want a binary check failure, got %v", err)
	}
	for _, s := range []string{
		"bin/redis-server: Mach-O for CpuAmd64, want CpuArm64",
		"bin/redis-server: loads @@HOMEBREW_PREFIX@@/opt/openssl@3/lib/libssl.3.dylib from the build host",
		"bin/redis-server: loads @@HOMEBREW_PREFIX@@/opt/openssl@3/lib/libcrypto.3.dylib from the build host",
	} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error lacks %q:\n%v", s, err)
		}
	}
}

// TestOtherFormats covers tar.xz and zip sources and a Linux lock, using
// the host's own ELF files so the binary check runs on real ones.
func TestOtherFormatsLinux(t *testing.T) {
	host, err := platform.Host()
	if err != nil || host.GOOS != "linux" {
		t.Skip("needs a Linux amd64/arm64 host to use its /bin/ls as a stand-in ELF")
	}
	ls, err := os.ReadFile("/bin/ls")
	if err != nil {
		t.Skip("needs /bin/ls")
	}
	// Whatever the host's ls links beyond glibc counts as a system library.
	ef, err := elf.Open("/bin/ls")
	if err != nil {
		t.Skip("needs an ELF /bin/ls")
	}
	needed, _ := ef.ImportedLibraries()
	ef.Close()
	w := newWorld(t)
	mongo := txzOf(t, []member{{name: "mongodb-linux-x86_64-ubuntu2004-8.0.17/bin/mongod", body: string(ls), exec: true}})
	redis := zipOf(t, []member{{name: "redis-8.10.0/redis-server", body: string(ls), exec: true}})
	l := &Lock{Schema: 1, Platform: host.ID, Floors: binarycheck.Floors{GLIBC: "2.99"}, SystemLibraries: needed, Natives: []Native{
		{Name: "mongod", Version: "8.0.17", Source: w.serve("/linux/m.tar.xz", mongo), SHA256: sum(mongo),
			Members: map[string]string{"mongodb-linux-x86_64-ubuntu2004-8.0.17/bin/mongod": "bin/mongod"}, PinSource: "test"},
		{Name: "redis", Version: "8.10.0", Source: w.serve("/r.zip", redis), SHA256: sum(redis),
			Members: map[string]string{"redis-8.10.0/redis-server": "bin/redis-server"}, PinSource: "test"},
	}}
	opts := Options{LockPath: writeLock(t, l), Platform: host, RuntimeDir: t.TempDir(), CacheDir: t.TempDir(), Mirror: "-", Retry: fastRetry()}
	got, err := Materialize(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || strings.Join(tree(t, opts.RuntimeDir), ",") != "bin/mongod -rwxr-xr-x,bin/redis-server -rwxr-xr-x" {
		t.Fatalf("%v %v", got, tree(t, opts.RuntimeDir))
	}
	// The same lock with a glibc floor below the host's fails the check.
	l.Floors.GLIBC = "2.17"
	opts.LockPath, opts.RuntimeDir = writeLock(t, l), t.TempDir()
	if _, err := Materialize(context.Background(), opts); !isCheckFailure(err) || !strings.Contains(err.Error(), "newer than the floor GLIBC_2.17") {
		t.Fatalf("glibc floor: %v", err)
	}
}

func TestSkip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "runtime")
	got, err := Materialize(context.Background(), Options{Skip: true, LockPath: "/nonexistent", Platform: darwinArm64(t), RuntimeDir: dir})
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("skip: %v %v", got, err)
	}
	for _, d := range []string{"bin", "lib"} {
		if st, err := os.Stat(filepath.Join(dir, d)); err != nil || !st.IsDir() {
			t.Fatalf("%s: %v", d, err)
		}
	}
	if len(tree(t, dir)) != 0 {
		t.Fatal("skip wrote files")
	}
}

func nilLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// TestRealRegistry fetches the Homebrew-style bottles from a real
// distribution registry (.tools/bin/registry), as from ghcr.io.
func TestRealRegistry(t *testing.T) {
	reg := testsupport.StartRegistry(t)
	w := newWorld(t)
	lockPath, lock := w.darwinLock(t, reg.Host)
	for _, n := range lock.Natives[1:] {
		if !strings.HasPrefix(n.Source, "oci://"+reg.Host+"/") {
			t.Fatalf("%s not served by the real registry: %s", n.Name, n.Source)
		}
	}
	opts := Options{LockPath: lockPath, Platform: darwinArm64(t), RuntimeDir: filepath.Join(t.TempDir(), "runtime"),
		CacheDir: t.TempDir(), Mirror: "-", Retry: fastRetry()}
	got, err := Materialize(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if got["redis"].SHA256 != lock.Natives[1].SHA256 || got["openssl"].Source != lock.Natives[2].Source {
		t.Fatalf("manifest: %+v", got)
	}
	if n := len(tree(t, opts.RuntimeDir)); n != 4 {
		t.Fatalf("runtime: %v", tree(t, opts.RuntimeDir))
	}
}

func TestCheckPayload(t *testing.T) {
	lock := LockPath(testsupport.RepoRoot(t), "darwin-arm64")
	dir := t.TempDir()
	put := func(rel, body string) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	put("dist/runtime/bin/redis-server", darwinRedis(craft.CPUARM64))
	put("dist/runtime/bin/mongod", darwinMongod())
	err := CheckPayload(dir, lock, darwinArm64(t))
	if !isCheckFailure(err) || strings.Count(err.Error(), "from the build host") != 2 {
		t.Fatalf("OpenSSL missing: %v", err)
	}
	put("dist/runtime/lib/libssl.3.dylib", darwinLibssl())
	put("dist/runtime/lib/libcrypto.3.dylib", darwinLibcrypto())
	if err := CheckPayload(dir, lock, darwinArm64(t)); err != nil {
		t.Fatal(err)
	}
}

// isCheckFailure reports whether err carries binary check violations.
func isCheckFailure(err error) bool {
	var ce *binarycheck.Error
	return errors.As(err, &ce)
}
