package mongoready

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/local/probe"
	"github.com/second-inc/second-release/internal/local/procutil"
	"github.com/second-inc/second-release/internal/local/supervise"
	"github.com/second-inc/second-release/internal/testsupport"
)

// mongoProcess is mongod as the runtime describes it to the supervisor.
func mongoProcess(bin, dbpath, logPath string, port int) *supervise.Process {
	return &supervise.Process{
		Name:    "mongo",
		Command: bin,
		Args:    []string{"--dbpath", dbpath, "--bind_ip", "127.0.0.1", "--port", strconv.Itoa(port), "--replSet", DefaultReplSet},
		Env:     []string{"PATH=/usr/bin:/bin"},
		LogPath: logPath,
		Ready:   probe.Func(func(ctx context.Context) error { return Ping(ctx, port) }),
		AfterReady: func(ctx context.Context) error {
			return Ensure(ctx, Options{Port: port})
		},
		ReadyTimeout: 90 * time.Second,
		FatalLine:    FatalLine,
		Stop: supervise.StopPolicy{
			Before: func(ctx context.Context) error { return Shutdown(ctx, port, nil) },
			Grace:  30 * time.Second,
		},
		Restart: supervise.RestartPolicy{InitialBackoff: 50 * time.Millisecond},
		Port:    port,
	}
}

func TestUnderSupervisor(t *testing.T) {
	bin := testsupport.MongodPath(t)
	dir := t.TempDir()
	dbpath := filepath.Join(dir, "data", "mongo")
	if err := os.MkdirAll(dbpath, 0o700); err != nil {
		t.Fatal(err)
	}
	port := testsupport.FreePort(t)
	s := supervise.New(supervise.Options{})
	ctx := context.Background()
	if err := s.Start(ctx, []*supervise.Process{mongoProcess(bin, dbpath, filepath.Join(dir, "logs", "mongo.log"), port)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(context.Background()) })
	write(t, port, "before crash")

	// A second mongod on the same data dir fails at once, naming why.
	s2 := supervise.New(supervise.Options{})
	t0 := time.Now()
	err := s2.Start(ctx, []*supervise.Process{mongoProcess(bin, dbpath, filepath.Join(dir, "logs", "mongo2.log"), testsupport.FreePort(t))})
	if err == nil || !errors.Is(err, ErrFatal) || !strings.Contains(err.Error(), "DBPathInUse") {
		t.Errorf("second mongod on the same dbpath: %v", err)
	}
	if d := time.Since(t0); d > 30*time.Second {
		t.Errorf("DBPathInUse took %v to report; it should not wait for the readiness timeout", d)
	}

	// kill -9: restarted, made primary again, data intact.
	pid := s.Status()[0].PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for st := s.Status()[0]; st.Restarts != 1 || st.State != supervise.StateReady; st = s.Status()[0] {
		if time.Now().After(deadline) {
			t.Fatalf("mongod not back after kill -9: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	write(t, port, "after crash")
	if n := count(t, port); n != 2 {
		t.Errorf("documents = %d, want 2", n)
	}

	// Stop goes through the shutdown command and waits for the group.
	pid = s.Status()[0].PID
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if procutil.GroupAlive(pid) {
		t.Error("mongod's group alive after Stop")
	}
	if s.Err() != nil {
		t.Errorf("Err = %v", s.Err())
	}
	log, _ := os.ReadFile(filepath.Join(dir, "logs", "mongo.log"))
	if !strings.Contains(string(log), "Terminating via shutdown command") { // mongod log id 4695400
		t.Errorf("mongod was not stopped through the shutdown command; log tail:\n%s", tail(string(log)))
	}
}

func tail(s string) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}
