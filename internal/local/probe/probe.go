// Package probe holds readiness checks as plain values (HTTP 200, TCP
// connect, Redis PING) that the supervisor polls until a service is ready.
package probe

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Probe checks once whether a service is ready. It returns nil when ready
// and an error saying why not otherwise; wrap the error with Permanent when
// waiting longer cannot help (a wrong password, say).
type Probe interface {
	Check(ctx context.Context) error
}

// Func adapts a function to Probe.
type Func func(ctx context.Context) error

// Check calls f.
func (f Func) Check(ctx context.Context) error { return f(ctx) }

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that polling again will not fix, so Wait
// returns it at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err (or an error it wraps) was marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// DefaultInterval is how often Wait polls when no interval is given: short,
// because start-to-ready latency is what users feel.
const DefaultInterval = 10 * time.Millisecond

// Wait polls p every interval until it reports ready, returns a permanent
// error, or ctx ends; then the error names the last reason it was not ready.
func Wait(ctx context.Context, p Probe, interval time.Duration) error {
	if interval <= 0 {
		interval = DefaultInterval
	}
	t := time.NewTimer(0)
	defer t.Stop()
	var last error
	for {
		select {
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			return fmt.Errorf("not ready: %w (%v)", last, context.Cause(ctx))
		case <-t.C:
		}
		last = p.Check(ctx)
		if last == nil {
			return nil
		}
		if IsPermanent(last) {
			return last
		}
		t.Reset(interval)
	}
}
