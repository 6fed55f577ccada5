package update_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/local/control/client"
	"github.com/second-inc/second-release/internal/local/update"
)

type fakeTarget struct {
	mu                       sync.Mutex
	suspends, resumes, exits int
	suspendErr, resumeErr    error
	gate                     chan struct{} // Suspend waits on it when set
}

func (f *fakeTarget) Suspend(ctx context.Context) error {
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.suspends++
	return f.suspendErr
}
func (f *fakeTarget) Resume(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resumes++
	return f.resumeErr
}
func (f *fakeTarget) Exit() { f.mu.Lock(); f.exits++; f.mu.Unlock() }

func (f *fakeTarget) counts() (int, int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.suspends, f.resumes, f.exits
}

// fakeProc is a launched "new version": behave decides what it does.
type fakeProc struct {
	done   chan struct{}
	err    error
	killed chan struct{}
	once   sync.Once
}

func (p *fakeProc) Done() <-chan struct{} { return p.done }
func (p *fakeProc) Err() error            { <-p.done; return p.err }
func (p *fakeProc) Kill()                 { p.once.Do(func() { close(p.killed) }) }

type fakeRunner struct {
	mu     sync.Mutex
	cmds   []update.Command
	behave func(cmd update.Command, p *fakeProc)
}

func (r *fakeRunner) Start(ctx context.Context, cmd update.Command) (update.Process, error) {
	r.mu.Lock()
	r.cmds = append(r.cmds, cmd)
	r.mu.Unlock()
	p := &fakeProc{done: make(chan struct{}), killed: make(chan struct{})}
	go r.behave(cmd, p)
	return p, nil
}

// becomeReady writes a control file for another pid whose /health answers version.
func becomeReady(t *testing.T, l home.Layout, version string) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(client.Health{OK: true, Version: version})
	}))
	t.Cleanup(srv.Close)
	b, _ := json.Marshal(client.Info{URL: srv.URL, Port: 1, PID: os.Getpid() + 100000, Version: version})
	if err := os.WriteFile(l.ControlFile(), b, 0o644); err != nil {
		t.Error(err)
	}
}

func wait(t *testing.T, in *update.Installer) update.State {
	t.Helper()
	select {
	case <-in.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("install did not finish")
	}
	return in.State()
}

func TestInstall(t *testing.T) {
	for _, tc := range []struct {
		name           string
		behave         func(t *testing.T, l home.Layout) func(update.Command, *fakeProc)
		suspendErr     error
		resumeErr      error
		phase          update.Phase
		code           string
		resumes, exits int
		wantKilled     bool
	}{
		{
			name: "new version comes up",
			behave: func(t *testing.T, l home.Layout) func(update.Command, *fakeProc) {
				return func(c update.Command, p *fakeProc) { becomeReady(t, l, "1.1.0") }
			},
			phase: update.PhaseSucceeded, exits: 1,
		},
		{
			name: "new version exits",
			behave: func(t *testing.T, l home.Layout) func(update.Command, *fakeProc) {
				return func(c update.Command, p *fakeProc) { p.err = errors.New("exit status 3"); close(p.done) }
			},
			phase: update.PhaseRolledBack, code: update.CodeNewExited, resumes: 1,
		},
		{
			name: "new version never ready",
			behave: func(t *testing.T, l home.Layout) func(update.Command, *fakeProc) {
				return func(c update.Command, p *fakeProc) { becomeReady(t, l, "1.0.0") } // the old version's file
			},
			phase: update.PhaseRolledBack, code: update.CodeNewNotReady, resumes: 1, wantKilled: true,
		},
		{
			name:       "old version will not stop",
			behave:     func(t *testing.T, l home.Layout) func(update.Command, *fakeProc) { return nil },
			suspendErr: errors.New("mongod hung"),
			phase:      update.PhaseRolledBack, code: update.CodeStopFailed, resumes: 1,
		},
		{
			name: "rollback fails too",
			behave: func(t *testing.T, l home.Layout) func(update.Command, *fakeProc) {
				return func(c update.Command, p *fakeProc) { close(p.done) }
			},
			resumeErr: errors.New("port taken"),
			phase:     update.PhaseFailed, code: update.CodeRollbackFailed, resumes: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := home.Layout{Root: t.TempDir()}
			target := &fakeTarget{suspendErr: tc.suspendErr, resumeErr: tc.resumeErr}
			var procs []*fakeProc
			var pmu sync.Mutex
			behave := tc.behave(t, l)
			runner := &fakeRunner{behave: func(c update.Command, p *fakeProc) {
				pmu.Lock()
				procs = append(procs, p)
				pmu.Unlock()
				if behave != nil {
					behave(c, p)
				}
			}}
			in := update.New(update.Options{
				Layout: l, Package: "@second-inc/cli", Current: "1.0.0", StartArgs: []string{"--port", "3999", "--no-open"},
				Target: target, Runner: runner, ReadyTimeout: 1500 * time.Millisecond, Poll: 20 * time.Millisecond,
			})
			st, started, err := in.Install("1.1.0")
			if err != nil || !started || st.To != "1.1.0" || st.From != "1.0.0" {
				t.Fatalf("Install = %+v, %v, %v", st, started, err)
			}
			st = wait(t, in)
			if st.Phase != tc.phase || st.Error != tc.code || st.FinishedAt == nil {
				t.Errorf("final state %+v, want phase %s error %q", st, tc.phase, tc.code)
			}
			_, resumes, exits := target.counts()
			if resumes != tc.resumes || exits != tc.exits {
				t.Errorf("resumes %d exits %d, want %d %d", resumes, exits, tc.resumes, tc.exits)
			}
			if tc.suspendErr == nil {
				if len(runner.cmds) != 1 {
					t.Fatalf("%d launches", len(runner.cmds))
				}
				c := runner.cmds[0]
				if got := c.Path + " " + strings.Join(c.Args, " "); got != "npx --yes @second-inc/cli@1.1.0 start --port 3999 --no-open" {
					t.Errorf("launched %q", got)
				}
				if c.LogPath != l.Log("update") {
					t.Errorf("log path %q", c.LogPath)
				}
				// npx and the launcher's npm write into the update log the
				// user reads: their notices are off through the environment.
				for _, kv := range []string{"npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false"} {
					if !slices.Contains(c.Env, kv) {
						t.Errorf("the launcher runs without %s", kv)
					}
				}
			} else if len(runner.cmds) != 0 {
				t.Error("launched a new version although the old one did not stop")
			}
			if tc.wantKilled {
				select {
				case <-procs[0].killed:
				default:
					t.Error("the unready new version was not killed")
				}
			}
		})
	}
}

func TestOneInstallAtATime(t *testing.T) {
	l := home.Layout{Root: t.TempDir()}
	target := &fakeTarget{gate: make(chan struct{})}
	in := update.New(update.Options{Layout: l, Package: "p", Current: "1.0.0", Target: target,
		Runner: &fakeRunner{behave: func(c update.Command, p *fakeProc) { close(p.done) }}, Poll: 10 * time.Millisecond})
	if _, started, err := in.Install("1.1.0"); !started || err != nil {
		t.Fatal(started, err)
	}
	st, started, err := in.Install("1.2.0")
	if started || err != nil || st.To != "1.1.0" || !st.Running() {
		t.Errorf("second Install = %+v, %v, %v; want the running 1.1.0 install", st, started, err)
	}
	close(target.gate)
	wait(t, in)
	if _, started, _ := in.Install("1.2.0"); !started {
		t.Error("a new install after the first finished did not start")
	}
	wait(t, in)
}

func TestRejectsNonSemver(t *testing.T) {
	in := update.New(update.Options{Layout: home.Layout{Root: t.TempDir()}, Package: "p", Current: "1.0.0", Target: &fakeTarget{}})
	for _, v := range []string{"", "latest", "1.0", "1.0.0 --registry=http://evil", "v1.0.0"} {
		if _, started, err := in.Install(v); started || !errors.Is(err, update.ErrBadVersion) {
			t.Errorf("Install(%q) = %v, %v", v, started, err)
		}
	}
}
