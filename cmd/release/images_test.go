package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/second-inc/second-release/internal/release/artifact"
	"github.com/second-inc/second-release/internal/testsupport"
)

// runReleaseImages runs the release CLI in-process.
func runReleaseImages(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// TestImagesSignComposeVerify is the signed-pull flow through the CLI, as an
// offline rehearsal runs it: images on the dev base pushed to a real
// registry, a fresh key, sign, render the pinned compose file, verify it.
func TestImagesSignComposeVerify(t *testing.T) {
	reg := testsupport.StartRegistry(t)
	dir := t.TempDir()
	for p, body := range map[string]string{
		"app/web/package.json":       "{}",
		"app/worker/package.json":    "{}",
		"built/web/server.js":        "require('http').createServer().listen(process.env.PORT)\n",
		"built/web/.next/BUILD_ID":   "x\n",
		"built/worker/worker.mjs":    "console.log('worker')\n",
		"release.yaml":               "apps:\n  web: app/web\n  worker: app/worker\nout: dist\nimages:\n  source: https://github.com/second-inc/second\n",
		"docker-compose.yml":         readForImages(t, filepath.Join(testsupport.RepoRoot(t), "docker-compose.yml")),
		"built/worker/lib/helper.js": "module.exports = 1\n",
	} {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	t.Setenv("COSIGN_PASSWORD", "rehearsal")
	cfg := filepath.Join(dir, "release.yaml")
	prefix := reg.Host + "/second"

	if _, err := runReleaseImages(t, "--config", cfg, "images", "--web-base", "docker.io/library/node:20-alpine", "--web", filepath.Join(dir, "built/web"), "--worker", filepath.Join(dir, "built/worker"), "--version", "1.4.0"); err == nil || !strings.Contains(err.Error(), "--web-base") || !strings.Contains(err.Error(), "not pinned by digest") {
		t.Fatalf("images on a tag-only base: err = %v, want a refusal naming --web-base", err)
	}
	out, err := runReleaseImages(t, "--config", cfg, "--json", "images", "--dev-base", "--push", prefix,
		"--web", filepath.Join(dir, "built/web"), "--worker", filepath.Join(dir, "built/worker"), "--version", "1.4.0")
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Pushed []struct {
			Ref  string
			Tags []string
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Pushed) != 2 {
		t.Fatalf("images --json = %s (err %v)", out, err)
	}
	rel, err := artifact.Read(filepath.Join(dir, "dist"))
	if err != nil {
		t.Fatal(err)
	}
	if imgs := rel.Filter(artifact.KindImage); len(imgs) != 2 || imgs[0].Digest == "" || imgs[0].Version != "1.4.0" {
		t.Fatalf("release.json images = %+v", imgs)
	}

	key := filepath.Join(dir, "keys", "cosign.key")
	if _, err := runReleaseImages(t, "--config", cfg, "sign", "--generate-key", "--key", key); err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "keys", "cosign.pub")
	if _, err := runReleaseImages(t, "--config", cfg, "sign", "--key", key, "--images", prefix); err != nil {
		t.Fatal(err)
	}
	if _, err := runReleaseImages(t, "--config", cfg, "compose", "--repo", prefix); err != nil {
		t.Fatal(err)
	}
	composeFile := filepath.Join(dir, "dist", "compose", "docker-compose.release.yml")
	t.Setenv("INTERNAL_API_TOKEN", "x")
	t.Setenv("SECOND_NO_AUTH_SESSION_SECRET", "y")
	out, err = runReleaseImages(t, "--config", cfg, "verify", "--key", pub, "--compose", composeFile)
	if err != nil {
		t.Fatalf("verify --compose: %v\n%s", err, out)
	}
	if strings.Count(out, "\nok ") != 6 || !strings.Contains(out, "skipped  mongo") {
		t.Errorf("verify table:\n%s", out)
	}

	// Requiring a signature on a third-party tag-only image fails, naming it.
	_, err = runReleaseImages(t, "--config", cfg, "verify", "--key", pub, "--compose", composeFile, "--service", "web,redis")
	if err == nil || !strings.Contains(err.Error(), "redis:7-alpine (tag-only)") {
		t.Errorf("verify --service redis: err = %v, want redis named as tag-only", err)
	}
	// A signature from another key fails.
	other := filepath.Join(dir, "other", "k.key")
	if _, err := runReleaseImages(t, "--config", cfg, "sign", "--generate-key", "--key", other); err != nil {
		t.Fatal(err)
	}
	_, err = runReleaseImages(t, "--config", cfg, "verify", "--key", filepath.Join(dir, "other", "k.pub"), res.Pushed[0].Ref)
	if err == nil || !strings.Contains(err.Error(), "bad-signature") {
		t.Errorf("verify with another key: err = %v, want bad-signature", err)
	}
}

func readForImages(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
