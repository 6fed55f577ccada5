package testsupport

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// MongodSkipMessage is what tests say when no mongod is available.
const MongodSkipMessage = "needs mongod: put it on PATH or set SECOND_TEST_MONGOD=/path/to/mongod"

// MongodPath is the mongod tests should run: $SECOND_TEST_MONGOD, else
// mongod on PATH. Without one the test is skipped, in CI too: MongoDB is
// not something scripts/setup can install from Debian.
func MongodPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SECOND_TEST_MONGOD"); p != "" {
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			t.Fatalf("SECOND_TEST_MONGOD=%s is not a file: %v", p, err)
		}
		return p
	}
	if p, err := exec.LookPath("mongod"); err == nil {
		return p
	}
	t.Skip(MongodSkipMessage)
	return ""
}

// Mongod is a mongod a test started.
type Mongod struct {
	Path    string
	DBPath  string
	Port    int
	LogPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	err     error
}

// MongodOptions configures StartMongod; zero values pick a fresh dbpath, a
// free port and replica set "rs0".
type MongodOptions struct {
	DBPath  string
	Port    int
	ReplSet string // "-" for none
	// KeyFile, when set, starts mongod with --keyFile (access control on).
	KeyFile string
}

// StartMongod starts mongod on 127.0.0.1 as the runtime would and waits
// (up to 90 s: real mongod takes seconds) until it accepts connections.
// Cleanup stops it. Skips without a mongod (see MongodPath).
func StartMongod(t testing.TB, o MongodOptions) *Mongod {
	t.Helper()
	m := &Mongod{Path: MongodPath(t), DBPath: o.DBPath, Port: o.Port}
	if m.DBPath == "" {
		m.DBPath = filepath.Join(t.TempDir(), "db")
	}
	if err := os.MkdirAll(m.DBPath, 0o700); err != nil {
		t.Fatal(err)
	}
	if m.Port == 0 {
		m.Port = FreePort(t)
	}
	rs := o.ReplSet
	if rs == "" {
		rs = "rs0"
	}
	args := []string{"--dbpath", m.DBPath, "--bind_ip", "127.0.0.1", "--port", strconv.Itoa(m.Port)}
	if rs != "-" {
		args = append(args, "--replSet", rs)
	}
	if o.KeyFile != "" {
		args = append(args, "--keyFile", o.KeyFile)
	}
	m.LogPath = filepath.Join(t.TempDir(), "mongod.log")
	logf, err := os.Create(m.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	m.cmd = exec.Command(m.Path, args...)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := m.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", m.Path, err)
	}
	logf.Close()
	m.exited = make(chan struct{})
	go func() { m.err = m.cmd.Wait(); close(m.exited) }()
	t.Cleanup(func() { m.Stop(t) })

	deadline := time.Now().Add(90 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", m.Addr(), time.Second)
		if err == nil {
			c.Close()
			return m
		}
		select {
		case <-m.exited:
			t.Fatalf("mongod exited before listening (%v):\n%s", m.err, m.LogTail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("mongod not listening on %s after 90 s:\n%s", m.Addr(), m.LogTail())
		}
	}
}

// Addr is 127.0.0.1:Port.
func (m *Mongod) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(m.Port)) }

// PID of the mongod process (tests stop it with SIGSTOP).
func (m *Mongod) PID() int { return m.cmd.Process.Pid }

// Exited is closed once mongod has exited; ExitErr is then its status.
func (m *Mongod) Exited() <-chan struct{} { return m.exited }
func (m *Mongod) ExitErr() error          { <-m.exited; return m.err }

// LogTail is the last 40 lines of its output.
func (m *Mongod) LogTail() string {
	b, _ := os.ReadFile(m.LogPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}

// Stop sends SIGTERM (mongod shuts down cleanly on it) and waits up to
// 60 s, then SIGKILLs. Safe to call more than once.
func (m *Mongod) Stop(t testing.TB) {
	t.Helper()
	select {
	case <-m.exited:
		return
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(60 * time.Second):
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.exited
		t.Errorf("mongod on %s ignored SIGTERM for 60 s:\n%s", m.Addr(), m.LogTail())
	}
}
