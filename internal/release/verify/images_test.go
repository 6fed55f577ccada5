package verify

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/second-inc/second-release/internal/release/artifact"
	"github.com/second-inc/second-release/internal/release/config"
	"github.com/second-inc/second-release/internal/release/oci"
	"github.com/second-inc/second-release/internal/release/sign"
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

// builtRelease is a config and dist as `release build` leaves them: linux
// payloads listed in release.json.
func builtRelease(t *testing.T) (*config.Config, string) {
	t.Helper()
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
		testsupport.WriteNpmTarball(t, filepath.Join(dist, rp), map[string]string{
			"dist/web/server.js":     "server " + p,
			"dist/worker/worker.mjs": "worker " + p,
		})
		rel.Artifacts = append(rel.Artifacts, artifact.Artifact{Kind: artifact.KindPayload, Name: "cli-local-" + p, Platform: p, Path: rp})
	}
	if err := artifact.Write(dist, rel); err != nil {
		t.Fatal(err)
	}
	return cfg, dir
}

// TestRehearse runs the offline image rehearsal on a built release and
// checks it leaves release.json alone.
func TestRehearse(t *testing.T) {
	bin := testsupport.Tool(t, "registry")
	cfg, dir := builtRelease(t)
	dist := cfg.OutDir()
	before, _ := os.ReadFile(filepath.Join(dist, artifact.FileName))

	r, err := ImagesCheck(context.Background(), ImagesCheckOptions{Config: cfg, WorkDir: filepath.Join(dir, "work"), RegistryBin: bin})
	if err != nil {
		t.Fatalf("ImagesCheck: %v (%+v)", err, r)
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

// TestSignVerifyRelease is the cut/publish path: images recorded in
// release.json, pushed, then signed and verified from the artifact list.
func TestSignVerifyRelease(t *testing.T) {
	reg := testsupport.StartRegistry(t)
	cfg, dir := builtRelease(t)
	ctx := context.Background()
	prefix := reg.Host + "/second"
	if _, err := oci.BuildRelease(ctx, oci.ReleaseOptions{Config: cfg, DevBase: true, Push: prefix}); err != nil {
		t.Fatal(err)
	}
	key, pub := filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	if err := sign.GenerateKeyPair(key, pub, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	o := ReleaseOptions{Dist: cfg.OutDir(), Prefix: prefix}
	if _, err := VerifyRelease(ctx, o, pub); err == nil {
		t.Fatal("verify before signing passed")
	}
	t.Setenv(sign.PasswordEnv, "pw")
	signed, err := sign.Release(ctx, sign.ReleaseOptions{Dist: o.Dist, Prefix: o.Prefix, Key: key})
	if err != nil || len(signed) != 6 {
		t.Fatalf("sign.Release: %d signed, err %v", len(signed), err)
	}
	rows, err := VerifyRelease(ctx, o, pub)
	if err != nil || len(rows) != 6 {
		t.Fatalf("VerifyRelease: %d rows, err %v", len(rows), err)
	}
}
