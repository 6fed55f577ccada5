package supervise

import (
	"context"
	"errors"
)

// Temporary bodies so the API compiles while the runner is written.

type supervisor struct{ done chan struct{} }

func newSupervisor(o Options) *supervisor { return &supervisor{done: make(chan struct{})} }
func (s *supervisor) start(ctx context.Context, groups [][]*Process) error {
	return errors.New("supervise: not implemented yet")
}
func (s *supervisor) status() []ServiceStatus        { return nil }
func (s *supervisor) err() error                     { return nil }
func (s *supervisor) stop(ctx context.Context) error { return nil }

func (e *Error) Error() string { return e.Service + ": " + e.Op + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }
