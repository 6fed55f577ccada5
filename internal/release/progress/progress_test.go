package progress_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/release/pipeline"
	"github.com/second-inc/second-release/internal/release/progress"
	"github.com/second-inc/second-release/internal/testsupport"
)

var update = flag.Bool("update", false, "rewrite the golden files")

type step struct {
	name string
	run  func(ctx context.Context, log *slog.Logger) error
}

func (s step) String() string                                   { return s.name }
func (s step) Run(ctx context.Context, log **slog.Logger) error { return s.run(ctx, *log) }

// steps is a short build: a step that logs, a skipped one, a failing one.
func steps() []pipeline.StepOf[**slog.Logger] {
	return []pipeline.StepOf[**slog.Logger]{
		step{"version", func(context.Context, *slog.Logger) error { return nil }},
		step{"web", func(_ context.Context, log *slog.Logger) error {
			log.Info("next build", "app", "examples/app/web")
			log.Warn("slow disk", "took", "3s")
			return nil
		}},
		step{"natives", func(context.Context, *slog.Logger) error { return pipeline.Skip{Reason: "--skip-natives"} }},
		step{"pack", func(context.Context, *slog.Logger) error { return errors.New("disk full") }},
	}
}

// capture runs fn with a terminal and returns what the terminal received.
func capture(t *testing.T, fn func(tty *os.File)) string {
	ptmx, tty := testsupport.OpenPTY(t)
	got := make(chan []byte)
	go func() { b, _ := io.ReadAll(ptmx); got <- b }()
	fn(tty)
	tty.Close()
	select {
	case b := <-got:
		return string(b)
	case <-time.After(10 * time.Second):
		t.Fatal("terminal output never ended")
		return ""
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	testsupport.Golden(t, filepath.Join("testdata", name), got, *update)
}

// TestTerminalSteps: at a terminal each step ends as one line with its
// duration; records inside a step print above it; skips and failures say so.
// The golden file holds the exact bytes, escape sequences included.
func TestTerminalSteps(t *testing.T) {
	for _, tc := range []struct {
		name  string
		color bool
	}{{"steps-color.golden", true}, {"steps-nocolor.golden", false}} {
		t.Run(tc.name, func(t *testing.T) {
			out := capture(t, func(tty *os.File) {
				h := progress.NewHandler(tty, progress.Options{Color: tc.color, Tick: -1,
					Since: func(time.Time) time.Duration { return 1500 * time.Millisecond }})
				log := slog.New(h)
				err := pipeline.RunSteps(context.Background(), log, &log, steps(), nil)
				if err == nil || !strings.Contains(err.Error(), "pack: disk full") {
					t.Errorf("RunSteps = %v, want the pack failure", err)
				}
			})
			if !tc.color && strings.Contains(out, "\x1b[3") {
				t.Errorf("colour without Color: %q", out)
			}
			golden(t, tc.name, out)
		})
	}
}

// TestTicker: a long step's elapsed time is redrawn in place while it runs.
func TestTicker(t *testing.T) {
	out := capture(t, func(tty *os.File) {
		log := slog.New(progress.NewHandler(tty, progress.Options{Tick: 10 * time.Millisecond}))
		err := pipeline.RunSteps(context.Background(), log, &log, []pipeline.StepOf[**slog.Logger]{
			step{"web", func(context.Context, *slog.Logger) error { time.Sleep(200 * time.Millisecond); return nil }},
		}, nil)
		if err != nil {
			t.Error(err)
		}
	})
	if n := strings.Count(out, "\r\x1b[K… web "); n < 3 {
		t.Errorf("status line drawn %d times in 200 ms with a 10 ms tick, want several:\n%q", n, out)
	}
	if !strings.HasSuffix(out, "\n") || !strings.Contains(out, "✓ web") {
		t.Errorf("no final line for web: %q", out)
	}
}

// TestLoggerChoice: logfmt off a terminal and with -v, the renderer at a
// terminal, and no colour at a terminal when NO_COLOR is set.
func TestLoggerChoice(t *testing.T) {
	var buf bytes.Buffer
	progress.Logger(&buf, false).Info("step", "name", "web")
	if !strings.Contains(buf.String(), "level=INFO msg=step name=web") {
		t.Errorf("off a terminal: %q, want logfmt", buf.String())
	}
	out := capture(t, func(tty *os.File) {
		log := progress.Logger(tty, true)
		log.Debug("detail", "k", "v")
		log.Info("step", "name", "web")
	})
	if !strings.Contains(out, "level=DEBUG msg=detail k=v") || !strings.Contains(out, "msg=step name=web") {
		t.Errorf("verbose at a terminal: %q, want logfmt with debug records", out)
	}
	t.Setenv("NO_COLOR", "1")
	out = capture(t, func(tty *os.File) {
		log := progress.Logger(tty, false)
		log.Info("step", "name", "web")
		log.Info("step done", "name", "web")
		log.Warn("careful")
	})
	if strings.Contains(out, "msg=") || !strings.Contains(out, "✓ web") || !strings.Contains(out, "warning: careful") {
		t.Errorf("at a terminal: %q, want rendered steps", out)
	}
	if strings.Contains(out, "\x1b[3") || strings.Contains(out, "\x1b[2m") {
		t.Errorf("NO_COLOR=1 but colours in %q", out)
	}
}

// TestBytes: at a terminal, byte progress shares the status line with the
// running step, redraws at most every 100 ms, and each transfer ends as one
// line with its size and time (or says it failed), after which the step's
// status line comes back.
func TestBytes(t *testing.T) {
	out := capture(t, func(tty *os.File) {
		log := slog.New(progress.NewHandler(tty, progress.Options{Tick: -1,
			Since: func(time.Time) time.Duration { return 1500 * time.Millisecond }}))
		report := progress.Transfer(log, "download")
		log.Info("step", "name", "natives")
		report("mongod.tgz", 0, 4<<20)
		report("mongod.tgz", 1<<20, 4<<20) // within 100 ms: not drawn
		time.Sleep(120 * time.Millisecond)
		report("mongod.tgz", 2<<20, 4<<20)
		report("mongod.tgz", 4<<20, 4<<20) // complete: always drawn
		report("redis.tgz", 0, -1)
		report("redis.tgz", -1, -1) // failed
		log.Info("step done", "name", "natives")
	})
	const step = "\r\x1b[K… natives 1.5s"
	want := step +
		step + "  download mongod.tgz 0.0 MiB/4.0 MiB 0%" +
		step + "  download mongod.tgz 2.0 MiB/4.0 MiB 50%" +
		"\r\x1b[K  download mongod.tgz 4.0 MiB in 1.5s\n" + step +
		step + "  download redis.tgz 0.0 MiB" +
		"\r\x1b[K  download redis.tgz failed after 0.0 MiB and 1.5s\n" + step +
		"\r\x1b[K✓ natives        1.5s\n"
	if got := screenless(out); got != want {
		t.Errorf("terminal got\n%q\nwant\n%q", got, want)
	}
}

// screenless drops colour codes (the renderer colours by default).
func screenless(s string) string {
	for _, c := range []string{"\x1b[2m", "\x1b[0m", "\x1b[31m", "\x1b[32m"} {
		s = strings.ReplaceAll(s, c, "")
	}
	return s
}

// TestProgressBar: off a terminal, transfers are log records at each tenth
// (or every 32 MiB of an unknown size) and when they end, never redrawn.
func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	report := progress.Transfer(progress.Logger(&buf, false), "download")
	c := progress.NewCounter(report, "x.tgz", 100)
	for i := 0; i < 10; i++ {
		c.Write(make([]byte, 10))
	}
	c.Done()
	u := progress.NewCounter(report, "y.tgz", -1)
	u.Write(make([]byte, 10))
	u.Fail()
	out := buf.String()
	for _, w := range []string{
		"msg=download item=x.tgz bytes=0 total=100 percent=0\n",
		"msg=download item=x.tgz bytes=50 total=100 percent=50\n",
		"msg=download item=x.tgz bytes=90 total=100 percent=90\n",
		"msg=\"download done\" item=x.tgz bytes=100 took=",
		"msg=download item=y.tgz bytes=0\n",
		"level=WARN msg=\"download failed\" item=y.tgz bytes=10 took=",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("log lacks %q:\n%s", w, out)
		}
	}
	if n := strings.Count(out, "item=x.tgz"); n != 11 {
		t.Errorf("%d records for x.tgz, want 10 tenths + done:\n%s", n, out)
	}
	if strings.Contains(out, "\r") {
		t.Error("carriage return in a log")
	}
	if progress.Transfer(nil, "download") != nil {
		t.Error("Transfer(nil) reports somewhere")
	}
}
