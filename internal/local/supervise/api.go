// Package supervise runs a set of child processes described as plain data
// (process-compose style): start them in groups, wait for readiness, restart
// crashed ones with backoff, stop them in reverse order, and make sure none
// outlives the supervisor, even when it is killed with SIGKILL.
package supervise

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/second-inc/second-release/internal/local/probe"
)

// Process describes one child. It is plain data: one runner runs any of them,
// and what is special about a service (Mongo's replica set, say) lives in
// the hooks, not in the supervisor.
type Process struct {
	// Name identifies the service in status, events and errors: "mongo",
	// "redis", "web", "worker".
	Name string
	// Command is the executable (a path, or a name looked up on PATH) and
	// Args its arguments, without argv[0].
	Command string
	Args    []string
	// Dir is the working directory; empty means the supervisor's.
	Dir string
	// Env is the child's complete environment (KEY=value). Nil means an
	// empty environment, not the supervisor's: the runtime decides exactly
	// what each child sees.
	Env []string

	// LogPath receives the child's stdout and stderr, size-rotated
	// (internal/local/logfile). Required.
	LogPath string
	// LogMaxBytes is the size at which LogPath rotates (default 10 MiB);
	// LogKeep how many rotated files to keep (default 3).
	LogMaxBytes int64
	LogKeep     int
	// Echo, if set, also receives the child's output, one line (or up to
	// 64 KiB of a longer one) per Write; `second dev` shows it prefixed by
	// service. Writes come from one goroutine per service.
	Echo io.Writer

	// Ready reports readiness; nil means ready as soon as the process started.
	Ready probe.Probe
	// ReadyTimeout bounds the wait for Ready and AfterReady together at
	// start (default 60 s).
	ReadyTimeout time.Duration
	// AfterReady runs once Ready passes, before the service counts as
	// ready (e.g. mongoready.Ensure: replica-set initiation). It runs again
	// after every restart. An error fails the start like a readiness timeout.
	AfterReady func(ctx context.Context) error
	// FatalLine, if set, sees every line of the child's output; a non-nil
	// error means the child cannot work (mongod's DBPathInUse, address in
	// use, a missing shared library): the start fails at once with that
	// error instead of waiting for ReadyTimeout, and after start the child
	// is killed and counts as crashed.
	FatalLine func(line string) error

	// Liveness, when set, keeps probing the child after it is ready; a
	// child that fails it Failures times in a row is marked unhealthy and
	// restarted like a crashed one.
	Liveness *Liveness

	// Stop says how to stop the child.
	Stop StopPolicy
	// Restart says how to restart it after a crash.
	Restart RestartPolicy

	// Port is informational, shown in status.
	Port int
}

// StopPolicy is how a child is asked to stop.
type StopPolicy struct {
	// Before runs first (mongoready.Shutdown sends mongod the shutdown
	// command). Its error is logged, never fatal: the signal follows anyway.
	// Its ctx ends after Grace.
	Before func(ctx context.Context) error
	// Signal is sent to the child's whole process group after Before
	// (default SIGTERM).
	Signal os.Signal
	// Grace is how long the group may take to exit after Before+Signal
	// before it gets SIGKILL (default 10 s; the runtime gives mongod ≥ 30 s).
	Grace time.Duration
}

// Liveness is how a ready child is watched: a hung process (SIGSTOPped,
// deadlocked) still has its pid and port, so only a probe tells.
type Liveness struct {
	Probe probe.Probe
	// Interval between checks (default 2 s); Timeout bounds one check
	// (default 1 s); Failures in a row make the child unhealthy (default 3).
	Interval time.Duration
	Timeout  time.Duration
	Failures int
	// Grace is how long an unhealthy child may take to exit after SIGTERM
	// (and SIGCONT, so a stopped one can act on it) before SIGKILL
	// (default 5 s). Its Stop.Before hook is skipped: it would hang too.
	Grace time.Duration
}

// RestartPolicy is how crashed children come back. Zero fields take defaults.
type RestartPolicy struct {
	// InitialBackoff is the delay before the first restart (default 500 ms);
	// each further consecutive crash doubles it up to MaxBackoff (default
	// 15 s), with random jitter of up to half the delay.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// StableAfter: a child that ran at least this long before crashing
	// starts again from InitialBackoff (default 30 s).
	StableAfter time.Duration
	// MaxCrashes crashes within Window (defaults 5 and 60 s) is a crash
	// loop: the supervisor stops everything and Err reports it.
	MaxCrashes int
	Window     time.Duration
	// Never disables restarts: the first crash is treated as a crash loop.
	Never bool
}

// Options configures a Supervisor.
type Options struct {
	// Log receives the supervisor's own messages (default: discarded).
	Log *slog.Logger
	// OnEvent, if set, is called synchronously for every state change (the
	// runtime uses it to keep runtime.json current), possibly from several
	// goroutines at once. It must not block long and must not call Stop.
	OnEvent func(Event)
}

// State is a service's lifecycle state.
type State string

const (
	StateStarting   State = "starting"   // started, not yet ready
	StateReady      State = "ready"      // ready, running
	StateUnhealthy  State = "unhealthy"  // ready once, now failing its liveness probe; being restarted
	StateRestarting State = "restarting" // crashed, waiting out the backoff
	StateStopping   State = "stopping"   // being stopped
	StateStopped    State = "stopped"    // stopped on request (or never started)
	StateFailed     State = "failed"     // failed to start or crash-looped
)

// Event is one state change of one service.
type Event struct {
	Service string
	State   State
	PID     int       // current pid, 0 when not running
	Time    time.Time // when it happened
	// Err is why: the exit status after a crash, the readiness or
	// crash-loop error for StateFailed.
	Err error
}

// ServiceStatus is one service's state as Status reports it.
type ServiceStatus struct {
	Name      string
	State     State
	PID       int // 0 when not running
	Port      int
	Restarts  int       // restarts since Start
	StartedAt time.Time // when the current process started; zero if none
	LogPath   string
}

// Error is the error Start and Err return when a service failed: it names
// the service and carries the tail of its log so the user sees why.
type Error struct {
	Service string
	// Op is what failed: "start" (exec, readiness, AfterReady, FatalLine
	// before ready) or "crash loop".
	Op      string
	Err     error
	LogPath string
	LogTail string // last lines of the service's log, possibly empty
}

// Supervisor runs processes. Create it with New; it is safe for concurrent use.
type Supervisor struct {
	sup *supervisor
}

// New returns a Supervisor that has not started anything yet.
func New(o Options) *Supervisor { return &Supervisor{sup: newSupervisor(o)} }

// Start starts groups in order; the processes within a group start
// concurrently and must each become ready (Ready, then AfterReady) within
// their ReadyTimeout before the next group starts. On any failure —
// timeout, FatalLine, a process that exits before it is ready, ctx
// cancelled — everything already started is stopped and the returned
// *Error names the service and includes the tail of its log.
// ctx bounds the start only; supervision continues until Stop or a crash
// loop. Start may be called once.
func (s *Supervisor) Start(ctx context.Context, groups ...[]*Process) error {
	return s.sup.start(ctx, groups)
}

// Status returns every service's state, in start order.
func (s *Supervisor) Status() []ServiceStatus { return s.sup.status() }

// Done is closed when supervision has ended: after Stop, a failed Start,
// or a crash loop, with every child gone.
func (s *Supervisor) Done() <-chan struct{} { return s.sup.done }

// Err is nil until Done is closed; then it is the crash-loop or start
// *Error, or nil after a clean Stop.
func (s *Supervisor) Err() error { return s.sup.err() }

// Stop stops every service in reverse start order (within a group too),
// each by its StopPolicy, waiting until its whole process group is empty.
// It is idempotent and safe to call concurrently with a crash-loop
// shutdown. If ctx ends first, the remaining groups get SIGKILL at once.
func (s *Supervisor) Stop(ctx context.Context) error { return s.sup.stop(ctx) }
