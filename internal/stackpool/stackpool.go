// Package stackpool runs calls that need a deep stack on a few long-lived
// goroutines, so that the caller's own stack stays small.
//
// Why: a login (UserSig inflate, JSON, HMAC, the account's store reads and
// writes) needs more stack than mochi's read goroutine of a connection
// rests on (16 KB); run there it would grow that stack for the life of the
// connection. Run on a goroutine of its own per login, the goroutine ends
// and the runtime hands its g to the next `go` statement with the
// adaptive starting stack size (8 KB in a broker full of connections)
// instead of the 2 KB a new g gets: mochi's WriteLoop goroutines, which
// need under 4 KB, then keep 8 KB each. Workers that stay alive leave no
// dead goroutines behind a burst of logins.
package stackpool

import (
	"context"
	"sync"
	"sync/atomic"
)

// Spawner starts an owned goroutine (internal/tasks.Owner): fn's context
// ends at shutdown. It reports false once shutdown has begun.
type Spawner interface {
	Spawn(fn func(ctx context.Context)) bool
}

// Pool runs calls on up to Max worker goroutines, started as they are
// needed and kept until the Spawner stops them.
type Pool struct {
	spawner Spawner
	max     int32
	workers atomic.Int32
	idle    atomic.Int32 // workers waiting for a job, less those a caller claimed
	jobs    chan *job    // unbuffered: a claimed worker takes the job
}

type job struct {
	f    func()
	done chan struct{}
}

var jobs = sync.Pool{New: func() any { return &job{done: make(chan struct{}, 1)} }}

// New returns a pool of at most max workers started through s. A nil s or
// max <= 0 gives a pool whose Run starts a goroutine per call.
func New(s Spawner, max int) *Pool {
	if s == nil || max <= 0 {
		max = 0
	}
	return &Pool{spawner: s, max: int32(max), jobs: make(chan *job)}
}

// Workers reports how many workers exist.
func (p *Pool) Workers() int { return int(p.workers.Load()) }

// Run calls f on an idle worker, else on a new worker while there are
// fewer than Max, else (all busy, or shutting down) on a goroutine of its
// own, and returns once f has returned. It never waits for a worker to
// become free: a login that waits for a commit does not hold up others.
func (p *Pool) Run(f func()) {
	j := jobs.Get().(*job)
	j.f = f
	switch {
	case p.claimIdle():
		p.jobs <- j // the claimed worker is at, or on its way to, its receive
	case !p.start(j):
		go j.run()
	}
	<-j.done
	j.f = nil
	jobs.Put(j)
}

// start starts a worker whose first job is j, if the pool may grow.
func (p *Pool) start(j *job) bool {
	if p.workers.Add(1) > p.max {
		p.workers.Add(-1)
		return false
	}
	if !p.spawner.Spawn(func(ctx context.Context) { p.work(ctx, j) }) {
		p.workers.Add(-1)
		return false
	}
	return true
}

// claimIdle takes one idle worker for a job, if there is one.
func (p *Pool) claimIdle() bool {
	for {
		n := p.idle.Load()
		if n <= 0 {
			return false
		}
		if p.idle.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// work runs j, then every job handed to it, until ctx ends. A worker that
// was claimed before it could leave takes the claimer's job first.
func (p *Pool) work(ctx context.Context, j *job) {
	defer p.workers.Add(-1)
	for {
		// Idle before the caller learns its call is done, so that its next
		// Run (or anyone's) finds this worker rather than starting another.
		j.f()
		p.idle.Add(1)
		j.done <- struct{}{}
		select {
		case j = <-p.jobs:
		case <-ctx.Done():
			if p.claimIdle() {
				return
			}
			j = <-p.jobs
		}
	}
}

func (j *job) run() {
	j.f()
	j.done <- struct{}{}
}
