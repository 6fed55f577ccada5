package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/second-inc/second-release/internal/local/procutil"
	"github.com/second-inc/second-release/internal/local/state"
)

// SweepStale stops children a dead run left behind. A recorded pid is
// signalled only when its command line is still the one we started: pids
// are reused, and the pid may now be someone else's process.
func SweepStale(ctx context.Context, log *slog.Logger, prev *state.State) (swept []string) {
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	for name, svc := range prev.Services {
		if svc.PID <= 0 || svc.PID == os.Getpid() || !OwnsPID(svc.PID, svc) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			grace := 5 * time.Second
			if name == ServiceMongo {
				grace = MongoGrace
			}
			log.Warn("stopping leftover child of a previous run", "service", name, "pid", svc.PID)
			_ = procutil.SignalGroup(svc.PID, syscall.SIGTERM)
			_ = procutil.SignalGroup(svc.PID, syscall.SIGCONT) // a stopped child acts on SIGTERM once continued
			gctx, cancel := context.WithTimeout(ctx, grace)
			defer cancel()
			if err := procutil.WaitGroupEmpty(gctx, svc.PID); err != nil {
				kctx, kcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer kcancel()
				_ = procutil.KillGroup(kctx, svc.PID)
			}
			mu.Lock()
			swept = append(swept, name)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return swept
}

// OwnsPID reports whether pid still runs the command recorded for svc:
// same program and every absolute-path argument (data dir, config, script)
// present. Next.js renames its process ("next-server"), so a node child
// whose title changed is accepted when its working directory matches.
func OwnsPID(pid int, svc state.Service) bool {
	if len(svc.Command) == 0 || !procutil.Alive(pid) {
		return false
	}
	args, err := procutil.CommandLine(pid)
	if err != nil || len(args) == 0 {
		return false
	}
	if filepath.Base(args[0]) != filepath.Base(svc.Command[0]) {
		if strings.HasPrefix(args[0], "next-server") && svc.Dir != "" {
			return cwdOf(pid) == svc.Dir
		}
		return false
	}
	have := map[string]bool{}
	for _, a := range args[1:] {
		have[a] = true
	}
	for _, a := range svc.Command[1:] {
		if filepath.IsAbs(a) && !have[a] {
			return false
		}
	}
	return true
}

// cwdOf returns a process's working directory where the OS shows it.
func cwdOf(pid int) string {
	if runtime.GOOS != "linux" {
		return ""
	}
	d, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
	if err != nil {
		return ""
	}
	return d
}

// errHolderExited: the lock holder went away while we waited for it.
var errHolderExited = errors.New("another second runtime exited while this one was starting; run the command again")

// alreadyRunning handles a held lock: wait (bounded) for the holder to be
// ready, then report its URL.
func (rt *Runtime) alreadyRunning(ctx context.Context) error {
	l := rt.opts.Layout
	wait := 3 * time.Minute
	if rt.opts.ReadyTimeout > 0 {
		wait = 4 * rt.opts.ReadyTimeout
	}
	deadline := time.Now().Add(wait)
	told := false
	for {
		st, _ := state.Read(l.StateFile())
		if st != nil && st.PID > 0 && procutil.Alive(st.PID) {
			if st.Phase == state.PhaseRunning && webHealthy(ctx, st) {
				return &AlreadyRunningError{URL: st.URL, PID: st.PID}
			}
			if !told && st.Phase == state.PhaseStarting {
				fmt.Fprintf(rt.opts.Out, "Second is already starting (pid %d); waiting for it…\n", st.PID)
				told = true
			}
		}
		if !state.Held(l.LockFile()) {
			return errHolderExited
		}
		if time.Now().After(deadline) {
			pid := state.Holder(l.LockFile())
			return fmt.Errorf("another second (pid %d) holds %s but is not healthy after %s: see `second logs` or stop it with `second stop`", pid, l.LockFile(), wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func webHealthy(ctx context.Context, st *state.State) bool {
	web, ok := st.Services[ServiceWeb]
	if !ok || web.Port == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(web.Port)+"/api/health", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
