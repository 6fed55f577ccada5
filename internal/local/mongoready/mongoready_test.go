package mongoready

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/second-inc/second-release/internal/testsupport"
)

// Deadlines are generous: a real mongod takes seconds to elect itself.
const ensureTimeout = 90 * time.Second

func ensure(t *testing.T, port int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ensureTimeout)
	defer cancel()
	if err := Ensure(ctx, Options{Port: port}); err != nil {
		t.Fatal(err)
	}
}

// memberHosts reads the stored config's member hosts.
func memberHosts(t *testing.T, port int) []string {
	t.Helper()
	c, err := connect(port, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer disconnect(c)
	cfg, err := getConfig(context.Background(), c.Database("admin"))
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, m := range cfg.members() {
		h, _ := field(m, "host").(string)
		hosts = append(hosts, h)
	}
	return hosts
}

// write inserts a document: only a writable primary accepts it.
func write(t *testing.T, port int, v string) {
	t.Helper()
	c, err := connect(port, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer disconnect(c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Database("second").Collection("probe").InsertOne(ctx, bson.D{{Key: "v", Value: v}}); err != nil {
		t.Fatalf("write to %d: %v", port, err)
	}
}

func count(t *testing.T, port int) int64 {
	t.Helper()
	c, err := connect(port, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer disconnect(c)
	n, err := c.Database("second").Collection("probe").CountDocuments(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestInitiateRestartOnNewPortShutdown(t *testing.T) {
	m := testsupport.StartMongod(t, testsupport.MongodOptions{})
	ensure(t, m.Port)
	if h := memberHosts(t, m.Port); len(h) != 1 || h[0] != Addr(m.Port) {
		t.Fatalf("after initiate members = %v, want [%s]", h, Addr(m.Port))
	}
	write(t, m.Port, "first run")
	ensure(t, m.Port) // idempotent on a healthy primary

	// Clean shutdown through the command: the process exits by itself.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := Shutdown(ctx, m.Port, nil); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case <-m.Exited():
	case <-time.After(60 * time.Second):
		t.Fatal("mongod still running 60 s after the shutdown command")
	}
	if err := m.ExitErr(); err != nil {
		t.Errorf("mongod exit after shutdown: %v", err)
	}
	if err := Shutdown(ctx, m.Port, nil); err == nil {
		t.Error("Shutdown of a mongod that is gone should say so")
	}

	// Same data, another port: the stored config names the old address.
	m2 := testsupport.StartMongod(t, testsupport.MongodOptions{DBPath: m.DBPath})
	ensure(t, m2.Port)
	if h := memberHosts(t, m2.Port); len(h) != 1 || h[0] != Addr(m2.Port) {
		t.Fatalf("after restart on %d members = %v", m2.Port, h)
	}
	write(t, m2.Port, "second run")
	if n := count(t, m2.Port); n != 2 {
		t.Errorf("documents after restart = %d, want 2 (data kept)", n)
	}
}

func TestRefusesMultiMemberConfig(t *testing.T) {
	m := testsupport.StartMongod(t, testsupport.MongodOptions{})
	ensure(t, m.Port)
	// Someone else's deployment: force a second member into the config.
	c, err := connect(m.Port, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer disconnect(c)
	ctx := context.Background()
	admin := c.Database("admin")
	cfg, err := getConfig(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	other := "127.0.0.1:" + strconv.Itoa(testsupport.FreePort(t))
	var doc bson.D
	for _, e := range cfg.doc {
		switch e.Key {
		case "members":
			e.Value = bson.A{cfg.members()[0], bson.D{{Key: "_id", Value: 1}, {Key: "host", Value: other}}}
		case "version":
			e.Value = cfg.version() + 1
		}
		doc = append(doc, e)
	}
	if err := admin.RunCommand(ctx, bson.D{{Key: "replSetReconfig", Value: doc}, {Key: "force", Value: true}}).Err(); err != nil {
		t.Fatalf("setting up a 2-member config: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	t0 := time.Now()
	err = Ensure(ctx, Options{Port: m.Port})
	if err == nil || !errors.Is(err, errRefused) || !strings.Contains(err.Error(), other) {
		t.Fatalf("Ensure = %v, want a refusal naming %s", err, other)
	}
	if time.Since(t0) > 10*time.Second {
		t.Error("refusal should be immediate, not a timeout")
	}
	if h := memberHosts(t, m.Port); len(h) != 2 {
		t.Errorf("config was changed: %v", h)
	}
}

func TestNotStartedWithReplSet(t *testing.T) {
	m := testsupport.StartMongod(t, testsupport.MongodOptions{ReplSet: "-"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := Ensure(ctx, Options{Port: m.Port})
	if err == nil || !strings.Contains(err.Error(), "--replSet") {
		t.Fatalf("Ensure = %v", err)
	}
}

func TestEnsureTimesOutWithReason(t *testing.T) {
	port := testsupport.FreePort(t) // nothing listens
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := Ensure(ctx, Options{Port: port})
	if err == nil || !strings.Contains(err.Error(), Addr(port)) {
		t.Fatalf("Ensure = %v", err)
	}
	if err := Ensure(ctx, Options{}); err == nil {
		t.Error("port 0 accepted")
	}
}

// Real mongod (or fakemongod) output for the two common start failures
// must be recognised by FatalLine.
func TestFatalLineFromRealMongod(t *testing.T) {
	m := testsupport.StartMongod(t, testsupport.MongodOptions{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	tests := []struct {
		name   string
		args   []string
		substr string
	}{
		{"data dir in use", []string{"--dbpath", m.DBPath, "--port", strconv.Itoa(testsupport.FreePort(t))}, "DBPathInUse"},
		{"port in use", []string{"--dbpath", t.TempDir(), "--port", strconv.Itoa(busy)}, "cannot listen on its port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			args := append([]string{"--bind_ip", "127.0.0.1", "--replSet", "rs0"}, tc.args...)
			out, err := exec.CommandContext(ctx, m.Path, args...).CombinedOutput()
			if err == nil {
				t.Fatalf("mongod should have failed:\n%s", out)
			}
			var found error
			for _, line := range strings.Split(string(out), "\n") {
				if e := FatalLine(line); e != nil && found == nil {
					found = e
				}
			}
			if found == nil || !errors.Is(found, ErrFatal) || !strings.Contains(found.Error(), tc.substr) {
				t.Fatalf("FatalLine found %v in:\n%s", found, out)
			}
		})
	}
}

func TestFatalLine(t *testing.T) {
	tests := []struct {
		name, line, want string
	}{
		{"address in use",
			`{"t":{"$date":"2026-01-01T00:00:00.000+00:00"},"s":"E",  "c":"NETWORK",  "id":23024,   "ctx":"initandlisten","msg":"Failed to set up listener","attr":{"error":{"code":9001,"codeName":"SocketException","errmsg":"Address already in use"}}}`,
			"cannot listen on its port: SocketException: Address already in use"},
		{"dbpath in use",
			`{"t":{"$date":"2026-01-01T00:00:00.000+00:00"},"s":"E",  "c":"CONTROL",  "id":20557,   "ctx":"initandlisten","msg":"DBException in initAndListen, terminating","attr":{"error":"DBPathInUse: Unable to lock the lock file: /d/mongod.lock (Resource temporarily unavailable). Another mongod instance is already running on the /d directory"}}`,
			"DBPathInUse"},
		{"fatal severity",
			`{"t":{"$date":"2026-01-01T00:00:00.000+00:00"},"s":"F",  "c":"CONTROL",  "id":20573,   "ctx":"initandlisten","msg":"Wrong mongod version","attr":{"error":"UPGRADE PROBLEM: Found an invalid featureCompatibilityVersion document"}}`,
			"fatal error 20573: UPGRADE PROBLEM"},
		{"linux loader",
			`/opt/second/dist/runtime/bin/mongod: error while loading shared libraries: libcrypto.so.3: cannot open shared object file: No such file or directory`,
			"shared library is missing"},
		{"macos dyld",
			`dyld[4242]: Library not loaded: @rpath/libssl.3.dylib`,
			"shared library is missing"},
		{"ordinary info line",
			`{"t":{"$date":"2026-01-01T00:00:00.000+00:00"},"s":"I",  "c":"NETWORK",  "id":23016,   "ctx":"listener","msg":"Waiting for connections","attr":{"port":27018,"ssl":"off"}}`,
			""},
		{"warning", `{"s":"W","c":"STORAGE","id":22271,"msg":"Detected unclean shutdown - Lock file is not empty"}`, ""},
		{"not json", "hello world", ""},
		{"broken json", `{"s":"F"`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := FatalLine(tc.line)
			if tc.want == "" {
				if err != nil {
					t.Errorf("FatalLine = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrFatal) {
				t.Errorf("FatalLine = %v, want %q", err, tc.want)
			}
		})
	}
}

// Before mongod listens, the readiness probe fails at the connect (and the
// next probe tries again), not after a driver client has waited out its
// 500 ms heartbeat or the probe's whole deadline: the error says which.
// (The time it saves is BenchmarkStartToReady's business.)
func TestPingFailsAtOnceWhenNothingListens(t *testing.T) {
	port := testsupport.FreePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := Ping(ctx, port)
	if err == nil || !strings.Contains(err.Error(), "not listening yet") || ctx.Err() != nil {
		t.Fatalf("Ping of a closed port = %v (ctx: %v), want a not-listening error before the deadline", err, ctx.Err())
	}
}
