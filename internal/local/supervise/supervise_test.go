package supervise

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/local/probe"
	"github.com/second-inc/second-release/internal/local/procutil"
)

// Children are /bin/sh scripts: real processes with real process groups,
// no build step. Each gets $DIR (a scratch dir) and $NAME.

// fileProbe is ready once path exists (the child touches it).
func fileProbe(path string) probe.Probe {
	return probe.Func(func(context.Context) error {
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%s not there yet", filepath.Base(path))
		}
		return nil
	})
}

// shProc describes a /bin/sh child running script, ready when it touches
// $DIR/$NAME.ready.
func shProc(dir, name, script string) *Process {
	return &Process{
		Name:         name,
		Command:      "/bin/sh",
		Args:         []string{"-c", script},
		Env:          []string{"DIR=" + dir, "NAME=" + name, "PATH=/usr/bin:/bin"},
		LogPath:      filepath.Join(dir, "logs", name+".log"),
		Ready:        fileProbe(filepath.Join(dir, name+".ready")),
		ReadyTimeout: 10 * time.Second,
		Stop:         StopPolicy{Grace: 5 * time.Second},
		Restart:      RestartPolicy{InitialBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond},
	}
}

// A well-behaved service: a background grandchild (so the group has more
// than the leader), records its grandchild's pid, appends $NAME to
// $DIR/order on SIGTERM.
const serviceScript = `sleep 300 & echo $! > "$DIR/$NAME.gc"
trap 'echo "$NAME" >> "$DIR/order"; kill $! 2>/dev/null; exit 0' TERM
echo "$NAME up"
touch "$DIR/$NAME.ready"
while :; do sleep 0.05; done`

func readPid(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && strings.HasSuffix(string(b), "\n") {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func statusOf(s *Supervisor, name string) ServiceStatus {
	for _, st := range s.Status() {
		if st.Name == name {
			return st
		}
	}
	return ServiceStatus{}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// eventLog records events for assertions.
type eventLog struct {
	mu sync.Mutex
	ev []Event
}

func (l *eventLog) add(e Event) { l.mu.Lock(); l.ev = append(l.ev, e); l.mu.Unlock() }

// pid is the pid of the i-th event of a service.
func (l *eventLog) pid(name string, i int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.ev {
		if e.Service == name {
			if i == 0 {
				return e.PID
			}
			i--
		}
	}
	return -1
}
func (l *eventLog) states(name string) []State {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []State
	for _, e := range l.ev {
		if e.Service == name {
			out = append(out, e.State)
		}
	}
	return out
}

func TestStartStatusStopOrder(t *testing.T) {
	dir := t.TempDir()
	var events eventLog
	s := New(Options{OnEvent: events.add})
	mongo, redis := shProc(dir, "mongo", serviceScript), shProc(dir, "redis", serviceScript)
	web, worker := shProc(dir, "web", serviceScript), shProc(dir, "worker", serviceScript)
	mongo.Port = 27018
	var hookRan []string
	var hookMu sync.Mutex
	mongo.Stop.Before = func(ctx context.Context) error {
		hookMu.Lock()
		defer hookMu.Unlock()
		b, _ := os.ReadFile(filepath.Join(dir, "order"))
		hookRan = append(hookRan, strings.TrimSpace(string(b)))
		return errors.New("hook errors are logged, not fatal")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Start(ctx, []*Process{mongo, redis}, []*Process{web}, []*Process{worker}); err != nil {
		t.Fatal(err)
	}
	pgids := checkAllReady(t, s.Status())
	gc := readPid(t, filepath.Join(dir, "web.gc"))

	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if s.Err() != nil {
		t.Errorf("Err after clean stop = %v", s.Err())
	}
	order, _ := os.ReadFile(filepath.Join(dir, "order"))
	if got := strings.Fields(string(order)); strings.Join(got, ",") != "worker,web,redis,mongo" {
		t.Errorf("stop order %v, want worker,web,redis,mongo", got)
	}
	if len(hookRan) != 1 || hookRan[0] != "worker\nweb\nredis" {
		t.Errorf("mongo's Before hook should run once, after redis stopped: %q", hookRan)
	}
	checkNothingLeft(t, s, pgids, gc)
	if got := events.states("web"); strings.Join(statesStr(got), ",") != "starting,starting,ready,stopping,stopped" {
		t.Errorf("web events %v", got)
	}
	// The second "starting" carries the pid, before readiness.
	if pid := events.pid("web", 1); pid != pgids["web"] {
		t.Errorf("web's spawn event has pid %d, want %d", pid, pgids["web"])
	}
	if err := s.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	log, _ := os.ReadFile(web.LogPath)
	if !strings.Contains(string(log), "web up") {
		t.Errorf("web log lacks the child's output: %q", log)
	}
}

// checkAllReady checks st lists mongo (on port 27018), redis, web and worker
// in that order, each ready in its own process group, and returns their
// group ids by name.
func checkAllReady(t *testing.T, st []ServiceStatus) map[string]int {
	t.Helper()
	if len(st) != 4 {
		t.Fatalf("Status has %d entries", len(st))
	}
	pgids := map[string]int{}
	for i, want := range []string{"mongo", "redis", "web", "worker"} {
		if st[i].Name != want || st[i].State != StateReady || st[i].PID == 0 || st[i].StartedAt.IsZero() {
			t.Errorf("status[%d] = %+v, want %s ready with a pid", i, st[i], want)
		}
		pgids[want] = st[i].PID
		if pgid, _ := syscall.Getpgid(st[i].PID); pgid != st[i].PID {
			t.Errorf("%s: pgid %d, want its own group %d", want, pgid, st[i].PID)
		}
	}
	if st[0].Port != 27018 {
		t.Errorf("port = %d", st[0].Port)
	}
	return pgids
}

// checkNothingLeft checks that after Stop no process group in pgids has a
// member, web's grandchild gc is gone and every service says stopped.
func checkNothingLeft(t *testing.T, s *Supervisor, pgids map[string]int, gc int) {
	t.Helper()
	for name, pgid := range pgids {
		if procutil.GroupAlive(pgid) {
			t.Errorf("%s's group %d still has %v after Stop", name, pgid, procutil.GroupMembers(pgid))
		}
	}
	if procutil.Alive(gc) {
		t.Error("web's grandchild outlived Stop")
	}
	for _, st := range s.Status() {
		if st.State != StateStopped || st.PID != 0 {
			t.Errorf("after Stop: %+v", st)
		}
	}
}

func statesStr(s []State) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = string(x)
	}
	return out
}

func TestRestartAfterCrash(t *testing.T) {
	dir := t.TempDir()
	// First run: ready, then crashes; later runs stay up.
	p := shProc(dir, "worker", `n=$(cat "$DIR/runs" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$DIR/runs"
echo "run $n"
touch "$DIR/$NAME.ready"
if [ "$n" = 1 ]; then sleep 0.2; echo "crashing"; exit 3; fi
exec sleep 300`)
	var events eventLog
	s := New(Options{OnEvent: events.add})
	ctx := context.Background()
	if err := s.Start(ctx, []*Process{p}); err != nil {
		t.Fatal(err)
	}
	first := statusOf(s, "worker").PID
	waitFor(t, "restart", 10*time.Second, func() bool {
		st := statusOf(s, "worker")
		return st.Restarts == 1 && st.State == StateReady
	})
	if pid := statusOf(s, "worker").PID; pid == first || !procutil.Alive(pid) {
		t.Errorf("after restart pid %d (first %d) should be new and alive", pid, first)
	}
	if procutil.GroupAlive(first) {
		t.Error("crashed run's group still alive")
	}
	got := strings.Join(statesStr(events.states("worker")), ",")
	if got != "starting,starting,ready,restarting,starting,starting,ready" { // each spawn announces its pid
		t.Errorf("events %s", got)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(p.LogPath)
	for _, want := range []string{"run 1", "crashing", "exit status 3); restarting in", "run 2"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestCrashLoopStopsEverything(t *testing.T) {
	dir := t.TempDir()
	steady := shProc(dir, "redis", serviceScript)
	// Ready at once, then dies: every run is a crash.
	flaky := shProc(dir, "worker", `touch "$DIR/$NAME.ready"; echo "boom: cannot reach redis" >&2; sleep 0.05; exit 1`)
	s := New(Options{})
	if err := s.Start(context.Background(), []*Process{steady}, []*Process{flaky}); err != nil {
		t.Fatal(err)
	}
	steadyPid := statusOf(s, "redis").PID
	select {
	case <-s.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("crash loop did not end supervision")
	}
	var e *Error
	if !errors.As(s.Err(), &e) {
		t.Fatalf("Err = %v, want *Error", s.Err())
	}
	if e.Service != "worker" || e.Op != "crash loop" {
		t.Errorf("error names %s/%s", e.Service, e.Op)
	}
	msg := e.Error()
	for _, want := range []string{"worker keeps crashing", "5 crashes within 1m0s", "boom: cannot reach redis", "worker.log"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if st := statusOf(s, "worker"); st.State != StateFailed || st.Restarts != 4 {
		t.Errorf("worker status %+v, want failed after 4 restarts", st)
	}
	if st := statusOf(s, "redis"); st.State != StateStopped {
		t.Errorf("redis status %+v, want stopped", st)
	}
	if procutil.GroupAlive(steadyPid) {
		t.Error("redis still running after crash loop")
	}
}

func TestStartFailures(t *testing.T) {
	tests := []struct {
		name    string
		proc    func(dir string) *Process
		within  time.Duration
		wantErr []string
	}{
		{
			name: "readiness timeout names service and log tail",
			proc: func(dir string) *Process {
				p := shProc(dir, "web", `echo "listening... not really"; exec sleep 300`)
				p.ReadyTimeout = 300 * time.Millisecond
				return p
			},
			within:  5 * time.Second,
			wantErr: []string{"web failed to start", "not ready within 300ms", "web.ready not there yet", "listening... not really"},
		},
		{
			name: "fatal line fails fast",
			proc: func(dir string) *Process {
				p := shProc(dir, "mongo", `echo "starting"; echo "FATAL: Address already in use"; exec sleep 300`)
				p.ReadyTimeout = time.Minute
				p.FatalLine = func(line string) error {
					if strings.Contains(line, "Address already in use") {
						return errors.New("port is taken")
					}
					return nil
				}
				return p
			},
			within:  5 * time.Second,
			wantErr: []string{"mongo failed to start: port is taken", "FATAL: Address already in use"},
		},
		{
			name: "fatal line then exit reports the line, not the status",
			proc: func(dir string) *Process {
				p := shProc(dir, "mongo", `echo "DBPathInUse"; exit 100`)
				p.FatalLine = func(line string) error {
					if line == "DBPathInUse" {
						return errors.New("data dir in use by another mongod")
					}
					return nil
				}
				return p
			},
			within:  5 * time.Second,
			wantErr: []string{"data dir in use by another mongod"},
		},
		{
			name: "exit before ready",
			proc: func(dir string) *Process {
				return shProc(dir, "redis", `echo "bad config line 3" >&2; exit 1`)
			},
			within:  5 * time.Second,
			wantErr: []string{"redis failed to start: exited before it was ready: exit status 1", "bad config line 3"},
		},
		{
			name: "missing executable",
			proc: func(dir string) *Process {
				p := shProc(dir, "mongo", "")
				p.Command = filepath.Join(dir, "no-such-mongod")
				return p
			},
			within:  5 * time.Second,
			wantErr: []string{"mongo failed to start", "no-such-mongod", "no such file"},
		},
		{
			name: "after-ready hook error",
			proc: func(dir string) *Process {
				p := shProc(dir, "mongo", serviceScript)
				p.AfterReady = func(context.Context) error { return errors.New("replica set config names 2 members") }
				return p
			},
			within:  5 * time.Second,
			wantErr: []string{"mongo failed to start: after ready: replica set config names 2 members"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			other := shProc(dir, "other", serviceScript)
			s := New(Options{})
			t0 := time.Now()
			err := s.Start(context.Background(), []*Process{other, tc.proc(dir)}, []*Process{shProc(dir, "never", serviceScript)})
			if err == nil {
				s.Stop(context.Background())
				t.Fatal("Start succeeded")
			}
			if d := time.Since(t0); d > tc.within {
				t.Errorf("Start took %v to fail, want < %v", d, tc.within)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
			select {
			case <-s.Done():
			default:
				t.Error("Done not closed after failed Start")
			}
			if s.Err() == nil {
				t.Error("Err nil after failed Start")
			}
			if st := statusOf(s, "other"); st.State != StateStopped || st.PID != 0 {
				t.Errorf("other service after failed start: %+v", st)
			}
			// The failing service may fail before the other one got going.
			// It may even be killed between creating its pid file and
			// writing it.
			if b, err := os.ReadFile(filepath.Join(dir, "other.gc")); err == nil && len(b) > 0 {
				if gc, _ := strconv.Atoi(strings.TrimSpace(string(b))); procutil.Alive(gc) {
					t.Error("the other service's grandchild survived the failed start")
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "never.gc")); err == nil {
				t.Error("a later group was started after a failure")
			}
		})
	}
}

func TestStopEscalatesToSIGKILL(t *testing.T) {
	dir := t.TempDir()
	p := shProc(dir, "stubborn", `trap '' TERM; sleep 300 & echo $! > "$DIR/$NAME.gc"; touch "$DIR/$NAME.ready"; while :; do sleep 0.05; done`)
	p.Stop.Grace = 300 * time.Millisecond
	s := New(Options{})
	if err := s.Start(context.Background(), []*Process{p}); err != nil {
		t.Fatal(err)
	}
	pgid := statusOf(s, "stubborn").PID
	gc := readPid(t, filepath.Join(dir, "stubborn.gc"))
	t0 := time.Now()
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Errorf("Stop returned after %v, before the grace period", d)
	}
	if procutil.GroupAlive(pgid) || procutil.Alive(gc) {
		t.Error("group survived SIGKILL escalation")
	}
}

func TestStopContextCancelledKillsAtOnce(t *testing.T) {
	dir := t.TempDir()
	p := shProc(dir, "stubborn", `trap '' TERM; touch "$DIR/$NAME.ready"; while :; do sleep 0.05; done`)
	p.Stop.Grace = time.Minute
	s := New(Options{})
	if err := s.Start(context.Background(), []*Process{p}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	t0 := time.Now()
	s.Stop(ctx)
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("Stop with a done ctx took %v", d)
	}
	if st := statusOf(s, "stubborn"); st.State != StateStopped {
		t.Errorf("status %+v", st)
	}
}

func TestLogRotates(t *testing.T) {
	dir := t.TempDir()
	p := shProc(dir, "chatty", `i=0; while [ $i -lt 400 ]; do echo "line $i of chatter"; i=$((i+1)); done; touch "$DIR/$NAME.ready"; exec sleep 300`)
	p.LogMaxBytes = 1000
	p.LogKeep = 2
	s := New(Options{})
	if err := s.Start(context.Background(), []*Process{p}); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	// Readiness can beat the output copier; wait until it has caught up.
	waitFor(t, "last line logged", 5*time.Second, func() bool {
		b, _ := os.ReadFile(p.LogPath)
		return strings.Contains(string(b), "line 399 of chatter")
	})
	for _, f := range []string{p.LogPath, p.LogPath + ".1", p.LogPath + ".2"} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if st.Size() > 1000 {
			t.Errorf("%s is %d bytes", f, st.Size())
		}
	}
	if _, err := os.Stat(p.LogPath + ".3"); err == nil {
		t.Error("kept more than LogKeep files")
	}
}

func TestValidation(t *testing.T) {
	tests := []struct {
		name string
		p    Process
		want string
	}{
		{"no name", Process{Command: "x", LogPath: "l"}, "no Name"},
		{"no command", Process{Name: "a", LogPath: "l"}, `"a" has no Command`},
		{"no log", Process{Name: "a", Command: "x"}, `"a" has no LogPath`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			err := New(Options{}).Start(context.Background(), []*Process{&p})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	a := &Process{Name: "a", Command: "x", LogPath: "l"}
	if err := New(Options{}).Start(context.Background(), []*Process{a}, []*Process{a}); err == nil || !strings.Contains(err.Error(), "two processes") {
		t.Errorf("duplicate names: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	r := RestartPolicy{InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	tests := []struct {
		n        int
		min, max time.Duration
	}{
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{3, 200 * time.Millisecond, 400 * time.Millisecond},
		{5, 500 * time.Millisecond, time.Second},
		{40, 500 * time.Millisecond, time.Second},
	}
	for _, tc := range tests {
		for range 50 {
			if d := backoff(r, tc.n); d < tc.min || d > tc.max {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", tc.n, d, tc.min, tc.max)
			}
		}
	}
}

// The supervisor killed with SIGKILL must take every child with it. The
// supervisor runs in a separate process: this test binary re-executed with
// SUPERVISE_TEST_HELPER set (see TestMain).
func TestSupervisorSIGKILLLeavesNoChild(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SUPERVISE_TEST_HELPER="+dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill() })

	waitFor(t, "helper supervisor ready", 30*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(dir, "supervisor.ready"))
		return err == nil
	})
	var pids, pgids []int
	for _, name := range []string{"a", "b"} {
		leader := readPid(t, filepath.Join(dir, name+".leader"))
		pgids = append(pgids, leader)
		pids = append(pids, leader, readPid(t, filepath.Join(dir, name+".gc")))
	}
	for _, pid := range pids {
		if !procutil.Alive(pid) {
			t.Fatalf("pid %d not alive before the kill", pid)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	killed := time.Now()
	deadline := killed.Add(2 * time.Second)
	for {
		var alive []string
		for _, pid := range pids {
			if procutil.Alive(pid) {
				alive = append(alive, fmt.Sprintf("pid %d", pid))
			}
		}
		for _, g := range pgids {
			if procutil.GroupAlive(g) {
				alive = append(alive, fmt.Sprintf("group %d %v", g, procutil.GroupMembers(g)))
			}
		}
		if len(alive) == 0 {
			t.Logf("all children gone %v after SIGKILL", time.Since(killed).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("2 s after SIGKILL of the supervisor still alive: %v", alive)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runHelperSupervisor is the supervisor process of the SIGKILL test: two
// services, each a group leader with a grandchild; then wait to be killed.
func runHelperSupervisor(dir string) {
	script := `echo $$ > "$DIR/$NAME.leader"; sleep 300 & echo $! > "$DIR/$NAME.gc"; touch "$DIR/$NAME.ready"; wait`
	s := New(Options{})
	procs := []*Process{shProc(dir, "a", script), shProc(dir, "b", script)}
	if os.Getenv("SUPERVISE_TEST_RSS") != "" {
		procs = append(procs, shProc(dir, "c", script), shProc(dir, "d", script))
	}
	err := s.Start(context.Background(), procs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper supervisor:", err)
		os.Exit(1)
	}
	os.WriteFile(filepath.Join(dir, "supervisor.ready"), nil, 0o600)
	if os.Getenv("SUPERVISE_TEST_RSS") != "" {
		reportRSS(s)
	}
	<-s.Done()
}

func TestMain(m *testing.M) {
	if dir := os.Getenv("SUPERVISE_TEST_HELPER"); dir != "" {
		runHelperSupervisor(dir)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestStopDuringStart(t *testing.T) {
	dir := t.TempDir()
	slow := shProc(dir, "web", `sleep 300 & echo $! > "$DIR/$NAME.gc"; wait`) // never ready
	slow.ReadyTimeout = time.Minute
	s := New(Options{})
	errc := make(chan error, 1)
	go func() {
		errc <- s.Start(context.Background(), []*Process{slow}, []*Process{shProc(dir, "later", serviceScript)})
	}()
	gc := readPid(t, filepath.Join(dir, "web.gc"))
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "interrupted") {
			t.Errorf("Start = %v, want interrupted", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not return after Stop")
	}
	if s.Err() != nil {
		t.Errorf("Err after a requested stop = %v", s.Err())
	}
	if procutil.Alive(gc) {
		t.Error("child survived")
	}
	if _, err := os.Stat(filepath.Join(dir, "later.gc")); err == nil {
		t.Error("later group started after Stop")
	}
}

func TestCrashTracker(t *testing.T) {
	pol := withDefaults(Process{Restart: RestartPolicy{StableAfter: 10 * time.Second, Window: time.Minute}}).Restart
	t0 := time.Unix(1_000_000, 0)
	type crash struct {
		at     time.Duration // since t0
		ranFor time.Duration
		consec int
		window int
	}
	tests := []struct {
		name    string
		crashes []crash
	}{
		{"quick crashes count up", []crash{{0, time.Second, 1, 1}, {2 * time.Second, time.Second, 2, 2}, {5 * time.Second, time.Second, 3, 3}}},
		{"a stable run resets the backoff, not the window", []crash{{0, time.Second, 1, 1}, {2 * time.Second, time.Second, 2, 2}, {20 * time.Second, 15 * time.Second, 1, 3}}},
		{"old crashes leave the window", []crash{{0, time.Second, 1, 1}, {30 * time.Second, time.Second, 2, 2}, {61 * time.Second, time.Second, 3, 2}, {95 * time.Second, time.Second, 4, 2}, {200 * time.Second, time.Second, 5, 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := crashTracker{policy: pol}
			for i, cr := range tc.crashes {
				consec, window := c.record(t0.Add(cr.at), cr.ranFor)
				if consec != cr.consec || window != cr.window {
					t.Errorf("crash %d: consecutive %d window %d, want %d %d", i, consec, window, cr.consec, cr.window)
				}
			}
		})
	}
}

// Stop waits for the whole group, not just the leader: a grandchild that
// takes time to exit is waited for, one that ignores SIGTERM is killed
// after Grace.
func TestStopWaitsForGroupEmpty(t *testing.T) {
	tests := []struct {
		name     string
		gc       string // grandchild script
		grace    time.Duration
		atLeast  time.Duration
		lessThan time.Duration
	}{
		{"slow grandchild is waited for", `trap 'sleep 0.4; exit 0' TERM; while :; do sleep 0.05; done`, 10 * time.Second, 400 * time.Millisecond, 5 * time.Second},
		{"stubborn grandchild is killed after grace", `trap '' TERM; while :; do sleep 0.05; done`, 700 * time.Millisecond, 700 * time.Millisecond, 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// The leader exits at once on SIGTERM; its grandchild does not.
			p := shProc(dir, "web", `/bin/sh -c "$GC" & echo $! > "$DIR/$NAME.gc"
trap 'exit 0' TERM
touch "$DIR/$NAME.ready"
while :; do sleep 0.05; done`)
			p.Env = append(p.Env, "GC="+tc.gc)
			p.Stop.Grace = tc.grace
			s := New(Options{})
			if err := s.Start(context.Background(), []*Process{p}); err != nil {
				t.Fatal(err)
			}
			gc := readPid(t, filepath.Join(dir, "web.gc"))
			time.Sleep(100 * time.Millisecond) // let the grandchild set its trap
			t0 := time.Now()
			if err := s.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			d := time.Since(t0)
			if d < tc.atLeast || d > tc.lessThan {
				t.Errorf("Stop took %v, want between %v and %v", d, tc.atLeast, tc.lessThan)
			}
			if procutil.Alive(gc) {
				t.Error("Stop returned while the grandchild was alive")
			}
		})
	}
}

// A crashed leader's leftover grandchildren are killed before the restart
// (they would hold its port).
func TestCrashKillsLeftovers(t *testing.T) {
	dir := t.TempDir()
	p := shProc(dir, "redis", `n=$(cat "$DIR/runs" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$DIR/runs"
if [ "$n" = 1 ]; then sleep 300 & echo $! > "$DIR/$NAME.gc"; touch "$DIR/$NAME.ready"; sleep 0.2; exit 1; fi
touch "$DIR/$NAME.ready"; exec sleep 300`)
	s := New(Options{})
	if err := s.Start(context.Background(), []*Process{p}); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	gc := readPid(t, filepath.Join(dir, "redis.gc"))
	waitFor(t, "restart", 10*time.Second, func() bool {
		st := statusOf(s, "redis")
		return st.Restarts == 1 && st.State == StateReady
	})
	if procutil.Alive(gc) {
		t.Error("the crashed run's grandchild is still alive after the restart")
	}
}

// A child that stops answering its liveness probe (here: SIGSTOPped, so it
// stops refreshing a heartbeat file) is marked unhealthy, terminated
// although stopped, and restarted; the restart counts like a crash.
func TestLivenessRestartsAHungChild(t *testing.T) {
	dir := t.TempDir()
	p := shProc(dir, "web", `trap 'echo "got TERM"; exit 0' TERM
touch "$DIR/$NAME.ready"
while :; do date +%s%N > "$DIR/beat"; sleep 0.05; done`)
	beat := filepath.Join(dir, "beat")
	p.Liveness = &Liveness{
		Probe: probe.Func(func(context.Context) error {
			st, err := os.Stat(beat)
			if err != nil || time.Since(st.ModTime()) > 300*time.Millisecond {
				return errors.New("no heartbeat")
			}
			return nil
		}),
		Interval: 100 * time.Millisecond, Timeout: 100 * time.Millisecond, Failures: 3, Grace: 2 * time.Second,
	}
	var events eventLog
	s := New(Options{OnEvent: events.add})
	ctx := context.Background()
	if err := s.Start(ctx, []*Process{p}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(context.Background()) })
	time.Sleep(500 * time.Millisecond) // healthy checks pass
	if st := statusOf(s, "web"); st.State != StateReady || st.Restarts != 0 {
		t.Fatalf("a healthy child was disturbed: %+v", st)
	}
	first := statusOf(s, "web").PID
	if err := syscall.Kill(first, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "restart of the hung child", 10*time.Second, func() bool {
		st := statusOf(s, "web")
		return st.State == StateReady && st.PID != first && st.Restarts == 1
	})
	if procutil.Alive(first) {
		t.Error("the hung child is still alive")
	}
	got := strings.Join(statesStr(events.states("web")), ",")
	if !strings.Contains(got, "ready,unhealthy,restarting") {
		t.Errorf("events %s, want ready,unhealthy,restarting", got)
	}
	log, _ := os.ReadFile(p.LogPath)
	for _, want := range []string{"unhealthy (3 liveness checks in a row failed, last: no heartbeat)", "got TERM"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// Stop ends a SIGSTOPped child promptly: it is continued so it can act on
// SIGTERM, instead of waiting out the grace and SIGKILL.
func TestStopEndsAStoppedChildPromptly(t *testing.T) {
	dir := t.TempDir()
	p := shProc(dir, "web", `trap 'echo "got TERM"; exit 0' TERM
touch "$DIR/$NAME.ready"
while :; do sleep 0.05; done`)
	p.Stop.Grace = 20 * time.Second
	s := New(Options{})
	if err := s.Start(context.Background(), []*Process{p}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(statusOf(s, "web").PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("stop took %v with a stopped child (grace 20 s)", d)
	}
	if log, _ := os.ReadFile(p.LogPath); !strings.Contains(string(log), "got TERM") {
		t.Errorf("the child never handled SIGTERM:\n%s", log)
	}
}

// A failed start shows this run's output only, not lines an earlier run
// left in the same log.
func TestStartFailureTailIsThisRunOnly(t *testing.T) {
	dir := t.TempDir()
	p := shProc(dir, "web", `echo "the real reason: bad config"; exit 4`)
	if err := os.MkdirAll(filepath.Dir(p.LogPath), 0o700); err != nil {
		t.Fatal(err)
	}
	old := "[second 2020-01-01T00:00:00Z] web: started /bin/sh (pid 1)\nold run: everything fine\n"
	if err := os.WriteFile(p.LogPath, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	err := New(Options{}).Start(context.Background(), []*Process{p})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Start = %v, want *Error", err)
	}
	if strings.Contains(e.LogTail, "old run") || !strings.Contains(e.LogTail, "the real reason: bad config") {
		t.Errorf("log tail:\n%s", e.LogTail)
	}
}

// syncBuf is a strings.Builder safe for the copier and the test to share.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestEchoGetsOutputAsWellAsTheLog(t *testing.T) {
	dir := t.TempDir()
	p := shProc(dir, "echoer", `echo first; echo second >&2; touch "$DIR/$NAME.ready"; exec sleep 300`)
	echo := &syncBuf{}
	p.Echo = echo
	s := New(Options{})
	if err := s.Start(context.Background(), []*Process{p}); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	waitFor(t, "both lines echoed", 5*time.Second, func() bool { return strings.Contains(echo.String(), "second\n") })
	if got := echo.String(); got != "first\nsecond\n" {
		t.Errorf("echo got %q", got)
	}
	b, _ := os.ReadFile(p.LogPath)
	if !strings.Contains(string(b), "first\nsecond\n") {
		t.Errorf("log lacks the output: %q", b)
	}
}

// Unhealthy restarts count toward the crash-loop limit: a child that
// never passes its liveness probe ends supervision like one that keeps
// crashing, and the error says why.
func TestUnhealthyRestartsCountAsCrashes(t *testing.T) {
	dir := t.TempDir()
	p := shProc(dir, "web", `touch "$DIR/$NAME.ready"; exec sleep 300`)
	p.Liveness = &Liveness{
		Probe:    probe.Func(func(context.Context) error { return errors.New("health endpoint hangs") }),
		Interval: 20 * time.Millisecond, Timeout: 20 * time.Millisecond, Failures: 2, Grace: time.Second,
	}
	p.Restart.MaxCrashes = 3
	s := New(Options{})
	if err := s.Start(context.Background(), []*Process{p}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(20 * time.Second):
		s.Stop(context.Background())
		t.Fatal("supervision did not end after repeated unhealthy restarts")
	}
	var e *Error
	if err := s.Err(); !errors.As(err, &e) || e.Op != "crash loop" || !strings.Contains(err.Error(), "unhealthy") || !strings.Contains(err.Error(), "health endpoint hangs") {
		t.Errorf("Err = %v, want a crash loop naming the failed liveness check", err)
	}
}
