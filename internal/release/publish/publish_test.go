package publish_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/release/publish"
	"github.com/second-inc/second-release/internal/testsupport"
	"github.com/second-inc/second-release/internal/testsupport/faultproxy"
)

// checkComplete asserts the registry holds every package of dist's release
// with the local integrity, tagged, and the ledger says so.
func checkComplete(t *testing.T, reg publish.Registry, l *publish.Ledger, tag string) {
	t.Helper()
	if !l.Complete {
		t.Errorf("ledger not complete: %+v", l)
	}
	for _, e := range l.Packages {
		info, err := reg.Package(context.Background(), e.Name)
		if err != nil || info == nil {
			t.Fatalf("%s: %v %v", e.Name, info, err)
		}
		if got := info.Versions[e.Version]; got != e.Integrity {
			t.Errorf("%s@%s: registry integrity %q, local %q", e.Name, e.Version, got, e.Integrity)
		}
		if info.DistTags[tag] != e.Version {
			t.Errorf("%s: dist-tag %s = %q, want %s", e.Name, tag, info.DistTags[tag], e.Version)
		}
		if _, ok := info.DistTags[publish.DefaultStagingTag]; ok {
			t.Errorf("%s: staging tag left behind: %v", e.Name, info.DistTags)
		}
		if !e.Tagged || (e.State != publish.StatePublished && e.State != publish.StateSkipped) {
			t.Errorf("%s: ledger entry %+v", e.Name, e)
		}
	}
}

func states(l *publish.Ledger) map[string]string {
	m := map[string]string{}
	for _, e := range l.Packages {
		m[e.Name] = e.State
	}
	return m
}

func TestPublishThenRerunSkips(t *testing.T) {
	srv, token := registry(t)
	env := npmEnv(t, srv.URL, token)
	dist := release(t, "happy", "1.0.0", "a")
	reg := direct(t, srv, token)
	ctx := context.Background()

	// Dry run: plans everything, changes nothing, writes no ledger.
	opts := options(t, dist, srv.URL, env)
	opts.DryRun = true
	l, err := publish.Run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range states(l) {
		if s != publish.StatePlanned {
			t.Errorf("dry run: %s is %s, want planned", name, s)
		}
	}
	if info, _ := reg.Package(ctx, launcherName("happy")); info != nil {
		t.Fatal("dry run published the launcher")
	}
	if _, err := os.Stat(filepath.Join(dist, publish.LedgerFile)); err == nil {
		t.Error("dry run wrote the ledger")
	}

	w := watch(reg, launcherName("happy"), []string{payloadName("happy", "darwin-arm64"), payloadName("happy", "linux-x64")})
	l, err = publish.Run(ctx, options(t, dist, srv.URL, env))
	w.Stop(t)
	if err != nil {
		t.Fatal(err)
	}
	checkComplete(t, reg, l, "latest")
	for name, s := range states(l) {
		if s != publish.StatePublished {
			t.Errorf("first run: %s is %s, want published", name, s)
		}
	}
	saved, err := publish.ReadLedger(dist)
	if err != nil || saved == nil || !saved.Complete || saved.User != "releaser" {
		t.Errorf("ledger on disk: %+v %v", saved, err)
	}

	l, err = publish.Run(ctx, options(t, dist, srv.URL, env))
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range states(l) {
		if s != publish.StateSkipped {
			t.Errorf("second run: %s is %s, want skipped", name, s)
		}
	}
	if l.Runs != 2 {
		t.Errorf("ledger runs %d, want 2", l.Runs)
	}
	var sb strings.Builder
	l.WriteTable(&sb)
	if !strings.Contains(sb.String(), "skipped (already published)") || !strings.Contains(sb.String(), "3 skipped") {
		t.Errorf("summary:\n%s", sb.String())
	}

	// A prerelease goes to next by default and leaves latest alone.
	dist2 := release(t, "happy", "1.1.0-rc.1", "b")
	l, err = publish.Run(ctx, options(t, dist2, srv.URL, env))
	if err != nil {
		t.Fatal(err)
	}
	checkComplete(t, reg, l, "next")
	info, _ := reg.Package(ctx, launcherName("happy"))
	if info.DistTags["latest"] != "1.0.0" {
		t.Errorf("latest moved to %q by a prerelease", info.DistTags["latest"])
	}
}

// TestFaults breaks one publish per scenario through a proxy, then runs
// publish again: it must complete, and at no moment may the launcher be
// visible without its payloads or a version change its contents.
func TestFaults(t *testing.T) {
	srv, token := registry(t)
	reg := direct(t, srv, token)
	proxy, err := faultproxy.Start(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	env := npmEnv(t, proxy.URL, token)

	tests := []struct {
		name string
		rule func(prefix string, kill func()) faultproxy.Rule
		// child runs the first publish in a separate process (killed by the rule).
		child bool
		// firstMayPass: the first run may succeed (the registry kept the upload).
		firstMayPass bool
		// bulk: bytes of incompressible data in each payload.
		bulk int
	}{
		// A payload of several MB, reset after a fifth of its PUT body: the
		// client is mid-upload, not done and waiting for the answer.
		{name: "connection reset during payload upload", bulk: 4 << 20, rule: func(prefix string, _ func()) faultproxy.Rule {
			return faultproxy.Rule{Method: "PUT", Suffix: "/" + payloadName(prefix, "linux-x64"), Action: faultproxy.Reset, ResetAt: 0.2}
		}},
		{name: "503 on the launcher", rule: func(prefix string, _ func()) faultproxy.Rule {
			return faultproxy.Rule{Method: "PUT", Suffix: "/" + launcherName(prefix), Action: faultproxy.Status, Status: http.StatusServiceUnavailable}
		}},
		{name: "timeout after the registry stored a payload", firstMayPass: true, rule: func(prefix string, _ func()) faultproxy.Rule {
			return faultproxy.Rule{Method: "PUT", Suffix: "/" + payloadName(prefix, "darwin-arm64"), Action: faultproxy.Stall, Delay: 10 * time.Second}
		}},
		{name: "crash between payloads and launcher", child: true, rule: func(prefix string, kill func()) faultproxy.Rule {
			return faultproxy.Rule{Method: "PUT", Suffix: "/" + launcherName(prefix), Action: faultproxy.Hook, Hook: func(*http.Request) { kill() }}
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := "fault" + string(rune('a'+i))
			dist := releaseWithBulk(t, prefix, "2.0.0", tc.name, tc.bulk)
			payloads := []string{payloadName(prefix, "darwin-arm64"), payloadName(prefix, "linux-x64")}
			w := watch(reg, launcherName(prefix), payloads)
			defer w.Stop(t)
			ctx := context.Background()

			var child *exec.Cmd
			kill := func() {
				if child != nil && child.Process != nil {
					syscall.Kill(-child.Process.Pid, syscall.SIGKILL)
				}
			}
			proxy.Clear()
			proxy.Add(tc.rule(prefix, kill))
			hits := len(proxy.Hits())

			var firstErr error
			if tc.child {
				arg, _ := json.Marshal(map[string]string{"Dist": dist, "Registry": proxy.URL})
				child = exec.Command(os.Args[0], "-test.run=^$")
				child.Env = append(env, childEnv+"="+string(arg))
				child.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				out, err := child.CombinedOutput()
				if ws, ok := child.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
					t.Fatalf("child was not killed: %v\n%s", err, out)
				}
				firstErr = err
			} else {
				opts := options(t, dist, proxy.URL, env)
				if tc.firstMayPass {
					// npm gives up on the stalled upload long before the proxy answers.
					opts.Uploader = &publish.NPMCLI{Env: env, Timeout: 5 * time.Second}
				}
				_, firstErr = publish.Run(ctx, opts)
			}
			if len(proxy.Hits()) == hits {
				t.Fatalf("the fault never fired (first run: %v); requests: %v", firstErr, proxy.Requests())
			}
			checkResetsMidBody(t, proxy.Hits()[hits:])
			if firstErr == nil && !tc.firstMayPass {
				t.Fatal("first publish succeeded despite the fault")
			}
			t.Logf("first run: %v", firstErr)
			// The launcher must not be in after a failed first run.
			if info, _ := reg.Package(ctx, launcherName(prefix)); firstErr != nil && info != nil && info.Versions["2.0.0"] != "" && tc.name != "timeout after the registry stored a payload" {
				t.Errorf("launcher published although the run failed before it")
			}
			if firstErr != nil && !tc.child {
				l, _ := publish.ReadLedger(dist)
				if l == nil || l.Complete || l.Next == "" {
					t.Errorf("ledger after failure: %+v", l)
				}
			}

			proxy.Clear()
			l, err := publish.Run(ctx, options(t, dist, proxy.URL, env))
			if err != nil {
				t.Fatalf("rerun: %v", err)
			}
			checkComplete(t, reg, l, "latest")
			l, err = publish.Run(ctx, options(t, dist, proxy.URL, env))
			if err != nil {
				t.Fatalf("third run: %v", err)
			}
			for name, s := range states(l) {
				if s != publish.StateSkipped {
					t.Errorf("third run: %s is %s, want skipped", name, s)
				}
			}
		})
	}
}

// checkResetsMidBody: every reset came while a body of several MB was
// still being sent, not after it.
func checkResetsMidBody(t *testing.T, hits []faultproxy.Hit) {
	t.Helper()
	for _, h := range hits {
		if h.Action != faultproxy.Reset {
			continue
		}
		if h.BodySize < 4<<20 || h.BodyRead <= 0 || h.BodyRead >= h.BodySize/2 {
			t.Errorf("reset after %d of %d body bytes; want a body of several MB cut early", h.BodyRead, h.BodySize)
		}
		t.Logf("reset after %d of %d body bytes", h.BodyRead, h.BodySize)
	}
}

func TestRefusals(t *testing.T) {
	srv, token := registry(t)
	reg := direct(t, srv, token)
	ctx := context.Background()
	env := npmEnv(t, srv.URL, token)

	// Put a different build of one payload into the registry first.
	other := release(t, "conflict", "3.0.0", "other bytes")
	if err := (&publish.NPMCLI{Env: env}).Publish(ctx, filepath.Join(other, "npm", "second-inc-conflict-cli-local-linux-x64-3.0.0.tgz"),
		publish.UploadArgs{Registry: srv.URL, Scope: "@second-inc", Tag: "latest", Access: "restricted"}); err != nil {
		t.Fatal(err)
	}
	// latest of "newer" is at 5.0.0.
	newer := release(t, "newer", "5.0.0", "x")
	if _, err := publish.Run(ctx, options(t, newer, srv.URL, env)); err != nil {
		t.Fatal(err)
	}
	closed := "http://127.0.0.1:" + strconv.Itoa(testsupport.FreePort(t)) + "/"

	tests := []struct {
		name    string
		prefix  string
		version string
		mod     func(*publish.Options)
		want    []string
	}{
		{"integrity conflict", "conflict", "3.0.0", nil,
			[]string{"integrity conflict", payloadName("conflict", "linux-x64") + "@3.0.0", "bump the version"}},
		{"provenance with restricted access", "prov", "1.0.0", func(o *publish.Options) { o.Provenance = true },
			[]string{"--provenance cannot be used with --access restricted"}},
		{"prerelease tagged latest", "pre", "1.0.0-beta.1", func(o *publish.Options) { o.Tag = "latest" },
			[]string{"prerelease", "--tag next"}},
		{"tag that is a version", "tagv", "1.0.0", func(o *publish.Options) { o.Tag = "1.0.0" },
			[]string{"looks like a version"}},
		{"missing auth", "noauth", "1.0.0", func(o *publish.Options) { o.Env = npmEnv(t, srv.URL, "") },
			[]string{"not authenticated to " + srv.URL, "npm login"}},
		{"bad token", "badauth", "1.0.0", func(o *publish.Options) { o.Env = npmEnv(t, srv.URL, "bm90LWEtdG9rZW4=") },
			[]string{"not authenticated"}},
		{"unreachable registry", "down", "1.0.0", func(o *publish.Options) { o.Registry = closed },
			[]string{"registry " + closed + " is unreachable", "--registry"}},
		{"latest moving back", "newer", "4.0.0", nil,
			[]string{"latest points at 5.0.0", "--force"}},
		{"bad access", "acc", "1.0.0", func(o *publish.Options) { o.Access = "private" },
			[]string{`--access "private"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dist := release(t, tc.prefix, tc.version, "local")
			opts := options(t, dist, srv.URL, env)
			if tc.mod != nil {
				tc.mod(&opts)
			}
			_, err := publish.Run(ctx, opts)
			var refusal *publish.RefusalError
			if !errors.As(err, &refusal) {
				t.Fatalf("want a refusal, got %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), token) {
				t.Error("error shows the token")
			}
			// Nothing of this version was published.
			for _, name := range []string{launcherName(tc.prefix), payloadName(tc.prefix, "darwin-arm64")} {
				if info, _ := reg.Package(ctx, name); info != nil && info.Versions[tc.version] != "" {
					t.Errorf("%s@%s was published despite the refusal", name, tc.version)
				}
			}
		})
	}

	// --force lets latest move back.
	dist := release(t, "newer", "4.0.0", "local")
	opts := options(t, dist, srv.URL, env)
	opts.Force = true
	l, err := publish.Run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	checkComplete(t, reg, l, "latest")
}

// TestNpmConfigHonoured: without --registry the scope's registry from the
// user's .npmrc decides; with --registry the flag wins even over a scoped
// registry (npm itself prefers @scope:registry, so publish passes both).
func TestNpmConfigHonoured(t *testing.T) {
	srv, token := registry(t)
	reg := direct(t, srv, token)
	ctx := context.Background()
	dead := "http://127.0.0.1:" + strconv.Itoa(testsupport.FreePort(t)) + "/"
	nerf := "//" + strings.Trim(strings.TrimPrefix(srv.URL, "http://"), "/") + "/:_authToken=" + token

	tests := []struct {
		name, npmrc, flag, prefix string
	}{
		{"scoped registry from .npmrc", "registry=" + dead + "\n@second-inc:registry=" + srv.URL + "\n" + nerf + "\n", "", "scoped"},
		{"--registry beats a scoped registry", "@second-inc:registry=" + dead + "\n" + nerf + "\n", srv.URL, "flag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := npmEnv(t, srv.URL, token)
			rc := filepath.Join(t.TempDir(), ".npmrc")
			os.WriteFile(rc, []byte(tc.npmrc), 0o600)
			env = append(env, "npm_config_userconfig="+rc) // later entries win
			dist := release(t, tc.prefix, "1.0.0", "a")
			o := options(t, dist, tc.flag, env)
			l, err := publish.Run(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			if l.Registry != srv.URL {
				t.Errorf("published to %s, want %s", l.Registry, srv.URL)
			}
			checkComplete(t, reg, l, "latest")
		})
	}
}
