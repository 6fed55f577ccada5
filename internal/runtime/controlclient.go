package runtime

import (
	"context"
	"fmt"
	"os"

	"github.com/second-inc/second-release/internal/control/client"
	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/secrets"
)

// SecretFiles lists the secret files of a home.
func SecretFiles(l home.Layout) []string {
	var out []string
	for _, s := range secrets.Specs() {
		out = append(out, l.Secret(s.File))
	}
	return out
}

func controlClient(l home.Layout) (*client.Client, error) {
	c, err := client.Open(l)
	if err != nil {
		return nil, err
	}
	if tok := os.Getenv("SECOND_LOCAL_CLI_TOKEN"); tok != "" {
		c.Token = tok // the same override the runtime honours
	}
	return c, nil
}

// ControlStatus asks the control server for the status; an error means
// the caller should fall back to ReadStatus.
func ControlStatus(ctx context.Context, l home.Layout) (Status, error) {
	c, err := controlClient(l)
	if err != nil {
		return Status{}, err
	}
	cs, err := c.Status(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("control server status: %w", err)
	}
	st := Status{Running: cs.Running, Phase: cs.Phase, PID: cs.PID, Version: cs.Version, URL: cs.URL, Home: cs.Home,
		StartedAt: cs.StartedAt, Services: []ServiceStatus{}}
	if st.Home == "" {
		st.Home = l.Root
	}
	for _, s := range cs.Services {
		st.Services = append(st.Services, ServiceStatus{Name: s.Name, State: s.State, PID: s.PID, Port: s.Port,
			Restarts: s.Restarts, StartedAt: s.StartedAt, UptimeSeconds: s.UptimeSeconds})
	}
	return st, nil
}

// ControlStop asks the control server to stop the runtime; it returns once
// the request is accepted, not when the runtime has stopped.
func ControlStop(ctx context.Context, l home.Layout) error {
	c, err := controlClient(l)
	if err != nil {
		return err
	}
	return c.Stop(ctx)
}
