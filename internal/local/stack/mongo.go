package stack

import (
	"context"
	"log/slog"
	"time"

	"github.com/second-inc/second-release/internal/local/mongoready"
	"github.com/second-inc/second-release/internal/local/probe"
	"github.com/second-inc/second-release/internal/local/supervise"
)

// mongoHooks adds what is special about mongod, all from mongoready:
// readiness by ping, replica-set initiation or repair before the service
// counts as ready, fail-fast on fatal log lines, and the shutdown command.
func mongoHooks(p *supervise.Process, port int, log *slog.Logger) {
	p.Ready = briskly(probe.Func(func(ctx context.Context) error { return mongoready.Ping(ctx, port) }))
	p.AfterReady = func(ctx context.Context) error {
		// Poll briskly: start-to-ready is what users feel.
		return mongoready.Ensure(ctx, mongoready.Options{Port: port, Log: log, Poll: 10 * time.Millisecond})
	}
	p.FatalLine = mongoready.FatalLine
	p.Stop.Before = func(ctx context.Context) error { return mongoready.Shutdown(ctx, port) }
}
