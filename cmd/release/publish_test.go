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
	"github.com/second-inc/second-release/internal/release/publish"
	"github.com/second-inc/second-release/internal/testsupport"
)

func runReleasePublish(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// fakeDist writes a dist/ holding @second-inc/cli and its linux-x64 payload.
func fakeDist(t *testing.T, version string) string {
	t.Helper()
	dist := t.TempDir()
	os.MkdirAll(filepath.Join(dist, "npm"), 0o755)
	rel := &artifact.Release{Version: version}
	for _, p := range []struct{ kind, name, platform string }{
		{artifact.KindPayload, "@second-inc/cli-local-linux-x64", "linux-x64"},
		{artifact.KindLauncher, "@second-inc/cli", ""},
	} {
		body, _ := json.Marshal(map[string]string{"name": p.name, "version": version})
		file := filepath.Join(dist, "npm", strings.ReplaceAll(strings.TrimPrefix(p.name, "@"), "/", "-")+"-"+version+".tgz")
		testsupport.WriteNpmTarball(t, file, map[string]string{"package.json": string(body)})
		a, err := artifact.FromFile(dist, file, artifact.Artifact{Kind: p.kind, Name: p.name, Version: version, Platform: p.platform})
		if err != nil {
			t.Fatal(err)
		}
		rel.Artifacts = append(rel.Artifacts, a)
	}
	if err := artifact.Write(dist, rel); err != nil {
		t.Fatal(err)
	}
	return dist
}

// TestPublishAndPlanCommands drives `release publish` and `release plan`
// through the CLI against a real Verdaccio, with the user's npm config
// pointing at it (no --registry: the config decides).
func TestPublishAndPlanCommands(t *testing.T) {
	testsupport.Tool(t, "npm")
	srv, token := testsupport.Verdaccio(t, "@second-inc")
	home := t.TempDir()
	rc := filepath.Join(home, ".npmrc")
	if err := srv.WriteNpmrc(rc, token); err != nil {
		t.Fatal(err)
	}
	t.Setenv("npm_config_userconfig", rc)
	t.Setenv("npm_config_cache", filepath.Join(home, "cache"))
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "release.yaml")
	os.MkdirAll(filepath.Join(dir, "web"), 0o755)
	os.MkdirAll(filepath.Join(dir, "worker"), 0o755)
	os.WriteFile(cfg, []byte("apps:\n  web: web\n  worker: worker\nplatforms: [linux-x64]\nnpm:\n  access: restricted\n"), 0o644)
	dist := fakeDist(t, "1.0.0")

	out, err := runReleasePublish(t, "--config", cfg, "publish", "--dist", dist, "--dry-run")
	if err != nil || !strings.Contains(out, "dry run") || !strings.Contains(out, "2 planned") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	out, err = runReleasePublish(t, "--config", cfg, "--json", "publish", "--dist", dist)
	if err != nil {
		t.Fatalf("publish: %v\n%s", err, out)
	}
	var l publish.Ledger
	if err := json.Unmarshal([]byte(out), &l); err != nil || !l.Complete || l.Registry != srv.URL || l.Access != "restricted" {
		t.Fatalf("ledger %+v %v\n%s", l, err, out)
	}
	out, err = runReleasePublish(t, "--config", cfg, "publish", "--dist", dist)
	if err != nil || !strings.Contains(out, "2 skipped") {
		t.Errorf("rerun: %v\n%s", err, out)
	}

	out, err = runReleasePublish(t, "--config", cfg, "--json", "plan", "--version", "1.0.0", "--dist", dist)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	var plan publish.ReleasePlan
	if err := json.Unmarshal([]byte(out), &plan); err != nil || !plan.Built || len(plan.Packages) != 2 {
		t.Fatalf("plan %+v %v", plan, err)
	}
	for _, p := range plan.Packages {
		if p.Action != "skip (already published)" {
			t.Errorf("plan: %s -> %s", p.Name, p.Action)
		}
	}
	out, err = runReleasePublish(t, "--config", cfg, "plan", "--version", "1.1.0")
	if err != nil || !strings.Contains(out, "publish") || !strings.Contains(out, "build 1.1.0 for linux-x64") {
		t.Errorf("plan of a new version: %v\n%s", err, out)
	}

	_, err = runReleasePublish(t, "--config", cfg, "publish", "--dist", dist, "--provenance")
	if err == nil || !strings.Contains(err.Error(), "--provenance cannot be used with --access restricted") {
		t.Errorf("provenance: %v", err)
	}
	_, err = runReleasePublish(t, "--config", cfg, "publish", "--dist", fakeDist(t, "2.0.0-rc.1"), "--tag", "latest")
	if err == nil || !strings.Contains(err.Error(), "prerelease") {
		t.Errorf("prerelease as latest: %v", err)
	}
}
