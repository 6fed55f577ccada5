package rehearse

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/second-inc/second-release/internal/local/procutil"
	"github.com/second-inc/second-release/internal/local/runstatus"
	"github.com/second-inc/second-release/internal/manifest"
	"github.com/second-inc/second-release/internal/release/artifact"
	"github.com/second-inc/second-release/internal/release/platform"
)

// Service names in `second status --json`.
const (
	svcMongo, svcRedis, svcWeb, svcWorker = "mongo", "redis", "web", "worker"
)

// StackRun is one `npx … start` of the stack check, as measured.
type StackRun struct {
	// Ready is the time from starting `npx --yes <launcher>@<V> start
	// --no-open` to web and worker both answering their health routes.
	Ready time.Duration `json:"readyNs"`
	// Install is true on the first run: npx fetched the launcher and the
	// launcher installed the payload within Ready.
	Install bool `json:"install"`
}

// stackCheck starts the whole stack as a brand-new user through npx (the
// launcher installs the payload, whose own mongod and redis-server run),
// waits for the health routes, runs status and stop, checks nothing is
// left running, and does it again to time a start with everything installed.
func stackCheck(ctx context.Context, r *rehearsal) (string, error) {
	launcher := r.rel.Filter(artifact.KindLauncher)[0]
	spec := launcher.Name + "@" + r.rel.Version
	// The payload the npx check installed says whether it carries natives.
	if m, _, err := r.installedManifest(filepath.Join(r.work, "new-user-home")); err != nil {
		return "", err
	} else if len(m.Natives) == 0 {
		return "not run: this host's payload was built without natives (--skip-natives), so it has no mongod or redis-server to start", nil
	}
	userHome := filepath.Join(r.work, "stack-user-home")
	token, err := r.srv.AddUser(ctx, "rehearsal-stack-user", secret())
	if err != nil {
		return "", err
	}
	if err := r.srv.WriteScopedNpmrc(filepath.Join(userHome, ".npmrc"), token); err != nil {
		return "", err
	}
	var runs []StackRun
	var natives map[string]manifest.Native
	for i := 0; i < 2; i++ {
		run, nat, err := r.startStack(ctx, userHome, spec)
		if err != nil {
			if i == 0 {
				return "", fmt.Errorf("first run (installing): %w", err)
			}
			return "", fmt.Errorf("second run (installed): %w", err)
		}
		run.Install = i == 0
		runs = append(runs, run)
		natives = nat
	}
	r.rep.Stack = runs
	var names []string
	for _, n := range []string{"mongod", "redis", "openssl"} {
		if v, ok := natives[n]; ok {
			names = append(names, n+" "+v.Version)
		}
	}
	return fmt.Sprintf("npx --yes %s start --no-open: ready in %s as a new user (incl. install), %s the second time; payload's own %s; status, stop, nothing left running",
		spec, runs[0].Ready.Round(100*time.Millisecond), runs[1].Ready.Round(100*time.Millisecond), strings.Join(names, ", ")), nil
}

// startStack runs start, waits for health, checks the natives run from the
// installed payload, then status and stop, and that every child is gone.
func (r *rehearsal) startStack(ctx context.Context, home, spec string) (StackRun, map[string]manifest.Native, error) {
	var run StackRun
	ctx, cancel := context.WithTimeout(ctx, r.NPXTimeout)
	defer cancel()
	secondHome := filepath.Join(home, ".second")
	begin := time.Now()
	start, err := r.npxCmd(ctx, home, spec, "start", "--no-open")
	if err != nil {
		return run, nil, err
	}
	out := &syncBuf{}
	start.Stdout, start.Stderr = out, out
	if err := start.Start(); err != nil {
		return run, nil, err
	}
	done := make(chan error, 1)
	go func() { done <- start.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = syscall.Kill(-start.Process.Pid, syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = syscall.Kill(-start.Process.Pid, syscall.SIGKILL)
			}
		}
	}()
	fail := func(format string, args ...any) (StackRun, map[string]manifest.Native, error) {
		return run, nil, fmt.Errorf("%s\nstart's output:\n%s%s", fmt.Sprintf(format, args...), lastLines(out.String(), 20), logTails(secondHome))
	}

	st, exited, err := r.waitReady(ctx, home, spec, out, done)
	if err != nil {
		stopped = exited
		return fail("%v", err)
	}
	run.Ready = time.Since(begin)

	// The payload's own natives run, not the machine's.
	nat, err := r.checkNatives(home, st)
	if err != nil {
		return fail("%v", err)
	}
	if out, err := r.npx(ctx, home, spec, "status"); err != nil {
		return fail("status: %v", err)
	} else if !strings.Contains(out, "running") {
		return fail("`npx --yes %s status` does not say running:\n%s", spec, out)
	}
	if _, err := r.npx(ctx, home, spec, "stop"); err != nil {
		return fail("stop: %v", err)
	}
	select {
	case <-done:
		stopped = true
	case <-time.After(90 * time.Second):
		return fail("start still running 90 s after stop")
	}
	if left := leftAfterStop(st); len(left) > 0 {
		return fail("still running after stop: %s", strings.Join(left, ", "))
	}
	return run, nat, nil
}

// waitReady waits until start says it is ready, status --json names the
// ports and both health routes answer 200. exited says start's process ended
// (its Wait returned on done) before that.
func (r *rehearsal) waitReady(ctx context.Context, home, spec string, out *syncBuf, done <-chan error) (st runstatus.Status, exited bool, err error) {
	for {
		select {
		case err := <-done:
			return st, true, fmt.Errorf("`npx --yes %s start --no-open` exited before the stack was ready: %v", spec, err)
		case <-ctx.Done():
			return st, false, fmt.Errorf("the stack was not ready within %s", r.NPXTimeout)
		case <-time.After(250 * time.Millisecond):
		}
		if !strings.Contains(out.String(), "ready at") {
			continue
		}
		s, err := r.statusJSON(ctx, home, spec)
		if err != nil {
			return st, false, err
		}
		st = s
		if healthy(st) {
			return st, false, nil
		}
	}
}

// leftAfterStop names the services and supervisor in st still running,
// giving them 10 s to exit after stop.
func leftAfterStop(st runstatus.Status) []string {
	var left []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		left = left[:0]
		for _, s := range st.Services {
			if s.PID != 0 && (procutil.Alive(s.PID) || procutil.GroupAlive(s.PID)) {
				left = append(left, fmt.Sprintf("%s (pid %d)", s.Name, s.PID))
			}
		}
		if st.PID != 0 && procutil.Alive(st.PID) {
			left = append(left, fmt.Sprintf("supervisor (pid %d)", st.PID))
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func healthy(st runstatus.Status) bool {
	ports := map[string]int{}
	for _, s := range st.Services {
		ports[s.Name] = s.Port
	}
	for _, u := range []string{
		fmt.Sprintf("http://127.0.0.1:%d/api/health", ports[svcWeb]),
		fmt.Sprintf("http://127.0.0.1:%d/health", ports[svcWorker]),
	} {
		c := http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(u)
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
	}
	return true
}

func (r *rehearsal) statusJSON(ctx context.Context, home, spec string) (runstatus.Status, error) {
	var st runstatus.Status
	out, err := r.npx(ctx, home, spec, "status", "--json")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("`npx --yes %s status --json`: %w\n%s", spec, err, lastLines(out, 10))
	}
	return st, nil
}

// checkNatives reads the installed payload's manifest and, on Linux, checks
// that mongod and redis-server run from it.
func (r *rehearsal) checkNatives(home string, st runstatus.Status) (map[string]manifest.Native, error) {
	m, dir, err := r.installedManifest(home)
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "dist", "runtime", "bin")
	for _, s := range st.Services {
		file := map[string]string{svcMongo: "mongod", svcRedis: "redis-server"}[s.Name]
		if file == "" || s.PID == 0 {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", s.PID))
		if err != nil {
			continue // not Linux: /proc is absent
		}
		if want := filepath.Join(bin, file); exe != want {
			return nil, fmt.Errorf("%s runs %s, not the payload's %s", s.Name, exe, want)
		}
	}
	return m.Natives, nil
}

// installedManifest reads the manifest of the payload the launcher
// installed under home and returns it with the package dir.
func (r *rehearsal) installedManifest(home string) (*manifest.Manifest, string, error) {
	host, err := platform.Host()
	if err != nil {
		return nil, "", err
	}
	var name string
	for _, a := range r.rel.Filter(artifact.KindPayload) {
		if a.Platform == host.ID {
			name = a.Name
		}
	}
	if name == "" {
		return nil, "", fmt.Errorf("the build has no payload for this host (%s)", host.ID)
	}
	dir := filepath.Join(home, ".second", "cli-payloads", name+"@"+r.rel.Version, "node_modules", filepath.FromSlash(name))
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, "", fmt.Errorf("the launcher's installed payload: %w", err)
	}
	var m manifest.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, "", fmt.Errorf("%s: %w", filepath.Join(dir, "manifest.json"), err)
	}
	return &m, dir, nil
}

// npxCmd is `npx --yes spec args...` as the new user in home, in its own
// process group (a cancel kills the whole tree).
func (o Options) npxCmd(ctx context.Context, home, spec string, args ...string) (*exec.Cmd, error) {
	bin := o.NPXBin
	if bin == "" {
		bin = "npx"
	}
	if err := os.MkdirAll(filepath.Join(home, "tmp"), 0o700); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"--yes", spec}, args...)...)
	cmd.Dir = home
	cmd.Env = newUserEnv(home)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd, nil
}

func logTails(secondHome string) string {
	var b strings.Builder
	for _, s := range []string{"supervisor", svcMongo, svcRedis, svcWeb, svcWorker} {
		l, err := os.ReadFile(filepath.Join(secondHome, "logs", s+".log"))
		if err == nil && len(bytes.TrimSpace(l)) > 0 {
			fmt.Fprintf(&b, "\n--- %s.log\n%s", s, lastLines(string(l), 10))
		}
	}
	return b.String()
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
