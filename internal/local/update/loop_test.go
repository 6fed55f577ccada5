package update_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/local/update"
)

// runs fakes the runtime's runs: each blocks until stopped or ended.
type runs struct {
	mu      sync.Mutex
	count   int
	end     chan error // a value ends the current run with that error
	started chan int   // receives each run's number
}

func newRuns() *runs { return &runs{end: make(chan error), started: make(chan int, 10)} }

func (r *runs) next() (func(context.Context) error, func()) {
	r.mu.Lock()
	r.count++
	n := r.count
	r.mu.Unlock()
	stop := make(chan struct{})
	var once sync.Once
	return func(ctx context.Context) error {
			r.started <- n
			select {
			case <-stop:
				return nil
			case err := <-r.end:
				return err
			}
		}, func() {
			once.Do(func() { close(stop) })
		}
}

func startLoop(t *testing.T) (*update.Loop, *runs, chan error, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	l, r := update.NewLoop(), newRuns()
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx, r.next) }()
	if n := <-r.started; n != 1 {
		t.Fatalf("first run is number %d", n)
	}
	return l, r, done, ctx
}

func TestLoopRunEndsOnItsOwn(t *testing.T) {
	_, r, done, _ := startLoop(t)
	boom := errors.New("crash loop")
	r.end <- boom
	if err := <-done; !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want the run's error", err)
	}
}

func TestLoopSuspendThenExit(t *testing.T) {
	l, r, done, ctx := startLoop(t)
	if err := l.Suspend(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned %v before the verdict", err)
	case <-time.After(50 * time.Millisecond):
	}
	l.Exit()
	if err := <-done; err != nil {
		t.Fatalf("Run after a handover = %v, want nil", err)
	}
	if r.count != 1 {
		t.Errorf("%d runs, want 1", r.count)
	}
}

func TestLoopSuspendThenResume(t *testing.T) {
	l, r, done, ctx := startLoop(t)
	if err := l.Suspend(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if n := <-r.started; n != 2 {
		t.Fatalf("resumed run is number %d, want 2", n)
	}
	// The resumed run can be suspended again, and ends normally too.
	if err := l.Suspend(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	<-r.started
	r.end <- nil
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if err := update.NewLoop().Suspend(ctx); err == nil {
		t.Error("Suspend without a run succeeded")
	}
}
