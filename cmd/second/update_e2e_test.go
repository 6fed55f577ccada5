package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/local/control"
	"github.com/second-inc/second-release/internal/local/control/client"
	"github.com/second-inc/second-release/internal/local/stack"
	"github.com/second-inc/second-release/internal/local/update"
	"github.com/second-inc/second-release/internal/testsupport"
	"github.com/second-inc/second-release/internal/testsupport/npmtest"
)

// testLauncherJS plays the launcher's last step for an already installed
// payload: exec bin/second with the launcher's env. A release
// whose package.json says "broken" fails at once.
const testLauncherJS = `#!/usr/bin/env node
'use strict';
const { spawn } = require('node:child_process');
const pkg = require('../package.json');
if (pkg.broken) { console.error(pkg.name + '@' + pkg.version + ': broken on purpose'); process.exit(3); }
const child = spawn(process.env.SECOND_TEST_SECOND_BIN, process.argv.slice(2), {
  stdio: 'inherit',
  env: { ...process.env, SECOND_CLI_RELEASE_PACKAGE: pkg.name, SECOND_CLI_RELEASE_VERSION: pkg.version,
         SECOND_LAUNCHED_BY_CLI: '1', SECOND_NODE: process.execPath },
});
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(s, () => child.kill(s));
child.on('exit', (code, sig) => { if (sig) process.kill(process.pid, sig); else process.exit(code ?? 1); });
`

// The real runtime updates itself through the launcher from a real
// Verdaccio: 1.0.0 (this process, through runWithUpdates) hands over to
// 1.1.0 (the built second, started by npx) with Redis data kept; then a
// broken 1.2.0 fails and 1.1.0 runs again here, reporting the failure.
func TestSelfUpdateThroughLauncher(t *testing.T) {
	mongod := mongodForTests(t)
	p := newPayload(t, mongod)
	npx := testsupport.Tool(t, "npx")
	v, token := testsupport.Verdaccio(t, "@second-inc")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	publishTestLaunchers(t, ctx, v.URL, token)
	userHome := t.TempDir()
	if err := v.WriteNpmrc(filepath.Join(userHome, ".npmrc"), token); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", userHome)
	t.Setenv("PATH", filepath.Dir(npx)+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("SECOND_TEST_SECOND_BIN", p.bin)
	t.Setenv("SECOND_CLI_RELEASE_PACKAGE", "@second-inc/cli")
	layout := home.Layout{Root: p.home}
	defer func() {
		p.run(t, nil, "stop")
		if c, err := client.Open(layout); err == nil {
			if pgid, err := syscall.Getpgid(c.Info.PID); err == nil && pgid != syscall.Getpgrp() {
				syscall.Kill(-pgid, syscall.SIGKILL)
			}
		}
	}()

	payload, err := stack.Discover(stack.DiscoverOptions{Executable: p.bin})
	if err != nil {
		t.Fatal(err)
	}
	runHere := func(version string) chan error {
		done := make(chan error, 1)
		opts := stack.Options{Layout: layout, Payload: payload, Version: version, PackageName: "@second-inc/cli", Out: io.Discard}
		go func() { done <- runWithUpdates(ctx, opts, []string{"start", "--no-open", "--home", p.home}) }()
		return done
	}

	// 1.0.0 runs here; the newest release is 1.1.0.
	done := runHere("1.0.0")
	c := waitRuntime(t, ctx, layout, "1.0.0", done)
	redisAddr := "127.0.0.1:" + strconv.Itoa(servicePort(t, ctx, c, "redis"))
	if _, err := testsupport.RedisPipeline(redisAddr, []string{"AUTH", p.secret(t, "redis-password")}, []string{"SET", "kept", "across-updates"}); err != nil {
		t.Fatal(err)
	}
	st := installLatestAndWaitHandover(t, ctx, p, c, done)
	c = waitRuntime(t, ctx, layout, "1.1.0", nil)
	if c.Info.PID == os.Getpid() {
		t.Fatal("1.1.0 runs in the old process")
	}
	checkRedisKept(t, ctx, p, c, "update")
	if _, _, code := p.run(t, nil, "stop"); code != 0 {
		t.Fatalf("second stop exited %d", code)
	}

	// 1.1.0 here; the broken 1.2.0 fails and 1.1.0 comes back.
	done = runHere("1.1.0")
	c = waitRuntime(t, ctx, layout, "1.1.0", done)
	if err := c.Call(ctx, "POST", "/update/install", map[string]string{"version": "1.2.0"}, &st); err != nil {
		t.Fatal(err)
	}
	waitRollback(t, ctx, p, layout)
	c = waitRuntime(t, ctx, layout, "1.1.0", done)
	checkRedisKept(t, ctx, p, c, "rollback")
	// The self-update transcript: nothing in this environment turns npm's
	// notices off but the installer.
	if log := p.log("update"); strings.Contains(log, "npm notice") {
		t.Errorf("the update log shows npm notices:\n%s", log)
	}
	stopAndWait(t, ctx, c, done)
}

// publishTestLaunchers publishes 1.1.0 as latest and a broken 1.2.0 as
// canary, both carrying testLauncherJS.
func publishTestLaunchers(t *testing.T, ctx context.Context, registry, token string) {
	t.Helper()
	for _, pkg := range []struct {
		version, tag string
		broken       bool
	}{{"1.1.0", "latest", false}, {"1.2.0", "canary", true}} {
		m := map[string]any{"name": "@second-inc/cli", "version": pkg.version, "bin": map[string]string{"second": "bin/second.js"}}
		if pkg.broken {
			m["broken"] = true
		}
		if err := npmtest.Publish(ctx, registry, token, npmtest.Package{Manifest: m, Tag: pkg.tag, Files: map[string]string{"bin/second.js": testLauncherJS}}); err != nil {
			t.Fatal(err)
		}
	}
}

// installLatestAndWaitHandover checks 1.0.0 sees 1.1.0 as newest, installs
// it and waits up to 3 minutes for 1.0.0's run to end cleanly.
func installLatestAndWaitHandover(t *testing.T, ctx context.Context, p *payload, c *control.Client, done chan error) update.State {
	t.Helper()
	var rs control.ReleaseStatus
	if err := c.Call(ctx, "GET", "/release/status", nil, &rs); err != nil || rs.Newest != "1.1.0" || !rs.UpdateAvailable {
		t.Fatalf("release status on 1.0.0: %+v, %v", rs, err)
	}
	var st update.State
	if err := c.Call(ctx, "POST", "/update/install", map[string]string{"version": ""}, &st); err != nil || st.To != "1.1.0" {
		t.Fatalf("install: %+v, %v", st, err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("1.0.0 ended with %v after the handover", err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("1.0.0 did not hand over; update log:\n%s", p.log("update"))
	}
	return st
}

// checkRedisKept checks the key set before the first update is still in
// redis after (what) "update" or "rollback".
func checkRedisKept(t *testing.T, ctx context.Context, p *payload, c *control.Client, after string) {
	t.Helper()
	redisAddr := "127.0.0.1:" + strconv.Itoa(servicePort(t, ctx, c, "redis"))
	if got, err := testsupport.RedisPipeline(redisAddr, []string{"AUTH", p.secret(t, "redis-password")}, []string{"GET", "kept"}); err != nil || !strings.Contains(got, "across-updates") {
		t.Fatalf("redis after the %s: %q, %v", after, got, err)
	}
}

// waitRollback waits up to 3 minutes for the broken update to end rolled
// back, with 1.1.0 running again in this process.
func waitRollback(t *testing.T, ctx context.Context, p *payload, layout home.Layout) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var rs control.ReleaseStatus
		if c2, err := client.Open(layout); err == nil && c2.Call(ctx, "GET", "/release/status", nil, &rs) == nil && rs.Update != nil && !rs.Update.Running() {
			if rs.Update.Phase != update.PhaseRolledBack || rs.Update.Error != update.CodeNewExited || c2.Info.Version != "1.1.0" || c2.Info.PID != os.Getpid() {
				t.Fatalf("after the broken update: %+v, control file %+v", rs.Update, c2.Info)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rollback within 3 minutes; update log:\n%s", p.log("update"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stopAndWait stops the runtime and waits up to 2 minutes for 1.1.0's run
// to end cleanly.
func stopAndWait(t *testing.T, ctx context.Context, c *control.Client, done chan error) {
	t.Helper()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("1.1.0 stopped with %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("1.1.0 did not stop")
	}
}

// waitRuntime waits until the home's control server reports version with
// every service ready.
func waitRuntime(t *testing.T, ctx context.Context, l home.Layout, version string, done chan error) *control.Client {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if c, err := client.Open(l); err == nil && c.Info.Version == version {
			if h, err := c.Health(ctx); err == nil && h.Version == version && len(h.Services) == 4 && allReady(h) {
				return c
			}
		}
		select {
		case err := <-done:
			t.Fatalf("runtime %s ended early: %v; supervisor log:\n%s", version, err, tailFile(filepath.Join(l.LogsDir(), "supervisor.log")))
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatalf("runtime %s not ready within 3 minutes; update log:\n%s", version, tailFile(l.Log("update")))
	return nil
}

func allReady(h *control.Health) bool {
	for _, s := range h.Services {
		if s.State != "ready" {
			return false
		}
	}
	return true
}

func servicePort(t *testing.T, ctx context.Context, c *control.Client, name string) int {
	t.Helper()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Services {
		if s.Name == name && s.Port != 0 {
			return s.Port
		}
	}
	t.Fatalf("no %s port in %+v", name, st.Services)
	return 0
}

func tailFile(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
