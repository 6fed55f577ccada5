package pipeline

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/release/artifact"
	"github.com/second-inc/second-release/internal/release/config"
	"github.com/second-inc/second-release/internal/release/natives"
	"github.com/second-inc/second-release/internal/release/platform"
	"github.com/second-inc/second-release/internal/testsupport"
	"github.com/second-inc/second-release/internal/testsupport/nativesmirror"
)

// clone makes a fresh clone of root's HEAD, the way CI and a release
// engineer start: what is not committed is not built.
func clone(t *testing.T, root, dir string) string {
	t.Helper()
	dst := filepath.Join(dir, "repo")
	if out, err := exec.Command("git", "clone", "-q", root, dst).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	return dst
}

func buildClone(t *testing.T, repo string, platforms []string) *Context {
	t.Helper()
	return buildCloneWith(t, repo, Options{Platforms: platforms, SkipNatives: true}) // the pinned mongod/redis archives are out of reach here
}

// buildCloneWith builds a snapshot of repo with o's platforms and natives
// settings.
func buildCloneWith(t *testing.T, repo string, o Options) *Context {
	t.Helper()
	cfg, err := config.Load(filepath.Join(repo, config.FileName))
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	o.Config, o.Snapshot = cfg, true
	o.Log = slog.New(slog.NewTextHandler(&log, nil))
	c, err := Build(context.Background(), o)
	if err != nil {
		t.Fatalf("build in %s: %v\nlog:\n%s", repo, err, log.String())
	}
	return c
}

// hostNatives sets the build up to take the host platform's natives from a
// stand-in mirror (the others stay without): the natives' download,
// unpacking and ELF rewrites are then part of what must reproduce. It
// returns the mirror for SECOND_RELEASE_MIRROR. When the mirror cannot be
// made here (no mongod, no stand-in redis-server) the subtest says why and
// every platform builds without natives.
func hostNatives(t *testing.T, host platform.Platform) (Options, string) {
	o, url := Options{SkipNatives: true}, ""
	t.Run("stand-in natives mirror for the host", func(st *testing.T) {
		// A skip here skips this subtest only; the mirror's files live as
		// long as the parent test.
		mirror := nativesmirror.Synthesize(parentDirs{st, t})
		var others []string
		for _, p := range platform.All {
			if p.ID != host.ID {
				others = append(others, p.ID)
			}
		}
		o, url = Options{SkipNativesFor: others, NativesLocks: mirror.LocksDir}, mirror.Mirror
	})
	return o, url
}

// parentDirs is a subtest whose temporary directories belong to its parent.
type parentDirs struct {
	testing.TB
	parent testing.TB
}

func (p parentDirs) TempDir() string { return p.parent.TempDir() }

// dropCachedNatives removes the host lock's archives from the release
// cache, so the next build downloads them again.
func dropCachedNatives(t *testing.T, o Options, host platform.Platform) {
	t.Helper()
	if o.NativesLocks == "" {
		return
	}
	lock, err := natives.ReadLock(filepath.Join(o.NativesLocks, host.ID, natives.LockFileName))
	if err != nil {
		t.Fatal(err)
	}
	cache, err := natives.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range lock.Natives {
		if err := os.Remove(natives.CachePath(cache, n.SHA256)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
}

// One test binary run builds twice (all four platforms) and checks both
// reproducibility and that the host's packages install and run.
func TestBuildReproducibleAndRuns(t *testing.T) {
	testsupport.Tool(t, "npm")
	if os.Getenv("SOURCE_DATE_EPOCH") != "" {
		t.Skip("SOURCE_DATE_EPOCH is set; this test checks the commit-time default")
	}
	host, err := platform.Host()
	if err != nil {
		t.Skipf("host %s/%s is not a payload platform", runtime.GOOS, runtime.GOARCH)
	}
	withNatives, mirror := hostNatives(t, host)
	if mirror != "" {
		t.Setenv("SECOND_RELEASE_MIRROR", mirror)
	}
	repoA := clone(t, testsupport.RepoRoot(t), t.TempDir())
	repoB := clone(t, repoA, t.TempDir()) // the same commit, whatever lands meanwhile
	a := buildCloneWith(t, repoA, withNatives)
	time.Sleep(1100 * time.Millisecond) // a different wall-clock second for the second build
	// The second build downloads its natives again rather than reusing the
	// first's cached archives.
	dropCachedNatives(t, withNatives, host)
	b := buildCloneWith(t, repoB, withNatives)

	t.Run("all four payloads and the launcher", func(t *testing.T) {
		if got := len(a.Release.Filter(artifact.KindPayload)); got != len(platform.All) {
			t.Fatalf("%d payload tarballs, want %d", got, len(platform.All))
		}
		if got := len(a.Release.Filter(artifact.KindLauncher)); got != 1 {
			t.Fatalf("%d launcher tarballs, want 1", got)
		}
		for _, f := range []string{artifact.FileName, "SHA256SUMS"} {
			if _, err := os.Stat(filepath.Join(a.Dist, f)); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("byte-identical tarballs", func(t *testing.T) {
		if a.Version.String() != b.Version.String() {
			t.Fatalf("versions differ: %s vs %s", a.Version, b.Version)
		}
		compareArtifacts(t, a, b)
	})

	t.Run("host payload carries its natives", func(t *testing.T) {
		if withNatives.NativesLocks == "" {
			t.Skip("no stand-in mirror here (see the mirror subtest): every payload was built without natives")
		}
		for _, c := range []*Context{a, b} {
			if got := c.Runtimes[host.ID].Natives; len(got) != 3 {
				t.Errorf("%s natives in the manifest: %v, want mongod, redis and openssl", host.ID, got)
			}
		}
	})

	t.Run("launcher runs second version", func(t *testing.T) {
		runThroughLauncher(t, a, host)
	})
}

// compareArtifacts checks both ways that a and b made the same payload and
// launcher tarballs, byte for byte: every one of a's is in b with the same
// integrity, and b has none that a lacks.
func compareArtifacts(t *testing.T, a, b *Context) {
	t.Helper()
	tarballs := func(c *Context) map[string]artifact.Artifact {
		m := map[string]artifact.Artifact{}
		for _, x := range c.Release.Artifacts {
			if x.Kind == artifact.KindPayload || x.Kind == artifact.KindLauncher {
				m[x.Path] = x
			}
		}
		return m
	}
	as, bs := tarballs(a), tarballs(b)
	for p, x := range as {
		y, ok := bs[p]
		if !ok {
			t.Errorf("%s only in the first build", p)
			continue
		}
		if x.Integrity != y.Integrity {
			t.Errorf("%s: %s in one build, %s in the other", p, x.Integrity, y.Integrity)
			if y.Platform != "" {
				t.Logf("files that differ in %s: %v", y.Platform, differingFiles(t, a.Payloads[y.Platform].Dir, b.Payloads[y.Platform].Dir))
			}
		}
	}
	for p := range bs {
		if _, ok := as[p]; !ok {
			t.Errorf("%s only in the second build", p)
		}
	}
}

func runThroughLauncher(t *testing.T, c *Context, host platform.Platform) {
	var launcherTgz, payloadTgz string
	for _, x := range c.Release.Artifacts {
		switch {
		case x.Kind == artifact.KindLauncher:
			launcherTgz = filepath.Join(c.Dist, x.Path)
		case x.Kind == artifact.KindPayload && x.Platform == host.ID:
			payloadTgz = filepath.Join(c.Dist, x.Path)
		}
	}
	tmp := t.TempDir()
	home := filepath.Join(tmp, "home")
	prefix := filepath.Join(tmp, "prefix")
	os.MkdirAll(home, 0o755)
	env := append(os.Environ(), "HOME="+home, "npm_config_cache="+filepath.Join(tmp, "npm-cache"),
		"npm_config_audit=false", "npm_config_fund=false", "npm_config_update_notifier=false")
	env = withoutEnv(env, "SECOND_HOME", "SECOND_CLI_PAYLOAD_DIR", "SECOND_CLI_PAYLOAD_PACKAGE")
	npmInstall := func(prefix, spec string) {
		t.Helper()
		cmd := exec.Command("npm", "install", "--prefix", prefix, "--no-save", spec)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm install %s: %v\n%s", spec, err, out)
		}
	}
	npmInstall(prefix, launcherTgz)
	launcherJS := filepath.Join(prefix, "node_modules", c.Config.LauncherName(), "bin", "second.js")
	run := func(extra ...string) string {
		t.Helper()
		cmd := exec.Command("node", launcherJS, "version")
		cmd.Env = append(env, extra...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("launcher version: %v\nstderr:\n%s", err, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}

	// 1. Development: a local payload dir.
	if got := run("SECOND_CLI_PAYLOAD_DIR=" + c.Payloads[host.ID].Dir); got != c.Version.String() {
		t.Errorf("through SECOND_CLI_PAYLOAD_DIR: printed %q, want %q", got, c.Version)
	}
	// 2. An installed payload under ~/.second/cli-payloads/<name>@<version>.
	name := c.Config.PayloadName(host.ID)
	dir := filepath.Join(home, ".second", "cli-payloads", name+"@"+c.Version.String())
	npmInstall(dir, payloadTgz)
	if got := run(); got != c.Version.String() {
		t.Errorf("through the installed payload: printed %q, want %q", got, c.Version)
	}
	// The web server's node_modules survived the round trip through npm.
	if _, err := os.Stat(filepath.Join(dir, "node_modules", name, "dist", "web", "node_modules")); err != nil {
		t.Errorf("installed payload lacks dist/web/node_modules: %v", err)
	}
}

func withoutEnv(env []string, names ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		keep := true
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

// differingFiles lists (up to 10) files whose bytes differ between two
// unpacked packages, to say where a reproducibility failure comes from.
func differingFiles(t *testing.T, a, b string) []string {
	var out []string
	filepath.WalkDir(a, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || len(out) >= 10 {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		x, _ := os.ReadFile(p)
		y, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil || !bytes.Equal(x, y) {
			out = append(out, rel)
		}
		return nil
	})
	return out
}
