package main

// End-to-end tests: the real `second` binary (built once in TestMain) runs
// real redis-server, real node fixtures for web and worker, and a mongod
// when one is available (mongod on PATH or $SECOND_TEST_MONGOD).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/local/procutil"
	"github.com/second-inc/second-release/internal/local/runstatus"
	"github.com/second-inc/second-release/internal/local/stack"
	"github.com/second-inc/second-release/internal/manifest"
	"github.com/second-inc/second-release/internal/testsupport"
)

// builtSecond is the binary TestMain builds; tests hard-link it into a
// payload layout of their own.
var builtSecond string

func TestMain(m *testing.M) {
	if os.Getenv(mongoClientEnv) != "" {
		os.Exit(mongoClientMain())
	}
	dir, err := os.MkdirTemp("", "second-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	builtSecond = filepath.Join(dir, "second")
	build := exec.Command("go", "build", "-o", builtSecond, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build second:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// payload is a payload package in a temp dir, laid out as the build writes
// one: package.json, bin/second, dist/web, dist/worker, dist/runtime.
type payload struct {
	root, bin, webDir, home string
}

// newPayload lays out bin/second, the fixture web and worker, and the
// natives (symlinks to the real redis-server and mongod when given).
func newPayload(t testing.TB, mongod string) *payload {
	t.Helper()
	redis := testsupport.Tool(t, "redis-server")
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("needs node on PATH")
	}
	root := t.TempDir()
	p := &payload{root: root, bin: filepath.Join(root, "bin", "second"), webDir: filepath.Join(root, "dist", "web"),
		home: filepath.Join(t.TempDir(), "home")}
	for _, d := range []string{"bin", "dist/web", "dist/worker", "dist/runtime/bin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(builtSecond, p.bin); err != nil {
		copyFile(t, builtSecond, p.bin, 0o755)
	}
	fixtures := filepath.Join(testsupport.RepoRoot(t), "internal", "local", "stack", "testdata")
	copyFile(t, filepath.Join(fixtures, "web", "server.js"), filepath.Join(p.webDir, "server.js"), 0o644)
	copyFile(t, filepath.Join(fixtures, "worker", "worker.mjs"), filepath.Join(root, "dist", "worker", "worker.mjs"), 0o644)
	if err := os.Symlink(redis, filepath.Join(root, "dist", "runtime", "bin", "redis-server")); err != nil {
		t.Fatal(err)
	}
	if mongod != "" {
		if err := os.Symlink(mongod, filepath.Join(root, "dist", "runtime", "bin", "mongod")); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func copyFile(t testing.TB, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

// env is the environment second runs with in tests: the user's basics
// plus extra, with no leftover SECOND_* from the developer's shell.
func (p *payload) env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SECOND_") && !strings.HasPrefix(kv, "NEXT_PUBLIC_") && !strings.HasPrefix(kv, "INTERNAL_API_TOKEN=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// run runs a short second command to completion.
func (p *payload) run(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, append(args, "--home", p.home)...)
	cmd.Env = env
	if cmd.Env == nil {
		cmd.Env = p.env()
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run second %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return o.String(), e.String(), code
}

// running is a `second start` in the background.
type running struct {
	cmd  *exec.Cmd
	out  *lockedBuf
	done chan struct{}
	err  error
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// start runs `second start --no-open` and waits until it prints its URL.
func (p *payload) start(t *testing.T, env []string, args ...string) *running {
	t.Helper()
	r := p.startNoWait(t, env, args...)
	deadline := time.After(90 * time.Second)
	for !strings.Contains(r.out.String(), "ready at") {
		select {
		case <-r.done:
			t.Fatalf("second exited before ready (%v):\n%s\nsupervisor log:\n%s", r.err, r.out, p.log("supervisor"))
		case <-deadline:
			t.Fatalf("second not ready after 90s:\n%s", r.out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return r
}

func (p *payload) startNoWait(t *testing.T, env []string, args ...string) *running {
	t.Helper()
	cmd := exec.Command(p.bin, append([]string{"start", "--no-open", "--home", p.home}, args...)...)
	cmd.Env = env
	if cmd.Env == nil {
		cmd.Env = p.env()
	}
	return startRunning(t, cmd, 60*time.Second)
}

// startRunning starts cmd with its output collected; at the end of the
// test it gets SIGTERM, and SIGKILL after grace.
func startRunning(t *testing.T, cmd *exec.Cmd, grace time.Duration) *running {
	t.Helper()
	r := &running{cmd: cmd, out: &lockedBuf{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = r.out, r.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.err = cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(grace):
			_ = cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// wait waits for the background second to exit.
func (r *running) wait(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(within):
		t.Fatalf("second still running after %s:\n%s", within, r.out)
		return nil
	}
}

func (p *payload) log(service string) string {
	b, _ := os.ReadFile(filepath.Join(p.home, "logs", service+".log"))
	return string(b)
}

// secret reads one of the home's secret files.
func (p *payload) secret(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.home, "secrets", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// redisApp runs one command as the app (the default user's password).
func (p *payload) redisApp(t testing.TB, port int, args ...string) (string, error) {
	t.Helper()
	return testsupport.RedisPipeline(fmt.Sprintf("127.0.0.1:%d", port), []string{"AUTH", p.secret(t, "redis-password")}, args)
}

func (p *payload) status(t *testing.T) runstatus.Status {
	t.Helper()
	out, errOut, code := p.run(t, nil, "status", "--json")
	if code != 0 {
		t.Fatalf("status --json exited %d: %s", code, errOut)
	}
	var st runstatus.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return st
}

func service(st runstatus.Status, name string) runstatus.Service {
	for _, s := range st.Services {
		if s.Name == name {
			return s
		}
	}
	return runstatus.Service{}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// assertGone checks that no recorded child is alive, by pid and by group.
func assertGone(t *testing.T, pids []int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var alive []string
		for _, pid := range pids {
			if procutil.Alive(pid) {
				alive = append(alive, fmt.Sprintf("pid %d", pid))
			}
			if procutil.GroupAlive(pid) {
				alive = append(alive, fmt.Sprintf("group %d %v", pid, procutil.GroupMembers(pid)))
			}
		}
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still alive %s after the supervisor went: %s", within, strings.Join(alive, ", "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func childPIDs(st runstatus.Status) []int {
	var pids []int
	for _, s := range st.Services {
		if s.PID != 0 {
			pids = append(pids, s.PID)
		}
	}
	return pids
}

// holdPort listens on port if it can, so the runtime must fall back.
func holdPort(t *testing.T, port int) {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return // already taken by someone: the fallback is exercised anyway
	}
	t.Cleanup(func() { l.Close() })
}

func TestFullStartStatusEnvSecretsRestart(t *testing.T) {
	p := newPayload(t, testsupport.MongodPath(t))
	holdPort(t, stack.DefaultWebPort)
	env := p.env("SECOND_POSTHOG_KEY=phk", "SECOND_SENTRY_DSN=https://sentry.example/1", "NEXT_PUBLIC_SENTRY_DSN=nsd",
		"NEXT_PUBLIC_LEAK=x", "SECOND_CLI_RELEASE_VERSION=9.8.7", "SECOND_CLI_RELEASE_PACKAGE=@second-inc/cli-local-test")
	r := p.start(t, env, "--disable-telemetry")

	st := p.status(t)
	ports := checkRunningStatus(t, st, r)

	t.Run("child environments", func(t *testing.T) {
		checkChildEnvironments(t, p, ports)
	})

	t.Run("secret file modes", func(t *testing.T) {
		checkSecretFileModes(t, p)
	})

	t.Run("second start while running prints the URL and exits 0", func(t *testing.T) {
		out, errOut, code := p.run(t, env, "start", "--no-open")
		if code != 0 || !strings.Contains(out, st.URL) || !strings.Contains(out, "already running") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})

	t.Run("restart after a crash", func(t *testing.T) {
		waitWebRestartsAfterCrash(t, p, service(st, "web").PID, ports["web"])
	})

	t.Run("logs", func(t *testing.T) {
		out, _, code := p.run(t, nil, "logs", "web", "-n", "50")
		if code != 0 || !strings.Contains(out, "fixture web listening") {
			t.Errorf("logs web: exit %d\n%s", code, out)
		}
	})

	// Redis data survives a stop and a start; mongo keeps its port.
	if got, err := p.redisApp(t, ports["redis"], "SET", "kept", "across-restarts"); err != nil || got != "OK" {
		t.Fatalf("redis SET: %q %v", got, err)
	}
	stopWithoutControlFile(t, p, r, ports)

	r = p.start(t, env)
	st2 := p.status(t)
	if got := service(st2, "mongo").Port; got != ports["mongo"] {
		t.Errorf("mongo port changed across runs: %d -> %d", ports["mongo"], got)
	}
	if got, err := p.redisApp(t, service(st2, "redis").Port, "GET", "kept"); err != nil || got != "across-restarts" {
		t.Errorf("redis lost data across a restart: %q %v", got, err)
	}

	resetStopsAndDeletes(t, p, r, st2)
}

// checkRunningStatus checks the first run's status and printed URL and
// returns each service's port.
func checkRunningStatus(t *testing.T, st runstatus.Status, r *running) map[string]int {
	t.Helper()
	if !st.Running || st.Phase != "running" {
		t.Fatalf("status: %+v", st)
	}
	ports := map[string]int{}
	for _, name := range []string{"mongo", "redis", "web", "worker"} {
		s := service(st, name)
		if s.State != "ready" || s.PID == 0 || s.Port == 0 {
			t.Errorf("%s: %+v", name, s)
		}
		ports[name] = s.Port
	}
	if ports["web"] == stack.DefaultWebPort {
		t.Errorf("web got port %d although it was taken", stack.DefaultWebPort)
	}
	if want := "http://localhost:" + strconv.Itoa(ports["web"]); st.URL != want || !strings.Contains(r.out.String(), want) {
		t.Errorf("URL %q (printed %q), want %q", st.URL, r.out, want)
	}
	return ports
}

func checkChildEnvironments(t *testing.T, p *payload, ports map[string]int) {
	t.Helper()
	var web, worker map[string]string
	getJSON(t, fmt.Sprintf("http://127.0.0.1:%d/env", ports["web"]), &web)
	getJSON(t, fmt.Sprintf("http://127.0.0.1:%d/env", ports["worker"]), &worker)
	mongoURI := fmt.Sprintf("mongodb://second:%s@127.0.0.1:%d/second?authSource=admin&directConnection=true&replicaSet=rs0",
		p.secret(t, "mongo-password"), ports["mongo"])
	redisURL := fmt.Sprintf("redis://:%s@127.0.0.1:%d", p.secret(t, "redis-password"), ports["redis"])
	for k, want := range map[string]string{
		"PORT": strconv.Itoa(ports["web"]), "HOSTNAME": "127.0.0.1", "NODE_ENV": "production", "NEXT_TELEMETRY_DISABLED": "1",
		"MONGODB_URI": mongoURI, "REDIS_URL": redisURL,
		"WORKER_URL":             fmt.Sprintf("http://127.0.0.1:%d", ports["worker"]),
		"SECOND_RELEASE_VERSION": "9.8.7", "SECOND_RELEASE_PACKAGE": "@second-inc/cli-local-test",
		"SECOND_POSTHOG_DISABLED": "1", "SECOND_TELEMETRY_DISABLED": "1", "SECOND_POSTHOG_KEY": "phk",
		"NEXT_PUBLIC_SENTRY_DSN": "nsd", "SECOND_AUTH_MODE": "none", "SECOND_LOCAL_INSTALL": "1", "SECOND_RELEASE_RUNTIME": "native",
	} {
		if web[k] != want {
			t.Errorf("web %s = %q, want %q", k, web[k], want)
		}
	}
	checkWebControlAndLeaks(t, p, web)
	token, err := os.ReadFile(filepath.Join(p.home, "secrets", "internal-api-token"))
	if err != nil {
		t.Fatal(err)
	}
	if web["INTERNAL_API_TOKEN"] != strings.TrimSpace(string(token)) || worker["INTERNAL_API_TOKEN"] != web["INTERNAL_API_TOKEN"] {
		t.Error("web and worker do not share the internal-api-token secret")
	}
	for k, want := range map[string]string{
		"PORT": strconv.Itoa(ports["worker"]), "WEB_URL": fmt.Sprintf("http://127.0.0.1:%d", ports["web"]),
		"TOOL_EXECUTE_URL": fmt.Sprintf("http://127.0.0.1:%d/api/internal/tool-execute", ports["web"]),
		"WORKSPACES_DIR":   filepath.Join(p.home, "data", "workspaces"), "MONGODB_URI": mongoURI,
		"REDIS_URL": redisURL, "HOST": "127.0.0.1", "HOSTNAME": "127.0.0.1",
	} {
		if worker[k] != want {
			t.Errorf("worker %s = %q, want %q", k, worker[k], want)
		}
	}
}

// checkWebControlAndLeaks checks that web gets the control server's URL and
// token and none of the variables it must not see.
func checkWebControlAndLeaks(t *testing.T, p *payload, web map[string]string) {
	t.Helper()
	var control struct{ URL string }
	b, err := os.ReadFile(filepath.Join(p.home, "local-control.json"))
	if err != nil || json.Unmarshal(b, &control) != nil || control.URL == "" {
		t.Fatalf("local-control.json: %v %s", err, b)
	}
	ctlToken, _ := os.ReadFile(filepath.Join(p.home, "secrets", "local-control-token"))
	if web["SECOND_LOCAL_CLI_URL"] != control.URL || web["SECOND_LOCAL_CLI_TOKEN"] != strings.TrimSpace(string(ctlToken)) {
		t.Errorf("web does not get the control server's URL and token: %q", web["SECOND_LOCAL_CLI_URL"])
	}
	if _, ok := web["NEXT_PUBLIC_LEAK"]; ok {
		t.Error("the user's NEXT_PUBLIC_LEAK reached the web server")
	}
	for k := range web {
		if strings.HasPrefix(k, "LD_LIBRARY_PATH") || strings.HasPrefix(k, "DYLD_") {
			t.Errorf("node got %s", k)
		}
	}
}

func checkSecretFileModes(t *testing.T, p *payload) {
	t.Helper()
	st, err := os.Stat(filepath.Join(p.home, "secrets"))
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("secrets dir: %v %v", st.Mode(), err)
	}
	for _, f := range []string{"internal-api-token", "no-auth-session-secret", "local-control-token",
		"redis-password", "redis-admin-password", "mongo-password", "mongo-admin-password", "mongo-keyfile"} {
		st, err := os.Stat(filepath.Join(p.home, "secrets", f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, err, st)
		}
	}
}

// waitWebRestartsAfterCrash crashes web (pid old) and waits up to 30s for
// a new, ready web process.
func waitWebRestartsAfterCrash(t *testing.T, p *payload, old, webPort int) {
	t.Helper()
	var resp map[string]any
	getJSON(t, fmt.Sprintf("http://127.0.0.1:%d/crash", webPort), &resp)
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := service(p.status(t), "web")
		if s.State == "ready" && s.PID != old && s.PID != 0 && s.Restarts >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web did not come back after a crash: %+v", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stopWithoutControlFile removes the control server's file, so status and
// stop fall back to runtime.json, the lock and signals, then stops r.
func stopWithoutControlFile(t *testing.T, p *payload, r *running, ports map[string]int) {
	t.Helper()
	pids := childPIDs(p.status(t))

	if err := os.Remove(filepath.Join(p.home, "local-control.json")); err != nil {
		t.Fatalf("the control server did not write local-control.json: %v", err)
	}
	if st := p.status(t); !st.Running || service(st, "redis").Port != ports["redis"] || st.URL == "" {
		t.Errorf("status from runtime.json: %+v", st)
	}
	out, errOut, code := p.run(t, nil, "stop")
	if code != 0 || !strings.Contains(out, "stopped") {
		t.Fatalf("stop: exit %d %q %q", code, out, errOut)
	}
	if err := r.wait(t, 70*time.Second); err != nil {
		t.Errorf("second exited with %v after stop:\n%s", err, r.out)
	}
	assertGone(t, pids, 2*time.Second)
	if st := p.status(t); st.Running {
		t.Errorf("status after stop: %+v", st)
	}
}

// resetStopsAndDeletes checks that reset --yes stops the running runtime
// first, then deletes.
func resetStopsAndDeletes(t *testing.T, p *payload, r *running, st2 runstatus.Status) {
	t.Helper()
	out, errOut, code := p.run(t, nil, "reset", "--yes")
	if code != 0 {
		t.Fatalf("reset --yes: exit %d %q %q", code, out, errOut)
	}
	if err := r.wait(t, 70*time.Second); err != nil {
		t.Errorf("second exited with %v after reset:\n%s", err, r.out)
	}
	assertGone(t, childPIDs(st2), 2*time.Second)
	for _, gone := range []string{"data", "secrets", "runtime.json"} {
		if _, err := os.Stat(filepath.Join(p.home, gone)); !os.IsNotExist(err) {
			t.Errorf("reset kept %s", gone)
		}
	}
}

func TestKill9LeavesNoChildrenAndNextStartRecovers(t *testing.T) {
	p := newPayload(t, testsupport.MongodPath(t))
	// The web fixture also starts a grandchild in its process group.
	if err := os.WriteFile(filepath.Join(p.webDir, "grandchild"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := p.start(t, nil)
	st := p.status(t)
	pids := childPIDs(st)
	if len(pids) != 4 {
		t.Fatalf("want 4 children, status: %+v", st)
	}
	b, err := os.ReadFile(filepath.Join(p.webDir, "grandchild.pid"))
	if err != nil {
		t.Fatal(err)
	}
	grandchild, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err := r.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-r.done
	assertGone(t, append(pids, grandchild), 2*time.Second)

	// The lock died with the supervisor; runtime.json still names the dead run.
	if st := p.status(t); st.Running {
		t.Errorf("status after kill -9 says running: %+v", st)
	}
	r2 := p.start(t, nil)
	st2 := p.status(t)
	if !st2.Running || service(st2, "web").State != "ready" {
		t.Errorf("start after kill -9: %+v", st2)
	}

	// Stop through the control server this time.
	if _, err := os.Stat(filepath.Join(p.home, "local-control.json")); err != nil {
		t.Fatalf("no local-control.json: %v", err)
	}
	out, errOut, code := p.run(t, nil, "stop")
	if code != 0 || !strings.Contains(out, "stopped") {
		t.Fatalf("stop: exit %d %q %q", code, out, errOut)
	}
	if err := r2.wait(t, 70*time.Second); err != nil {
		t.Errorf("second exited with %v after stop:\n%s", err, r2.out)
	}
	assertGone(t, childPIDs(st2), 2*time.Second)
	if !strings.Contains(p.log("supervisor"), "stop requested") {
		t.Error("the stop did not go through the control server")
	}
}

func TestDoctorCommand(t *testing.T) {
	p := newPayload(t, "")
	m := &manifest.Manifest{Name: "@second-inc/cli-local-test", Version: "1.0.0", Files: map[string]manifest.File{}}
	err := filepath.WalkDir(p.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		sum, size, err := manifest.HashFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(p.root, path)
		m.Files[filepath.ToSlash(rel)] = manifest.File{SHA256: sum, Size: size, Mode: "0644"}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := m.Marshal()
	if err := os.WriteFile(filepath.Join(p.root, "manifest.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code := p.run(t, nil, "doctor")
	if !strings.Contains(out, "all ") || !strings.Contains(out, "match manifest.json") {
		t.Errorf("doctor on an intact payload:\n%s", out)
	}
	if !strings.Contains(out, "problem  mongod") || code != 1 {
		t.Errorf("doctor without mongod: exit %d\n%s", code, out)
	}
	if err := os.WriteFile(filepath.Join(p.webDir, "server.js"), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code = p.run(t, nil, "doctor", "--json")
	var rs []struct{ Name, Status, Detail, Fix string }
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, r := range rs {
		got[r.Name] = r.Status + ": " + r.Detail
	}
	if !strings.HasPrefix(got["payload"], "problem") || !strings.Contains(got["payload"], "dist/web/server.js changed") {
		t.Errorf("payload check: %q", got["payload"])
	}
	if !strings.HasPrefix(got["redis-server"], "ok") || !strings.HasPrefix(got["node"], "ok") || code != 1 {
		t.Errorf("exit %d, checks %v", code, got)
	}
}

func TestCrashLoopStopsEverything(t *testing.T) {
	p := newPayload(t, testsupport.MongodPath(t))
	r := p.start(t, nil)
	st := p.status(t)
	pids := childPIDs(st)
	// From now on the web server dies at start: a crash loop.
	if err := os.WriteFile(filepath.Join(p.webDir, "crash-on-start"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var resp map[string]any
	getJSON(t, fmt.Sprintf("http://127.0.0.1:%d/crash", service(st, "web").Port), &resp)
	err := r.wait(t, 90*time.Second)
	if err == nil {
		t.Fatalf("second exited 0 after a crash loop:\n%s", r.out)
	}
	out := r.out.String()
	if !strings.Contains(out, "web") || !strings.Contains(out, "crash-on-start marker present") {
		t.Errorf("crash-loop error does not name the service and show its log tail:\n%s", out)
	}
	assertGone(t, pids, 2*time.Second)
}

func TestStartErrors(t *testing.T) {
	p := newPayload(t, "")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	sh, _ := exec.LookPath("sh")
	tests := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"missing mongod", p.env(), []string{"start", "--no-open"},
			[]string{"mongod not found", "dist/runtime/bin/mongod", "SECOND_MONGOD", "npx --yes @second-inc/cli"}},
		{"SECOND_MONGOD points nowhere", p.env("SECOND_MONGOD=/nonexistent/mongod"), []string{"start", "--no-open"},
			[]string{"/nonexistent/mongod (SECOND_MONGOD)"}},
		{"missing node", p.env("SECOND_MONGOD="+sh, "SECOND_NODE=/nonexistent/node"), []string{"--no-open"},
			[]string{"node not found", "SECOND_NODE"}},
		{"explicit --port in use", p.env("SECOND_MONGOD=" + sh), []string{"--no-open", "--port", strconv.Itoa(busyPort)},
			[]string{"port " + strconv.Itoa(busyPort), "in use", "--port"}},
		{"unknown argument", p.env(), []string{"strat"}, []string{"unknown command"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := p.run(t, tt.env, tt.args...)
			if code == 0 {
				t.Fatalf("exit 0; stdout %q", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, errOut)
				}
			}
		})
	}
}

func TestResetCommand(t *testing.T) {
	p := newPayload(t, "")
	userHome := t.TempDir()
	notOurs := t.TempDir()
	if err := os.WriteFile(filepath.Join(notOurs, "keep.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	ours := filepath.Join(t.TempDir(), "second-home")
	for _, d := range []string{"data/mongo", "secrets", "cli-payloads"} {
		if err := os.MkdirAll(filepath.Join(ours, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(ours, ".second-home"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(p.env(), "HOME="+userHome)
	tests := []struct {
		name, home string
		args       []string
		wantCode   int
		want       string
	}{
		{"filesystem root", "/", []string{"--yes"}, 1, "filesystem root"},
		{"user home", userHome, []string{"--yes"}, 1, "home directory itself"},
		{"not created by second", notOurs, []string{"--yes"}, 1, "did not create it"},
		{"no terminal and no --yes", ours, nil, 1, "pass --yes"},
		{"--yes", ours, []string{"--yes"}, 0, "deleted data, secrets and state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(p.bin, append([]string{"reset", "--home", tt.home}, tt.args...)...)
			cmd.Env = env
			cmd.Stdin = strings.NewReader("y\n") // not a terminal: must not count as consent
			out, _ := cmd.CombinedOutput()
			if cmd.ProcessState.ExitCode() != tt.wantCode || !strings.Contains(string(out), tt.want) {
				t.Errorf("exit %d, want %d; output:\n%s", cmd.ProcessState.ExitCode(), tt.wantCode, out)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(notOurs, "keep.txt")); err != nil {
		t.Error("refused reset deleted a file")
	}
	if _, err := os.Stat(filepath.Join(ours, "data")); !os.IsNotExist(err) {
		t.Error("reset --yes kept data/")
	}
	if _, err := os.Stat(filepath.Join(ours, "cli-payloads")); err != nil {
		t.Error("reset deleted the installed payloads")
	}
}

// mongodForTests finds a mongod or skips naming exactly what is needed
// (other e2e files in this package use it too).
func mongodForTests(t *testing.T) string {
	t.Helper()
	return testsupport.MongodPath(t)
}
