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
	"github.com/second-inc/second-release/internal/release/platform"
	"github.com/second-inc/second-release/internal/testsupport"
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
	cfg, err := config.Load(filepath.Join(repo, config.FileName))
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	c, err := Build(context.Background(), Options{
		Config:      cfg,
		Snapshot:    true,
		Platforms:   platforms,
		SkipNatives: true, // the pinned mongod/redis archives are out of reach here
		Log:         slog.New(slog.NewTextHandler(&log, nil)),
	})
	if err != nil {
		t.Fatalf("build in %s: %v\nlog:\n%s", repo, err, log.String())
	}
	return c
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
	repoA := clone(t, testsupport.RepoRoot(t), t.TempDir())
	repoB := clone(t, repoA, t.TempDir()) // the same commit, whatever lands meanwhile
	a := buildClone(t, repoA, nil)
	time.Sleep(1100 * time.Millisecond) // a different wall-clock second for the second build
	b := buildClone(t, repoB, nil)

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
		want := map[string]string{}
		for _, x := range a.Release.Artifacts {
			if x.Kind == artifact.KindPayload || x.Kind == artifact.KindLauncher {
				want[x.Path] = x.Integrity
			}
		}
		for _, y := range b.Release.Artifacts {
			if w, ok := want[y.Path]; ok && w != y.Integrity {
				t.Errorf("%s: %s in one build, %s in the other", y.Path, w, y.Integrity)
				if y.Platform != "" {
					t.Logf("files that differ in %s: %v", y.Platform, differingFiles(t, a.Payloads[y.Platform].Dir, b.Payloads[y.Platform].Dir))
				}
			}
			delete(want, y.Path)
		}
		for p := range want {
			t.Errorf("%s only in the first build", p)
		}
	})

	t.Run("launcher runs second version", func(t *testing.T) {
		runThroughLauncher(t, a, host)
	})
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
