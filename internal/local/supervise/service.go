package supervise

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/second-inc/second-release/internal/local/logfile"
	"github.com/second-inc/second-release/internal/local/probe"
	"github.com/second-inc/second-release/internal/local/procutil"
)

// service is one Process under supervision; its loop goroutine owns every
// run (start, readiness, restart, stop), so no two goroutines ever signal
// or reap the same child.
type service struct {
	sup *supervisor
	p   Process

	stopOnce sync.Once
	stopCh   chan struct{} // closed when a stop is requested
	stopCtx  context.Context
	loopDone chan struct{}

	mu        sync.Mutex
	launched  bool
	state     State
	pid       int
	restarts  int
	startedAt time.Time
	stopErr   error
}

// run is one execution of the child.
type run struct {
	pid     int
	started time.Time
	exited  chan struct{} // closed once the direct child is reaped
	exitErr error         // valid after exited
	fatal   chan error    // first FatalLine error
	outDone chan struct{} // closed when the output pipe hit EOF
	wd      *procutil.Watchdog
}

func newService(s *supervisor, p Process) *service {
	return &service{sup: s, p: p, stopCh: make(chan struct{}), loopDone: make(chan struct{}), state: StateStopped}
}

type startResult struct {
	sv  *service
	err error
}

// loop runs the service until it is stopped or crash-loops. It reports
// the first run's readiness (nil, or why not) on first, exactly once.
func (sv *service) loop(startCtx context.Context, first chan<- startResult) {
	defer close(sv.loopDone)

	reported := false
	report := func(err error) {
		if !reported {
			reported = true
			first <- startResult{sv, err}
		}
	}
	lw, err := logfile.Open(sv.p.LogPath, logfile.Options{MaxBytes: sv.p.LogMaxBytes, Keep: sv.p.LogKeep})
	if err != nil {
		sv.set(StateFailed, 0, err)
		report(err)
		return
	}
	defer lw.Close()

	crashes := crashTracker{policy: sv.p.Restart}
	for {
		sv.set(StateStarting, 0, nil)
		var reason error
		r, err := sv.spawn(lw)
		switch {
		case err != nil && !reported:
			sv.set(StateFailed, 0, err)
			report(err)
			return
		case err != nil:
			reason = err
		default:
			// Announce the pid at once: the runtime records it so a later
			// start can sweep a child that died before becoming ready.
			sv.set(StateStarting, r.pid, nil)
			readyCtx := context.Background()
			if !reported {
				readyCtx = startCtx
			}
			err := sv.awaitReady(readyCtx, r)
			switch {
			case errors.Is(err, errStopRequested):
				sv.terminate(r)
				report(err)
				return
			case err != nil && !reported:
				sv.kill(r)
				sv.note(lw, "not ready: %v", err)
				sv.set(StateFailed, 0, err)
				report(err)
				return
			case err != nil:
				sv.kill(r)
				reason = err
			default:
				sv.set(StateReady, r.pid, nil)
				sv.sup.log.Info("ready", "service", sv.p.Name, "pid", r.pid)
				report(nil)
				watchDone := make(chan struct{})
				unhealthy := sv.watch(r, watchDone)
				select {
				case <-r.exited:
					sv.kill(r) // orphaned grandchildren would hold the port
					reason = fatalOr(r, exitError(r.exitErr))
				case f := <-r.fatal:
					sv.kill(r)
					reason = f
				case err := <-unhealthy:
					reason = fmt.Errorf("unhealthy: %w", err)
					sv.note(lw, "unhealthy (%v); restarting it", err)
					sv.sup.log.Warn("unhealthy; restarting", "service", sv.p.Name, "pid", r.pid, "err", err)
					sv.set(StateUnhealthy, r.pid, err)
					sv.restartHung(r)
				case <-sv.stopCh:
					close(watchDone)
					sv.terminate(r)
					return
				}
				close(watchDone)
			}
		}

		// Crashed.
		var ranFor time.Duration
		if r != nil {
			ranFor = time.Since(r.started)
		}
		consecutive, inWindow := crashes.record(time.Now(), ranFor)
		if sv.stopRequested() || sv.sup.isStopping() {
			sv.set(StateStopped, 0, reason)
			return
		}
		if inWindow >= sv.p.Restart.MaxCrashes {
			err := fmt.Errorf("%d crashes within %v, last: %w", inWindow, sv.p.Restart.Window, reason)
			if sv.p.Restart.Never {
				err = fmt.Errorf("exited and restarts are disabled: %w", reason)
			}
			sv.note(lw, "giving up: %v", err)
			sv.set(StateFailed, 0, err)
			sv.sup.crashLoop(sv.failure("crash loop", err))
			return
		}
		d := backoff(sv.p.Restart, consecutive)
		sv.note(lw, "exited (%v); restarting in %v", reason, d.Round(time.Millisecond))
		sv.sup.log.Warn("crashed; restarting", "service", sv.p.Name, "err", reason, "in", d)
		sv.set(StateRestarting, 0, reason)
		select {
		case <-time.After(d):
		case <-sv.stopCh:
			sv.set(StateStopped, 0, nil)
			return
		}
		sv.mu.Lock()
		sv.restarts++
		sv.mu.Unlock()
	}
}

// spawn starts the child in its own process group with output to lw.
func (sv *service) spawn(lw *logfile.Writer) (*run, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: output pipe: %w", sv.p.Name, err)
	}
	cmd := exec.Command(sv.p.Command, sv.p.Args...)
	cmd.Dir = sv.p.Dir
	cmd.Env = append([]string{}, sv.p.Env...) // non-nil: never inherit ours
	// An *os.File is handed to the child as is, so Wait does not wait for
	// grandchildren that still hold the pipe; we copy it ourselves.
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	procutil.NewGroup(cmd.SysProcAttr)
	procutil.SetParentDeath(cmd.SysProcAttr)

	r := &run{exited: make(chan struct{}), fatal: make(chan error, 1), outDone: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Linux sends the parent-death signal when the *thread* that forked
		// the child exits. Holding this OS thread until the child is reaped
		// keeps Go from retiring it under a live child (which would kill the
		// child for no reason). The goroutine ends still locked, so Go
		// discards the thread, which by then has no child left.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		r.exitErr = cmd.Wait()
		close(r.exited)
	}()
	err = <-started
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("start %s: %w", sv.p.Name, err)
	}
	r.pid = cmd.Process.Pid
	r.started = time.Now()
	sv.mu.Lock()
	sv.pid, sv.startedAt = r.pid, r.started
	sv.mu.Unlock()
	sv.note(lw, "started %s (pid %d)", sv.p.Command, r.pid)
	if wd, err := procutil.StartWatchdog(r.pid); err != nil {
		// Still usable: on Linux the parent-death signal covers the child.
		sv.sup.log.Warn("no watchdog", "service", sv.p.Name, "err", err)
	} else {
		r.wd = wd
	}
	go sv.copyOutput(pr, lw, r)
	return r, nil
}

// maxFatalLine bounds what FatalLine sees of one very long line.
const maxFatalLine = 64 << 10

func (sv *service) copyOutput(pr *os.File, lw *logfile.Writer, r *run) {
	defer close(r.outDone)
	defer pr.Close()
	br := bufio.NewReaderSize(pr, maxFatalLine)
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			_, _ = lw.Write(chunk)
			if sv.p.Echo != nil {
				_, _ = sv.p.Echo.Write(chunk)
			}
			if sv.p.FatalLine != nil {
				if ferr := sv.p.FatalLine(strings.TrimRight(string(chunk), "\r\n")); ferr != nil {
					select {
					case r.fatal <- ferr:
					default:
					}
				}
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return
		}
	}
}

func (sv *service) awaitReady(ctx context.Context, r *run) error {
	ctx, cancel := context.WithTimeout(ctx, sv.p.ReadyTimeout)
	defer cancel()
	res := make(chan error, 1)
	go func() {
		var err error
		if sv.p.Ready != nil {
			err = probe.Wait(ctx, sv.p.Ready, 0)
		}
		if err == nil && sv.p.AfterReady != nil {
			if err = sv.p.AfterReady(ctx); err != nil {
				err = fmt.Errorf("after ready: %w", err)
			}
		}
		res <- err
	}()
	select {
	case err := <-res:
		if err == nil {
			return nil
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("not ready within %v: %w", sv.p.ReadyTimeout, err)
		}
		return fatalOr(r, err)
	case <-r.exited:
		// Let the output drain so a fatal line printed just before the exit
		// is the reason given, not the bare exit status.
		select {
		case <-r.outDone:
		case <-time.After(time.Second):
		}
		return fatalOr(r, fmt.Errorf("exited before it was ready: %w", exitError(r.exitErr)))
	case f := <-r.fatal:
		return f
	case <-sv.stopCh:
		return errStopRequested
	}
}

// watch runs the liveness probe until done is closed; the returned channel
// receives the last error once Failures checks in a row have failed.
// Without a Liveness it never fires.
func (sv *service) watch(r *run, done <-chan struct{}) <-chan error {
	out := make(chan error, 1)
	lv := sv.p.Liveness
	if lv == nil {
		return out
	}
	go func() {
		t := time.NewTicker(lv.Interval)
		defer t.Stop()
		failed := 0
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), lv.Timeout)
			err := lv.Probe.Check(ctx)
			cancel()
			if err == nil {
				failed = 0
				continue
			}
			failed++
			sv.sup.log.Warn("liveness check failed", "service", sv.p.Name, "pid", r.pid, "failures", failed, "err", err)
			if failed >= lv.Failures {
				out <- fmt.Errorf("%d liveness checks in a row failed, last: %w", failed, err)
				return
			}
		}
	}()
	return out
}

// restartHung ends an unhealthy run: SIGTERM and SIGCONT to the group (a
// stopped process acts on SIGTERM only once continued), SIGKILL after the
// liveness grace.
func (sv *service) restartHung(r *run) {
	_ = procutil.SignalGroup(r.pid, syscall.SIGTERM)
	_ = procutil.SignalGroup(r.pid, syscall.SIGCONT)
	ctx, cancel := context.WithTimeout(context.Background(), sv.p.Liveness.Grace)
	defer cancel()
	select {
	case <-r.exited:
	case <-ctx.Done():
	}
	if procutil.WaitGroupEmpty(ctx, r.pid) == nil {
		sv.finish(r)
		return
	}
	sv.sup.log.Warn("unhealthy child did not exit within grace; SIGKILL", "service", sv.p.Name, "grace", sv.p.Liveness.Grace)
	sv.kill(r)
}

// fatalOr prefers a FatalLine error, which says why, over err.
func fatalOr(r *run, err error) error {
	select {
	case f := <-r.fatal:
		return f
	default:
		return err
	}
}

func exitError(err error) error {
	if err == nil {
		return errors.New("exited with status 0")
	}
	return err
}

// kill SIGKILLs the run's whole group and waits until it is gone.
func (sv *service) kill(r *run) {
	if err := procutil.SignalGroup(r.pid, syscall.SIGKILL); err != nil {
		sv.sup.log.Error("kill", "service", sv.p.Name, "err", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), killWait)
	defer cancel()
	select {
	case <-r.exited:
	case <-ctx.Done():
	}
	if err := procutil.WaitGroupEmpty(ctx, r.pid); err != nil {
		sv.setStopErr(fmt.Errorf("stop %s: %w", sv.p.Name, err))
		// Leave the watchdog armed: it still kills the group if we die.
		return
	}
	sv.finish(r)
}

// finish disarms the watchdog once the group is empty and lets the output
// copier catch up.
func (sv *service) finish(r *run) {
	if r.wd != nil {
		if err := r.wd.Disarm(); err != nil {
			sv.sup.log.Warn("watchdog", "service", sv.p.Name, "err", err)
		}
	}
	select {
	case <-r.outDone:
	case <-time.After(time.Second): // a daemonized escapee holds the pipe
	}
}

// terminate is the requested stop: Before hook, Signal to the group, wait
// up to Grace for the group to empty, then SIGKILL.
func (sv *service) terminate(r *run) {
	sv.set(StateStopping, r.pid, nil)
	ctx := sv.stopCtx
	if ctx == nil {
		ctx = context.Background()
	}
	gctx, cancel := context.WithTimeout(ctx, sv.p.Stop.Grace)
	defer cancel()
	// A stopped (SIGSTOP, Ctrl-Z) child acts on the hook or the signal only
	// once continued.
	_ = procutil.SignalGroup(r.pid, syscall.SIGCONT)
	if sv.p.Stop.Before != nil {
		select {
		case <-r.exited:
		default:
			// A hung child would hold the hook for the whole grace.
			bctx, bcancel := context.WithTimeout(gctx, min(sv.p.Stop.Grace/2, maxBeforeWait))
			err := sv.p.Stop.Before(bctx)
			bcancel()
			if err != nil {
				sv.sup.log.Warn("stop hook failed; signalling", "service", sv.p.Name, "err", err)
			}
		}
	}
	sig := sv.p.Stop.Signal.(syscall.Signal)
	if err := procutil.SignalGroup(r.pid, sig); err != nil {
		sv.sup.log.Error("stop", "service", sv.p.Name, "err", err)
	}
	_ = procutil.SignalGroup(r.pid, syscall.SIGCONT)
	select {
	case <-r.exited:
	case <-gctx.Done():
	}
	if err := procutil.WaitGroupEmpty(gctx, r.pid); err != nil {
		sv.sup.log.Warn("did not stop within grace; SIGKILL", "service", sv.p.Name, "grace", sv.p.Stop.Grace)
		sv.kill(r)
	} else {
		sv.finish(r)
	}
	sv.set(StateStopped, 0, nil)
	sv.sup.log.Info("stopped", "service", sv.p.Name)
}

// stop asks the loop to stop the service and waits for it.
func (sv *service) stop(ctx context.Context) error {
	sv.stopOnce.Do(func() {
		sv.stopCtx = ctx
		close(sv.stopCh)
	})
	sv.mu.Lock()
	launched := sv.launched
	sv.mu.Unlock()
	if launched {
		<-sv.loopDone // bounded: Grace, then SIGKILL and killWait
	}
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.stopErr
}

func (sv *service) stopRequested() bool {
	select {
	case <-sv.stopCh:
		return true
	default:
		return false
	}
}

func (s *supervisor) isStopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

func (sv *service) setStopErr(err error) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if sv.stopErr == nil {
		sv.stopErr = err
	}
}

func (sv *service) set(st State, pid int, err error) {
	sv.mu.Lock()
	sv.state, sv.pid = st, pid
	if pid == 0 {
		sv.startedAt = time.Time{}
	}
	sv.mu.Unlock()
	sv.sup.emit(Event{Service: sv.p.Name, State: st, PID: pid, Time: time.Now(), Err: err})
}

func (sv *service) status() ServiceStatus {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return ServiceStatus{
		Name: sv.p.Name, State: sv.state, PID: sv.pid, Port: sv.p.Port,
		Restarts: sv.restarts, StartedAt: sv.startedAt, LogPath: sv.p.LogPath,
	}
}

// note writes a supervisor line into the service's own log, so its tail
// tells the whole story (started, exited, restarting).
func (sv *service) note(lw *logfile.Writer, format string, args ...any) {
	fmt.Fprintf(lw, "[second %s] %s: %s\n", time.Now().UTC().Format(time.RFC3339), sv.p.Name, fmt.Sprintf(format, args...))
}

func (sv *service) failure(op string, err error) *Error {
	tail, terr := logfile.Tail(sv.p.LogPath, tailLines)
	if terr != nil {
		tail = "(" + terr.Error() + ")"
	}
	tail = fromLastStart(tail, sv.p.Name)
	return &Error{Service: sv.p.Name, Op: op, Err: err, LogPath: sv.p.LogPath, LogTail: tail}
}

// fromLastStart drops the lines before the last run's "started" note: the
// log also holds earlier runs, whose lines would read as this failure's
// reason. A tail without the note is all from the last run already.
func fromLastStart(tail, name string) string {
	lines := strings.SplitAfter(tail, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "[second ") && strings.Contains(lines[i], "] "+name+": started ") {
			return strings.Join(lines[i:], "")
		}
	}
	return tail
}

// crashTracker counts crashes for one service: consecutive ones (for the
// backoff; reset by a run that lasted StableAfter) and those within the
// sliding Window (for crash-loop detection).
type crashTracker struct {
	policy      RestartPolicy
	times       []time.Time
	consecutive int
}

// record notes a crash at now of a run that lasted ranFor and returns the
// consecutive count and the number of crashes within Window.
func (c *crashTracker) record(now time.Time, ranFor time.Duration) (consecutive, inWindow int) {
	if ranFor >= c.policy.StableAfter {
		c.consecutive = 0
	}
	c.consecutive++
	kept := c.times[:0]
	for _, t := range c.times {
		if now.Sub(t) < c.policy.Window {
			kept = append(kept, t)
		}
	}
	c.times = append(kept, now)
	return c.consecutive, len(c.times)
}
