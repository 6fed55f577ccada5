package webbuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/release/filetree"
	"github.com/second-inc/second-release/internal/release/nodemods"
	"github.com/second-inc/second-release/internal/release/platform"
	"github.com/second-inc/second-release/internal/testsupport"
)

// A full Next.js build takes a minute or more on a shared machine, so the
// example app is built once per test binary and shared read-only.
var shared struct {
	once sync.Once
	dir  string // holds the built tree at dir/web
	out  string
	err  error
}

const testBuildID = "0123456789abcdef0123456789abcdef01234567"

var testEpoch = time.Unix(1767225600, 0).UTC() // 2026-01-01

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

func requireNode(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if testsupport.InCI() {
				t.Fatalf("%s not on PATH", tool)
			}
			t.Skipf("needs %s (Node 20+) on PATH", tool)
		}
	}
}

func exampleApp(t *testing.T) string {
	return filepath.Join(testsupport.RepoRoot(t), "examples", "app", "web")
}

// builtWeb returns the shared build of examples/app/web.
func builtWeb(t *testing.T) string {
	t.Helper()
	requireNode(t)
	app := exampleApp(t)
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "webbuild-shared-")
		if shared.err != nil {
			return
		}
		shared.out = filepath.Join(shared.dir, "web")
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		shared.err = Build(ctx, Options{
			AppDir: app, OutDir: shared.out, BuildID: testBuildID, SourceDateEpoch: testEpoch,
			Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
		})
	})
	if shared.err != nil {
		t.Fatalf("build examples/app/web: %v", shared.err)
	}
	return shared.out
}

// hashTree maps every path under root to its mode and sha256.
func hashTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		entry := fmt.Sprintf("%v %d", info.Mode(), info.ModTime().Unix())
		if d.Type().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			entry += " " + hex.EncodeToString(h.Sum(nil))
		}
		out[filepath.ToSlash(rel)] = entry
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBuildLayout(t *testing.T) {
	out := builtWeb(t)
	for _, want := range []string{"server.js", ".next/BUILD_ID", ".next/static", "public/robots.txt", "node_modules/next/package.json", "package.json"} {
		if _, err := os.Stat(filepath.Join(out, want)); err != nil {
			t.Errorf("built tree lacks %s: %v", want, err)
		}
	}
	id, err := os.ReadFile(filepath.Join(out, ".next", "BUILD_ID"))
	if err != nil || strings.TrimSpace(string(id)) != testBuildID {
		t.Errorf(".next/BUILD_ID = %q (%v), want %q", id, err, testBuildID)
	}
	if _, err := os.Stat(filepath.Join(out, ".next", "static", testBuildID)); err != nil {
		t.Errorf(".next/static/%s missing: %v", testBuildID, err)
	}
	var files, size int64
	filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			info, _ := d.Info()
			files, size = files+1, size+info.Size()
		}
		return err
	})
	t.Logf("built tree: %d files, %.1f MB", files, float64(size)/1e6)
	links, err := testsupport.Symlinks(out)
	if err != nil || len(links) != 0 {
		t.Errorf("symbolic links left in the tree: %v (%v)", links, err)
	}
	for p, e := range hashTree(t, out) {
		if !strings.Contains(e, fmt.Sprint(testEpoch.Unix())) {
			t.Errorf("%s: mtime not SOURCE_DATE_EPOCH: %s", p, e)
			break
		}
	}
}

func TestBuiltServerAnswersHealth(t *testing.T) {
	out := builtWeb(t)
	port := testsupport.FreePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "server.js")
	cmd.Dir = out
	cmd.Env = append(os.Environ(), "NODE_ENV=production", "NEXT_TELEMETRY_DISABLED=1", "HOSTNAME=127.0.0.1",
		fmt.Sprintf("PORT=%d", port), "SECOND_RELEASE_VERSION=9.8.7-test", "SECOND_AUTH_MODE=none", "INTERNAL_API_TOKEN=tok-123")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	var body []byte
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/api/health")
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("GET /api/health = %d: %s", resp.StatusCode, body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web server did not answer /api/health within 60s: %v\n%s", err, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	var health struct {
		OK      bool   `json:"ok"`
		Version string `json:"version"`
		Port    int    `json:"port"`
	}
	if err := json.Unmarshal(body, &health); err != nil || !health.OK || health.Version != "9.8.7-test" || health.Port != port {
		t.Fatalf("GET /api/health body %s (%v): want ok, version 9.8.7-test, port %d", body, err, port)
	}
	for _, tc := range []struct{ path, want string }{
		{"/", "9.8.7-test"},
		{"/robots.txt", "Disallow"},
	} {
		resp, err := http.Get(base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), tc.want) {
			t.Errorf("GET %s = %d, body lacks %q", tc.path, resp.StatusCode, tc.want)
		}
	}
	for _, tc := range []struct {
		auth string
		want int
	}{
		{"", 401},
		{"Bearer wrong-1", 401},
		{"Bearer tok-123", 200},
	} {
		req, _ := http.NewRequest("POST", base+"/api/internal/tool-execute", strings.NewReader(`{"tool":"echo"}`))
		req.Header.Set("content-type", "application/json")
		if tc.auth != "" {
			req.Header.Set("authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("POST tool-execute with %q = %d %s, want %d", tc.auth, resp.StatusCode, b, tc.want)
		}
	}
}

// Two builds of the same source from different directories at different
// times must be byte-identical (modes and mtimes included).
func TestBuildReproducible(t *testing.T) {
	first := builtWeb(t)
	app := filepath.Join(t.TempDir(), "elsewhere", "web")
	err := filetree.Copy(exampleApp(t), app, filetree.CopyOptions{Skip: func(rel string, d fs.DirEntry) bool {
		return rel == "node_modules" || rel == ".next"
	}})
	if err != nil {
		t.Fatal(err)
	}
	before := hashTree(t, app)
	second := filepath.Join(t.TempDir(), "web")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if err := Build(ctx, Options{AppDir: app, OutDir: second, BuildID: testBuildID, SourceDateEpoch: testEpoch}); err != nil {
		t.Fatal(err)
	}
	a, b := hashTree(t, first), hashTree(t, second)
	var diffs []string
	for p, e := range a {
		if b[p] != e {
			diffs = append(diffs, fmt.Sprintf("%s: %q vs %q", p, e, b[p]))
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			diffs = append(diffs, p+": only in the second build")
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		n := len(diffs)
		if len(diffs) > 20 {
			diffs = diffs[:20]
		}
		t.Errorf("builds differ in %d entries (of %d), e.g.:\n%s", n, len(a), strings.Join(diffs, "\n"))
		// Show where the first few differing files diverge, for whoever chases it.
		shown := 0
		for p := range a {
			if b[p] != a[p] && shown < 3 {
				shown++
				t.Logf("%s:\n%s", p, divergence(filepath.Join(first, p), filepath.Join(second, p)))
			}
		}
	}
	t.Logf("%d entries identical", len(a))
	if after := hashTree(t, app); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the app dir was modified by the build")
	}
}

// The real standalone trace carries sharp's linux packages; a darwin-arm64
// payload must get the darwin ones.
func TestRetargetBuiltTree(t *testing.T) {
	built := builtWeb(t)
	host, err := platform.Host()
	if err != nil || host.ID != "linux-x64" {
		t.Skip("expectations are for a linux-x64 build host")
	}
	out := filepath.Join(t.TempDir(), "web")
	if err := filetree.Copy(built, out, filetree.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "node_modules", "@img", "sharp-linux-x64")); err != nil {
		t.Fatalf("the standalone trace no longer carries @img/sharp-linux-x64 (%v): the retarget test needs a native module", err)
	}
	darwin, _ := platform.Parse("darwin-arm64")
	rep, err := nodemods.Retarget(context.Background(), nodemods.Options{Dir: out, Target: darwin, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("retarget: %v", rep.Replaced)
	if bad, err := nodemods.Check(out, darwin); err != nil || len(bad) != 0 {
		t.Errorf("Check(darwin-arm64) = %v %v, want clean", bad, err)
	}
	if bad, _ := nodemods.Check(out, host); len(bad) == 0 {
		t.Errorf("Check(linux-x64) should fail on the darwin tree")
	}
}

// divergence shows both files around their first differing byte.
func divergence(a, b string) string {
	x, errA := os.ReadFile(a)
	y, errB := os.ReadFile(b)
	if errA != nil || errB != nil {
		return fmt.Sprintf("unreadable: %v %v", errA, errB)
	}
	i := 0
	for i < len(x) && i < len(y) && x[i] == y[i] {
		i++
	}
	window := func(s []byte) string {
		lo, hi := max(0, i-150), min(len(s), i+150)
		return fmt.Sprintf("%q", s[lo:hi])
	}
	return fmt.Sprintf("sizes %d vs %d, first difference at byte %d\n  first:  %s\n  second: %s", len(x), len(y), i, window(x), window(y))
}
