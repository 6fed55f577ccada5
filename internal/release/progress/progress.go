// Package progress renders the release tool's log for people at a terminal:
// one line per pipeline step with its duration, an elapsed-time ticker on the
// step that is running, and every other record as a short plain line. Off a
// terminal (CI logs, pipes) or with -v the tool logs logfmt instead; Logger
// picks.
package progress

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// The pipeline's step records (pipeline.RunSteps logs them).
const (
	msgStep        = "step"
	msgStepDone    = "step done"
	msgStepSkipped = "step skipped"
	msgStepFailed  = "step failed"
)

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Logger is the release tool's logger on w: the terminal renderer when w is
// a terminal and not verbose, else logfmt (debug records too when verbose).
func Logger(w io.Writer, verbose bool) *slog.Logger {
	if verbose || !IsTerminal(w) {
		level := slog.LevelInfo
		if verbose {
			level = slog.LevelDebug
		}
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(NewHandler(w, Options{Color: os.Getenv("NO_COLOR") == ""}))
}

// Options tune the terminal renderer.
type Options struct {
	Color bool          // ANSI colours (off when NO_COLOR is set)
	Tick  time.Duration // how often the running step's elapsed time is redrawn; 0: every second, <0: never
	// Since measures elapsed time; nil: time.Since. Tests fix it.
	Since func(time.Time) time.Duration
}

// Handler is an slog.Handler that renders for a terminal.
type Handler struct {
	s     *screen
	attrs []slog.Attr
	group string
}

// screen is the state Handlers derived by WithAttrs share: one writer, one
// running step.
type screen struct {
	mu      sync.Mutex
	w       io.Writer
	o       Options
	step    string    // the running step, "" when none
	started time.Time // when it started
	stop    chan struct{}
	done    chan struct{}
	// transfers in flight, shown after the step on the status line
	transfers []*transfer
	lastDraw  time.Time
}

// NewHandler renders records on w, which should be a terminal.
func NewHandler(w io.Writer, o Options) *Handler {
	if o.Tick == 0 {
		o.Tick = time.Second
	}
	if o.Since == nil {
		o.Since = time.Since
	}
	return &Handler{s: &screen{w: w, o: o}}
}

func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr{}, h.attrs...), qualify(h.group, as)...)
	return &n
}

func (h *Handler) WithGroup(name string) slog.Handler {
	n := *h
	if n.group != "" {
		name = n.group + "." + name
	}
	n.group = name
	return &n
}

func qualify(group string, as []slog.Attr) []slog.Attr {
	if group == "" {
		return as
	}
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = slog.Attr{Key: group + "." + a.Key, Value: a.Value}
	}
	return out
}

func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	attrs := append([]slog.Attr{}, h.attrs...)
	var own []slog.Attr
	r.Attrs(func(a slog.Attr) bool { own = append(own, a); return true })
	attrs = append(attrs, qualify(h.group, own)...)
	get := func(key string) string {
		for _, a := range attrs {
			if a.Key == key {
				return a.Value.Resolve().String()
			}
		}
		return ""
	}
	s := h.s
	switch r.Message {
	case msgStep:
		s.begin(get("name"))
	case msgStepDone:
		s.end(s.o.color(green, "✓"), get("name"), "")
	case msgStepSkipped:
		s.end(s.o.color(dim, "-"), get("name"), "skipped: "+get("reason"))
	case msgStepFailed:
		s.end(s.o.color(red, "✗"), get("name"), "failed")
	default:
		s.line(h.plain(r.Level, r.Message, attrs))
	}
	return nil
}

// plain is one record as "  message key=value ...", warnings and errors marked.
func (h *Handler) plain(l slog.Level, msg string, attrs []slog.Attr) string {
	var b strings.Builder
	b.WriteString("  ")
	switch {
	case l >= slog.LevelError:
		b.WriteString(h.s.o.color(red, "error: "))
	case l >= slog.LevelWarn:
		b.WriteString(h.s.o.color(yellow, "warning: "))
	}
	b.WriteString(msg)
	for _, a := range attrs {
		v := a.Value.Resolve().String()
		if strings.ContainsAny(v, " \t\"=") {
			v = fmt.Sprintf("%q", v)
		}
		fmt.Fprintf(&b, " %s=%s", h.s.o.color(dim, a.Key), v)
	}
	return b.String()
}

const (
	green  = "32"
	red    = "31"
	yellow = "33"
	dim    = "2"
)

func (o Options) color(code, s string) string {
	if !o.Color {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// Duration renders a step's time: 0.4s, 12.3s, 1m32s.
func Duration(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// status is the line redrawn in place (no newline): the running step with
// its elapsed time, then each transfer in flight; "" when there is neither.
func (s *screen) status() string {
	var parts []string
	if s.step != "" {
		parts = append(parts, fmt.Sprintf("%s %s %s", s.o.color(dim, "…"), s.step, s.o.color(dim, Duration(s.o.Since(s.started)))))
	}
	for _, t := range s.transfers {
		parts = append(parts, t.String())
	}
	return strings.Join(parts, "  ")
}

// redraw rewrites the status line; the caller holds s.mu.
func (s *screen) redraw() {
	s.lastDraw = time.Now()
	fmt.Fprint(s.w, clearLine+s.status())
}

const clearLine = "\r\x1b[K"

func (s *screen) begin(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.step, s.started = name, time.Now()
	s.redraw()
	if s.o.Tick > 0 {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.tick(s.stop, s.done)
	}
}

func (s *screen) tick(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(s.o.Tick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.mu.Lock()
			if s.step != "" {
				s.redraw()
			}
			s.mu.Unlock()
		}
	}
}

// end replaces the status line with the step's final line.
func (s *screen) end(mark, name, note string) {
	s.mu.Lock()
	stop, done := s.stop, s.done
	s.stop, s.done = nil, nil
	s.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	took := Duration(s.o.Since(s.started))
	line := fmt.Sprintf("%s %-12s %6s", mark, name, took)
	if note != "" {
		line += "  " + note
	}
	s.step = ""
	fmt.Fprint(s.w, clearLine+line+"\n")
	if len(s.transfers) > 0 {
		s.redraw()
	}
}

// line prints a record above the running step's status line.
func (s *screen) line(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprint(s.w, clearLine+text+"\n")
	if st := s.status(); st != "" {
		fmt.Fprint(s.w, st)
	}
}
