package workerbuild

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/release/nodemods"
	"github.com/second-inc/second-release/internal/release/platform"
	"github.com/second-inc/second-release/internal/testsupport"
)

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

func exampleWorker(t *testing.T) string {
	return filepath.Join(testsupport.RepoRoot(t), "examples", "app", "worker")
}

var epoch = time.Unix(1767225600, 0).UTC()

// startNode runs `node worker.mjs` in dir and waits for GET /health.
func startNode(t *testing.T, dir string, env ...string) (status int, body []byte) {
	t.Helper()
	port := testsupport.FreePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "node", "worker.mjs")
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), fmt.Sprintf("PORT=%d", port)), env...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	exited := make(chan struct{})
	go func() { cmd.Process.Wait(); close(exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode, b
		}
		select {
		case <-exited:
			t.Fatalf("node worker.mjs exited before answering /health:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker did not answer /health within 30s: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestBuildExampleWorkerRuns(t *testing.T) {
	requireNode(t)
	app := exampleWorker(t)
	out := filepath.Join(t.TempDir(), "worker")
	if err := Build(context.Background(), Options{AppDir: app, OutDir: out, SourceDateEpoch: epoch}); err != nil {
		t.Fatal(err)
	}
	code, err := os.ReadFile(filepath.Join(out, "worker.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("worker.mjs: %d bytes", len(code))
	if !bytes.HasPrefix(code, []byte(Banner)) {
		t.Errorf("worker.mjs does not start with the createRequire banner")
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 1 {
		t.Errorf("out dir holds %d entries, want only worker.mjs (no native deps)", len(entries))
	}
	if st, _ := os.Stat(filepath.Join(out, "worker.mjs")); !st.ModTime().Equal(epoch) {
		t.Errorf("worker.mjs mtime %v, want %v", st.ModTime(), epoch)
	}
	// Run it from a directory with nothing else around: the bundle must be self-contained.
	status, body := startNode(t, out, "WEB_URL=http://localhost:3000", "WORKSPACES_DIR=/tmp/ws", "DEBUG=second:*",
		"MONGODB_URI=mongodb://127.0.0.1:1/second", "REDIS_URL=redis://127.0.0.1:2", "INTERNAL_API_TOKEN=x",
		"TOOL_EXECUTE_URL=http://localhost:3000/api/internal/tool-execute")
	var h struct {
		OK                                                                    bool
		Service, Uptime                                                       string
		WebConfigured, MongoConfigured, RedisConfigured, WorkspacesConfigured bool
	}
	if err := json.Unmarshal(body, &h); status != 200 || err != nil || !h.OK || h.Service != "worker" || h.Uptime == "" ||
		!h.WebConfigured || !h.MongoConfigured || !h.RedisConfigured || !h.WorkspacesConfigured {
		t.Fatalf("GET /health = %d %s (%v)", status, body, err)
	}

	// Same source, another staging dir, another time: same bytes.
	out2 := filepath.Join(t.TempDir(), "worker")
	if err := Build(context.Background(), Options{AppDir: app, OutDir: out2, SourceDateEpoch: epoch}); err != nil {
		t.Fatal(err)
	}
	code2, _ := os.ReadFile(filepath.Join(out2, "worker.mjs"))
	if !bytes.Equal(code, code2) {
		t.Errorf("two builds of the example worker differ")
	}
	if bytes.Contains(code, []byte(os.TempDir())) {
		t.Errorf("worker.mjs embeds a temp path")
	}
}

// A worker that uses sharp: sharp and its native packages stay external,
// are copied next to the bundle, work with real node, and can be retargeted.
func TestBuildKeepsNativeExternal(t *testing.T) {
	requireNode(t)
	if host, err := platform.Host(); err != nil || host.ID != "linux-x64" {
		t.Skip("fixture expectations are for a linux-x64 build host")
	}
	app := t.TempDir()
	write(t, app, "package.json", `{"name":"w","private":true,"type":"module","dependencies":{"sharp":"0.35.5","ms":"2.1.3"}}`)
	write(t, app, "src/index.mjs", `import http from "node:http";
import sharp from "sharp";
import ms from "ms";
const png = await sharp({ create: { width: 2, height: 2, channels: 3, background: "#f00" } }).png().toBuffer();
http.createServer((req, res) => res.end(JSON.stringify({ ok: true, png: png.length, t: ms(1000) })))
  .listen(Number(process.env.PORT), "127.0.0.1");
`)
	out := filepath.Join(t.TempDir(), "worker")
	if err := Build(context.Background(), Options{AppDir: app, OutDir: out}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"sharp/package.json", "@img/sharp-linux-x64/package.json", "@img/sharp-libvips-linux-x64/package.json", "detect-libc/package.json", "semver/package.json"} {
		if _, err := os.Stat(filepath.Join(out, "node_modules", p)); err != nil {
			t.Errorf("node_modules/%s not copied: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "node_modules", "ms")); !os.IsNotExist(err) {
		t.Errorf("ms is pure JS and should be bundled, not copied")
	}
	code, _ := os.ReadFile(filepath.Join(out, "worker.mjs"))
	if !strings.Contains(string(code), `from "sharp"`) {
		t.Errorf("worker.mjs should import sharp as an external module")
	}
	status, body := startNode(t, out)
	if status != 200 || !strings.Contains(string(body), `"png":`) || strings.Contains(string(body), `"png":0`) {
		t.Fatalf("GET /health = %d %s", status, body)
	}
	if _, err := os.Stat(filepath.Join(app, "node_modules")); !os.IsNotExist(err) {
		t.Errorf("the app dir was modified (node_modules created)")
	}

	darwin, _ := platform.Parse("darwin-arm64")
	if bad, _ := nodemods.Check(out, darwin); len(bad) == 0 {
		t.Errorf("Check(darwin-arm64) should flag the linux sharp packages")
	}
	if _, err := nodemods.Retarget(context.Background(), nodemods.Options{Dir: out, Target: darwin, CacheDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if bad, err := nodemods.Check(out, darwin); err != nil || len(bad) != 0 {
		t.Errorf("Check(darwin-arm64) after retarget = %v %v", bad, err)
	}
}

func TestBuildErrors(t *testing.T) {
	requireNode(t)
	broken := t.TempDir()
	write(t, broken, "package.json", `{"name":"b","private":true,"type":"module"}`)
	write(t, broken, "src/index.mjs", "import x from './missing.mjs';\nconst = ;\n")
	noEntry := t.TempDir()
	write(t, noEntry, "package.json", `{"name":"n","private":true}`)

	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"missing app dir", Options{AppDir: filepath.Join(t.TempDir(), "nope"), OutDir: t.TempDir() + "/o"}, "app dir"},
		{"missing entry", Options{AppDir: noEntry, OutDir: t.TempDir() + "/o"}, "src/index.mjs not found"},
		{"entry outside app", Options{AppDir: noEntry, Entry: "../x.mjs", OutDir: t.TempDir() + "/o"}, "inside the app dir"},
		{"syntax error", Options{AppDir: broken, OutDir: t.TempDir() + "/o"}, "src/index.mjs:2"},
		{"no out dir", Options{AppDir: noEntry}, "no output dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Build(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func write(t *testing.T, dir, name, data string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A worker inside an npm workspace (like the product's apps/worker): the
// workspace package it imports is bundled, sharp stays external, and the
// result runs from the output dir alone.
func TestBuildWorkspaceWorker(t *testing.T) {
	requireNode(t)
	if host, err := platform.Host(); err != nil || host.ID != "linux-x64" {
		t.Skip("fixture expectations are for a linux-x64 build host")
	}
	root := filepath.Join(t.TempDir(), "mono")
	write(t, root, "package.json", `{"name":"mono","private":true,"workspaces":["apps/*","packages/*"]}`)
	write(t, root, "packages/util/package.json", `{"name":"@ex/util","version":"1.0.0","main":"index.js"}`)
	write(t, root, "packages/util/index.js", `const os = require("os"); exports.hello = () => "hello from util on " + typeof os.platform();`+"\n")
	write(t, root, "apps/worker/package.json", `{"name":"@ex/worker","private":true,"type":"module","dependencies":{"@ex/util":"1.0.0","sharp":"0.35.5"}}`)
	write(t, root, "apps/worker/src/index.mjs", `import http from "node:http";
import sharp from "sharp";
import { hello } from "@ex/util";
const png = await sharp({ create: { width: 1, height: 1, channels: 3, background: "#000" } }).png().toBuffer();
http.createServer((req, res) => res.end(JSON.stringify({ ok: true, hello: hello(), png: png.length })))
  .listen(Number(process.env.PORT), "127.0.0.1");
`)
	out := filepath.Join(t.TempDir(), "worker")
	if err := Build(context.Background(), Options{AppDir: filepath.Join(root, "apps", "worker"), OutDir: out}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "node_modules", "sharp", "package.json")); err != nil {
		t.Errorf("sharp not copied next to the bundle: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "node_modules", "@ex")); !os.IsNotExist(err) {
		t.Errorf("the workspace package should be bundled, not copied")
	}
	status, body := startNode(t, out)
	if status != 200 || !strings.Contains(string(body), "hello from util on string") || !strings.Contains(string(body), `"png":`) {
		t.Fatalf("GET /health = %d %s", status, body)
	}
	if _, err := os.Stat(filepath.Join(root, "node_modules")); !os.IsNotExist(err) {
		t.Errorf("the workspace was modified (node_modules created)")
	}
}
