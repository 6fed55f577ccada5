package stack

import (
	"strings"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/local/runstatus"
	"github.com/second-inc/second-release/internal/local/state"
)

func TestReadStatusOfDeadRunIsStopped(t *testing.T) {
	l := home.Layout{Root: t.TempDir()}
	st, err := ReadStatus(l)
	if err != nil || st.Running || st.Phase != "stopped" {
		t.Fatalf("no state: %+v %v", st, err)
	}
	// runtime.json of a run killed with SIGKILL: pid recorded, no lock held.
	dead := &state.State{PID: 99999999, Phase: "running", Home: l.Root, URL: "http://localhost:3030",
		Services: map[string]state.Service{"web": {State: "ready", PID: 99999998, Port: 3030, Restarts: 2}}}
	if err := state.Write(l.StateFile(), dead); err != nil {
		t.Fatal(err)
	}
	st, err = ReadStatus(l)
	if err != nil {
		t.Fatal(err)
	}
	if st.Running || st.Phase != "stopped" || st.URL != "" || st.Services[0].PID != 0 || st.Services[0].State != "stopped" {
		t.Errorf("a dead run must read as stopped: %+v", st)
	}
}

func TestWriteStatus(t *testing.T) {
	start := time.Now().Add(-90 * time.Second)
	tests := []struct {
		name string
		st   runstatus.Status
		want []string
	}{
		{"running", runstatus.Status{Running: true, Phase: "running", PID: 42, Version: "1.2.3", URL: "http://localhost:3030", StartedAt: &start,
			Services: []runstatus.Service{{Name: "web", State: "ready", PID: 43, Port: 3030, Restarts: 1, StartedAt: &start, UptimeSeconds: 90}}},
			[]string{"Second 1.2.3 is running at http://localhost:3030 (pid 42, up 1m30s)", "SERVICE", "web", "ready", "43", "3030", "1m30s"}},
		{"stopped", runstatus.Status{Phase: "stopped", Home: "/h"}, []string{"not running (home /h)"}},
		{"failed", runstatus.Status{Phase: "failed", Home: "/h"}, []string{"not running", "last run failed", "second logs supervisor"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := runstatus.Write(&b, tt.st); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}
