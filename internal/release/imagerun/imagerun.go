// Package imagerun pulls pushed images with podman, the way operators pull
// them, and runs them locked down (non-root, read-only root filesystem,
// tmpfs only where the app writes, host loopback network) until their health
// route answers 200. Tests and the release rehearsal use it to prove the
// images start, not only that they build.
package imagerun

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

// App is one image to run.
type App struct {
	Name   string // web, worker
	Ref    string // pinned reference, e.g. 127.0.0.1:5000/second/second-web@sha256:…
	Port   int    // loopback port it listens on (PORT)
	Health string // health path: /api/health, /health
	// Writable are the directories the app writes, mounted as tmpfs (the
	// root filesystem is read-only).
	Writable []string
	Env      map[string]string
}

// Options configures Run.
type Options struct {
	Podman string // default "podman" on PATH
	// Insecure pulls over plain HTTP / without TLS verification (a loopback
	// registry).
	Insecure bool
	// Timeout bounds the wait for each health route (default 60s).
	Timeout time.Duration
	// Keep leaves the containers running (Result.Container names them).
	Keep bool
	Log  *slog.Logger
}

// Result is one app that started and answered.
type Result struct {
	Name      string        `json:"name"`
	Ref       string        `json:"ref"`
	Container string        `json:"container"`
	User      string        `json:"user"` // uid:gid of the app's process, from podman top
	Status    int           `json:"status"`
	Pull      time.Duration `json:"pull"`
	// Healthy is the time from `podman run` to the first 200.
	Healthy time.Duration `json:"healthy"`
}

// Podman is the podman command with the settings this machine class needs:
// runc as the OCI runtime (crun refuses hybrid cgroup setups) and explicit
// ulimits (podman's defaults can exceed the hard limits of a container host).
type Podman struct{ Bin string }

func (p Podman) cmd(ctx context.Context, args ...string) *exec.Cmd {
	bin := p.Bin
	if bin == "" {
		bin = "podman"
	}
	return exec.CommandContext(ctx, bin, append([]string{"--runtime", "runc"}, args...)...)
}

// Output runs podman and returns its stdout; errors carry its stderr.
func (p Podman) Output(ctx context.Context, args ...string) (string, error) {
	c := p.cmd(ctx, args...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		return out.String(), fmt.Errorf("podman %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// Usable says why podman cannot run containers here ("" when it can).
func (p Podman) Usable(ctx context.Context) string {
	bin := p.Bin
	if bin == "" {
		bin = "podman"
	}
	if _, err := exec.LookPath(bin); err != nil {
		return "podman is not installed (apt-get install podman runc; scripts/setup does)"
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return "runc is not installed (apt-get install runc; scripts/setup does)"
	}
	if _, err := p.Output(ctx, "info", "--format", "{{.Host.OCIRuntime.Name}}"); err != nil {
		return "podman cannot run containers here: " + err.Error()
	}
	return ""
}

// Run pulls and starts every app, waits for each health route, and stops
// them again unless o.Keep. It fails naming the app, with its container log.
func Run(ctx context.Context, o Options, apps []App) ([]Result, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	pm := Podman{Bin: o.Podman}
	var res []Result
	for _, a := range apps {
		r, err := runOne(ctx, pm, o, a, log)
		if r.Pull != 0 && !o.Keep {
			defer pm.Output(context.WithoutCancel(ctx), "rmi", "-f", a.Ref) //nolint:errcheck // best-effort cleanup
		}
		if r.Container != "" && !o.Keep {
			defer pm.Output(context.WithoutCancel(ctx), "rm", "-f", "-t", "0", r.Container) //nolint:errcheck // best-effort cleanup
		}
		if err != nil {
			return res, fmt.Errorf("%s image %s: %w", a.Name, a.Ref, err)
		}
		res = append(res, r)
	}
	return res, nil
}

func runOne(ctx context.Context, pm Podman, o Options, a App, log *slog.Logger) (Result, error) {
	r := Result{Name: a.Name, Ref: a.Ref}
	pull := []string{"pull", "-q"}
	if o.Insecure {
		pull = append(pull, "--tls-verify=false")
	}
	start := time.Now()
	if _, err := pm.Output(ctx, append(pull, a.Ref)...); err != nil {
		return r, err
	}
	r.Pull = time.Since(start)
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	r.Container = "second-" + a.Name + "-" + hex.EncodeToString(suffix)
	// --read-only keeps podman's tmpfs on /tmp, /var/tmp and /run.
	args := []string{"run", "-d", "--name", r.Container,
		"--network", "host", "--read-only",
		"--cap-drop", "all", "--security-opt", "no-new-privileges",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}
	for _, d := range a.Writable {
		// U: owned by the container's user, like the image's directory there
		// (a tmpfs mode option is overridden by the copied-up directory).
		args = append(args, "--tmpfs", d+":rw,U,size=256m")
	}
	keys := make([]string, 0, len(a.Env))
	for k := range a.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-e", k+"="+a.Env[k])
	}
	args = append(args, a.Ref)
	start = time.Now()
	if _, err := pm.Output(ctx, args...); err != nil {
		return r, err
	}
	url := "http://127.0.0.1:" + strconv.Itoa(a.Port) + a.Health
	status, err := waitHealthy(ctx, pm, r.Container, url, o.Timeout)
	r.Status = status
	if err != nil {
		logs, _ := pm.Output(context.WithoutCancel(ctx), "logs", "--tail", "40", r.Container)
		return r, fmt.Errorf("%w; container log:\n%s", err, strings.TrimSpace(logs))
	}
	r.Healthy = time.Since(start)
	if r.User, err = processUser(ctx, pm, r.Container); err != nil {
		return r, err
	}
	log.Info("image healthy", "app", a.Name, "ref", a.Ref, "url", url, "user", r.User, "pull", r.Pull.Round(time.Millisecond), "runToHealthy", r.Healthy.Round(time.Millisecond))
	return r, nil
}

// waitHealthy polls url until 200, the container exits, or timeout.
func waitHealthy(ctx context.Context, pm Podman, container, url string, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	last, body := 0, ""
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		if resp, err := client.Do(req); err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			last, body = resp.StatusCode, strings.TrimSpace(string(b))
			if last == http.StatusOK {
				return last, nil
			}
		}
		if state, err := pm.Output(ctx, "inspect", "--format", "{{.State.Status}}", container); err == nil && strings.TrimSpace(state) == "exited" {
			return last, fmt.Errorf("the container exited before %s answered 200", url)
		}
		if time.Now().After(deadline) {
			return last, fmt.Errorf("%s did not answer 200 within %s (last status %d: %q)", url, timeout, last, body)
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// processUser reads the real uid:gid of the container's main process from
// /proc on the host (the images have no ps for `podman top`; rootful podman
// without a user namespace keeps ids as they are).
func processUser(ctx context.Context, pm Podman, container string) (string, error) {
	pid, err := pm.Output(ctx, "inspect", "--format", "{{.State.Pid}}", container)
	if err != nil {
		return "", err
	}
	status, err := os.ReadFile("/proc/" + strings.TrimSpace(pid) + "/status")
	if err != nil {
		return "", fmt.Errorf("read the app's process status: %w", err)
	}
	var uid, gid string
	for _, l := range strings.Split(string(status), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 1 && f[0] == "Uid:":
			uid = f[1]
		case len(f) > 1 && f[0] == "Gid:":
			gid = f[1]
		}
	}
	return uid + ":" + gid, nil
}

// ContractEnv is the environment the runtime gives web and worker, with
// fresh secrets and loopback URLs (Mongo and Redis need not be up for the
// health routes).
func ContractEnv(version string, webPort, workerPort int) (web, worker map[string]string) {
	secret := func() string {
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}
	token := secret()
	webURL := "http://127.0.0.1:" + strconv.Itoa(webPort)
	workerURL := "http://127.0.0.1:" + strconv.Itoa(workerPort)
	mongo := "mongodb://second:" + secret() + "@127.0.0.1:1/second?authSource=admin&directConnection=true&replicaSet=rs0"
	redis := "redis://:" + secret() + "@127.0.0.1:1"
	web = map[string]string{
		"NODE_ENV": "production", "NEXT_TELEMETRY_DISABLED": "1", "HOSTNAME": "127.0.0.1", "PORT": strconv.Itoa(webPort),
		"SECOND_AUTH_MODE": "none", "SECOND_NO_AUTH_SESSION_SECRET": secret(), "INTERNAL_API_TOKEN": token,
		"MONGODB_URI": mongo, "REDIS_URL": redis,
		"SECOND_PUBLIC_URL": "http://localhost:" + strconv.Itoa(webPort), "WEB_URL": webURL, "WORKER_URL": workerURL,
		"TOOL_EXECUTE_URL": webURL + "/api/internal/tool-execute", "SECOND_RELEASE_RUNTIME": "container",
		"SECOND_RELEASE_VERSION": version, "SECOND_POSTHOG_DISABLED": "1", "SECOND_TELEMETRY_DISABLED": "1",
	}
	worker = map[string]string{
		"PORT": strconv.Itoa(workerPort), "HOST": "127.0.0.1", "HOSTNAME": "127.0.0.1", "INTERNAL_API_TOKEN": token,
		"WEB_URL": webURL, "TOOL_EXECUTE_URL": webURL + "/api/internal/tool-execute", "WORKSPACES_DIR": "/data/workspaces",
		"MONGODB_URI": mongo, "REDIS_URL": redis,
	}
	return web, worker
}
