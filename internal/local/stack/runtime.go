package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/local/logfile"
	"github.com/second-inc/second-release/internal/local/ports"
	"github.com/second-inc/second-release/internal/local/secrets"
	"github.com/second-inc/second-release/internal/local/state"
	"github.com/second-inc/second-release/internal/local/supervise"
)

// Service names, also the log file names.
const (
	ServiceMongo      = "mongo"
	ServiceRedis      = "redis"
	ServiceWeb        = "web"
	ServiceWorker     = "worker"
	ServiceSupervisor = "supervisor"
)

// Preferred ports; a taken one falls back to any free loopback port.
const (
	DefaultWebPort    = 3030
	DefaultWorkerPort = 3001
	DefaultMongoPort  = 27018
	DefaultRedisPort  = 6380
)

// MongoGrace is how long mongod may take to shut down before SIGKILL. After
// the shutdown command (force) it exits in a second or two; its journal
// makes a later SIGKILL safe, only slower to recover.
const MongoGrace = 8 * time.Second

// StopBudget bounds a whole stop of the stack from inside; `second stop`
// adds its own margin on top and still finishes within 15 s.
const StopBudget = 10 * time.Second

// Options configures a run.
type Options struct {
	Layout  home.Layout
	Payload *Payload

	// Port is the web port; PortExplicit marks it as the user's choice
	// (--port), which must be free rather than fall back.
	Port         int
	PortExplicit bool

	DisableTelemetry bool
	Version          string // release version (SECOND_RELEASE_VERSION)
	PackageName      string // payload package name (SECOND_RELEASE_PACKAGE)

	// Getenv and Environ read the user's environment; nil means the process's.
	Getenv  func(string) string
	Environ []string

	// Out receives the few lines meant for the user.
	Out io.Writer

	// Control, when set, starts the local control server once ports and
	// secrets are known and before the web server (whose env carries its
	// URL). Its Stop runs after every child has stopped.
	Control func(ctx context.Context, rt *Runtime) (*Control, error)

	// OnReady runs once every service is ready, with the URL to open.
	OnReady func(url string)

	// ReadyTimeout overrides every service's start deadline (tests).
	ReadyTimeout time.Duration
	// StopTimeout bounds a whole stop (default StopBudget).
	StopTimeout time.Duration
}

// Control is a running control server.
type Control struct {
	URL  string
	Stop func(ctx context.Context) error
}

// AlreadyRunningError is returned by Run when a healthy runtime already runs
// for this home; the caller prints the URL and exits 0.
type AlreadyRunningError struct {
	URL string
	PID int
}

func (e *AlreadyRunningError) Error() string {
	return fmt.Sprintf("Second is already running (pid %d) at %s", e.PID, e.URL)
}

// Runtime is one run of the stack.
type Runtime struct {
	opts    Options
	log     *slog.Logger
	secrets secrets.Set
	ports   map[string]int
	sup     *supervise.Supervisor
	stopReq chan struct{}
	stopOne sync.Once

	mu      sync.Mutex
	state   state.State
	writeMu sync.Mutex // serializes runtime.json writes
}

// New prepares a Runtime; nothing runs until Run.
func New(opts Options) *Runtime {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Environ == nil {
		opts.Environ = os.Environ()
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = StopBudget
	}
	return &Runtime{opts: opts, stopReq: make(chan struct{}), log: slog.New(slog.DiscardHandler)}
}

// Layout is the home this runtime uses.
func (rt *Runtime) Layout() home.Layout { return rt.opts.Layout }

// Secrets are the secrets in use (the control server needs its token).
func (rt *Runtime) Secrets() secrets.Set { return rt.secrets }

// Version is the release version the runtime reports.
func (rt *Runtime) Version() string { return rt.opts.Version }

// Logger is the supervisor log (logs/supervisor.log) once Run has begun.
func (rt *Runtime) Logger() *slog.Logger { return rt.log }

// PackageName is the payload package's name.
func (rt *Runtime) PackageName() string { return rt.opts.PackageName }

// RequestStop asks Run to stop everything and return; safe to call many times.
func (rt *Runtime) RequestStop() { rt.stopOne.Do(func() { close(rt.stopReq) }) }

// Run starts the stack, supervises it until ctx ends, RequestStop is
// called or a service crash-loops, then stops everything in order.
func (rt *Runtime) Run(ctx context.Context) (err error) {
	runBegan := time.Now()
	if err := prepareHome(rt.opts.Layout); err != nil {
		return err
	}
	lock, err := rt.lock(ctx)
	if err != nil {
		return err
	}
	defer lock.Release()
	logw, err := rt.openLog()
	if err != nil {
		return err
	}
	defer logw.Close()

	if err := rt.prepare(ctx); err != nil {
		return err
	}
	rt.beginState()
	defer func() { rt.endState(err) }()

	control, err := rt.startControl(ctx)
	if err != nil {
		return err
	}
	if control != nil {
		defer rt.stopControl(ctx, control)
	}
	started, err := rt.startServices(ctx, control, runBegan)
	if err != nil || !started {
		return err
	}
	rt.announceReady()
	return rt.supervise(ctx)
}

// openLog opens logs/supervisor.log as the runtime's logger.
func (rt *Runtime) openLog() (*logfile.Writer, error) {
	l := rt.opts.Layout
	logw, err := logfile.Open(l.Log(ServiceSupervisor), logfile.Options{})
	if err != nil {
		return nil, err
	}
	rt.log = slog.New(slog.NewTextHandler(logw, nil))
	rt.log.Info("starting", "version", rt.opts.Version, "pid", os.Getpid(), "home", l.Root)
	return logw, nil
}

// prepare sweeps what a dead run left, then settles secrets, ports and the
// databases' files.
func (rt *Runtime) prepare(ctx context.Context) (err error) {
	l := rt.opts.Layout
	prev, err := state.Read(l.StateFile())
	if err != nil {
		rt.log.Warn("ignoring unreadable runtime state", "err", err)
		prev = nil
	}
	if prev != nil {
		SweepStale(ctx, rt.log, prev)
	}
	if rt.secrets, err = secrets.Ensure(secrets.Options{Layout: l, Getenv: rt.opts.Getenv}); err != nil {
		return err
	}
	if err := rt.choosePorts(prev); err != nil {
		return err
	}
	return rt.infra().Prepare()
}

// beginState writes runtime.json for this run (phase starting).
func (rt *Runtime) beginState() {
	exe, _ := os.Executable()
	rt.mu.Lock()
	rt.state = state.State{
		PID: os.Getpid(), Version: rt.opts.Version, Executable: exe, Home: rt.opts.Layout.Root,
		StartedAt: time.Now().UTC(), Phase: state.PhaseStarting, MongoPort: rt.ports[ServiceMongo],
		URL:      "http://localhost:" + strconv.Itoa(rt.ports[ServiceWeb]),
		Services: map[string]state.Service{},
	}
	rt.mu.Unlock()
	rt.saveState()
}

// endState records the run's end: stopped, or failed when err is set.
func (rt *Runtime) endState(err error) {
	rt.mu.Lock()
	now := time.Now().UTC()
	rt.state.PID, rt.state.StoppedAt, rt.state.Phase = 0, &now, state.PhaseStopped
	if err != nil {
		rt.state.Phase = state.PhaseFailed
	}
	for name, s := range rt.state.Services {
		s.State, s.PID = string(supervise.StateStopped), 0
		rt.state.Services[name] = s
	}
	rt.mu.Unlock()
	rt.saveState()
	rt.log.Info("stopped", "err", err)
}

func (rt *Runtime) setPhase(p state.Phase) {
	rt.mu.Lock()
	rt.state.Phase = p
	rt.mu.Unlock()
	rt.saveState()
}

// startControl starts the control server when configured (nil otherwise).
func (rt *Runtime) startControl(ctx context.Context) (*Control, error) {
	if rt.opts.Control == nil {
		return nil, nil
	}
	control, err := rt.opts.Control(ctx, rt)
	if err != nil {
		return nil, fmt.Errorf("start the local control server: %w", err)
	}
	return control, nil
}

func (rt *Runtime) stopControl(ctx context.Context, control *Control) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := control.Stop(sctx); err != nil {
		rt.log.Warn("stop control server", "err", err)
	}
}

// startServices starts the four children in their groups. started is
// false (with a nil error) when a stop request or ctx interrupted the start.
func (rt *Runtime) startServices(ctx context.Context, control *Control, runBegan time.Time) (started bool, err error) {
	procs := rt.processes(control)
	rt.mu.Lock()
	for _, p := range []*supervise.Process{procs.mongo, procs.redis, procs.web, procs.worker} {
		rt.state.Services[p.Name] = state.Service{State: string(supervise.StateStopped), Port: p.Port, Command: append([]string{p.Command}, p.Args...), Dir: p.Dir}
	}
	rt.mu.Unlock()

	rt.sup = supervise.New(supervise.Options{Log: rt.log, OnEvent: rt.onEvent})
	startCtx, cancelStart := context.WithCancel(ctx)
	defer cancelStart()
	go func() {
		select {
		case <-rt.stopReq:
			cancelStart()
		case <-startCtx.Done():
		}
	}()
	began := time.Now()
	// Logged so benchmarks can split start-to-ready into our own preparation
	// and the children's readiness.
	rt.log.Info("prepared", "after", began.Sub(runBegan))
	err = rt.sup.Start(startCtx,
		[]*supervise.Process{procs.mongo, procs.redis},
		[]*supervise.Process{procs.web},
		[]*supervise.Process{procs.worker})
	if err != nil {
		if ctx.Err() != nil || isClosed(rt.stopReq) {
			rt.log.Info("start interrupted", "err", err)
			return false, nil
		}
		return false, fmt.Errorf("start: %w", err)
	}
	rt.log.Info("ready", "after", time.Since(began))
	return true, nil
}

// announceReady marks the run running, tells the user, and warns about
// any child that listens beyond loopback.
func (rt *Runtime) announceReady() {
	rt.setPhase(state.PhaseRunning)
	rt.mu.Lock()
	url := rt.state.URL
	rt.mu.Unlock()
	fmt.Fprintf(rt.opts.Out, "Second is ready at %s\n", url)
	rt.warnExposed()
	if rt.opts.OnReady != nil {
		rt.opts.OnReady(url)
	}
}

// supervise waits for the end of the run: ctx, a stop request, or the
// supervisor giving up (a crash loop); then stops everything.
func (rt *Runtime) supervise(ctx context.Context) error {
	select {
	case <-ctx.Done():
		rt.log.Info("stopping", "reason", context.Cause(ctx))
	case <-rt.stopReq:
		rt.log.Info("stopping", "reason", "stop requested")
	case <-rt.sup.Done():
		err := rt.sup.Err()
		rt.log.Error("supervision ended", "err", err)
		if err == nil {
			return errors.New("supervision ended unexpectedly")
		}
		return fmt.Errorf("stopped everything: %w", err)
	}
	return rt.stop(ctx)
}

// lock takes the single-instance lock. When another runtime holds it, the
// answer is that runtime's URL once it is healthy; if it exits meanwhile
// (it was stopping), the lock is tried again.
func (rt *Runtime) lock(ctx context.Context) (*state.Lock, error) {
	for attempt := 0; ; attempt++ {
		lock, err := state.TryLock(rt.opts.Layout.LockFile())
		if !errors.Is(err, state.ErrLocked) {
			return lock, err
		}
		err = rt.alreadyRunning(ctx)
		if !errors.Is(err, errHolderExited) || attempt == 2 {
			return nil, err
		}
	}
}

func (rt *Runtime) stop(ctx context.Context) error {
	rt.setPhase(state.PhaseStopping)
	fmt.Fprintln(rt.opts.Out, "Stopping Second…")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rt.opts.StopTimeout)
	defer cancel()
	if err := rt.sup.Stop(sctx); err != nil {
		return fmt.Errorf("stop services: %w", err)
	}
	return nil
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// onEvent mirrors supervisor state into runtime.json so `status` works
// without the control server and the next start can sweep a dead run.
func (rt *Runtime) onEvent(ev supervise.Event) {
	rt.mu.Lock()
	s := rt.state.Services[ev.Service]
	if ev.PID != 0 && ev.PID != s.PID {
		s.StartedAt = ev.Time.UTC() // first event naming this process
	}
	s.State, s.PID = string(ev.State), ev.PID
	if ev.State == supervise.StateRestarting {
		s.Restarts++
	}
	if rt.state.Services == nil {
		rt.state.Services = map[string]state.Service{}
	}
	rt.state.Services[ev.Service] = s
	rt.mu.Unlock()
	rt.log.Info("service", "name", ev.Service, "state", ev.State, "pid", ev.PID, "err", ev.Err)
	rt.saveState()
}

func (rt *Runtime) saveState() {
	// One writer at a time, snapshot taken inside: concurrent events must
	// not let an older snapshot be renamed over a newer one.
	rt.writeMu.Lock()
	defer rt.writeMu.Unlock()
	rt.mu.Lock()
	b := rt.state
	svcs := make(map[string]state.Service, len(b.Services))
	for k, v := range b.Services {
		svcs[k] = v
	}
	b.Services = svcs
	rt.mu.Unlock()
	if err := state.Write(rt.opts.Layout.StateFile(), &b); err != nil {
		rt.log.Warn("write runtime state", "err", err)
	}
}

func (rt *Runtime) choosePorts(prev *state.State) error {
	mongo := DefaultMongoPort
	if prev != nil && prev.MongoPort > 0 {
		mongo = prev.MongoPort
	}
	web := DefaultWebPort
	if rt.opts.Port > 0 {
		web = rt.opts.Port
	}
	p, err := ports.Choose([]ports.Request{
		// The explicit web port goes first so no other service can take it.
		{Service: ServiceWeb, Preferred: web, Explicit: rt.opts.PortExplicit, Flag: "--port"},
		{Service: ServiceMongo, Preferred: mongo},
		{Service: ServiceRedis, Preferred: DefaultRedisPort},
		{Service: ServiceWorker, Preferred: DefaultWorkerPort},
	})
	if err != nil {
		return fmt.Errorf("choose ports: %w", err)
	}
	rt.ports = p
	return nil
}

// prepareHome creates the home's directories, marking the home as ours when
// we create it (or it holds nothing but our own layout), so reset may delete it.
func prepareHome(l home.Layout) error {
	mark := false
	entries, err := os.ReadDir(l.Root)
	switch {
	case errors.Is(err, os.ErrNotExist):
		mark = true
	case err != nil:
		return fmt.Errorf("read home %s: %w", l.Root, err)
	default:
		mark = onlyOurEntries(l, entries)
	}
	if err := os.MkdirAll(l.Root, 0o700); err != nil {
		return fmt.Errorf("create home %s: %w", l.Root, err)
	}
	for _, d := range []string{l.MongoData(), l.RedisData(), l.Workspaces(), l.LogsDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	if mark {
		if err := os.WriteFile(l.Marker(), []byte("created by second; `second reset` may delete data here\n"), 0o644); err != nil {
			return fmt.Errorf("mark home %s: %w", l.Root, err)
		}
	}
	return tightenHome(l)
}

// tightenHome restricts, on every start, what an earlier version or the
// user may have left open: the home and its data and log dirs to the
// owner (0700), every log file to 0600. Logs hold paths, errors and the
// app's own output.
func tightenHome(l home.Layout) error {
	for _, d := range []string{l.Root, l.DataDir(), l.MongoData(), l.RedisData(), l.Workspaces(), l.LogsDir()} {
		if err := os.Chmod(d, 0o700); err != nil {
			return fmt.Errorf("restrict %s to its owner: %w", d, err)
		}
	}
	logs, err := os.ReadDir(l.LogsDir())
	if err != nil {
		return fmt.Errorf("read %s: %w", l.LogsDir(), err)
	}
	for _, e := range logs {
		if e.Type().IsRegular() {
			p := filepath.Join(l.LogsDir(), e.Name())
			if err := os.Chmod(p, 0o600); err != nil {
				return fmt.Errorf("restrict %s to its owner: %w", p, err)
			}
		}
	}
	return nil
}

// onlyOurEntries: the launcher creates cli-payloads/ in the home before the
// runtime ever runs, and that still makes the home ours.
func onlyOurEntries(l home.Layout, entries []os.DirEntry) bool {
	ours := map[string]bool{}
	for _, p := range []string{l.DataDir(), l.LogsDir(), l.SecretsDir(), l.ControlFile(), l.StateFile(),
		l.LockFile(), l.PayloadsDir(), l.RedisConfig(), l.Marker()} {
		ours[filepath.Base(p)] = true
	}
	for _, e := range entries {
		if !ours[e.Name()] {
			return false
		}
	}
	return true
}

// signalPID is a small seam for tests.
func signalPID(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }
