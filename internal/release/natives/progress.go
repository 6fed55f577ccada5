package natives

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progressBar renders download progress: a redrawn bar on a terminal, and
// plain lines at each 10% (or every 32 MiB when the size is unknown) when
// the output is a file or a pipe, so CI logs stay readable.
type progressBar struct {
	w        io.Writer
	tty      bool
	label    string
	total    int64
	done     int64
	start    time.Time
	lastDraw time.Time
	lastStep int64
}

func newProgressBar(w io.Writer, label string, total int64) *progressBar {
	p := &progressBar{w: w, tty: isTerminal(w), label: label, total: total, start: time.Now(), lastStep: -1}
	p.draw(true)
	return p
}

// isTerminal: a character device is a terminal for our purposes.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *progressBar) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	p.draw(false)
	return len(b), nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func (p *progressBar) draw(force bool) {
	if p.tty {
		if !force && time.Since(p.lastDraw) < 100*time.Millisecond {
			return
		}
		p.lastDraw = time.Now()
		if p.total > 0 {
			const width = 30
			filled := int(p.done * width / p.total)
			filled = min(filled, width)
			fmt.Fprintf(p.w, "\r%s [%s%s] %3d%% %s/%s", p.label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
				p.done*100/p.total, mib(p.done), mib(p.total))
		} else {
			fmt.Fprintf(p.w, "\r%s %s", p.label, mib(p.done))
		}
		return
	}
	var step int64
	if p.total > 0 {
		step = p.done * 10 / p.total
	} else {
		step = p.done / (32 << 20)
	}
	if step == p.lastStep && !force {
		return
	}
	p.lastStep = step
	if p.total > 0 {
		fmt.Fprintf(p.w, "%s: %d%% (%s of %s)\n", p.label, step*10, mib(p.done), mib(p.total))
	} else {
		fmt.Fprintf(p.w, "%s: %s\n", p.label, mib(p.done))
	}
}

func (p *progressBar) finish() {
	elapsed := time.Since(p.start).Round(100 * time.Millisecond)
	if p.tty {
		p.draw(true)
		fmt.Fprintf(p.w, " done in %s\n", elapsed)
		return
	}
	fmt.Fprintf(p.w, "%s: done, %s in %s\n", p.label, mib(p.done), elapsed)
}

func (p *progressBar) fail() {
	if p.tty {
		fmt.Fprintln(p.w, " failed")
		return
	}
	fmt.Fprintf(p.w, "%s: failed after %s\n", p.label, mib(p.done))
}
