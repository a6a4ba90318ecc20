package stackpool

import (
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/imbroker/imbroker/internal/tasks"
)

// TestRunReusesWorkers: calls one after another run on one worker, and
// none of them on the caller's goroutine.
func TestRunReusesWorkers(t *testing.T) {
	defer goleak.VerifyNone(t)
	owner := tasks.New()
	defer owner.Stop()
	p := New(owner, 4)
	for i := range 100 {
		ran := false
		p.Run(func() { ran = true })
		if !ran {
			t.Fatalf("call %d did not run before Run returned", i)
		}
	}
	if n := p.Workers(); n != 1 {
		t.Fatalf("%d workers for calls one after another, want 1", n)
	}
}

// TestRunNeverWaitsForAWorker: with every worker busy (blocked until the
// last call starts), further calls run at once on goroutines of their own,
// and the pool stays at its size.
func TestRunNeverWaitsForAWorker(t *testing.T) {
	defer goleak.VerifyNone(t)
	owner := tasks.New()
	defer owner.Stop()
	const size, calls = 3, 10
	p := New(owner, size)
	var started sync.WaitGroup
	started.Add(calls)
	release := make(chan struct{})
	var done sync.WaitGroup
	for range calls {
		done.Add(1)
		go func() {
			defer done.Done()
			p.Run(func() {
				started.Done()
				<-release
			})
		}()
	}
	started.Wait() // every call is running at once: none waited for a worker
	if n := p.Workers(); n != size {
		t.Fatalf("%d workers, want %d", n, size)
	}
	close(release)
	done.Wait()
}

// TestRunAfterStop: once the owner stopped, the workers are gone and a call
// still runs (on its own goroutine).
func TestRunAfterStop(t *testing.T) {
	defer goleak.VerifyNone(t)
	owner := tasks.New()
	p := New(owner, 2)
	p.Run(func() {})
	owner.Stop()
	if n := p.Workers(); n != 0 {
		t.Fatalf("%d workers after Stop", n)
	}
	ran := false
	p.Run(func() { ran = true })
	if !ran {
		t.Fatal("a call after Stop did not run")
	}
}

// TestNoPool: size 0 or no spawner runs each call on its own goroutine.
func TestNoPool(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, p := range []*Pool{New(nil, 8), New(tasks.New(), 0)} {
		ran := false
		p.Run(func() { ran = true })
		if !ran || p.Workers() != 0 {
			t.Fatalf("ran %v, %d workers", ran, p.Workers())
		}
	}
}
