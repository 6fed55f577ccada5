package supervise

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkStartToReady measures the supervisor's overhead: from the
// moment the child itself is ready (it creates its ready file; the file's
// mtime) to Start returning. Reported as overhead-ms; goal ≤ 50 ms.
func BenchmarkStartToReady(b *testing.B) {
	var overhead, total time.Duration
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		p := shProc(dir, "web", `touch "$DIR/$NAME.ready"; exec sleep 300`)
		s := New(Options{})
		t0 := time.Now()
		if err := s.Start(context.Background(), []*Process{p}); err != nil {
			b.Fatal(err)
		}
		done := time.Now()
		st, err := os.Stat(filepath.Join(dir, "web.ready"))
		if err != nil {
			b.Fatal(err)
		}
		overhead += done.Sub(st.ModTime())
		total += done.Sub(t0)
		b.StopTimer()
		s.Stop(context.Background())
		b.StartTimer()
	}
	b.ReportMetric(float64(overhead.Microseconds())/1000/float64(b.N), "overhead-ms")
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "start-ms")
}

// BenchmarkSupervisorRSS runs a supervisor with four services in its own
// process (this test binary re-executed) and reports its resident set
// size at steady state (goal ≤ 20 MB). Linux only (/proc).
func BenchmarkSupervisorRSS(b *testing.B) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skip("needs /proc")
	}
	var rss float64
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "SUPERVISE_TEST_HELPER="+dir, "SUPERVISE_TEST_RSS=1")
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		cmd.Process.Kill()
		cmd.Wait()
		kb, perr := strconv.Atoi(strings.TrimSpace(line))
		if err != nil || perr != nil {
			b.Fatalf("helper said %q: %v %v", line, err, perr)
		}
		rss += float64(kb) / 1024
	}
	b.ReportMetric(rss/float64(b.N), "rss-MB")
}

// vmRSS is this process's VmRSS in kB.
func vmRSS() int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// reportRSS is the helper's steady-state measurement: after start, let
// the supervisor idle a while (probes done, goroutines parked), then print.
func reportRSS(s *Supervisor) {
	time.Sleep(time.Second)
	fmt.Println(vmRSS())
	<-s.Done()
}
