package stack

import (
	"context"
	"fmt"
	"time"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/local/control/client"
	"github.com/second-inc/second-release/internal/local/procutil"
	"github.com/second-inc/second-release/internal/local/runstatus"
	"github.com/second-inc/second-release/internal/local/secrets"
)

// SecretFiles lists the secret files of a home.
func SecretFiles(l home.Layout) []string {
	var out []string
	for _, s := range secrets.Specs() {
		out = append(out, l.Secret(s.File))
	}
	return out
}

// ControlWait bounds one request to the control server from `status` and
// `stop`: a supervisor that is stopped or wedged must not hold them up.
const ControlWait = 1500 * time.Millisecond

// Status is what `second status` shows: the control server's answer, or
// when it does not answer within ControlWait, runtime.json and the lock,
// marked not responding when a supervisor holds the lock all the same.
func Status(ctx context.Context, l home.Layout) (runstatus.Status, error) {
	st, cerr := ControlStatus(ctx, l)
	if cerr == nil {
		return st, nil
	}
	st, err := ReadStatus(l)
	if err != nil {
		return st, err
	}
	if st.Running {
		if _, ierr := client.ReadInfo(l.ControlFile()); ierr == nil {
			st.NotResponding = true
			st.Suspended = procutil.Stopped(st.PID)
		}
	}
	return st, nil
}

// ControlStatus asks the control server for the status; an error means
// the caller should fall back to ReadStatus.
func ControlStatus(ctx context.Context, l home.Layout) (runstatus.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, ControlWait)
	defer cancel()
	c, err := client.Open(l)
	if err != nil {
		return runstatus.Status{}, err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return runstatus.Status{}, fmt.Errorf("control server status: %w", err)
	}
	// The server's own fields stay out, so `second status --json` prints
	// the same fields whether or not a control server answered.
	st.PackageName, st.ControlURL = "", ""
	if st.Home == "" {
		st.Home = l.Root
	}
	if st.Services == nil {
		st.Services = []runstatus.Service{}
	}
	return *st, nil
}

// ControlStop asks the control server to stop the runtime; it returns once
// the request is accepted, not when the runtime has stopped.
func ControlStop(ctx context.Context, l home.Layout) error {
	ctx, cancel := context.WithTimeout(ctx, ControlWait)
	defer cancel()
	c, err := client.Open(l)
	if err != nil {
		return err
	}
	return c.Stop(ctx)
}
