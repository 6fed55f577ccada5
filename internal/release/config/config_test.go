package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"web", "worker"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, FileName)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c, err := Load(writeConfig(t, "apps: {web: web, worker: worker}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.LauncherName() != "@second-inc/cli" || c.PayloadName("darwin-arm64") != "@second-inc/cli-local-darwin-arm64" {
		t.Fatalf("names: %s, %s", c.LauncherName(), c.PayloadName("darwin-arm64"))
	}
	if len(c.Platforms) != 4 || c.Platforms[0] != "darwin-arm64" {
		t.Fatalf("platforms %v", c.Platforms)
	}
	if c.OutDir() != filepath.Join(filepath.Dir(c.Path(FileName)), "dist") {
		t.Fatalf("out %s", c.OutDir())
	}
}

func TestTheRepositoryConfigLoads(t *testing.T) {
	if _, err := Load(filepath.Join("..", "..", "..", FileName)); err != nil {
		t.Fatal(err)
	}
}

func TestErrorsNameTheField(t *testing.T) {
	cases := []struct{ name, body, field, hint string }{
		{"bad scope", "scope: second\napps: {web: web, worker: worker}\n", `"scope"`, "npm scope"},
		{"unknown platform", "platforms: [windows-x64]\napps: {web: web, worker: worker}\n", `"platforms[0]"`, "supported: darwin-arm64"},
		{"duplicate platform", "platforms: [linux-x64, linux-x64]\napps: {web: web, worker: worker}\n", `"platforms[1]"`, "twice"},
		{"missing app dir", "apps: {web: nowhere, worker: worker}\n", `"apps.web"`, "does not exist"},
		{"base by tag", "apps: {web: web, worker: worker}\nimages: {web: {base: node:20-alpine}}\n", `"images.web.base"`, "pinned by digest"},
		{"bad access", "apps: {web: web, worker: worker}\nnpm: {access: private}\n", `"npm.access"`, "public or restricted"},
		{"bad port", "apps: {web: web, worker: worker}\nimages: {worker: {port: 70000}}\n", `"images.worker.port"`, "TCP port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConfig(t, tc.body)
			_, err := Load(p)
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range []string{p, tc.field, tc.hint} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestUnknownFieldIsAnError(t *testing.T) {
	p := writeConfig(t, "apps: {web: web, worker: worker}\nplatform: [linux-x64]\n")
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), "platform") || !strings.Contains(err.Error(), p) {
		t.Fatalf("want an error naming the unknown field and the file, got %v", err)
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), FileName))
	if err == nil || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("got %v", err)
	}
}
