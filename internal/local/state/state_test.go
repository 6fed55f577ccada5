package state

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestStateRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runtime.json")
	got, err := Read(path)
	if err != nil || got != nil {
		t.Fatalf("missing file: got %v, %v; want nil, nil", got, err)
	}
	want := &State{PID: 42, Version: "1.2.3", Phase: "running", MongoPort: 27018,
		StartedAt: time.Unix(1700000000, 0).UTC(),
		Services:  map[string]Service{"redis": {State: "running", PID: 43, Port: 6380, Restarts: 1}}}
	if err := Write(path, want); err != nil {
		t.Fatal(err)
	}
	got, err = Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.PID != 42 || got.MongoPort != 27018 || got.Services["redis"].Port != 6380 || !got.StartedAt.Equal(want.StartedAt) {
		t.Errorf("round trip lost data: %+v", got)
	}
	if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); err == nil {
		t.Error("corrupt runtime.json read without error")
	}
}

func TestLockExclusiveAndReleasedOnDeath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runtime.lock")
	l, err := TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if Holder(path) != os.Getpid() {
		t.Errorf("holder pid %d, want %d", Holder(path), os.Getpid())
	}
	if _, err := TryLock(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second TryLock: %v, want ErrLocked", err)
	}
	if !Held(path) {
		t.Error("Held = false while locked")
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if Held(path) {
		t.Error("Held = true after release")
	}

	// A holder killed with SIGKILL leaves the file but not the lock.
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldLock$")
	cmd.Env = append(os.Environ(), "STATE_TEST_LOCK="+path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for Holder(path) != cmd.Process.Pid {
		if time.Now().After(deadline) {
			t.Fatal("helper never took the lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	l, err = TryLock(path)
	if err != nil {
		t.Fatalf("lock still held after its holder was killed: %v", err)
	}
	l.Release()
}

// TestHelperHoldLock is the lock holder run as a separate process.
func TestHelperHoldLock(t *testing.T) {
	path := os.Getenv("STATE_TEST_LOCK")
	if path == "" {
		t.Skip("helper process only")
	}
	if _, err := TryLock(path); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Minute)
}
