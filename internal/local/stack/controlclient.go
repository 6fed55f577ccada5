package stack

import (
	"context"
	"fmt"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/local/control/client"
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

// ControlStatus asks the control server for the status; an error means
// the caller should fall back to ReadStatus.
func ControlStatus(ctx context.Context, l home.Layout) (runstatus.Status, error) {
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
	c, err := client.Open(l)
	if err != nil {
		return err
	}
	return c.Stop(ctx)
}
