package updatecheck_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/local/updatecheck"
	"github.com/second-inc/second-release/internal/npmconf"
	"github.com/second-inc/second-release/internal/npmregistry"
	"github.com/second-inc/second-release/internal/testsupport"
	"github.com/second-inc/second-release/internal/testsupport/npmtest"
)

type fakeLookup struct {
	tags  map[string]string
	err   error
	calls atomic.Int32
	gate  chan struct{} // when set, DistTags waits for it
}

func (f *fakeLookup) DistTags(ctx context.Context, pkg string) (map[string]string, error) {
	f.calls.Add(1)
	if f.gate != nil {
		<-f.gate
	}
	return f.tags, f.err
}

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		name, current string
		tags          map[string]string
		err           error
		channel       string
		newest        string
		update        bool
		code          string
	}{
		{"stable, newer latest", "1.2.3", map[string]string{"latest": "1.3.0", "next": "2.0.0-rc.1"}, nil, "latest", "1.3.0", true, ""},
		{"stable, same", "1.3.0", map[string]string{"latest": "1.3.0"}, nil, "latest", "1.3.0", false, ""},
		{"stable ignores next", "1.3.0", map[string]string{"latest": "1.3.0", "next": "9.0.0-rc.1"}, nil, "latest", "1.3.0", false, ""},
		{"stable, registry older", "1.4.0", map[string]string{"latest": "1.3.0"}, nil, "latest", "1.3.0", false, ""},
		{"prerelease follows next", "2.0.0-rc.1", map[string]string{"latest": "1.3.0", "next": "2.0.0-rc.2"}, nil, "next", "2.0.0-rc.2", true, ""},
		{"prerelease sees newer stable", "2.0.0-rc.2", map[string]string{"latest": "2.0.0", "next": "2.0.0-rc.2"}, nil, "next", "2.0.0", true, ""},
		{"prerelease, no next tag", "2.0.0-rc.1", map[string]string{"latest": "1.0.0"}, nil, "next", "1.0.0", false, ""},
		{"semver not string order", "1.9.0", map[string]string{"latest": "1.10.0"}, nil, "latest", "1.10.0", true, ""},
		{"no tag", "1.0.0", map[string]string{}, nil, "latest", "", false, updatecheck.CodeNoDistTag},
		{"garbage tag", "1.0.0", map[string]string{"latest": "banana"}, nil, "latest", "", false, updatecheck.CodeInvalidVersion},
		{"garbage current", "dev", map[string]string{"latest": "1.0.0"}, nil, "latest", "", false, updatecheck.CodeInvalidVersion},
		{"auth", "1.0.0", nil, &npmregistry.Error{Code: npmregistry.CodeAuthRequired}, "latest", "", false, "auth_required"},
		{"other error", "1.0.0", nil, errors.New("boom with secret"), "latest", "", false, updatecheck.CodeInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := updatecheck.New(updatecheck.Options{Package: "@second-inc/cli", Current: tc.current, Lookup: &fakeLookup{tags: tc.tags, err: tc.err}})
			s := c.Status(context.Background())
			if s.Channel != tc.channel || s.Newest != tc.newest || s.UpdateAvailable != tc.update || s.Error != tc.code {
				t.Errorf("got %+v; want channel %s newest %q update %v error %q", s, tc.channel, tc.newest, tc.update, tc.code)
			}
		})
	}
}

func TestCacheAndSingleFlight(t *testing.T) {
	now := time.Unix(1000, 0)
	var clock sync.Mutex
	f := &fakeLookup{tags: map[string]string{"latest": "2.0.0"}, gate: make(chan struct{})}
	c := updatecheck.New(updatecheck.Options{Current: "1.0.0", Lookup: f, Now: func() time.Time { clock.Lock(); defer clock.Unlock(); return now }})

	var wg sync.WaitGroup
	results := make([]updatecheck.Status, 8)
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = c.Status(context.Background()) }()
	}
	// Let every goroutine reach the gate or the wait, then release one request.
	for f.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(f.gate)
	wg.Wait()
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("%d registry requests for 8 concurrent callers, want 1", n)
	}
	for _, r := range results {
		if r.Newest != "2.0.0" {
			t.Fatalf("a caller got %+v", r)
		}
	}
	c.Status(context.Background())
	clock.Lock()
	now = now.Add(59 * time.Second)
	clock.Unlock()
	c.Status(context.Background())
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("%d requests within the 60 s cache, want 1", n)
	}
	clock.Lock()
	now = now.Add(2 * time.Second)
	clock.Unlock()
	c.Status(context.Background())
	if n := f.calls.Load(); n != 2 {
		t.Fatalf("%d requests after the cache expired, want 2", n)
	}
	c.Invalidate()
	c.Status(context.Background())
	if n := f.calls.Load(); n != 3 {
		t.Fatalf("%d requests after Invalidate, want 3", n)
	}
}

func TestPackageFromEnv(t *testing.T) {
	env := map[string]string{}
	get := func(k string) string { return env[k] }
	if got := updatecheck.PackageFromEnv(get); got != "@second-inc/cli" {
		t.Errorf("default = %q", got)
	}
	env["SECOND_CLI_RELEASE_PACKAGE"] = "@acme/cli"
	if got := updatecheck.PackageFromEnv(get); got != "@acme/cli" {
		t.Errorf("from env = %q", got)
	}
}

// The user's own npm config decides registry and auth: a restricted scope on
// a real Verdaccio is visible with the token from .npmrc and reports
// auth_required without it.
func TestVerdaccioWithUserNpmrc(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	v, token := testsupport.Verdaccio(t, "@second-inc")
	for _, p := range []npmtest.Package{
		{Manifest: map[string]any{"name": "@second-inc/cli", "version": "1.0.0"}},
		{Manifest: map[string]any{"name": "@second-inc/cli", "version": "1.1.0"}},
		{Manifest: map[string]any{"name": "@second-inc/cli", "version": "1.2.0-rc.1"}, Tag: "next"},
	} {
		if err := npmtest.Publish(ctx, v.URL, token, p); err != nil {
			t.Fatal(err)
		}
	}

	type setup struct{ user, project string }
	scopeOnly := "@second-inc:registry=" + v.URL + "\n"
	auth := "//" + strings.Trim(strings.TrimPrefix(v.URL, "http://"), "/") + "/:_authToken=${TEST_NPM_TOKEN}\n"
	for _, tc := range []struct {
		name    string
		files   setup
		current string
		newest  string
		code    string
	}{
		{"token in ~/.npmrc", setup{user: scopeOnly + auth}, "1.0.0", "1.1.0", ""},
		{"token in project .npmrc", setup{user: scopeOnly, project: auth}, "1.0.0", "1.1.0", ""},
		{"prerelease channel", setup{user: scopeOnly + auth}, "1.2.0-rc.0", "1.2.0-rc.1", ""},
		{"no token", setup{user: scopeOnly}, "1.0.0", "", "auth_required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home, proj := t.TempDir(), t.TempDir()
			for path, body := range map[string]string{filepath.Join(home, ".npmrc"): tc.files.user, filepath.Join(proj, ".npmrc"): tc.files.project} {
				if body != "" {
					if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			cfg, err := npmconf.Load(npmconf.Options{Env: []string{"HOME=" + home, "TEST_NPM_TOKEN=" + token}, ProjectDir: proj})
			if err != nil {
				t.Fatal(err)
			}
			c := updatecheck.New(updatecheck.Options{Current: tc.current, Lookup: &npmregistry.Client{Config: cfg}})
			s := c.Status(ctx)
			if s.Newest != tc.newest || s.Error != tc.code || s.UpdateAvailable != (tc.newest != "") {
				t.Errorf("status %+v; want newest %q error %q", s, tc.newest, tc.code)
			}
		})
	}
}
