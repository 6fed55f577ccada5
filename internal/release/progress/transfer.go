package progress

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Func is told how many bytes of item have moved so far. total <= 0 means
// the size is unknown. A call with done == total (> 0) says the item is
// complete; done < 0 says it failed or was abandoned.
type Func func(item string, done, total int64)

// Transfer returns the byte-progress reporter that goes with l, for moves
// named by verb ("download", "upload", "push"). At a terminal (l renders
// with a Handler) the transfers in flight share the status line with the
// running step, and each ends as one line with its size and time. Anywhere
// else it logs a record at every tenth of an item (every 32 MiB when the
// size is unknown) and when it ends, so CI logs show a slow transfer moving
// without drowning in lines. nil when l is nil.
func Transfer(l *slog.Logger, verb string) Func {
	if l == nil {
		return nil
	}
	if h, ok := l.Handler().(*Handler); ok {
		return func(item string, done, total int64) { h.s.transfer(verb, item, done, total) }
	}
	return (&logged{log: l, verb: verb, items: map[string]*transfer{}}).report
}

// transfer is one item in flight.
type transfer struct {
	verb, item  string
	done, total int64
	started     time.Time
	tenth       int64 // the last tenth (or 32 MiB step) logged
}

func (t *transfer) String() string {
	if t.total > 0 {
		return fmt.Sprintf("%s %s %s/%s %d%%", t.verb, t.item, mib(t.done), mib(t.total), t.done*100/t.total)
	}
	return fmt.Sprintf("%s %s %s", t.verb, t.item, mib(t.done))
}

// mib renders a byte count for people: 12.3 MiB.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// redrawEvery limits how often a transfer redraws the status line.
const redrawEvery = 100 * time.Millisecond

func (s *screen) transfer(verb, item string, done, total int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.transfers, func(t *transfer) bool { return t.verb == verb && t.item == item })
	if i < 0 {
		if done < 0 {
			return
		}
		s.transfers = append(s.transfers, &transfer{verb: verb, item: item, started: time.Now()})
		i = len(s.transfers) - 1
		s.lastDraw = time.Time{} // a new item shows at once
	}
	t := s.transfers[i]
	finished := done < 0 || (total > 0 && done >= total)
	if !finished {
		t.done, t.total = done, total
		if time.Since(s.lastDraw) >= redrawEvery {
			s.redraw()
		}
		return
	}
	s.transfers = slices.Delete(s.transfers, i, i+1)
	took := Duration(s.o.Since(t.started))
	line := fmt.Sprintf("  %s %s %s in %s", verb, item, mib(total), took)
	if done < 0 {
		line = fmt.Sprintf("  %s %s %s after %s and %s", verb, item, s.o.color(red, "failed"), mib(t.done), took)
	}
	fmt.Fprint(s.w, clearLine+line+"\n")
	if st := s.status(); st != "" {
		s.redraw()
	}
}

// logged reports transfers as log records (off a terminal).
type logged struct {
	log   *slog.Logger
	verb  string
	mu    sync.Mutex
	items map[string]*transfer
}

func (g *logged) report(item string, done, total int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.items[item]
	if !ok {
		if done < 0 {
			return
		}
		t = &transfer{verb: g.verb, item: item, started: time.Now(), tenth: -1}
		g.items[item] = t
	}
	ctx := context.Background()
	switch {
	case done < 0:
		delete(g.items, item)
		g.log.WarnContext(ctx, g.verb+" failed", "item", item, "bytes", t.done, "took", Duration(time.Since(t.started)))
		return
	case total > 0 && done >= total:
		delete(g.items, item)
		g.log.InfoContext(ctx, g.verb+" done", "item", item, "bytes", total, "took", Duration(time.Since(t.started)))
		return
	}
	t.done, t.total = done, total
	step := done / (32 << 20)
	if total > 0 {
		step = done * 10 / total
	}
	if step == t.tenth {
		return
	}
	t.tenth = step
	attrs := []any{"item", item, "bytes", done}
	if total > 0 {
		attrs = append(attrs, "total", total, "percent", step*10)
	}
	g.log.InfoContext(ctx, g.verb, attrs...)
}

// Counter is an io.Writer that reports the bytes written through it as
// item's progress: put it in an io.MultiWriter beside the real destination.
type Counter struct {
	report Func
	item   string
	total  int64
	done   int64
}

// NewCounter starts reporting item (of total bytes, <= 0 unknown) to f;
// a nil f makes a Counter that only counts.
func NewCounter(f Func, item string, total int64) *Counter {
	c := &Counter{report: f, item: item, total: total}
	c.send(0)
	return c
}

func (c *Counter) send(done int64) {
	if c.report != nil {
		c.report(c.item, done, c.total)
	}
}

func (c *Counter) Write(b []byte) (int, error) {
	c.done += int64(len(b))
	if c.total <= 0 || c.done < c.total {
		c.send(c.done)
	}
	return len(b), nil
}

// Done reports the item complete at the size counted (what arrived, even
// when it is not the size announced: the caller's checks judge that).
func (c *Counter) Done() {
	if c.report != nil {
		c.report(c.item, max(c.done, 1), max(c.done, 1))
	}
}

// Fail reports the item failed.
func (c *Counter) Fail() { c.send(-1) }
