package update

import (
	"context"
	"errors"
	"sync"
)

// Loop is the Target of a runtime that runs in the foreground of its
// process (`second start`): Run runs one runtime after another — the first,
// then the same version again after a failed update — and returns when a
// run ends for any reason other than an update, or after a handover.
type Loop struct {
	mu         sync.Mutex
	stop       func()        // asks the current run to stop; nil between runs
	suspending bool          // the current run is stopping for an update
	returned   chan struct{} // closed when the current run has returned
	decision   chan bool     // after a suspend: true resumes, false exits
	started    chan struct{} // closed when the next run has been started
}

// NewLoop returns a Loop; pass it as Options.Target and call Run.
func NewLoop() *Loop {
	return &Loop{decision: make(chan bool, 1)}
}

// Run calls next for every run: next builds the runtime and returns its run
// function and a function that asks it to stop.
func (l *Loop) Run(ctx context.Context, next func() (run func(context.Context) error, stop func())) error {
	for {
		run, stop := next()
		returned := make(chan struct{})
		l.mu.Lock()
		l.stop, l.suspending, l.returned = stop, false, returned
		if l.started != nil {
			close(l.started)
			l.started = nil
		}
		l.mu.Unlock()

		err := run(ctx)

		l.mu.Lock()
		suspended := l.suspending
		l.stop = nil
		l.mu.Unlock()
		close(returned)
		if !suspended {
			return err
		}
		// Stopped for an update: the home is free. Wait for the verdict.
		select {
		case resume := <-l.decision:
			if !resume {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// Suspend stops the current run and waits until it has returned (its lock
// released, its control server closed).
func (l *Loop) Suspend(ctx context.Context) error {
	l.mu.Lock()
	stop, returned := l.stop, l.returned
	if stop == nil {
		l.mu.Unlock()
		return errors.New("no runtime is running")
	}
	l.suspending = true
	l.mu.Unlock()
	stop()
	select {
	case <-returned:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Resume starts the same version again and waits until its run has begun.
func (l *Loop) Resume(ctx context.Context) error {
	started := make(chan struct{})
	l.mu.Lock()
	l.started = started
	l.mu.Unlock()
	select {
	case l.decision <- true:
	default:
		return errors.New("resume: a decision is already pending")
	}
	select {
	case <-started:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Exit makes Run return: the new version runs now.
func (l *Loop) Exit() {
	select {
	case l.decision <- false:
	default:
	}
}
