package main

// A hung service is noticed and restarted; stop and status stay bounded
// whatever the children or the supervisor do.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

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
