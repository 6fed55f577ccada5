package main

import (
	"context"

	"github.com/second-inc/second-release/internal/runtime"
)

// controlStarter returns the hook that starts the local control server
// (contract §7) inside a run, or nil while internal/control does not exist.
// Once it does, this is the one place that wires it in.
func controlStarter() func(ctx context.Context, rt *runtime.Runtime) (*runtime.Control, error) {
	return nil
}
