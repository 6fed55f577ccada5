package stack

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func touch(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("x"), mode); err != nil {
		t.Fatal(err)
	}
}

// fakePayload lays out a payload package; skip names pieces to leave out.
func fakePayload(t *testing.T, skip ...string) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]os.FileMode{
		"bin/second": 0o755, "dist/web/server.js": 0o644, "dist/worker/worker.mjs": 0o644,
		"dist/runtime/bin/mongod": 0o755, "dist/runtime/bin/redis-server": 0o755,
		"dist/runtime/lib/libssl.3.dylib": 0o644, "manifest.json": 0o644,
	}
	for rel, mode := range files {
		if !slices.Contains(skip, rel) {
			touch(t, filepath.Join(root, filepath.FromSlash(rel)), mode)
		}
	}
	return root
}

func TestDiscover(t *testing.T) {
	nodeOnPath := func(name string) (string, error) {
		if name == "node" {
			return "/usr/bin/node", nil
		}
		return "", errors.New("not found")
	}
	noNode := func(string) (string, error) { return "", errors.New("not found") }
	tests := []struct {
		name     string
		skip     []string
		env      map[string]string
		lookPath func(string) (string, error)
		monorepo bool
		// wantErr lists substrings the error must contain; nil means no error.
		wantErr []string
		check   func(t *testing.T, root string, p *Payload)
	}{
		{name: "complete payload", check: checkCompletePayload},
		{name: "missing web", skip: []string{"dist/web/server.js"},
			wantErr: []string{"web server not found", "dist/web/server.js", "npx --yes @second-inc/cli", "SECOND_WEB_DIR"}},
		{name: "missing mongod", skip: []string{"dist/runtime/bin/mongod"},
			wantErr: []string{"mongod not found", "dist/runtime/bin/mongod", "SECOND_MONGOD"}},
		{name: "missing redis and worker", skip: []string{"dist/runtime/bin/redis-server", "dist/worker/worker.mjs"},
			wantErr: []string{"redis-server not found", "SECOND_REDIS_SERVER", "worker not found", "SECOND_WORKER_SCRIPT"}},
		{name: "no node", lookPath: noNode, wantErr: []string{"node not found", "Node.js ≥ 20", "SECOND_NODE"}},
		{name: "bad SECOND_MONGOD", env: map[string]string{"SECOND_MONGOD": "/nonexistent/mongod"},
			wantErr: []string{"/nonexistent/mongod (SECOND_MONGOD)"}},
		{name: "env overrides", skip: []string{"dist/web/server.js", "dist/runtime/bin/redis-server"},
			env: map[string]string{"SECOND_WEB_DIR": "WEBDIR", "SECOND_REDIS_SERVER": "REDIS", "SECOND_NODE": "NODE"},
			check: func(t *testing.T, root string, p *Payload) {
				if !strings.HasSuffix(p.WebServer, "/alt/web/server.js") || !strings.HasSuffix(p.RedisServer, "/alt/redis-server") || !strings.HasSuffix(p.Node, "/alt/node") {
					t.Errorf("overrides not applied: %+v", p)
				}
			}},
		{name: "monorepo runs the worker from source", monorepo: true, skip: []string{"dist/worker/worker.mjs"},
			check: func(t *testing.T, root string, p *Payload) {
				if !p.WorkerFromSource || p.WorkerArgs[0] != "--import" || p.WorkerArgs[1] != "tsx" ||
					!strings.HasSuffix(p.WorkerArgs[2], "apps/worker/src/index.ts") || !strings.HasSuffix(p.WorkerDir, "apps/worker") {
					t.Errorf("worker %v in %s", p.WorkerArgs, p.WorkerDir)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fakePayload(t, tt.skip...)
			cwd := t.TempDir()
			alt := filepath.Join(cwd, "alt")
			touch(t, filepath.Join(alt, "web", "server.js"), 0o644)
			touch(t, filepath.Join(alt, "redis-server"), 0o755)
			touch(t, filepath.Join(alt, "node"), 0o755)
			if tt.monorepo {
				touch(t, filepath.Join(cwd, "apps", "worker", "src", "index.ts"), 0o644)
			}
			repl := strings.NewReplacer("WEBDIR", filepath.Join(alt, "web"), "REDIS", filepath.Join(alt, "redis-server"), "NODE", filepath.Join(alt, "node"))
			lp := tt.lookPath
			if lp == nil {
				lp = nodeOnPath
			}
			p, err := Discover(DiscoverOptions{
				Executable: filepath.Join(root, "bin", "second"), Cwd: cwd, LookPath: lp,
				Getenv: func(k string) string { return repl.Replace(tt.env[k]) },
			})
			if tt.wantErr != nil {
				checkMissingError(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, root, p)
		})
	}
}

// checkCompletePayload checks Discover found every part of a complete
// payload at its place under root, and node on $PATH.
func checkCompletePayload(t *testing.T, root string, p *Payload) {
	if p.Root != root || p.Manifest != filepath.Join(root, "manifest.json") {
		t.Errorf("root %q manifest %q", p.Root, p.Manifest)
	}
	if p.WebServer != filepath.Join(root, "dist/web/server.js") || p.WebDir != filepath.Join(root, "dist/web") {
		t.Errorf("web %q in %q", p.WebServer, p.WebDir)
	}
	if !slices.Equal(p.WorkerArgs, []string{filepath.Join(root, "dist/worker/worker.mjs")}) || p.WorkerFromSource {
		t.Errorf("worker args %v", p.WorkerArgs)
	}
	if p.Mongod != filepath.Join(root, "dist/runtime/bin/mongod") || p.RedisServer != filepath.Join(root, "dist/runtime/bin/redis-server") {
		t.Errorf("natives %q %q", p.Mongod, p.RedisServer)
	}
	if p.LibDir != filepath.Join(root, "dist/runtime/lib") || p.Node != "/usr/bin/node" {
		t.Errorf("lib %q node %q", p.LibDir, p.Node)
	}
}

// checkMissingError checks err is a *MissingError mentioning every string
// in want.
func checkMissingError(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range want {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	var me *MissingError
	if !errors.As(err, &me) {
		t.Errorf("error is not a *MissingError: %T", err)
	}
}

func TestDiscoverNeedSubset(t *testing.T) {
	root := fakePayload(t, "dist/web/server.js", "dist/runtime/bin/mongod")
	p, err := Discover(DiscoverOptions{Executable: filepath.Join(root, "bin", "second"), Cwd: t.TempDir(),
		Getenv: func(string) string { return "" }, LookPath: func(string) (string, error) { return "", errors.New("no") },
		Need: map[string]bool{}})
	if err != nil {
		t.Fatalf("with nothing needed, missing pieces must not fail: %v", err)
	}
	if p.Mongod == "" {
		t.Error("the expected mongod path should still be reported")
	}
}
