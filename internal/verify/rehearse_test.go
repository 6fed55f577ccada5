package verify

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/second-inc/second-release/internal/artifact"
	"github.com/second-inc/second-release/internal/config"
	"github.com/second-inc/second-release/internal/testsupport"
)

func writeFile(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writePayloadTgz(t *testing.T, path string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for n, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: "package/" + n, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRehearse runs the offline image rehearsal on a built release (linux
// payloads in dist) and checks it leaves release.json alone.
func TestRehearse(t *testing.T) {
	bin := testsupport.Tool(t, "registry")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "app/web/package.json"), "{}")
	writeFile(t, filepath.Join(dir, "app/worker/package.json"), "{}")
	writeFile(t, filepath.Join(dir, "release.yaml"), "apps:\n  web: app/web\n  worker: app/worker\n")
	src, err := os.ReadFile(filepath.Join(testsupport.RepoRoot(t), "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "docker-compose.yml"), string(src))
	cfg, err := config.Load(filepath.Join(dir, "release.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dist := cfg.OutDir()
	rel := &artifact.Release{Version: "2.0.0", Commit: "abc", SourceDateEpoch: 1767225600}
	for _, p := range []string{"linux-x64", "linux-arm64"} {
		rp := "npm/cli-local-" + p + "-2.0.0.tgz"
		writePayloadTgz(t, filepath.Join(dist, rp), map[string]string{
			"dist/web/server.js":     "server " + p,
			"dist/worker/worker.mjs": "worker " + p,
		})
		rel.Artifacts = append(rel.Artifacts, artifact.Artifact{Kind: artifact.KindPayload, Name: "cli-local-" + p, Platform: p, Path: rp})
	}
	if err := artifact.Write(dist, rel); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dist, artifact.FileName))

	r, err := Rehearse(context.Background(), RehearseOptions{Config: cfg, WorkDir: filepath.Join(dir, "work"), RegistryBin: bin})
	if err != nil {
		t.Fatalf("Rehearse: %v (%+v)", err, r)
	}
	if len(r.Images) != 2 || r.Signed != 6 || r.RepushBytes != 0 {
		t.Errorf("rehearsal = %+v, want 2 images, 6 signatures, 0 re-push bytes", r)
	}
	if !strings.Contains(r.Summary(), "unsigned image refused") {
		t.Errorf("summary %q", r.Summary())
	}
	after, _ := os.ReadFile(filepath.Join(dist, artifact.FileName))
	if string(before) != string(after) {
		t.Error("the rehearsal changed dist/release.json")
	}
	if _, err := os.Stat(r.ComposeFile); err != nil {
		t.Error(err)
	}
}
