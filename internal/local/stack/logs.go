package stack

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/local/logfile"
)

// LogServices are the services with a log, in the order `logs` shows them.
func LogServices() []string {
	return []string{ServiceSupervisor, ServiceMongo, ServiceRedis, ServiceWeb, ServiceWorker}
}

// LogsOptions configures Logs.
type LogsOptions struct {
	Layout  home.Layout
	Service string // empty: every service
	Lines   int    // last N lines (0: default 100; negative is refused)
	Follow  bool
	Out     io.Writer
	// Poll is how often a followed file is checked (default 250 ms).
	Poll time.Duration
}

// Logs prints the tail of one or every service's log and, with Follow,
// keeps printing new lines (across rotations) until ctx ends.
func Logs(ctx context.Context, o LogsOptions) error {
	if o.Lines < 0 {
		return fmt.Errorf("--lines (-n) must be a positive number of lines, not %d", o.Lines)
	}
	if o.Lines == 0 {
		o.Lines = 100
	}
	if st, err := os.Stat(o.Layout.Root); err != nil || !st.IsDir() {
		return fmt.Errorf("no Second home at %s (nothing has run there): check --home or $SECOND_HOME", o.Layout.Root)
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	services := LogServices()
	if o.Service != "" {
		if !validService(o.Service) {
			return fmt.Errorf("unknown service %q: choose one of %s", o.Service, strings.Join(LogServices(), ", "))
		}
		services = []string{o.Service}
	}
	var out sync.Mutex
	prefix := func(s string) string {
		if len(services) == 1 {
			return ""
		}
		return "[" + s + "] "
	}
	for _, s := range services {
		tail, err := logfile.Tail(o.Layout.Log(s), o.Lines)
		if err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("read %s log: %w", s, err)
		}
		if o.Service == "" && !o.Follow {
			if tail == "" {
				continue
			}
			fmt.Fprintf(o.Out, "==> %s (%s) <==\n", s, o.Layout.Log(s))
		}
		writeLines(o.Out, prefix(s), tail)
	}
	if !o.Follow {
		return nil
	}
	var wg sync.WaitGroup
	for _, s := range services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			follow(ctx, o.Layout.Log(s), o.Poll, func(line string) {
				out.Lock()
				defer out.Unlock()
				fmt.Fprintf(o.Out, "%s%s\n", prefix(s), line)
			})
		}()
	}
	wg.Wait()
	return nil
}

func validService(s string) bool {
	for _, v := range LogServices() {
		if v == s {
			return true
		}
	}
	return false
}

func writeLines(w io.Writer, prefix, text string) {
	if text == "" {
		return
	}
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		fmt.Fprintf(w, "%s%s\n", prefix, line)
	}
}

// follow emits complete lines appended to path after the call, reopening
// the file when it is rotated (renamed away) or truncated.
func follow(ctx context.Context, path string, poll time.Duration, emit func(string)) {
	var (
		f       *os.File
		r       *bufio.Reader
		partial string
	)
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	open := func(atEnd bool) {
		nf, err := os.Open(path)
		if err != nil {
			return
		}
		if atEnd {
			if _, err := nf.Seek(0, io.SeekEnd); err != nil {
				nf.Close()
				return
			}
		}
		f, r, partial = nf, bufio.NewReader(nf), ""
	}
	open(true)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if f != nil {
			for {
				chunk, err := r.ReadString('\n')
				if err != nil {
					partial += chunk
					break
				}
				emit(strings.TrimSuffix(partial+chunk, "\n"))
				partial = ""
			}
			// Rotated (a new file at path) or truncated: start over at its top.
			cur, err1 := f.Stat()
			now, err2 := os.Stat(path)
			pos, _ := f.Seek(0, io.SeekCurrent)
			if err2 == nil && (err1 != nil || !os.SameFile(cur, now) || now.Size() < pos) {
				f.Close()
				f = nil
				open(false)
				continue
			}
		} else {
			open(false)
			if f != nil {
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
