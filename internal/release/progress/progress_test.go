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
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("terminal output differs from %s:\ngot:\n%q\nwant:\n%q", path, got, want)
	}
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

// TestBytes: byte progress redraws one line per item at a terminal, ends it
// when the item is complete, and is off elsewhere.
func TestBytes(t *testing.T) {
	var buf bytes.Buffer
	if progress.Bytes(&buf, "push") != nil {
		t.Error("byte progress off a terminal")
	}
	out := capture(t, func(tty *os.File) {
		report := progress.Bytes(tty, "push")
		report("second-web", 0, 4<<20)
		report("second-web", 1<<20, 4<<20) // within 100 ms: not drawn
		report("second-web", 4<<20, 4<<20) // complete: always drawn
	})
	want := "\r\x1b[Kpush second-web  0.0 MiB/4.0 MiB  0%" + "\r\x1b[Kpush second-web  4.0 MiB/4.0 MiB  100%\n"
	if out != want {
		t.Errorf("terminal got %q, want %q", out, want)
	}
}
