// Package logfile is a size-rotated log writer (service.log, service.log.1,
// … service.log.N) and a reader for the tail of such a log, used for the
// runtime's logs/<service>.log files.
package logfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// Defaults for Options' zero fields.
const (
	DefaultMaxBytes = 10 << 20
	DefaultKeep     = 3
)

// Options configures a Writer.
type Options struct {
	// MaxBytes is the size at which the file rotates (default 10 MiB).
	MaxBytes int64
	// Keep is how many rotated files (path.1 … path.Keep) survive
	// (default 3). The oldest is deleted.
	Keep int
	// Perm is the mode of new files (default 0600: logs may mention paths
	// and ports that are nobody else's business).
	Perm os.FileMode
}

// Writer appends to a log file and rotates it by size. It is safe for
// concurrent use. A single write larger than MaxBytes is written whole
// and rotates on the next write, so lines are never split across files.
type Writer struct {
	path string
	opt  Options

	mu   sync.Mutex
	f    *os.File
	size int64
}

// Open opens (creating directories and the file as needed) path for
// appending.
func Open(path string, o Options) (*Writer, error) {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Keep <= 0 {
		o.Keep = DefaultKeep
	}
	if o.Perm == 0 {
		o.Perm = 0o600
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	w := &Writer{path: path, opt: o}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writer) open() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, w.opt.Perm)
	if err != nil {
		return fmt.Errorf("open log %s: %w", w.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log %s: %w", w.path, err)
	}
	w.f, w.size = f, st.Size()
	return nil
}

// Path is the current log file's path.
func (w *Writer) Path() string { return w.path }

// Write appends p, rotating first if p would push the file past MaxBytes.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return 0, fmt.Errorf("write log %s: %w", w.path, os.ErrClosed)
	}
	if w.size > 0 && w.size+int64(len(p)) > w.opt.MaxBytes {
		if err := w.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := w.f.Write(p)
	w.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("write log %s: %w", w.path, err)
	}
	return n, nil
}

// rotate shifts path.(k) to path.(k+1), dropping the oldest, and starts a
// fresh path.
func (w *Writer) rotate() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("rotate log %s: %w", w.path, err)
	}
	w.f = nil
	_ = os.Remove(w.rotated(w.opt.Keep))
	for k := w.opt.Keep - 1; k >= 1; k-- {
		if err := os.Rename(w.rotated(k), w.rotated(k+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate log %s: %w", w.path, err)
		}
	}
	if err := os.Rename(w.path, w.rotated(1)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rotate log %s: %w", w.path, err)
	}
	return w.open()
}

func (w *Writer) rotated(k int) string { return w.path + "." + strconv.Itoa(k) }

// Close closes the file; later writes fail.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// Tail returns up to the last n lines of the log at path, reaching into
// path.1 when the current file has fewer (it may have just rotated). A
// missing log is an empty tail, not an error.
func Tail(path string, n int) (string, error) {
	if n <= 0 {
		return "", nil
	}
	cur, err := tailFile(path, n)
	if err != nil {
		return "", err
	}
	if have := countLines(cur); have < n {
		prev, err := tailFile(path+".1", n-have)
		if err != nil {
			return "", err
		}
		cur = append(prev, cur...)
	}
	return string(cur), nil
}

func countLines(b []byte) int {
	c := bytes.Count(b, []byte{'\n'})
	if len(b) > 0 && b[len(b)-1] != '\n' {
		c++
	}
	return c
}

// tailFile reads backwards in blocks until it has n lines, so a huge log
// costs only what is returned.
func tailFile(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read log %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read log %s: %w", path, err)
	}
	const block = 8 << 10
	end := st.Size()
	var buf []byte
	for pos := end; pos > 0; {
		size := int64(block)
		if pos < size {
			size = pos
		}
		pos -= size
		chunk := make([]byte, size)
		if _, err := f.ReadAt(chunk, pos); err != nil && err != io.EOF {
			return nil, fmt.Errorf("read log %s: %w", path, err)
		}
		buf = append(chunk, buf...)
		// n lines need n newlines before the last line's start (+1 if the
		// file ends with a newline).
		need := n
		if len(buf) > 0 && buf[len(buf)-1] == '\n' {
			need++
		}
		if bytes.Count(buf, []byte{'\n'}) >= need {
			break
		}
	}
	return lastLines(buf, n), nil
}

func lastLines(b []byte, n int) []byte {
	if len(b) == 0 {
		return b
	}
	i := len(b)
	if b[i-1] == '\n' {
		i--
	}
	for ; n > 0; n-- {
		j := bytes.LastIndexByte(b[:i], '\n')
		if j < 0 {
			return b
		}
		i = j
	}
	return b[i+1:]
}
