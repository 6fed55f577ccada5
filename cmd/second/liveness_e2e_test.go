package main

// A hung service is noticed and restarted; stop and status stay bounded
// whatever the children or the supervisor do.

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/second-inc/second-release/internal/local/stack"
	"github.com/second-inc/second-release/internal/testsupport"
)

// Bounds from the runtime's promises.
const (
	detectBound = 15 * time.Second
	stopBound   = 15 * time.Second
	statusBound = 2 * time.Second
)

func (p *payload) mongoApp(t *testing.T, port int) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(fmt.Sprintf(
		"mongodb://second:%s@127.0.0.1:%d/second?authSource=admin&directConnection=true", p.secret(t, "mongo-password"), port)).
		SetServerSelectionTimeout(20 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect(context.Background()) })
	return c
}

func TestHungServicesAreRestarted(t *testing.T) {
	p := newPayload(t, testsupport.MongodPath(t))
	p.start(t, nil)
	st := p.status(t)
	ctx := context.Background()
	mongoPort, redisPort := service(st, "mongo").Port, service(st, "redis").Port
	if _, err := p.mongoApp(t, mongoPort).Database("second").Collection("docs").InsertOne(ctx, bson.D{{Key: "v", Value: "kept"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.redisApp(t, redisPort, "SET", "k", "kept"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mongo", "redis", "web"} {
		t.Run(name, func(t *testing.T) {
			before := service(p.status(t), name)
			if err := syscall.Kill(before.PID, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			stopped := time.Now()
			var detected, recovered time.Duration
			sawUnhealthy := false
			for {
				s := service(p.status(t), name)
				if s.State == "unhealthy" && !sawUnhealthy {
					sawUnhealthy, detected = true, time.Since(stopped)
				}
				if s.State == "ready" && s.PID != before.PID && s.PID != 0 {
					recovered = time.Since(stopped)
					if !sawUnhealthy {
						detected = recovered // the unhealthy moment fell between two polls
					}
					if s.Restarts != before.Restarts+1 {
						t.Errorf("restarts %d -> %d, want one more", before.Restarts, s.Restarts)
					}
					break
				}
				if time.Since(stopped) > 60*time.Second {
					t.Fatalf("%s not recovered 60 s after SIGSTOP: %+v\nsupervisor log:\n%s", name, s, p.log("supervisor"))
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Logf("%s SIGSTOPped: unhealthy after %v, ready again after %v", name, detected.Round(100*time.Millisecond), recovered.Round(100*time.Millisecond))
			if detected > detectBound {
				t.Errorf("%s hang noticed after %v, want within %v", name, detected, detectBound)
			}
			if !strings.Contains(p.log("supervisor"), "unhealthy") {
				t.Errorf("the supervisor log does not say %s was unhealthy", name)
			}
		})
	}
	var doc bson.M
	if err := p.mongoApp(t, mongoPort).Database("second").Collection("docs").FindOne(ctx, bson.D{}).Decode(&doc); err != nil || doc["v"] != "kept" {
		t.Errorf("mongo data after the restart: %v %v", doc, err)
	}
	if got, err := p.redisApp(t, redisPort, "GET", "k"); err != nil || got != "kept" {
		t.Errorf("redis data after the restart: %q %v", got, err)
	}
}

// Every child stopped (SIGSTOP): `second stop` still ends everything in time.
func TestStopBoundWithStoppedChildren(t *testing.T) {
	p := newPayload(t, testsupport.MongodPath(t))
	r := p.start(t, nil)
	pids := childPIDs(p.status(t))
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGSTOP)
	}
	began := time.Now()
	out, errOut, code := p.run(t, nil, "stop")
	took := time.Since(began)
	t.Logf("stop with SIGSTOPped children took %v", took.Round(10*time.Millisecond))
	if code != 0 || took > stopBound {
		t.Errorf("stop: exit %d after %v (bound %v): %q %q", code, took, stopBound, out, errOut)
	}
	r.wait(t, 5*time.Second)
	assertGone(t, pids, 2*time.Second)
}

// The supervisor itself stopped: status answers within 2 s saying so,
// and stop ends it (and its children) within 15 s.
func TestStatusAndStopBoundsWithStoppedSupervisor(t *testing.T) {
	p := newPayload(t, testsupport.MongodPath(t))
	r := p.start(t, nil)
	st := p.status(t)
	pids := childPIDs(st)
	sup := r.cmd.Process.Pid
	if err := syscall.Kill(sup, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	out, errOut, code := p.run(t, nil, "status")
	took := time.Since(began)
	t.Logf("status with a SIGSTOPped supervisor took %v:\n%s", took.Round(10*time.Millisecond), out)
	if code != 0 || took > statusBound {
		t.Errorf("status: exit %d after %v (bound %v): %q", code, took, statusBound, errOut)
	}
	for _, want := range []string{"not responding", "pid " + strconv.Itoa(sup), "running since", "stopped (SIGSTOP"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	began = time.Now()
	out, errOut, code = p.run(t, nil, "stop")
	took = time.Since(began)
	t.Logf("stop with a SIGSTOPped supervisor took %v", took.Round(10*time.Millisecond))
	if code != 0 || took > stopBound {
		t.Errorf("stop: exit %d after %v (bound %v): %q %q", code, took, stopBound, out, errOut)
	}
	r.wait(t, 5*time.Second)
	assertGone(t, pids, 2*time.Second)
}

// A listener planted on [::1]:<web port> (where a browser goes first for
// "localhost") makes start pick another port, or refuse an explicit one.
func TestPlantedIPv6ListenerMovesTheWebPort(t *testing.T) {
	planted, err := net.Listen("tcp", net.JoinHostPort("::1", strconv.Itoa(stack.DefaultWebPort)))
	if err != nil {
		t.Skipf("needs [::1]:%d free to plant a listener there: %v", stack.DefaultWebPort, err)
	}
	defer planted.Close()
	p := newPayload(t, testsupport.MongodPath(t))
	_, errOut, code := p.run(t, nil, "start", "--no-open", "--port", strconv.Itoa(stack.DefaultWebPort))
	if want := fmt.Sprintf("port %d is in use on ::1", stack.DefaultWebPort); code == 0 || !strings.Contains(errOut, want) {
		t.Errorf("start --port %d: exit %d, stderr %q; want a refusal with %q", stack.DefaultWebPort, code, errOut, want)
	}
	r := p.start(t, nil)
	st := p.status(t)
	if web := service(st, "web").Port; web == stack.DefaultWebPort || !strings.Contains(r.out.String(), "http://localhost:"+strconv.Itoa(web)) {
		t.Errorf("web port %d with [::1]:%d taken; output %q", web, stack.DefaultWebPort, r.out)
	}
}

// A child that listens on every interface although told 127.0.0.1 is
// named in a warning after ready.
func TestWarnsWhenAChildListensBeyondLoopback(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("listener discovery reads /proc (Linux only)")
	}
	p := newPayload(t, testsupport.MongodPath(t))
	if err := os.WriteFile(filepath.Join(p.root, "dist", "worker", "listen-all"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := p.start(t, nil)
	st := p.status(t)
	worker := service(st, "worker")
	want := fmt.Sprintf("Warning: worker (pid %d) listens on [::]:%d, beyond loopback", worker.PID, worker.Port)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(r.out.String(), want) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(r.out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, r.out)
	}
	for _, svc := range []string{"web (pid", "mongo (pid", "redis (pid"} {
		if strings.Contains(r.out.String(), "Warning: "+svc) {
			t.Errorf("a loopback-only service was warned about:\n%s", r.out)
		}
	}
	if !strings.Contains(p.log("supervisor"), "listens beyond loopback") {
		t.Error("the supervisor log lacks the warning")
	}
}

func TestLogsRefusesBadInput(t *testing.T) {
	p := newPayload(t, "")
	p.home = filepath.Join(t.TempDir(), "nonexistent")
	if _, errOut, code := p.run(t, nil, "logs"); code == 0 || !strings.Contains(errOut, "no Second home at "+p.home) {
		t.Errorf("logs --home <nonexistent>: exit %d, stderr %q", code, errOut)
	}
	if err := os.MkdirAll(p.home, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := p.run(t, nil, "logs", "-n", "-5"); code == 0 || !strings.Contains(errOut, "must be a positive number of lines, not -5") {
		t.Errorf("logs -n -5: exit %d, stderr %q", code, errOut)
	}
}
