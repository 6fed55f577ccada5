package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults for zero Process fields.
const (
	defaultReadyTimeout   = 60 * time.Second
	defaultGrace          = 10 * time.Second
	defaultInitialBackoff = 500 * time.Millisecond
	defaultMaxBackoff     = 15 * time.Second
	defaultStableAfter    = 30 * time.Second
	defaultMaxCrashes     = 5
	defaultWindow         = 60 * time.Second
	defaultLiveInterval   = 2 * time.Second
	defaultLiveTimeout    = time.Second
	defaultLiveFailures   = 3
	defaultLiveGrace      = 5 * time.Second
	// tailLines is how much of a log an *Error carries.
	tailLines = 30
	// killWait bounds the wait for a group to vanish after SIGKILL; only an
	// unkillable (D-state) process takes longer.
	killWait = 10 * time.Second
	// maxBeforeWait bounds a Stop.Before hook (mongod's shutdown command).
	maxBeforeWait = 5 * time.Second
)

var errStopRequested = errors.New("stop requested")

type supervisor struct {
	log     *slog.Logger
	onEvent func(Event)
	done    chan struct{}

	mu       sync.Mutex
	started  bool
	stopping bool
	stopCh   chan struct{} // closed when a stop (requested or crash loop) begins
	groups   [][]*service  // launched so far, in start order
	all      []*service
	failure  error // first *Error: start failure or crash loop
	stopErr  error
}

func newSupervisor(o Options) *supervisor {
	l := o.Log
	if l == nil {
		l = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &supervisor{log: l, onEvent: o.OnEvent, done: make(chan struct{}), stopCh: make(chan struct{})}
}

func withDefaults(p Process) Process {
	if p.ReadyTimeout <= 0 {
		p.ReadyTimeout = defaultReadyTimeout
	}
	if p.Stop.Signal == nil {
		p.Stop.Signal = syscall.SIGTERM
	}
	if p.Stop.Grace <= 0 {
		p.Stop.Grace = defaultGrace
	}
	if l := p.Liveness; l != nil {
		lc := *l
		if lc.Interval <= 0 {
			lc.Interval = defaultLiveInterval
		}
		if lc.Timeout <= 0 {
			lc.Timeout = defaultLiveTimeout
		}
		if lc.Failures <= 0 {
			lc.Failures = defaultLiveFailures
		}
		if lc.Grace <= 0 {
			lc.Grace = defaultLiveGrace
		}
		p.Liveness = &lc
	}
	r := &p.Restart
	if r.InitialBackoff <= 0 {
		r.InitialBackoff = defaultInitialBackoff
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = defaultMaxBackoff
	}
	if r.MaxBackoff < r.InitialBackoff {
		r.MaxBackoff = r.InitialBackoff
	}
	if r.StableAfter <= 0 {
		r.StableAfter = defaultStableAfter
	}
	if r.MaxCrashes <= 0 {
		r.MaxCrashes = defaultMaxCrashes
	}
	if r.Window <= 0 {
		r.Window = defaultWindow
	}
	if r.Never {
		r.MaxCrashes = 1
	}
	return p
}

func validate(groups [][]*Process) error {
	seen := map[string]bool{}
	for _, g := range groups {
		for _, p := range g {
			switch {
			case p == nil:
				return errors.New("supervise: nil *Process")
			case p.Name == "":
				return errors.New("supervise: a Process has no Name")
			case seen[p.Name]:
				return fmt.Errorf("supervise: two processes named %q", p.Name)
			case p.Command == "":
				return fmt.Errorf("supervise: process %q has no Command", p.Name)
			case p.LogPath == "":
				return fmt.Errorf("supervise: process %q has no LogPath", p.Name)
			}
			if p.Liveness != nil && p.Liveness.Probe == nil {
				return fmt.Errorf("supervise: process %q: Liveness has no Probe", p.Name)
			}
			if _, ok := p.Stop.Signal.(syscall.Signal); p.Stop.Signal != nil && !ok {
				return fmt.Errorf("supervise: process %q: Stop.Signal %v is not a syscall.Signal", p.Name, p.Stop.Signal)
			}
			seen[p.Name] = true
		}
	}
	return nil
}

func (s *supervisor) start(ctx context.Context, groups [][]*Process) error {
	if err := validate(groups); err != nil {
		return err
	}
	s.mu.Lock()
	if s.started || s.stopping {
		s.mu.Unlock()
		return errors.New("supervise: Start called twice or after Stop")
	}
	s.started = true
	for _, g := range groups {
		for _, p := range g {
			s.all = append(s.all, newService(s, withDefaults(*p)))
		}
	}
	s.mu.Unlock()

	i := 0
	for _, g := range groups {
		svcs := s.all[i : i+len(g)]
		i += len(g)
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			return s.abortStart(nil, errStopRequested)
		}
		s.groups = append(s.groups, svcs)
		s.mu.Unlock()

		results := make(chan startResult, len(svcs))
		for _, sv := range svcs {
			// Marked here, not in the goroutine, so a concurrent Stop
			// always waits for a loop that is about to run.
			sv.mu.Lock()
			sv.launched = true
			sv.mu.Unlock()
			go sv.loop(ctx, results)
		}
		for range svcs {
			r := <-results
			if errors.Is(r.err, errStopRequested) {
				return s.abortStart(nil, r.err)
			}
			if r.err != nil {
				// Stop the rest of the group at once rather than let them
				// run out their own ReadyTimeouts.
				e := r.sv.failure("start", r.err)
				return s.abortStart(e, e)
			}
		}
	}
	return nil
}

// abortStart stops everything started and makes e the supervisor's error.
func (s *supervisor) abortStart(e *Error, err error) error {
	if e != nil {
		s.setFailure(e)
	}
	if stopErr := s.stop(context.Background()); stopErr != nil {
		s.log.Error("stopping after a failed start", "err", stopErr)
	}
	if e != nil {
		return e
	}
	return fmt.Errorf("supervise: start interrupted: %w", err)
}

func (s *supervisor) setFailure(e *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failure == nil {
		s.failure = e
	}
}

// crashLoop is called by a service loop that gave up: record why and stop
// everything else (asynchronously: stop waits for that very loop to end).
func (s *supervisor) crashLoop(e *Error) {
	s.setFailure(e)
	s.log.Error("crash loop; stopping everything", "service", e.Service, "err", e.Err)
	go func() {
		if err := s.stop(context.Background()); err != nil {
			s.log.Error("stopping after a crash loop", "err", err)
		}
	}()
}

func (s *supervisor) stop(ctx context.Context) error {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		select {
		case <-s.done:
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.stopErr
		case <-ctx.Done():
			return fmt.Errorf("supervise: waiting for stop: %w", context.Cause(ctx))
		}
	}
	s.stopping = true
	close(s.stopCh)
	groups := append([][]*service(nil), s.groups...)
	s.mu.Unlock()

	var errs []error
	for gi := len(groups) - 1; gi >= 0; gi-- {
		g := groups[gi]
		for k := len(g) - 1; k >= 0; k-- {
			if err := g[k].stop(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	s.mu.Lock()
	s.stopErr = errors.Join(errs...)
	err := s.stopErr
	s.mu.Unlock()
	close(s.done)
	return err
}

func (s *supervisor) status() []ServiceStatus {
	s.mu.Lock()
	all := append([]*service(nil), s.all...)
	s.mu.Unlock()
	out := make([]ServiceStatus, 0, len(all))
	for _, sv := range all {
		out = append(out, sv.status())
	}
	return out
}

func (s *supervisor) err() error {
	select {
	case <-s.done:
	default:
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failure == nil {
		return nil
	}
	return s.failure
}

func (s *supervisor) emit(e Event) {
	if s.onEvent != nil {
		s.onEvent(e)
	}
}

// Error renders as "<service>: <op>: <err>" followed by the log tail.
func (e *Error) Error() string {
	var b strings.Builder
	switch e.Op {
	case "crash loop":
		fmt.Fprintf(&b, "%s keeps crashing: %v", e.Service, e.Err)
	default:
		fmt.Fprintf(&b, "%s failed to start: %v", e.Service, e.Err)
	}
	if e.LogTail != "" {
		fmt.Fprintf(&b, "\n--- last lines of %s ---\n%s", e.LogPath, strings.TrimRight(e.LogTail, "\n"))
	} else if e.LogPath != "" {
		fmt.Fprintf(&b, " (log %s is empty)", e.LogPath)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// backoff is the delay before restart number n (n ≥ 1 consecutive crashes):
// exponential, capped, minus up to half as jitter so services that crashed
// together do not restart in lockstep.
func backoff(r RestartPolicy, n int) time.Duration {
	d := r.InitialBackoff
	for i := 1; i < n && d < r.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.MaxBackoff)
	if half := int64(d / 2); half > 0 {
		d -= time.Duration(rand.Int64N(half + 1))
	}
	return d
}
