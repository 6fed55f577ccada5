package procutil

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startGroup starts `sh` leading a new group with a background grandchild;
// it returns the sh pid (= pgid) and the grandchild's pid.
func startGroup(t *testing.T) (pgid, grandchild int) {
	t.Helper()
	pidFile := filepath.Join(t.TempDir(), "gc.pid")
	cmd := exec.Command("/bin/sh", "-c", `sleep 300 & echo $! > "$1"; wait`, "sh", pidFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	NewGroup(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait() // reap the leader so it does not linger as a zombie
	t.Cleanup(func() { _ = SignalGroup(cmd.Process.Pid, syscall.SIGKILL) })
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(pidFile)
		if err == nil && strings.HasSuffix(string(b), "\n") {
			gc, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			return cmd.Process.Pid, gc
		}
		if time.Now().After(deadline) {
			t.Fatal("grandchild pid never written")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestGroupKillAndWait(t *testing.T) {
	pgid, gc := startGroup(t)
	if !GroupAlive(pgid) || !Alive(gc) {
		t.Fatal("group should be alive")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := WaitGroupEmpty(ctx, pgid); err == nil {
		t.Fatal("WaitGroupEmpty returned nil for a live group")
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := KillGroup(ctx, pgid); err != nil {
		t.Fatal(err)
	}
	if Alive(gc) || GroupAlive(pgid) {
		t.Fatal("grandchild survived KillGroup")
	}
}

func TestSignalGroupRefusesSpecialPgids(t *testing.T) {
	for _, pgid := range []int{-1, 0, 1} {
		if err := SignalGroup(pgid, syscall.Signal(0)); err == nil {
			t.Errorf("SignalGroup(%d) should refuse", pgid)
		}
	}
}

func TestWatchdog(t *testing.T) {
	tests := []struct {
		name     string
		parentOK bool // disarm (clean stop) vs pipe EOF (supervisor died)
	}{
		{"supervisor died: group killed", false},
		{"disarmed: group left alone", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pgid, gc := startGroup(t)
			wd, err := StartWatchdog(pgid)
			if err != nil {
				t.Fatal(err)
			}
			if tc.parentOK {
				if err := wd.Disarm(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(100 * time.Millisecond)
				if !Alive(gc) || !GroupAlive(pgid) {
					t.Fatal("disarmed watchdog killed the group")
				}
				return
			}
			if err := wd.fire(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := WaitGroupEmpty(ctx, pgid); err != nil {
				t.Fatalf("watchdog did not kill the group: %v (members %v)", err, GroupMembers(pgid))
			}
		})
	}
}

func TestCommandLine(t *testing.T) {
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	args, err := CommandLine(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if len(args) != 2 || filepath.Base(args[0]) != "sleep" || args[1] != "300" {
		t.Fatalf("CommandLine = %q", args)
	}
}

// fire simulates the supervisor's death: close the write end without a
// line.
func (d *Watchdog) fire() error {
	err := d.w.Close()
	d.w = nil
	_ = d.cmd.Wait()
	return err
}
