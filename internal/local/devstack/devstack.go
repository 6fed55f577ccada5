// Package devstack is `second dev`: a development stack per git worktree
// of the product monorepo. mongod and redis-server run natively on free
// loopback ports with their data in the worktree's .second-dev/; the
// worker and the Next.js dev server run from source with hot reload; the
// shared devproxy gives each worktree a stable <dev-id>.second.localhost
// URL; .second-dev.txt says what runs where.
package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/local/devproxy"
	"github.com/second-inc/second-release/internal/local/logfile"
	"github.com/second-inc/second-release/internal/local/ports"
	"github.com/second-inc/second-release/internal/local/probe"
	"github.com/second-inc/second-release/internal/local/secrets"
	"github.com/second-inc/second-release/internal/local/stack"
	"github.com/second-inc/second-release/internal/local/state"
	"github.com/second-inc/second-release/internal/local/supervise"
)

// Preferred app ports (the product's dev script's defaults).
const (
	DefaultWebPort    = 3000
	DefaultWorkerPort = 3001
)

// Options configures Run.
type Options struct {
	// Repo is where to look for the checkout (--repo); default the cwd.
	Repo string
	// Home is the user's second home: the machine-wide registry of dev
	// stacks lives there, and installed payloads are searched for mongod
	// and redis-server.
	Home home.Layout
	// Getenv and Environ read the developer's environment; nil means the process's.
	Getenv  func(string) string
	Environ []string
	// Out receives second dev's lines and every child's output, prefixed.
	Out io.Writer
	// Color colours the prefixes (at a terminal without NO_COLOR).
	Color            bool
	DisableTelemetry bool
	// Executable is the second binary (default os.Executable): a payload
	// around it provides mongod and redis-server first.
	Executable string
	// ReadyTimeout overrides every service's start deadline (tests).
	ReadyTimeout time.Duration
}

// AlreadyRunningError is returned when this worktree's stack already runs.
type AlreadyRunningError struct {
	URL string
	PID int
}

func (e *AlreadyRunningError) Error() string {
	return fmt.Sprintf("second dev is already running in this worktree (pid %d) at %s", e.PID, e.URL)
}

// Stack is one worktree's stack, resolved but not yet running.
type Stack struct {
	opts     Options
	Repo     string
	ID       string
	Layout   home.Layout // <repo>/.second-dev
	registry *Registry
}

// Resolve finds the checkout and its dev id.
func Resolve(opts Options) (*Stack, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Environ == nil {
		opts.Environ = os.Environ()
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	dir := opts.Repo
	if dir == "" {
		dir = "."
	}
	repo, err := FindRepo(dir)
	if err != nil {
		return nil, err
	}
	id, err := ID(repo, opts.Getenv)
	if err != nil {
		return nil, err
	}
	return &Stack{opts: opts, Repo: repo, ID: id, Layout: home.Layout{Root: filepath.Join(repo, DataDirName)},
		registry: &Registry{Dir: RegistryDir(opts.Home)}}, nil
}

// InfoPath is the worktree's .second-dev.txt.
func (s *Stack) InfoPath() string { return filepath.Join(s.Repo, InfoFile) }

// proxyPort is SECOND_DEV_PORTLESS_PROXY_PORT or the default; 0 when the
// proxy is off (SECOND_DEV_PORTLESS=0).
func (s *Stack) proxyPort() (int, error) {
	if v := s.opts.Getenv("SECOND_DEV_PORTLESS"); v == "0" || strings.EqualFold(v, "false") {
		return 0, nil
	}
	v := s.opts.Getenv("SECOND_DEV_PORTLESS_PROXY_PORT")
	if v == "" {
		return devproxy.DefaultPort, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("SECOND_DEV_PORTLESS_PROXY_PORT=%q: must be a port number (1-65535)", v)
	}
	return n, nil
}

// run is one Run's moving parts.
type run struct {
	*Stack
	out     *output
	log     *slog.Logger
	ports   map[string]int
	secrets secrets.Set
	info    Info
}

// Run starts the stack and supervises it until ctx ends or a service
// crash-loops, then stops it (the infrastructure too, unless
// SECOND_DEV_KEEP_INFRA=1 kept it). A stack already running in this
// worktree is an *AlreadyRunningError.
func (s *Stack) Run(ctx context.Context) (err error) {
	began := time.Now()
	if err := os.MkdirAll(s.Layout.Root, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", s.Layout.Root, err)
	}
	lock, err := state.TryLock(s.Layout.LockFile())
	if errors.Is(err, state.ErrLocked) {
		info, _ := ReadInfo(s.InfoPath())
		return &AlreadyRunningError{URL: info.URL, PID: state.Holder(s.Layout.LockFile())}
	}
	if err != nil {
		return err
	}
	defer lock.Release()
	r := &run{Stack: s, out: &output{w: s.opts.Out, color: s.opts.Color}}
	if err := r.checkID(); err != nil {
		return err
	}
	r.adviseGitignore()

	logw, err := logfile.Open(s.Layout.Log("dev"), logfile.Options{})
	if err != nil {
		return err
	}
	defer logw.Close()
	r.log = slog.New(slog.NewTextHandler(logw, nil))
	r.log.Info("starting", "dev_id", s.ID, "repo", s.Repo, "pid", os.Getpid())

	defer s.registry.Remove(s.ID, os.Getpid())
	procs, err := r.prepare(ctx)
	if err != nil {
		return err
	}
	proxyCtx, stopProxy := context.WithCancel(ctx)
	defer stopProxy()
	if err := r.startProxy(proxyCtx); err != nil {
		return err
	}
	if err := WriteInfo(s.InfoPath(), r.info); err != nil {
		return err
	}

	sup := supervise.New(supervise.Options{Log: r.log})
	r.out.Printf("starting %s in %s", s.ID, s.Repo)
	groups := [][]*supervise.Process{{procs.worker, procs.web}}
	if procs.mongo != nil { // else kept running by `second dev infra`
		groups = append([][]*supervise.Process{{procs.mongo, procs.redis}}, groups...)
	}
	if err := sup.Start(ctx, groups...); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("start: %w", err)
	}
	r.log.Info("ready", "after", time.Since(began))
	also := ""
	if direct := "http://localhost:" + strconv.Itoa(r.info.WebPort); direct != r.info.URL {
		also = "; also " + direct
	}
	r.out.Printf("ready at %s (after %s%s)", r.info.URL, time.Since(began).Round(100*time.Millisecond), also)

	select {
	case <-ctx.Done():
	case <-sup.Done():
		return fmt.Errorf("stopped everything: %w", sup.Err())
	}
	r.out.Printf("stopping %s", s.ID)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stack.MongoGrace+30*time.Second)
	defer cancel()
	return sup.Stop(sctx)
}

// checkID refuses a dev id another live worktree already uses (two
// worktrees given the same SECOND_DEV_ID would share one URL).
func (r *run) checkID() error {
	recs, err := r.registry.Running()
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if rec.DevID == r.ID && rec.Worktree != r.Repo {
			return fmt.Errorf("dev id %s is already used by the running stack in %s: set a different SECOND_DEV_ID", r.ID, rec.Worktree)
		}
	}
	return nil
}

// adviseGitignore says what to add when git would track our files.
func (r *run) adviseGitignore() {
	if missing := checkIgnored(r.Repo, InfoFile, DataDirName+"/"); len(missing) > 0 {
		r.out.Printf("%s would be committed: add these lines to %s:", strings.Join(missing, " and "), filepath.Join(r.Repo, ".gitignore"))
		for _, m := range missing {
			r.out.Printf("    %s", m)
		}
	}
}

type processSet struct{ mongo, redis, web, worker *supervise.Process }

// prepare finds the binaries, secrets and ports and describes the four
// processes.
func (r *run) prepare(ctx context.Context) (processSet, error) {
	natives, err := stack.FindNatives(stack.NativesOptions{Executable: r.opts.Executable, PayloadsDir: r.opts.Home.PayloadsDir(), Getenv: r.opts.Getenv})
	if err != nil {
		return processSet{}, fmt.Errorf("second dev needs mongod and redis-server:\n%w", err)
	}
	if err := r.checkApps(); err != nil {
		return processSet{}, err
	}
	if r.secrets, err = secrets.Ensure(secrets.Options{Layout: r.Layout, Getenv: r.opts.Getenv}); err != nil {
		return processSet{}, err
	}
	proxyPort, err := r.proxyPort()
	if err != nil {
		return processSet{}, err
	}
	proxyHost := ""
	k, kept := r.kept()
	err = r.registry.Reserve(r.Repo, func(taken map[int]bool) (Record, error) {
		if err := r.choosePorts(k, taken); err != nil {
			return Record{}, err
		}
		r.info = Info{WebPort: r.ports["web"], WorkerPort: r.ports["worker"], MongoPort: r.ports["mongo"], RedisPort: r.ports["redis"],
			DevID: r.ID, DataDir: r.Layout.Root, URL: "http://localhost:" + strconv.Itoa(r.ports["web"])}
		if proxyPort > 0 {
			r.info.URL, proxyHost = devproxy.URL(r.ID, proxyPort), r.ID+devproxy.Suffix
		}
		return Record{Info: r.info, Worktree: r.Repo, PID: os.Getpid(), StartedAt: time.Now().UTC()}, nil
	})
	if err != nil {
		return processSet{}, err
	}

	if err := os.MkdirAll(r.Layout.Workspaces(), 0o700); err != nil {
		return processSet{}, fmt.Errorf("create %s: %w", r.Layout.Workspaces(), err)
	}
	var ps processSet
	switch {
	case kept:
		r.out.Printf("using the MongoDB and Redis kept running by pid %d (`second dev down` stops them)", k.PID)
	case r.keepInfra():
		if err := r.startKept(ctx, r.info.MongoPort, r.info.RedisPort); err != nil {
			return processSet{}, err
		}
	default:
		infra := stack.Infra{Layout: r.Layout, Payload: natives, MongoPort: r.info.MongoPort, RedisPort: r.info.RedisPort,
			Credentials: r.secrets.Databases, Environ: r.opts.Environ, Log: r.log, ReadyTimeout: r.opts.ReadyTimeout}
		if err := infra.Prepare(); err != nil {
			return processSet{}, err
		}
		ps.mongo, ps.redis = infra.Processes()
		ps.mongo.Echo = mongoEcho{r.out.prefixed("mongo")}
		ps.redis.Echo = r.out.prefixed("redis")
	}

	in := envInput{ID: r.ID, URL: r.info.URL, WebPort: r.info.WebPort, WorkerPort: r.info.WorkerPort,
		Infra: stack.EnvInput{MongoPort: r.info.MongoPort, RedisPort: r.info.RedisPort,
			MongoPassword: r.secrets.Databases.MongoPassword, RedisPassword: r.secrets.Databases.RedisPassword},
		Secrets: r.secrets, WorkspacesDir: r.Layout.Workspaces(), ProxyHost: proxyHost,
		DisableTelemetry: r.opts.DisableTelemetry || stack.TelemetryDisabled(r.opts.Getenv), Environ: r.opts.Environ}
	ps.worker, err = r.app("worker", workerEnv(in), nil, "/health", in.WorkerPort)
	if err != nil {
		return processSet{}, err
	}
	ps.web, err = r.app("web", webEnv(in), []string{"--hostname", "127.0.0.1", "--port", strconv.Itoa(in.WebPort)}, "", in.WebPort)
	if err != nil {
		return processSet{}, err
	}
	return ps, nil
}

// checkApps makes sure both apps have their dependencies installed.
func (r *run) checkApps() error {
	for _, app := range []string{"web", "worker"} {
		dir := filepath.Join(r.Repo, "apps", app)
		if !isDir(filepath.Join(dir, "node_modules")) && !isDir(filepath.Join(r.Repo, "node_modules")) {
			return fmt.Errorf("apps/%s has no node_modules: run `npm --prefix apps/%s install` first", app, app)
		}
	}
	if _, err := exec.LookPath("node"); err != nil {
		return errors.New("second dev runs the apps with Node.js: install Node.js ≥ 20 and put node on PATH")
	}
	return nil
}

// choosePorts: MONGO_PORT, REDIS_PORT, WEB_PORT and WORKER_PORT pin a port
// (it must be free); otherwise web and worker prefer 3000 and 3001 and
// mongo and redis their ports of the last run, then any free port.
func (r *run) choosePorts(k keptInfra, taken map[int]bool) error {
	prev, _ := ReadInfo(r.InfoPath())
	var reqs []ports.Request
	for _, q := range []struct {
		service, env string
		preferred    int
	}{
		{"web", "WEB_PORT", DefaultWebPort},
		{"worker", "WORKER_PORT", DefaultWorkerPort},
		{"mongo", "MONGO_PORT", prev.MongoPort},
		{"redis", "REDIS_PORT", prev.RedisPort},
	} {
		req := ports.Request{Service: q.service, Preferred: q.preferred, Flag: q.env}
		if v := r.opts.Getenv(q.env); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("%s=%q: must be a port number (1-65535)", q.env, v)
			}
			req.Preferred, req.Explicit = n, true
		}
		reqs = append(reqs, req)
	}
	// Pinned ports first, so no automatic choice takes one.
	var pinned, free []ports.Request
	for _, q := range reqs {
		if q.Explicit {
			pinned = append(pinned, q)
		} else {
			free = append(free, q)
		}
	}
	if k.MongoPort > 0 {
		// The kept servers hold theirs already.
		free = slices.DeleteFunc(free, func(q ports.Request) bool { return q.Service == "mongo" || q.Service == "redis" })
		pinned = slices.DeleteFunc(pinned, func(q ports.Request) bool { return q.Service == "mongo" || q.Service == "redis" })
	}
	p, err := ports.ChooseExcept(append(pinned, free...), taken)
	if err != nil {
		return fmt.Errorf("choose ports: %w", err)
	}
	if k.MongoPort > 0 {
		p["mongo"], p["redis"] = k.MongoPort, k.RedisPort
	}
	r.ports = p
	return nil
}

// app describes one app running its package's dev script; health is the
// path that answers 200 once it is ready, "" to wait for its port only.
func (r *run) app(name string, env []string, args []string, health string, port int) (*supervise.Process, error) {
	dir := filepath.Join(r.Repo, "apps", name)
	script, err := devScript(dir)
	if err != nil {
		return nil, err
	}
	env = withPath(env, filepath.Join(dir, "node_modules", ".bin"), filepath.Join(r.Repo, "node_modules", ".bin"))
	timeout := 3 * time.Minute
	if r.opts.ReadyTimeout > 0 {
		timeout = r.opts.ReadyTimeout
	}
	// next dev compiles a route on its first request, which can take
	// minutes on a busy machine: it counts as ready once it listens, and
	// the browser's first request waits for the compile. The worker
	// answers its health route at once.
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var ready probe.Probe = probe.Func(func(ctx context.Context) error {
		conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	})
	if health != "" {
		ready = probe.HTTP{URL: "http://127.0.0.1:" + strconv.Itoa(port) + health}
	}
	return &supervise.Process{
		Name: name,
		// As npm runs a script: sh -c with the package's .bin on PATH; the
		// extra arguments go after the script's own.
		Command:      "/bin/sh",
		Args:         append([]string{"-c", script + ` "$@"`, name}, args...),
		Dir:          dir,
		Env:          env,
		LogPath:      r.Layout.Log(name),
		Echo:         r.out.prefixed(name),
		Ready:        ready,
		ReadyTimeout: timeout,
		Stop:         supervise.StopPolicy{Grace: 10 * time.Second},
		Port:         port,
	}, nil
}

// devScript is the package's `dev` script.
func devScript(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", filepath.Join(dir, "package.json"), err)
	}
	var pkg struct {
		Scripts map[string]string `json:"scripts"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		return "", fmt.Errorf("parse %s: %w", filepath.Join(dir, "package.json"), err)
	}
	s := strings.TrimSpace(pkg.Scripts["dev"])
	if s == "" {
		return "", fmt.Errorf(`%s has no "dev" script: add one that runs the app with hot reload (web: "next dev"; worker: "tsx watch src/index.ts" or "node --watch src/index.mjs")`, filepath.Join(dir, "package.json"))
	}
	return s, nil
}

// withPath puts dirs in front of env's PATH.
func withPath(env []string, dirs ...string) []string {
	out := make([]string, 0, len(env)+1)
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
			continue
		}
		out = append(out, kv)
	}
	p := strings.Join(dirs, string(os.PathListSeparator))
	if path != "" {
		p += string(os.PathListSeparator) + path
	}
	return append(out, "PATH="+p)
}

// startProxy keeps the shared proxy alive from this process too, and
// reports what happens to it.
func (r *run) startProxy(ctx context.Context) error {
	port, err := r.proxyPort()
	if err != nil || port == 0 {
		return err
	}
	go devproxy.Keep(ctx, port, devproxy.Handler(r.registry), func(serving bool, err error) {
		switch {
		case err != nil:
			r.log.Warn("proxy", "err", err)
			r.out.Printf("the dev proxy cannot run: %v; set SECOND_DEV_PORTLESS_PROXY_PORT to a free port, or SECOND_DEV_PORTLESS=0 and use http://localhost:%d", err, r.info.WebPort)
		case serving:
			r.log.Info("proxy: serving", "port", port)
		default:
			r.log.Info("proxy: served by another second dev", "port", port)
		}
	})
	return nil
}
