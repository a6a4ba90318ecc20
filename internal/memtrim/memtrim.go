// Package memtrim gives memory back to the OS after a burst of logins.
//
// A login allocates ~14 kB, of which ~9 kB is garbage, and grows the
// goroutine stacks it runs on. During a burst of thousands of logins the
// heap grows to the GC goal and the pages stay resident; stacks shrink only
// at a GC. With nothing allocating afterwards no GC comes for up to two
// minutes (the runtime's forced GC), so an idle broker keeps the burst's
// peak. Once logins and messages have been quiet for a while, one forced GC that also
// returns the freed pages (debug.FreeOSMemory) brings the process back to
// what its connections need.
//
// During the burst itself, a GC every GCEvery logins: Go's GC goal counts
// goroutine stacks (two per connection, ~300 MB at 15,000 connections), so
// late in a burst the heap grows by hundreds of MB of login garbage before
// the runtime collects, and every page of it is touched once and stays
// resident. Collected every few thousand logins, the garbage is reused
// instead (docs/benchmarks.md, "Round 7": -0.9 kB per connection at the
// last of 15,000 logins, for ~8 % more CPU during the burst).
package memtrim

import (
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Scheduler runs fn after d on a goroutine it owns (internal/tasks.Owner):
// a trim pending at shutdown is dropped, not leaked. It returns nil once it
// stopped.
type Scheduler interface {
	AfterFunc(d time.Duration, fn func()) *time.Timer
}

// Options configure New.
type Options struct {
	AfterLogins int64         // logins since the last trim before one is due; 0 disables trims
	Quiet       time.Duration // how long without a login before a due trim runs; 0 disables trims
	GCEvery     int64         // logins between two GCs while logins keep coming; 0 disables
	Interval    time.Duration // at least this long between two trims
	// Activity, if set, is a counter of traffic (messages received and
	// sent); a trim also waits until it stood still for Quiet, so it never
	// runs during message traffic. Read only when a check is due.
	Activity func() int64
	Tasks    Scheduler

	now  func() time.Time // tests: a fake clock
	trim func()           // tests: instead of debug.FreeOSMemory
	gc   func()           // tests: instead of runtime.GC
}

// Trimmer counts logins and trims once they go quiet. The zero Trimmer and
// a nil *Trimmer are disabled: Login does nothing.
type Trimmer struct {
	o Options

	logins    atomic.Int64 // since the last trim
	lastLogin atomic.Int64 // unix nanoseconds
	armed     atomic.Bool  // a check is scheduled
	activity  atomic.Int64 // Activity when the last check was scheduled
	trims     atomic.Int64

	sinceGC atomic.Int64 // logins since the last burst GC was started
	gcBusy  atomic.Bool  // a burst GC is scheduled or running
	gcs     atomic.Int64

	mu       sync.Mutex // one check at a time
	lastTrim time.Time
}

// New returns a Trimmer, or nil (disabled) when neither trims (AfterLogins
// and Quiet) nor burst GCs (GCEvery) are on.
func New(o Options) *Trimmer {
	if o.AfterLogins <= 0 || o.Quiet <= 0 {
		o.AfterLogins = 0
	}
	if (o.AfterLogins == 0 && o.GCEvery <= 0) || o.Tasks == nil {
		return nil
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.trim == nil {
		o.trim = debug.FreeOSMemory // a blocking GC, then every free page back to the OS
	}
	if o.gc == nil {
		o.gc = runtime.GC
	}
	return &Trimmer{o: o}
}

// Login counts one successful login. Cheap: a few atomic writes, a timer
// scheduled once per burst, and a GC started on another goroutine every
// GCEvery logins (never two at once; the login does not wait for it).
func (t *Trimmer) Login() {
	if t == nil {
		return
	}
	if t.o.GCEvery > 0 && t.sinceGC.Add(1) >= t.o.GCEvery && t.gcBusy.CompareAndSwap(false, true) {
		t.sinceGC.Store(0)
		if t.o.Tasks.AfterFunc(0, t.burstGC) == nil {
			t.gcBusy.Store(false) // shutting down
		}
	}
	if t.o.AfterLogins == 0 {
		return
	}
	t.lastLogin.Store(t.o.now().UnixNano())
	if t.logins.Add(1) >= t.o.AfterLogins && t.armed.CompareAndSwap(false, true) {
		t.activity.Store(t.activity0())
		if t.o.Tasks.AfterFunc(t.o.Quiet, t.check) == nil {
			t.armed.Store(false) // shutting down
		}
	}
}

func (t *Trimmer) burstGC() {
	t.o.gc()
	t.gcs.Add(1)
	t.gcBusy.Store(false)
}

// GCs reports how many burst GCs ran.
func (t *Trimmer) GCs() int64 {
	if t == nil {
		return 0
	}
	return t.gcs.Load()
}

// Trims reports how many trims ran.
func (t *Trimmer) Trims() int64 {
	if t == nil {
		return 0
	}
	return t.trims.Load()
}

// check runs when a trim may be due: it trims if logins have been quiet for
// Quiet (and Activity stood still since the last look) and the last trim
// is Interval ago; otherwise it looks again when
// that could first be true. Steady logins keep pushing it back, so it never
// runs while logins or messages keep coming.
func (t *Trimmer) check() {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.o.now()
	wait := t.o.Quiet - now.Sub(time.Unix(0, t.lastLogin.Load()))
	if a := t.activity0(); a != t.activity.Load() { // traffic since the last look
		t.activity.Store(a)
		wait = max(wait, t.o.Quiet)
	}
	if !t.lastTrim.IsZero() {
		wait = max(wait, t.o.Interval-now.Sub(t.lastTrim))
	}
	if wait > 0 {
		if t.o.Tasks.AfterFunc(wait, t.check) == nil {
			t.armed.Store(false)
		}
		return
	}
	t.logins.Store(0)
	t.armed.Store(false)
	t.o.trim()
	t.lastTrim = t.o.now()
	t.trims.Add(1)
}

func (t *Trimmer) activity0() int64 {
	if t.o.Activity == nil {
		return 0
	}
	return t.o.Activity()
}
