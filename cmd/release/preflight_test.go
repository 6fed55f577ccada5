package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A cut or rehearsal whose platforms cannot give the images their linux
// payloads fails in the preflight, before anything is built, naming the fix.
func TestImagePlatformsRefusedBeforeBuilding(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"web", "worker"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "release.yaml")
	if err := os.WriteFile(cfg, []byte("apps: {web: web, worker: worker}\nimages: {repository: 127.0.0.1:1/second}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600") // the temp dir is no git checkout
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"cut", []string{"--config", cfg, "cut", "1.0.0", "--platform", "darwin-arm64", "--registry", "http://127.0.0.1:1/"},
			[]string{"preflight", "linux-x64, linux-arm64", "--platform darwin-arm64,linux-x64,linux-arm64", "127.0.0.1:1", "unreachable"}},
		{"rehearse", []string{"--config", cfg, "rehearse", "--version", "1.0.0", "--platform", "darwin-arm64"},
			[]string{"preflight", "linux-x64, linux-arm64", "--platform darwin-arm64,linux-x64,linux-arm64", "--no-images"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runReleaseImages(t, tc.args...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "dist")); err == nil {
				t.Error("the refused run created dist/: it started building")
			}
		})
	}
}
