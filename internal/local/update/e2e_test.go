package update_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/local/control"
	"github.com/second-inc/second-release/internal/local/control/client"
	"github.com/second-inc/second-release/internal/local/update"
	"github.com/second-inc/second-release/internal/testsupport"
	"github.com/second-inc/second-release/internal/testsupport/npmtest"
)

// launcherJS stands in for the real launcher: it execs the "runtime" with
// the launcher's env, forwards signals and exits with its status. A
// package.json with "broken": true fails at once, like a bad release.
const launcherJS = `#!/usr/bin/env node
'use strict';
const { spawn } = require('node:child_process');
const pkg = require('../package.json');
if (pkg.broken) {
  console.error(pkg.name + '@' + pkg.version + ': this release is broken on purpose');
  process.exit(3);
}
const child = spawn(process.env.SECOND_UPDATE_FIXTURE_EXE, process.argv.slice(2), {
  stdio: 'inherit',
  env: { ...process.env, SECOND_UPDATE_FIXTURE: '1', SECOND_CLI_RELEASE_PACKAGE: pkg.name,
         SECOND_CLI_RELEASE_VERSION: pkg.version, SECOND_LAUNCHED_BY_CLI: '1', SECOND_NODE: process.execPath },
});
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(s, () => child.kill(s));
child.on('exit', (code, sig) => { if (sig) process.kill(process.pid, sig); else process.exit(code ?? 1); });
`

func launcherPackage(version string, broken bool) npmtest.Package {
	m := map[string]any{"name": "@second-inc/cli", "version": version, "bin": map[string]string{"second": "bin/cli.js"}}
	if broken {
		m["broken"] = true
	}
	return npmtest.Package{Manifest: m, Files: map[string]string{"bin/cli.js": launcherJS}}
}

// Real Verdaccio (scope readable only with the token), real npx installing
// the launcher-like package, real control server and installer: 1.0.0
// updates itself to 1.1.0 keeping data; 1.1.0 then fails to update to a
// broken 1.2.0 and comes back on 1.1.0, reporting the failure.
func TestUpdateThroughNpx(t *testing.T) {
	npx := testsupport.Tool(t, "npx")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	v, token := testsupport.Verdaccio(t, "@second-inc")
	for _, p := range []npmtest.Package{launcherPackage("1.0.0", false), launcherPackage("1.1.0", false)} {
		if err := npmtest.Publish(ctx, v.URL, token, p); err != nil {
			t.Fatal(err)
		}
	}

	userHome := t.TempDir()
	if err := v.WriteNpmrc(filepath.Join(userHome, ".npmrc"), token); err != nil {
		t.Fatal(err)
	}
	layout := home.Layout{Root: filepath.Join(t.TempDir(), "second-home")}
	env := []string{
		"PATH=" + filepath.Dir(npx) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + userHome,
		"SECOND_UPDATE_FIXTURE_EXE=" + exe,
	}
	defer stopAll(t, layout)

	// Version 1.0.0 starts the way users start it.
	first := exec.Command(npx, "--yes", "@second-inc/cli@1.0.0", "start", "--home", layout.Root, "--note", "same-flags")
	first.Env = env
	first.Dir = userHome
	firstLog, _ := os.Create(filepath.Join(userHome, "first.log"))
	defer firstLog.Close()
	first.Stdout, first.Stderr = firstLog, firstLog
	first.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	firstDone := make(chan error, 1)
	go func() { firstDone <- first.Wait() }()
	defer syscall.Kill(-first.Process.Pid, syscall.SIGKILL)

	c := waitVersion(t, ctx, layout, "1.0.0", filepath.Join(userHome, "first.log"))
	oldPID := c.Info.PID

	checkNewestAvailable(t, ctx, c)

	// Install the newest: empty body.
	var st update.State
	c = installNewestAndCheckHandover(t, ctx, layout, c, &st, oldPID, firstDone)
	assertHistory(t, layout, "started 1.0.0", "stopped 1.0.0", "started 1.1.0")

	// A broken 1.2.0: the install fails and 1.1.0 comes back.
	if err := npmtest.Publish(ctx, v.URL, token, launcherPackage("1.2.0", true)); err != nil {
		t.Fatal(err)
	}
	pid11 := c.Info.PID
	if err := c.Call(ctx, "POST", "/update/install", map[string]string{"version": "1.2.0"}, &st); err != nil {
		t.Fatal(err)
	}
	waitRolledBackTo110(t, ctx, layout, pid11)
	assertHistory(t, layout, "started 1.0.0", "stopped 1.0.0", "started 1.1.0", "stopped 1.1.0", "started 1.1.0")
	checkUpdateLogs(t, layout, userHome)
}

// checkNewestAvailable checks that 1.0.0 sees 1.1.0 on latest as an update.
func checkNewestAvailable(t *testing.T, ctx context.Context, c *client.Client) {
	t.Helper()
	var rs control.ReleaseStatus
	if err := c.Call(ctx, "GET", "/release/status", nil, &rs); err != nil {
		t.Fatal(err)
	}
	if rs.Newest != "1.1.0" || !rs.UpdateAvailable || rs.Error != "" || rs.Channel != "latest" {
		t.Fatalf("release status on 1.0.0 = %+v", rs)
	}
}

// installNewestAndCheckHandover installs the newest release through c, waits
// for 1.1.0 and checks the 1.0.0 runtime (oldPID, its launcher firstDone)
// is gone; it returns the client of 1.1.0.
func installNewestAndCheckHandover(t *testing.T, ctx context.Context, layout home.Layout, c *client.Client, st *update.State, oldPID int, firstDone chan error) *client.Client {
	t.Helper()
	if err := c.Call(ctx, "POST", "/update/install", map[string]string{"version": ""}, st); err != nil {
		t.Fatal(err)
	}
	if st.To != "1.1.0" {
		t.Fatalf("install answered %+v", *st)
	}
	c = waitVersion(t, ctx, layout, "1.1.0", layout.Log("update"))
	if c.Info.PID == oldPID {
		t.Fatal("1.1.0 reports the old pid")
	}
	select {
	case err := <-firstDone:
		if err != nil {
			t.Errorf("the 1.0.0 launcher exited with %v after handing over", err)
		}
	case <-time.After(15 * time.Second):
		t.Error("the 1.0.0 runtime did not exit after handing over")
	}
	if alive(oldPID) {
		t.Errorf("old runtime pid %d still alive", oldPID)
	}
	return c
}

// waitRolledBackTo110 waits up to 90 s for the broken 1.2.0 install to end
// rolled back, with 1.1.0 (pid11) still running.
func waitRolledBackTo110(t *testing.T, ctx context.Context, layout home.Layout, pid11 int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		if c2, err := client.Open(layout); err == nil {
			var rs control.ReleaseStatus
			if err := c2.Call(ctx, "GET", "/release/status", nil, &rs); err == nil && rs.Update != nil && !rs.Update.Running() {
				if rs.Update.Phase != update.PhaseRolledBack || rs.Update.Error != update.CodeNewExited || rs.Update.To != "1.2.0" {
					t.Fatalf("after a broken update: %+v", rs.Update)
				}
				if rs.Current != "1.1.0" || c2.Info.Version != "1.1.0" || c2.Info.PID != pid11 {
					t.Fatalf("after rollback: current %s, control file %+v", rs.Current, c2.Info)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rollback reported within 90 s; update log:\n%s", tail(layout.Log("update")))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkUpdateLogs checks the update log names the broken release and that
// the self-update transcript the user sees has no npm notices (nothing in
// this test's environment turns them off; the installer does).
func checkUpdateLogs(t *testing.T, layout home.Layout, userHome string) {
	t.Helper()
	if b, _ := os.ReadFile(layout.Log("update")); !strings.Contains(string(b), "broken on purpose") {
		t.Errorf("update log lacks the broken release's message:\n%s", b)
	}
	for _, f := range []string{layout.Log("update"), filepath.Join(userHome, "first.log")} {
		if b, _ := os.ReadFile(f); strings.Contains(string(b), "npm notice") {
			t.Errorf("%s shows npm notices:\n%s", f, b)
		}
	}
}

func waitVersion(t *testing.T, ctx context.Context, l home.Layout, version, logPath string) *client.Client {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := client.Open(l); err == nil && c.Info.Version == version {
			if h, err := c.Health(ctx); err == nil && h.OK && h.Version == version {
				return c
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("version %s did not answer within 90 s; %s:\n%s", version, logPath, tail(logPath))
	return nil
}

func assertHistory(t *testing.T, l home.Layout, want ...string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(l.DataDir(), "history.log"))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(string(b)), "\n")
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("data/history.log = %q, want %q", got, want)
	}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// stopAll stops whatever runtime runs in the home, then kills its group.
func stopAll(t *testing.T, l home.Layout) {
	c, err := client.Open(l)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.Stop(ctx)
	for i := 0; i < 50 && alive(c.Info.PID); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if pgid, err := syscall.Getpgid(c.Info.PID); err == nil && pgid > 1 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	if b, err := json.Marshal(c.Info); err == nil {
		t.Logf("stopped runtime %s", b)
	}
}
