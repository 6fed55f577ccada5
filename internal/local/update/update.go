// Package update installs a new release over a running runtime: stop the
// services (data stays), start the new version through the launcher
// (`npx --yes <package>@<version> start <same flags>`), wait until it
// answers on its control server, and when it does not, start the old
// version again and keep the failure for /release/status. One install at
// a time.
package update

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/local/control/client"
	"github.com/second-inc/second-release/internal/npmconf"
)

// Phase of an install.
type Phase string

const (
	PhaseIdle       Phase = "idle"        // nothing requested
	PhaseStopping   Phase = "stopping"    // stopping the current services
	PhaseStarting   Phase = "starting"    // new version launched, waiting for it
	PhaseSucceeded  Phase = "succeeded"   // the new version answers; this process ends
	PhaseRolledBack Phase = "rolled_back" // the new version failed; the old one runs again
	PhaseFailed     Phase = "failed"      // the new version failed and so did the rollback
)

// Error codes in State.Error.
const (
	CodeStopFailed     = "stop_failed"   // the old services would not stop
	CodeLaunchFailed   = "launch_failed" // the launcher could not be started
	CodeNewExited      = "new_version_exited"
	CodeNewNotReady    = "new_version_not_ready"
	CodeRollbackFailed = "rollback_failed"
)

// State is one install's progress, as /release/status and the 202/409
// answers of POST /update/install show it.
type State struct {
	Phase      Phase      `json:"phase"`
	From       string     `json:"from,omitempty"`
	To         string     `json:"to,omitempty"`
	StartedAt  *time.Time `json:"startedAt,omitempty"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	// Error is a short code; Detail a short non-secret reason (an exit
	// status, a timeout) and LogPath where the launcher's output went.
	Error   string `json:"error,omitempty"`
	Detail  string `json:"detail,omitempty"`
	LogPath string `json:"logPath,omitempty"`
}

// Running reports whether the install is still in progress.
func (s State) Running() bool { return s.Phase == PhaseStopping || s.Phase == PhaseStarting }

// Target is the running runtime as the installer needs it.
type Target interface {
	// Suspend stops every service, keeping data, and releases the home
	// (lock, control file) so another runtime can start there.
	Suspend(ctx context.Context) error
	// Resume starts this version again after a failed update.
	Resume(ctx context.Context) error
	// Exit ends this runtime once the new version runs, leaving the home to it.
	Exit()
}

// Command is a process to start.
type Command struct {
	Path    string
	Args    []string
	Env     []string
	Dir     string
	LogPath string // stdout and stderr, appended
}

// Process is a started Command.
type Process interface {
	// Done is closed when the process has exited; Err is then its exit error.
	Done() <-chan struct{}
	Err() error
	// Kill ends the process and everything it started.
	Kill()
}

// Runner starts commands; ExecRunner is the real one, tests inject others.
type Runner interface {
	Start(ctx context.Context, cmd Command) (Process, error)
}

// Options configure an Installer.
type Options struct {
	Layout  home.Layout
	Package string // the launcher package, e.g. @second-inc/cli
	Current string // the running version
	// StartArgs are the flags the runtime was started with (after "start").
	StartArgs []string
	Target    Target
	// Runner defaults to ExecRunner{}.
	Runner Runner
	// NPX is the npx executable, default "npx" on PATH.
	NPX string
	// Env is the new version's environment, default os.Environ() without
	// the launcher's per-version variables (it sets them again).
	Env []string
	// ReadyTimeout bounds the wait for the new version (default 5 min: the
	// launcher may download a payload first). StopTimeout bounds Suspend
	// (default 2 min) and Resume.
	ReadyTimeout, StopTimeout time.Duration
	// Poll is how often the new version is checked (default 250 ms).
	Poll time.Duration
	Log  *slog.Logger
}

// Installer runs at most one install at a time and remembers the last.
type Installer struct {
	opts Options

	mu    sync.Mutex
	state State
	done  chan struct{}
}

// New returns an Installer.
func New(opts Options) *Installer {
	if opts.Runner == nil {
		opts.Runner = ExecRunner{}
	}
	if opts.NPX == "" {
		opts.NPX = "npx"
	}
	if opts.Env == nil {
		opts.Env = launcherEnv(os.Environ())
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 5 * time.Minute
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 2 * time.Minute
	}
	if opts.Poll == 0 {
		opts.Poll = 250 * time.Millisecond
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Installer{opts: opts, state: State{Phase: PhaseIdle, From: opts.Current}}
}

// State returns the current or last install.
func (in *Installer) State() State {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.state
}

// Done is closed when the running install finishes (nil when none ran).
func (in *Installer) Done() <-chan struct{} {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.done
}

// ErrBadVersion is returned for a version that is not semver.
var ErrBadVersion = errors.New("version is not a semantic version")

// Install starts installing version in the background. started is false
// when an install is already running; the returned State is that one.
func (in *Installer) Install(version string) (st State, started bool, err error) {
	// The version ends up in a command line: accept only strict semver.
	if _, err := semver.StrictNewVersion(version); err != nil {
		return State{}, false, fmt.Errorf("install %q: %w", version, ErrBadVersion)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.state.Running() {
		return in.state, false, nil
	}
	now := time.Now().UTC()
	in.state = State{Phase: PhaseStopping, From: in.opts.Current, To: version, StartedAt: &now, LogPath: in.opts.Layout.Log("update")}
	in.done = make(chan struct{})
	go in.run(version, in.done)
	return in.state, true, nil
}

func (in *Installer) set(f func(*State)) {
	in.mu.Lock()
	f(&in.state)
	if !in.state.Running() && in.state.FinishedAt == nil {
		now := time.Now().UTC()
		in.state.FinishedAt = &now
	}
	in.mu.Unlock()
}

func (in *Installer) run(version string, done chan struct{}) {
	defer close(done)
	log := in.opts.Log.With("from", in.opts.Current, "to", version)
	log.Info("update: stopping services")
	sctx, cancel := context.WithTimeout(context.Background(), in.opts.StopTimeout)
	err := in.opts.Target.Suspend(sctx)
	cancel()
	if err != nil {
		log.Error("update: stop failed", "err", err)
		in.fail(CodeStopFailed, "the running services did not stop", log)
		return
	}
	in.set(func(s *State) { s.Phase = PhaseStarting })

	code, detail := in.launch(version, log)
	if code == "" {
		log.Info("update: new version is running")
		in.set(func(s *State) { s.Phase = PhaseSucceeded })
		in.opts.Target.Exit()
		return
	}
	log.Error("update: new version failed; starting the old one again", "code", code, "detail", detail)
	in.fail(code, detail, log)
}

// fail records the failure and brings the old version back.
func (in *Installer) fail(code, detail string, log *slog.Logger) {
	rctx, cancel := context.WithTimeout(context.Background(), in.opts.StopTimeout)
	defer cancel()
	if err := in.opts.Target.Resume(rctx); err != nil {
		log.Error("update: rollback failed", "err", err)
		in.set(func(s *State) {
			s.Phase, s.Error, s.Detail = PhaseFailed, CodeRollbackFailed, code+": "+detail
		})
		return
	}
	in.set(func(s *State) { s.Phase, s.Error, s.Detail = PhaseRolledBack, code, detail })
}

// launch starts the launcher for version and waits until that version
// answers /health from this home; it returns an error code and detail.
func (in *Installer) launch(version string, log *slog.Logger) (code, detail string) {
	ctx, cancel := context.WithTimeout(context.Background(), in.opts.ReadyTimeout)
	defer cancel()
	// npx, the launcher and its npm write into the update log the user
	// reads: no npm notices there.
	cmd := Command{
		Path:    in.opts.NPX,
		Args:    append([]string{"--yes", in.opts.Package + "@" + version, "start"}, in.opts.StartArgs...),
		Env:     npmconf.Quiet(in.opts.Env),
		LogPath: in.opts.Layout.Log("update"),
	}
	log.Info("update: launching", "cmd", cmd.Path, "args", cmd.Args)
	p, err := in.opts.Runner.Start(context.WithoutCancel(ctx), cmd)
	if err != nil {
		return CodeLaunchFailed, err.Error()
	}
	tick := time.NewTicker(in.opts.Poll)
	defer tick.Stop()
	for {
		if in.newVersionReady(ctx, version) {
			return "", ""
		}
		select {
		case <-p.Done():
			// It may have handed off and exited 0 only if it is ready; check once more.
			if in.newVersionReady(ctx, version) {
				return "", ""
			}
			p.Kill()
			if err := p.Err(); err != nil {
				return CodeNewExited, err.Error()
			}
			return CodeNewExited, "exited before it was ready"
		case <-ctx.Done():
			p.Kill()
			return CodeNewNotReady, fmt.Sprintf("not ready within %s", in.opts.ReadyTimeout)
		case <-tick.C:
		}
	}
}

func (in *Installer) newVersionReady(ctx context.Context, version string) bool {
	info, err := client.ReadInfo(in.opts.Layout.ControlFile())
	if err != nil || info.Version != version || info.PID == os.Getpid() {
		return false
	}
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	h, err := (&client.Client{Info: *info}).Health(hctx)
	return err == nil && h.OK && h.Version == version
}

// launcherEnv drops what the launcher sets per version, so the new
// launcher's values are the only ones.
func launcherEnv(env []string) []string {
	drop := map[string]bool{"SECOND_CLI_RELEASE_PACKAGE": true, "SECOND_CLI_RELEASE_VERSION": true, "SECOND_LAUNCHED_BY_CLI": true, "SECOND_NODE": true}
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k := kv
		if i := strings.IndexByte(kv, '='); i >= 0 {
			k = kv[:i]
		}
		if !drop[k] {
			out = append(out, kv)
		}
	}
	return out
}
