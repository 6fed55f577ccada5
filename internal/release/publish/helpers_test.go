package publish_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/npmconf"
	"github.com/second-inc/second-release/internal/npmregistry"
	"github.com/second-inc/second-release/internal/release/artifact"
	"github.com/second-inc/second-release/internal/release/publish"
	"github.com/second-inc/second-release/internal/release/verdaccio"
	"github.com/second-inc/second-release/internal/testsupport"
)

// One Verdaccio serves every test of the package; each test uses its own
// package names, so they do not see each other.
var shared struct {
	once  sync.Once
	srv   *verdaccio.Server
	token string
	cache string
	err   error
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childPublish())
	}
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Stop()
		os.RemoveAll(shared.srv.Dir)
	}
	if shared.cache != "" {
		os.RemoveAll(shared.cache)
	}
	os.Exit(code)
}

// registry returns the shared Verdaccio and a publisher's token.
func registry(t *testing.T) (*verdaccio.Server, string) {
	t.Helper()
	bin := testsupport.Tool(t, "verdaccio")
	testsupport.Tool(t, "npm")
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "publish-verdaccio-")
		if err != nil {
			shared.err = err
			return
		}
		shared.cache, _ = os.MkdirTemp("", "publish-npm-cache-")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.srv, shared.err = verdaccio.Start(ctx, verdaccio.Options{Dir: dir, Bin: bin})
		if shared.err == nil {
			shared.token, shared.err = shared.srv.AddUser(ctx, "releaser", "releaser-password-1")
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.srv, shared.token
}

// npmEnv is an environment whose npm talks to registryURL with token (none
// when empty), isolated from the machine's own npm config.
func npmEnv(t *testing.T, registryURL, token string) []string {
	t.Helper()
	home := t.TempDir()
	rc := filepath.Join(home, ".npmrc")
	if err := verdaccio.WriteNpmrcFor(rc, registryURL, token, "@second-inc"); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		k := strings.ToLower(strings.SplitN(kv, "=", 2)[0])
		if strings.HasPrefix(k, "npm_config_") || k == "home" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "npm_config_userconfig="+rc, "npm_config_cache="+shared.cache,
		"npm_config_fetch_retries=0", "npm_config_update_notifier=false", "npm_config_audit=false",
		"npm_config_fund=false", "npm_config_loglevel=warn")
}

// release writes a dist/ with two payloads and a launcher named after
// prefix; variant changes every tarball's bytes.
func release(t *testing.T, prefix, version, variant string) string {
	t.Helper()
	return releaseWithBulk(t, prefix, version, variant, 0)
}

// releaseWithBulk is release with bulk bytes of incompressible data in each
// payload, so an upload takes many writes.
func releaseWithBulk(t *testing.T, prefix, version, variant string, bulk int) string {
	t.Helper()
	dist := t.TempDir()
	var filler string
	if bulk > 0 {
		b := make([]byte, bulk)
		for i := range b {
			b[i] = byte(rand.Uint32())
		}
		filler = string(b)
	}
	if err := os.MkdirAll(filepath.Join(dist, "npm"), 0o755); err != nil {
		t.Fatal(err)
	}
	rel := &artifact.Release{Version: version, Commit: "0000000"}
	add := func(kind, name, platform string) {
		pj, _ := json.Marshal(map[string]any{"name": name, "version": version, "description": "test " + variant, "license": "UNLICENSED"})
		file := filepath.Join(dist, "npm", strings.NewReplacer("@", "", "/", "-").Replace(name)+"-"+version+".tgz")
		files := map[string]string{"package.json": string(pj), "README.md": variant}
		if kind == artifact.KindPayload && filler != "" {
			files["bulk.bin"] = filler
		}
		testsupport.WriteNpmTarball(t, file, files)
		a, err := artifact.FromFile(dist, file, artifact.Artifact{Kind: kind, Name: name, Version: version, Platform: platform})
		if err != nil {
			t.Fatal(err)
		}
		rel.Artifacts = append(rel.Artifacts, a)
	}
	for _, p := range []string{"darwin-arm64", "linux-x64"} {
		add(artifact.KindPayload, payloadName(prefix, p), p)
	}
	add(artifact.KindLauncher, launcherName(prefix), "")
	if err := artifact.Write(dist, rel); err != nil {
		t.Fatal(err)
	}
	return dist
}

func launcherName(prefix string) string { return "@second-inc/" + prefix + "-cli" }
func payloadName(prefix, platform string) string {
	return "@second-inc/" + prefix + "-cli-local-" + platform
}

// options for a publish of dist through registryURL.
func options(t *testing.T, dist, registryURL string, env []string) publish.Options {
	return publish.Options{
		Dist: dist, Registry: registryURL, Env: env, Access: "restricted",
		Log:            slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		VisibleTimeout: 20 * time.Second,
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// direct reads the registry without the proxy, as the publisher's user.
func direct(t *testing.T, srv *verdaccio.Server, token string) *npmregistry.Client {
	t.Helper()
	rc := filepath.Join(t.TempDir(), ".npmrc")
	if err := verdaccio.WriteNpmrcFor(rc, srv.URL, token, "@second-inc"); err != nil {
		t.Fatal(err)
	}
	conf, err := npmconf.Load(npmconf.Options{Env: []string{"npm_config_userconfig=" + rc}})
	if err != nil {
		t.Fatal(err)
	}
	return &npmregistry.Client{Registry: srv.URL, Config: conf}
}

// watcher polls the registry while a publish runs and records every state
// that must never exist: a launcher version whose payloads are not all in,
// or a version whose integrity changes.
type watcher struct {
	mu         sync.Mutex
	violations []string
	polls      int
	stop       chan struct{}
	done       chan struct{}
}

func watch(reg publish.Registry, launcher string, payloads []string) *watcher {
	w := &watcher{stop: make(chan struct{}), done: make(chan struct{})}
	seen := map[string]string{}
	check := func() {
		ctx := context.Background()
		infos := map[string]*npmregistry.PackageInfo{}
		// Launcher first: a payload seen after it can only have been added later.
		for _, name := range append([]string{launcher}, payloads...) {
			info, err := reg.Package(ctx, name)
			if err != nil {
				return
			}
			infos[name] = info
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.polls++
		for name, info := range infos {
			if info == nil {
				continue
			}
			for v, integ := range info.Versions {
				key := name + "@" + v
				if prev, ok := seen[key]; ok && prev != integ {
					w.violations = append(w.violations, fmt.Sprintf("%s changed integrity %s -> %s", key, prev, integ))
				}
				seen[key] = integ
			}
		}
		if li := infos[launcher]; li != nil {
			for v := range li.Versions {
				for _, p := range payloads {
					if pi := infos[p]; pi == nil || pi.Versions[v] == "" {
						w.violations = append(w.violations, fmt.Sprintf("launcher %s@%s visible without %s@%s", launcher, v, p, v))
					}
				}
			}
		}
	}
	go func() {
		defer close(w.done)
		for {
			check()
			select {
			case <-w.stop:
				check()
				return
			case <-time.After(25 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *watcher) Stop(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, v := range w.violations {
		t.Error("invariant broken:", v)
	}
	if w.polls < 2 {
		t.Errorf("watcher polled only %d times", w.polls)
	}
}

// childEnv switches the test binary into a publish child (for the crash test).
const childEnv = "PUBLISH_TEST_CHILD"

func childPublish() int {
	var o struct{ Dist, Registry string }
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	_, err := publish.Run(context.Background(), publish.Options{Dist: o.Dist, Registry: o.Registry, Access: "restricted"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
