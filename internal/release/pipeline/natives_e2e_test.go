package pipeline

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/local/procutil"
	"github.com/second-inc/second-release/internal/local/runstatus"
	"github.com/second-inc/second-release/internal/local/stack"
	"github.com/second-inc/second-release/internal/release/binarycheck"
	"github.com/second-inc/second-release/internal/release/config"
	"github.com/second-inc/second-release/internal/release/platform"
	"github.com/second-inc/second-release/internal/testsupport"
	"github.com/second-inc/second-release/internal/testsupport/nativesmirror"
)

// A payload built with natives from a mirror of upstream-shaped archives
// (Homebrew placeholders and all) starts the whole stack with nothing but
// node on PATH: its own mongod and redis-server, the system loader as
// their interpreter, no placeholder left in any RUNPATH, and redis mapping
// the payload's libssl.
func TestPayloadRunsItsOwnNatives(t *testing.T) {
	testsupport.Tool(t, "npm")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("needs node on PATH")
	}
	host, err := platform.Host()
	if err != nil || host.GOOS != "linux" {
		t.Skip("needs a linux-x64 or linux-arm64 host (the stand-in natives are Linux builds)")
	}
	mirror := nativesmirror.Synthesize(t)
	t.Setenv("SECOND_RELEASE_MIRROR", mirror.Mirror)

	repo := clone(t, testsupport.RepoRoot(t), t.TempDir())
	cfg, err := config.Load(filepath.Join(repo, config.FileName))
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	c, err := Build(context.Background(), Options{
		Config: cfg, Snapshot: true, Platforms: []string{host.ID},
		NativesLocks: mirror.LocksDir,
		Log:          slog.New(slog.NewTextHandler(&log, nil)),
	})
	if err != nil {
		t.Fatalf("build %s with natives from %s: %v\nlog:\n%s", host.ID, mirror.Mirror, err, log.String())
	}
	dir := c.Payloads[host.ID].Dir
	for _, name := range []string{"mongod", "redis", "openssl"} {
		if _, ok := c.Runtimes[host.ID].Natives[name]; !ok {
			t.Errorf("manifest natives lack %s: %v", name, c.Runtimes[host.ID].Natives)
		}
	}

	t.Run("no Homebrew placeholder left in any ELF file", func(t *testing.T) {
		checkNoPlaceholders(t, filepath.Join(dir, "dist", "runtime"), binarycheck.StandardInterpreter(host.GOARCH))
	})

	// PATH holds node and nothing else: no redis-server, no mongod.
	bin := t.TempDir()
	if err := os.Symlink(node, filepath.Join(bin, "node")); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(t.TempDir(), "home")
	env := nodeOnlyEnv(bin)
	second := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(dir, "bin", "second"), append(args, "--home", home)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	start := exec.Command(filepath.Join(dir, "bin", "second"), "start", "--no-open", "--home", home)
	start.Env = env
	out := &syncBuf{}
	start.Stdout, start.Stderr = out, out
	if err := start.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- start.Wait() }()
	t.Cleanup(func() {
		_ = start.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = start.Process.Kill()
		}
	})
	logs := func() string {
		var b strings.Builder
		for _, s := range []string{"supervisor", "mongo", "redis", "web", "worker"} {
			l, _ := os.ReadFile(filepath.Join(home, "logs", s+".log"))
			fmt.Fprintf(&b, "--- %s.log\n%s\n", s, l)
		}
		return b.String()
	}
	waitReady(t, out, done, logs)

	svc, pids := checkStatusAndHealth(t, second)

	runtimeDir := filepath.Join(dir, "dist", "runtime")
	checkRunsPayloadNatives(t, svc, runtimeDir)

	if sout, err := second("stop"); err != nil {
		t.Fatalf("second stop: %v\n%s", err, sout)
	}
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		t.Fatalf("second start still running 90 s after stop:\n%s", out)
	}
	for _, pid := range pids {
		if procutil.Alive(pid) {
			t.Errorf("pid %d still alive after stop", pid)
		}
	}
}

// checkNoPlaceholders checks every ELF file under runtimeDir: no RUNPATH or
// RPATH still holds a Homebrew placeholder, and the interpreter, if any, is
// want (the system loader).
func checkNoPlaceholders(t *testing.T, runtimeDir, want string) {
	t.Helper()
	err := filepath.WalkDir(runtimeDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := elf.Open(p)
		if err != nil {
			return nil // not ELF
		}
		defer f.Close()
		for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
			vals, _ := f.DynString(tag)
			for _, v := range vals {
				if strings.Contains(v, "@@") {
					t.Errorf("%s: %s %q still holds a placeholder", p, tag, v)
				}
			}
		}
		if got := elfInterp(f); got != "" && got != want {
			t.Errorf("%s: interpreter %q, want the system loader %s", p, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// nodeOnlyEnv is the test's environment without the project's variables,
// library overrides and PATH, with PATH set to bin alone.
func nodeOnlyEnv(bin string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "SECOND_") || strings.HasPrefix(k, "NEXT_PUBLIC_") || strings.HasPrefix(k, "DYLD_") ||
			k == "PATH" || k == "LD_LIBRARY_PATH" || k == "LD_PRELOAD" || k == "INTERNAL_API_TOKEN" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "PATH="+bin)
	return env
}

// waitReady waits up to 3 minutes for second start (its output in out, its
// exit on done) to say it is ready, failing with its output and logs.
func waitReady(t *testing.T, out *syncBuf, done <-chan error, logs func() string) {
	t.Helper()
	deadline := time.After(3 * time.Minute)
	for !strings.Contains(out.String(), "ready at") {
		select {
		case err := <-done:
			t.Fatalf("second start exited before ready (%v):\n%s\n%s", err, out, logs())
		case <-deadline:
			t.Fatalf("second start not ready after 3 minutes:\n%s\n%s", out, logs())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkStatusAndHealth reads second status --json, checks web and worker
// answer their health checks, and returns the services by name and the
// pids they run as.
func checkStatusAndHealth(t *testing.T, second func(args ...string) (string, error)) (map[string]runstatus.Service, []int) {
	t.Helper()
	sout, err := second("status", "--json")
	if err != nil {
		t.Fatalf("second status --json: %v\n%s", err, sout)
	}
	var st runstatus.Status
	if err := json.Unmarshal([]byte(sout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, sout)
	}
	svc := map[string]runstatus.Service{}
	var pids []int
	for _, s := range st.Services {
		svc[s.Name] = s
		if s.PID != 0 {
			pids = append(pids, s.PID)
		}
	}
	for _, u := range []string{
		fmt.Sprintf("http://127.0.0.1:%d/api/health", svc[stack.ServiceWeb].Port),
		fmt.Sprintf("http://127.0.0.1:%d/health", svc[stack.ServiceWorker].Port),
	} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %s", u, resp.Status)
		}
	}
	return svc, pids
}

// checkRunsPayloadNatives checks mongod and redis-server run the payload's
// binaries from runtimeDir and redis maps the payload's OpenSSL.
func checkRunsPayloadNatives(t *testing.T, svc map[string]runstatus.Service, runtimeDir string) {
	t.Helper()
	for name, file := range map[string]string{stack.ServiceMongo: "mongod", stack.ServiceRedis: "redis-server"} {
		pid := svc[name].PID
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil {
			t.Fatalf("%s (pid %d): %v", name, pid, err)
		}
		if want := filepath.Join(runtimeDir, "bin", file); exe != want {
			t.Errorf("%s runs %s, want the payload's %s", name, exe, want)
		}
	}
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", svc[stack.ServiceRedis].PID))
	if err != nil {
		t.Fatal(err)
	}
	for _, lib := range []string{"libssl.so.3", "libcrypto.so.3"} {
		if want := filepath.Join(runtimeDir, "lib", lib); !bytes.Contains(maps, []byte(want)) {
			t.Errorf("redis-server does not map the payload's %s (%s); its maps:\n%s", lib, want, maps)
		}
	}
}

func elfInterp(f *elf.File) string {
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err == nil {
				return strings.TrimRight(string(b), "\x00")
			}
		}
	}
	return ""
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
