package stack

import (
	"context"
	"time"

	"github.com/second-inc/second-release/internal/local/probe"
)

// brisk polls a probe every `every` for up to `window` within one Check.
// The supervisor checks readiness on a 25 ms tick; children become ready at
// any moment, so on average half a tick per start stage is lost. Checking
// briskly inside the tick notices readiness within a few milliseconds —
// start-to-ready is what users feel, and the extra checks are cheap
// loopback connects.
type brisk struct {
	p             probe.Probe
	window, every time.Duration
}

func briskly(p probe.Probe) probe.Probe {
	return brisk{p: p, window: 20 * time.Millisecond, every: 2 * time.Millisecond}
}

func (b brisk) Check(ctx context.Context) error {
	deadline := time.Now().Add(b.window)
	for {
		err := b.p.Check(ctx)
		if err == nil || probe.IsPermanent(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(b.every):
		}
	}
}
