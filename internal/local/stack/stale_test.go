package stack

import (
	"context"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/local/procutil"
	"github.com/second-inc/second-release/internal/local/state"
)

// startGroupLeader runs `sleep 300` as the leader of its own process group,
// like the supervisor starts its children.
func startGroupLeader(t *testing.T) (*exec.Cmd, string) {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("needs sleep(1) on PATH")
	}
	cmd := exec.Command(sleep, "300")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	// Reap promptly so Alive sees the exit rather than a zombie.
	return cmd, sleep
}

func TestSweepStaleStopsOnlyOurLeftovers(t *testing.T) {
	ours, sleep := startGroupLeader(t)
	stranger, _ := startGroupLeader(t)
	prev := &state.State{PID: 999999, Services: map[string]state.Service{
		// Recorded with the command line it still runs: ours, stop it.
		"redis": {PID: ours.Process.Pid, Command: []string{sleep, "300"}},
		// The pid was reused by something else (a different program): leave it.
		"web": {PID: stranger.Process.Pid, Command: []string{"/usr/bin/node", "/payload/dist/web/server.js"}},
	}}
	swept := SweepStale(context.Background(), discardLogger(), prev)
	if len(swept) != 1 || swept[0] != "redis" {
		t.Errorf("swept %v, want [redis]", swept)
	}
	deadline := time.Now().Add(5 * time.Second)
	for procutil.Alive(ours.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("our leftover child is still alive")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !procutil.Alive(stranger.Process.Pid) {
		t.Error("a process whose command line is not ours was signalled")
	}
}
