package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/local/procutil"
	"github.com/second-inc/second-release/internal/local/runstatus"
	"github.com/second-inc/second-release/internal/local/state"
)

// serviceOrder is start order, the order status lists services in.
func serviceOrder(name string) int {
	switch name {
	case ServiceMongo:
		return 0
	case ServiceRedis:
		return 1
	case ServiceWeb:
		return 2
	case ServiceWorker:
		return 3
	}
	return 4
}

// Status is the live status of this runtime (for the control server).
func (rt *Runtime) Status() runstatus.Status {
	rt.mu.Lock()
	st := rt.state
	rt.mu.Unlock()
	out := fromState(&st, st.PID != 0, time.Now())
	if rt.sup != nil {
		// The supervisor knows restarts and pids better than our mirror.
		byName := map[string]int{}
		for i, s := range out.Services {
			byName[s.Name] = i
		}
		now := time.Now()
		for _, s := range rt.sup.Status() {
			i, ok := byName[s.Name]
			if !ok {
				continue
			}
			svc := &out.Services[i]
			svc.State, svc.PID, svc.Restarts = string(s.State), s.PID, s.Restarts
			if s.Port != 0 {
				svc.Port = s.Port
			}
			svc.StartedAt, svc.UptimeSeconds = nil, 0
			if !s.StartedAt.IsZero() && s.PID != 0 {
				t := s.StartedAt.UTC()
				svc.StartedAt, svc.UptimeSeconds = &t, int64(now.Sub(t)/time.Second)
			}
		}
	}
	return out
}

// ReadStatus is the status from runtime.json and the lock, used when no
// control server answers. A runtime counts as running only while its
// lock is held and its pid is alive.
func ReadStatus(l home.Layout) (runstatus.Status, error) {
	st, err := state.Read(l.StateFile())
	if err != nil {
		return runstatus.Status{}, err
	}
	if st == nil {
		return runstatus.Status{Phase: string(state.PhaseStopped), Home: l.Root, Services: []runstatus.Service{}}, nil
	}
	running := st.PID > 0 && procutil.Alive(st.PID) && state.Held(l.LockFile())
	return fromState(st, running, time.Now()), nil
}

func fromState(st *state.State, running bool, now time.Time) runstatus.Status {
	out := runstatus.Status{Running: running, Phase: string(st.Phase), Version: st.Version, Home: st.Home, Services: []runstatus.Service{}}
	if running {
		out.PID, out.URL = st.PID, st.URL
		t := st.StartedAt
		out.StartedAt = &t
	} else if st.Phase != state.PhaseFailed {
		out.Phase = string(state.PhaseStopped)
	}
	for name, s := range st.Services {
		svc := runstatus.Service{Name: name, State: s.State, Port: s.Port, Restarts: s.Restarts}
		if running && s.PID != 0 {
			svc.PID = s.PID
			if !s.StartedAt.IsZero() {
				t := s.StartedAt
				svc.StartedAt, svc.UptimeSeconds = &t, int64(now.Sub(t)/time.Second)
			}
		} else if !running {
			svc.State = "stopped"
		}
		out.Services = append(out.Services, svc)
	}
	sort.Slice(out.Services, func(i, j int) bool {
		return serviceOrder(out.Services[i].Name) < serviceOrder(out.Services[j].Name)
	})
	return out
}

// StopWait is how long StopRunning waits for the supervisor (its own
// StopBudget plus a margin) before SIGKILL.
const StopWait = StopBudget + 2*time.Second

// StopOptions configures StopRunning.
type StopOptions struct {
	Layout  home.Layout
	Out     io.Writer
	Timeout time.Duration // default StopWait
	// Asked means the control server already accepted a stop request: only
	// wait (and force it if it never finishes).
	Asked bool
}

// StopRunning stops the runtime of a home from another process: SIGTERM
// to the supervisor (after checking the pid is a second), wait for its
// lock to be released, SIGKILL if it never is, then sweep leftovers.
// Not running is not an error.
func StopRunning(ctx context.Context, o StopOptions) (stopped bool, err error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Timeout <= 0 {
		o.Timeout = StopWait
	}
	l := o.Layout
	// A corrupt runtime.json must not block stop or reset: the lock and its
	// holder's pid are enough to find the supervisor.
	st, _ := state.Read(l.StateFile())
	if !state.Held(l.LockFile()) {
		if st != nil {
			SweepStale(ctx, discardLogger(), st)
		}
		return false, nil
	}
	pid := 0
	if st != nil {
		pid = st.PID
	}
	if pid == 0 {
		pid = state.Holder(l.LockFile())
	}
	if pid <= 0 || !procutil.Alive(pid) {
		return false, fmt.Errorf("%s is locked but no live supervisor pid is recorded in %s: stop the process holding the lock (`fuser %s`)", l.LockFile(), l.StateFile(), l.LockFile())
	}
	exe := ""
	if st != nil {
		exe = st.Executable
	}
	if !looksLikeSecond(pid, exe) {
		return false, fmt.Errorf("pid %d recorded in %s is not a second process; refusing to signal it", pid, l.StateFile())
	}
	fmt.Fprintf(o.Out, "Stopping Second (pid %d)…\n", pid)
	if !o.Asked {
		if err := signalPID(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return false, fmt.Errorf("signal second (pid %d): %w", pid, err)
		}
		// A stopped (SIGSTOP, Ctrl-Z) supervisor acts on SIGTERM once continued.
		_ = signalPID(pid, syscall.SIGCONT)
	}
	deadline := time.Now().Add(o.Timeout)
	for state.Held(l.LockFile()) {
		if time.Now().After(deadline) {
			// Children die with it (parent-death signal / watchdog); the sweep catches the rest.
			_ = signalPID(pid, syscall.SIGKILL)
			time.Sleep(200 * time.Millisecond)
			break
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if st2, _ := state.Read(l.StateFile()); st2 != nil {
		SweepStale(ctx, discardLogger(), st2)
	}
	return true, nil
}

func looksLikeSecond(pid int, exe string) bool {
	args, err := procutil.CommandLine(pid)
	if err != nil || len(args) == 0 {
		return false
	}
	if exe != "" && filepath.Base(args[0]) == filepath.Base(exe) {
		return true
	}
	return filepath.Base(args[0]) == "second"
}
