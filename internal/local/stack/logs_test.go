package stack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/local/logfile"
	"github.com/second-inc/second-release/internal/local/state"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestLogsTailAndFollowAcrossRotation(t *testing.T) {
	l := home.Layout{Root: t.TempDir()}
	w, err := logfile.Open(l.Log(ServiceWeb), logfile.Options{MaxBytes: 200, Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range 3 {
		fmt.Fprintf(w, "old line %d\n", i)
	}

	var tail bytes.Buffer
	if err := Logs(context.Background(), LogsOptions{Layout: l, Service: ServiceWeb, Lines: 2, Out: &tail}); err != nil {
		t.Fatal(err)
	}
	if tail.String() != "old line 1\nold line 2\n" {
		t.Errorf("tail -n 2 = %q", tail.String())
	}
	if err := Logs(context.Background(), LogsOptions{Layout: l, Service: "nginx", Out: &tail}); err == nil || !strings.Contains(err.Error(), "choose one of") {
		t.Errorf("unknown service: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuf{}
	done := make(chan error, 1)
	go func() {
		done <- Logs(ctx, LogsOptions{Layout: l, Service: ServiceWeb, Lines: 1, Follow: true, Out: out, Poll: 10 * time.Millisecond})
	}()
	time.Sleep(50 * time.Millisecond)
	// Enough lines to rotate the 200-byte file several times.
	for i := range 30 {
		fmt.Fprintf(w, "new line %02d\n", i)
		time.Sleep(5 * time.Millisecond)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "new line 29") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	got := out.String()
	for i := range 30 {
		if !strings.Contains(got, fmt.Sprintf("new line %02d\n", i)) {
			t.Errorf("follow missed line %d; got:\n%s", i, got)
			break
		}
	}
}

func TestOwnsPIDChecksCommandLine(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("sleep(1) not on PATH")
	}
	dir := t.TempDir()
	marker := filepath.Join(dir, "30")
	cmd := exec.Command(sleep, "30")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	tests := []struct {
		name string
		svc  state.Service
		want bool
	}{
		{"same program", state.Service{Command: []string{sleep, "30"}}, true},
		{"other program", state.Service{Command: []string{"/usr/bin/mongod", "30"}}, false},
		{"missing absolute arg", state.Service{Command: []string{sleep, marker}}, false},
		{"nothing recorded", state.Service{}, false},
	}
	for _, tt := range tests {
		if got := OwnsPID(pid, tt.svc); got != tt.want {
			t.Errorf("%s: OwnsPID = %v, want %v", tt.name, got, tt.want)
		}
	}
	_ = os.Remove(marker)
}

func TestLogsRefusals(t *testing.T) {
	l := home.Layout{Root: t.TempDir()}
	tests := []struct {
		name    string
		o       LogsOptions
		wantErr string
	}{
		{"negative lines", LogsOptions{Layout: l, Lines: -5}, "--lines (-n) must be a positive number of lines, not -5"},
		{"no such home", LogsOptions{Layout: home.Layout{Root: filepath.Join(l.Root, "nonexistent")}}, "no Second home at " + filepath.Join(l.Root, "nonexistent")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Out = io.Discard
			if err := Logs(context.Background(), tc.o); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Logs = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
