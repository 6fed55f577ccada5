package rehearse_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/npmconf"
	"github.com/second-inc/second-release/internal/release/artifact"
	"github.com/second-inc/second-release/internal/release/rehearse"
	"github.com/second-inc/second-release/internal/testsupport"
)

func options(t *testing.T, dist string) rehearse.Options {
	return rehearse.Options{
		Dist: dist, VerdaccioBin: testsupport.Tool(t, "verdaccio"),
		NPXTimeout: 3 * time.Minute,
		Log:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

func TestRehearseKeep(t *testing.T) {
	testsupport.Tool(t, "npx")
	dist := t.TempDir()
	o := options(t, dist)
	o.Build = testsupport.FakeRelease(t, dist, "rh", "0.1.1-snapshot.abcdef0", "0.1.1-snapshot.abcdef0")
	o.Keep = true
	rep, err := rehearse.Rehearse(context.Background(), o)
	if rep != nil && rep.Pid != 0 {
		defer func() {
			syscall.Kill(-rep.Pid, syscall.SIGKILL)
			os.RemoveAll(rep.WorkDir)
		}()
	}
	var sb strings.Builder
	if rep != nil {
		rep.WriteTable(&sb)
	}
	t.Log("\n" + sb.String())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"build", "private registry", "publish --access restricted", "anonymous reads refused", "npx as a new user", "stack starts and stops through npx", "publish again skips everything"}
	if len(rep.Checks) != len(want) || !rep.OK() {
		t.Fatalf("checks: %+v", rep.Checks)
	}
	for i, c := range rep.Checks {
		if c.Name != want[i] {
			t.Errorf("check %d is %q, want %q", i, c.Name, want[i])
		}
	}
	// The fake payload carries no natives: the stack check says it did not run, and why.
	if d := rep.Checks[5].Detail; !strings.Contains(d, "not run") || !strings.Contains(d, "--skip-natives") {
		t.Errorf("stack check detail %q does not say it was not run for lack of natives", d)
	}
	if rep.Publish.Tag != "next" {
		t.Errorf("a snapshot was tagged %q, want next", rep.Publish.Tag)
	}
	// --keep: still serving, the new user's .npmrc is there and says how to stop.
	b := checkKept(t, rep, sb.String())
	t.Run("the printed .npmrc is scoped and resolves public packages", func(t *testing.T) {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "registry=") {
				t.Errorf(".npmrc sets the default registry (%q): public packages would 404", l)
			}
		}
		if !strings.Contains(string(b), "@second-inc:registry="+rep.Registry) {
			t.Errorf(".npmrc does not route @second-inc to %s:\n%s", rep.Registry, b)
		}
		publicRegistryReachable(t)
		// A build's npm with the new user's .npmrc: the public package
		// comes from npm's registry, the rehearsed one from Verdaccio.
		dir := t.TempDir()
		cmd := exec.Command("npm", "install", "--prefix", dir, "--no-package-lock", "tslib@2.8.1", rep.Launcher+"@"+rep.Version)
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(strings.ToLower(kv), "npm_config_") {
				env = append(env, kv)
			}
		}
		cmd.Env = append(env, "npm_config_userconfig="+rep.Npmrc, "npm_config_cache="+filepath.Join(dir, ".cache"),
			"npm_config_update_notifier=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm install with %s: %v\n%s", rep.Npmrc, err, out)
		}
		for _, pkg := range []string{"tslib", rep.Launcher} {
			if _, err := os.Stat(filepath.Join(dir, "node_modules", filepath.FromSlash(pkg), "package.json")); err != nil {
				t.Errorf("%s not installed: %v", pkg, err)
			}
		}
	})
}

// checkKept checks what --keep leaves: the registry still serving, the new
// user's .npmrc with a token, and a summary that says how to stop without
// showing the token. It returns the .npmrc's contents.
func checkKept(t *testing.T, rep *rehearse.Report, summary string) []byte {
	t.Helper()
	resp, err := http.Get(rep.Registry + "-/ping")
	if err != nil {
		t.Fatalf("kept registry does not answer: %v", err)
	}
	resp.Body.Close()
	b, err := os.ReadFile(rep.Npmrc)
	if err != nil || !strings.Contains(string(b), ":_authToken=") {
		t.Errorf(".npmrc %s: %v\n%s", rep.Npmrc, err, b)
	}
	for _, w := range []string{rep.Registry, rep.Npmrc, "kill -- -"} {
		if !strings.Contains(summary, w) {
			t.Errorf("summary lacks %q", w)
		}
	}
	if strings.Contains(summary, strings.TrimSpace(strings.SplitN(string(b), ":_authToken=", 2)[1])) {
		t.Error("summary shows the token")
	}
	return b
}

func TestRehearseFailsAndCleansUp(t *testing.T) {
	testsupport.Tool(t, "npx")
	dist := t.TempDir()
	o := options(t, dist)
	// The payload's binary prints the wrong version: the npx check must fail.
	o.Build = testsupport.FakeRelease(t, dist, "rhbad", "0.2.0", "9.9.9")
	rep, err := rehearse.Rehearse(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "npx as a new user") || !strings.Contains(err.Error(), "9.9.9") {
		t.Fatalf("want the npx check to fail naming the output, got %v", err)
	}
	if rep.OK() {
		t.Error("report OK despite the failure")
	}
	if rep.Kept || rep.WorkDir != "" {
		t.Errorf("work dir kept: %+v", rep)
	}
	if err := syscall.Kill(-rep.Pid, 0); err == nil {
		t.Errorf("registry process group %d still running", rep.Pid)
	}

	// A failing build stops before any registry is started.
	o.Build = func(context.Context) (*artifact.Release, error) { return nil, errors.New("web: next build failed") }
	rep, err = rehearse.Rehearse(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "next build failed") || rep.Registry != "" {
		t.Fatalf("build failure: %v %+v", err, rep)
	}
}

// publicRegistryReachable skips unless npm's public registry answers.
func publicRegistryReachable(t *testing.T) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(npmconf.DefaultRegistry + "tslib")
	if err != nil {
		t.Skipf("needs npm's public registry (%s) to install a public package: %v", npmconf.DefaultRegistry, err)
	}
	resp.Body.Close()
}
