package doctor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/second-inc/second-release/internal/manifest"
	"github.com/second-inc/second-release/internal/testsupport"
)

func writePayload(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	m := &manifest.Manifest{Name: "@second-inc/cli-local-linux-x64", Version: "1.0.0", Files: map[string]manifest.File{}}
	for rel, content := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		sum, size, err := manifest.HashFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m.Files[rel] = manifest.File{SHA256: sum, Size: size, Mode: "0644"}
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, manifest.FileName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestCheckPayload(t *testing.T) {
	good := writePayload(t, map[string]string{"bin/second": "x", "dist/web/server.js": "y"})
	changed := writePayload(t, map[string]string{"bin/second": "x"})
	if err := os.WriteFile(filepath.Join(changed, "bin", "second"), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, root string
		want       Status
		detail     string
	}{
		{"matches", good, OK, "all 2 files"},
		{"changed", changed, Problem, "bin/second changed"},
		{"no manifest", t.TempDir(), Skipped, "no manifest.json"},
		{"not a payload", "", Skipped, "not running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := checkPayload(tt.root)
			if r.Status != tt.want || !strings.Contains(r.Detail, tt.detail) {
				t.Errorf("got %s %q, want %s containing %q", r.Status, r.Detail, tt.want, tt.detail)
			}
			if r.Status == Problem && r.Fix == "" {
				t.Error("problem without a fix")
			}
		})
	}
}

func TestRunWithRealRedisAndBrokenMongod(t *testing.T) {
	redis := testsupport.Tool(t, "redis-server")
	dir := t.TempDir()
	broken := filepath.Join(dir, "mongod")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho 'error while loading shared libraries: libcrypto.so.3' >&2\nexit 127\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := filepath.Join(dir, "home")
	sec := filepath.Join(h, "secrets")
	if err := os.MkdirAll(sec, 0o755); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(sec, "internal-api-token")
	if err := os.WriteFile(token, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	node, _ := testsupport.FindTool(t, "node")
	rs := Run(context.Background(), Options{Node: node, Mongod: broken, RedisServer: redis, Home: h, SecretDir: sec, Secrets: []string{token}})
	got := map[string]Result{}
	for _, r := range rs {
		got[r.Name] = r
	}
	if r := got["redis-server"]; r.Status != OK || !strings.Contains(r.Detail, "Redis server") {
		t.Errorf("redis-server: %+v", r)
	}
	if r := got["mongod"]; r.Status != Problem || !strings.Contains(r.Detail, "libcrypto") || r.Fix == "" {
		t.Errorf("mongod: %+v", r)
	}
	if r := got["home"]; r.Status != Problem || !strings.Contains(r.Detail, "want 0700") || !strings.Contains(r.Detail, "want 0600") {
		t.Errorf("home: %+v", r)
	}
	if r := got["disk"]; r.Status == Skipped {
		t.Errorf("disk: %+v", r)
	}
	if !Failed(rs) {
		t.Error("Failed = false with problems")
	}
	var b strings.Builder
	Write(&b, rs)
	if !strings.Contains(b.String(), "fix:") {
		t.Errorf("rendered output has no fix lines:\n%s", b.String())
	}
}
