package devstack

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// colors per service (ANSI), in the order services start.
var colors = map[string]string{"mongo": "32", "redis": "31", "worker": "33", "web": "36", "dev": "35"}

// output writes every child's lines to one writer, each line prefixed by
// its service name, coloured at a terminal.
type output struct {
	mu    sync.Mutex
	w     io.Writer
	color bool
}

// prefixed is one service's writer.
func (o *output) prefixed(service string) io.Writer {
	p := fmt.Sprintf("%-6s | ", service)
	if o.color {
		p = "\x1b[" + colors[service] + "m" + p + "\x1b[0m"
	}
	return &prefixWriter{o: o, prefix: []byte(p)}
}

// Printf writes a line of second dev's own.
func (o *output) Printf(format string, args ...any) {
	fmt.Fprintf(o.prefixed("dev"), format+"\n", args...)
}

type prefixWriter struct {
	o      *output
	prefix []byte
}

// Write takes whole lines (the supervisor's copier sends one per call) and
// writes them with the prefix, one Write per line so lines of different
// services never interleave.
func (p *prefixWriter) Write(b []byte) (int, error) {
	p.o.mu.Lock()
	defer p.o.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i+1], b[i+1:]
		} else {
			b = nil
		}
		buf := make([]byte, 0, len(p.prefix)+len(line)+1)
		buf = append(append(buf, p.prefix...), line...)
		if buf[len(buf)-1] != '\n' {
			buf = append(buf, '\n')
		}
		if _, err := p.o.w.Write(buf); err != nil {
			return n, err
		}
	}
	return n, nil
}

// mongoEcho shows mongod's warnings and errors only: its informational
// JSON log is dozens of lines per start (all of it is in the log file).
type mongoEcho struct{ w io.Writer }

func (m mongoEcho) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte(`"s":"I"`)) || bytes.Contains(b, []byte(`"s":"D`)) {
		return len(b), nil
	}
	return m.w.Write(b)
}
