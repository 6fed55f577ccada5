package main

// Benchmarks (not timed tests) for the runtime's two budgets:
//   - supervisor overhead: start-to-ready of `second` minus the time the
//     same children need when started directly in the same order (mongod and
//     redis together, then web, then worker), goal ≤ 50 ms;
//   - supervisor RSS and CPU at steady state, liveness probes running,
//     goals ≤ 20 MB and ≤ 0.5 % of one core.
// Run with bench/runtime.sh (needs SECOND_TEST_MONGOD or mongod on PATH).

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/local/mongoready"
	"github.com/second-inc/second-release/internal/local/probe"
	"github.com/second-inc/second-release/internal/testsupport"
)

func BenchmarkStartToReady(b *testing.B) {
	mongod := testsupport.MongodPath(b)
	p := newPayload(b, mongod)
	direct := newDirect(b, p, mongod)
	var secondTotal, directTotal time.Duration
	for b.Loop() {
		directTotal += direct.run(b)
		secondTotal += p.startStop(b)
	}
	n := time.Duration(b.N)
	b.ReportMetric(float64(secondTotal/n)/1e6, "second-ms")
	b.ReportMetric(float64(directTotal/n)/1e6, "direct-ms")
	b.ReportMetric(float64((secondTotal-directTotal)/n)/1e6, "overhead-ms")
}

func BenchmarkSteadyStateRSS(b *testing.B) {
	mongod := testsupport.MongodPath(b)
	p := newPayload(b, mongod)
	cmd := exec.Command(p.bin, "start", "--no-open", "--home", p.home)
	cmd.Env = p.env()
	out := &lockedBuf{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	waitFor(b, out, "ready at", 90*time.Second)
	time.Sleep(2 * time.Second) // past the start's own work
	var max float64
	cpu0, t0 := cpuTicks(b, cmd.Process.Pid), time.Now()
	for b.Loop() {
		time.Sleep(time.Second) // steady state: children ready, liveness probes every 2 s
		if rss := rssMB(b, cmd.Process.Pid); rss > max {
			max = rss
		}
	}
	cpu := float64(cpuTicks(b, cmd.Process.Pid)-cpu0) / clockTicks / time.Since(t0).Seconds()
	b.ReportMetric(max, "rss-MB")
	b.ReportMetric(cpu*100, "cpu-%")
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTicks = 100

// cpuTicks is the user+system CPU time of pid, in clock ticks.
func cpuTicks(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Skipf("CPU time needs /proc (Linux): %v", err)
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// After "(comm)": state is field 3 of the whole line, utime 14, stime 15.
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st
}

func waitFor(b *testing.B, out *lockedBuf, what string, within time.Duration) {
	deadline := time.Now().Add(within)
	for !strings.Contains(out.String(), what) {
		if time.Now().After(deadline) {
			b.Fatalf("no %q after %s:\n%s", what, within, out)
		}
		time.Sleep(time.Millisecond)
	}
}

// startStop measures exec → "ready at" printed, then stops.
func (p *payload) startStop(b *testing.B) time.Duration {
	cmd := exec.Command(p.bin, "start", "--no-open", "--home", p.home)
	cmd.Env = p.env()
	out := &lockedBuf{}
	cmd.Stdout, cmd.Stderr = out, out
	began := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	waitFor(b, out, "ready at", 90*time.Second)
	took := time.Since(began)
	b.StopTimer()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	b.StartTimer()
	return took
}

// direct starts the same children without second, polling readiness
// every millisecond: the children's own start-to-ready time.
type direct struct {
	p                   *payload
	dir                 string
	mongod, redis, node string
	web, worker         string
	mport, rport, wport int
	kport               int
}

func newDirect(b *testing.B, p *payload, mongod string) *direct {
	dir := b.TempDir()
	if d := os.Getenv("BENCH_KEEP"); d != "" {
		dir = d
	}
	for _, d := range []string{"mongo", "redis"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			b.Fatal(err)
		}
	}
	node, _ := exec.LookPath("node")
	// Not EvalSymlinks: Debian's redis-server is a link to redis-check-rdb,
	// which picks its personality from argv[0].
	redis := filepath.Join(p.root, "dist", "runtime", "bin", "redis-server")
	return &direct{p: p, dir: dir, mongod: mongod, redis: redis, node: node,
		web: filepath.Join(p.root, "dist", "web", "server.js"), worker: filepath.Join(p.root, "dist", "worker", "worker.mjs"),
		mport: freePort(b), rport: freePort(b), wport: freePort(b), kport: freePort(b)}
}

func freePort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (d *direct) run(b *testing.B) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var procs []*exec.Cmd
	spawn := func(name string, env []string, args ...string) {
		c := exec.Command(name, args...)
		c.Env = env
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if logf, err := os.Create(filepath.Join(d.dir, filepath.Base(name)+".log")); err == nil {
			c.Stdout, c.Stderr = logf, logf
		}
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		procs = append(procs, c)
		// Also on a failed iteration: no child may outlive the benchmark.
		b.Cleanup(func() { _ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL) })
	}
	wait := func(p probe.Probe) {
		if err := probe.Wait(ctx, p, time.Millisecond); err != nil {
			b.Fatal(err)
		}
	}
	// The system variables the runtime hands its children too: a fair
	// baseline. NODE_EXTRA_CA_CERTS alone can cost node ~70 ms a start (a
	// 144-certificate bundle here), which the supervisor rightly passes on.
	env := []string{}
	for _, k := range []string{"PATH", "HOME", "LANG", "TZ", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if _, err := os.Stat(d.web); err != nil {
		b.Fatalf("web fixture gone: %v (N=%d)", err, b.N)
	}
	began := time.Now()
	spawn(d.mongod, env, "--dbpath", filepath.Join(d.dir, "mongo"), "--bind_ip", "127.0.0.1", "--port", strconv.Itoa(d.mport), "--replSet", "rs0")
	spawn(d.redis, env, "--bind", "127.0.0.1", "--port", strconv.Itoa(d.rport), "--dir", filepath.Join(d.dir, "redis"), "--appendonly", "yes")
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		wait(probe.Func(func(ctx context.Context) error { return mongoready.Ping(ctx, d.mport) }))
		if err := mongoready.Ensure(ctx, mongoready.Options{Port: d.mport, Poll: time.Millisecond}); err != nil {
			b.Error(err)
		}
	}()
	go func() { defer wg.Done(); wait(probe.Redis{Addr: fmt.Sprintf("127.0.0.1:%d", d.rport)}) }()
	wg.Wait()
	spawn(d.node, append(env, "PORT="+strconv.Itoa(d.wport), "HOSTNAME=127.0.0.1"), d.web)
	wait(probe.HTTP{URL: fmt.Sprintf("http://127.0.0.1:%d/api/health", d.wport)})
	spawn(d.node, append(env, "PORT="+strconv.Itoa(d.kport)), d.worker)
	wait(probe.HTTP{URL: fmt.Sprintf("http://127.0.0.1:%d/health", d.kport)})
	took := time.Since(began)
	b.StopTimer()
	for i := len(procs) - 1; i >= 0; i-- {
		_ = syscall.Kill(-procs[i].Process.Pid, syscall.SIGTERM)
		_ = procs[i].Wait()
	}
	b.StartTimer()
	return took
}

func rssMB(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Skipf("RSS needs /proc (Linux): %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmRSS in /proc status")
	return 0
}
