package memtrim

import (
	"testing"
	"time"

	"github.com/imbroker/imbroker/internal/tasks"
	"go.uber.org/goleak"
)

// fakeSched holds the scheduled checks; the test fires them by hand on a
// fake clock, so "quiet" and "steady" are exact, not timing-dependent.
type fakeSched struct {
	clock   time.Time
	pending []pendingCheck
}

type pendingCheck struct {
	at time.Time
	fn func()
}

func (f *fakeSched) AfterFunc(d time.Duration, fn func()) *time.Timer {
	f.pending = append(f.pending, pendingCheck{f.clock.Add(d), fn})
	return &time.Timer{}
}

// advance moves the clock by d and fires the checks due by then.
func (f *fakeSched) advance(d time.Duration) {
	f.clock = f.clock.Add(d)
	for {
		due := -1
		for i, p := range f.pending {
			if !p.at.After(f.clock) {
				due = i
				break
			}
		}
		if due < 0 {
			return
		}
		fn := f.pending[due].fn
		f.pending = append(f.pending[:due], f.pending[due+1:]...)
		fn()
	}
}

func newFake(after int64, quiet, interval time.Duration) (*Trimmer, *fakeSched, *int) {
	f := &fakeSched{clock: time.Unix(1000, 0)}
	n := new(int)
	t := New(Options{AfterLogins: after, Quiet: quiet, Interval: interval, Tasks: f,
		now: func() time.Time { return f.clock }, trim: func() { *n++ }})
	return t, f, n
}

func TestTrimAfterBurst(t *testing.T) {
	tr, f, n := newFake(100, time.Second, time.Minute)
	for range 100 {
		tr.Login()
	}
	f.advance(999 * time.Millisecond)
	if *n != 0 {
		t.Fatal("trimmed before the quiet period ended")
	}
	f.advance(time.Millisecond)
	if *n != 1 || tr.Trims() != 1 {
		t.Fatalf("trims %d, want 1 once logins were quiet for 1s", *n)
	}
	if len(f.pending) != 0 {
		t.Fatalf("%d checks still scheduled after the trim", len(f.pending))
	}
}

func TestNoTrimDuringSteadyLogins(t *testing.T) {
	tr, f, n := newFake(100, time.Second, time.Minute)
	// 10 logins a second for a minute: 600 logins, never a second's pause.
	for range 600 {
		tr.Login()
		f.advance(100 * time.Millisecond)
	}
	if *n != 0 {
		t.Fatalf("trimmed %d times while logins kept coming", *n)
	}
	if len(f.pending) != 1 {
		t.Fatalf("%d checks scheduled, want 1 (no pile-up)", len(f.pending))
	}
	f.advance(time.Second) // the logins stop
	if *n != 1 {
		t.Fatalf("trims %d after logins went quiet, want 1", *n)
	}
}

// Message traffic after the burst holds the trim back until it stops.
func TestNoTrimDuringTraffic(t *testing.T) {
	tr, f, n := newFake(10, time.Second, time.Minute)
	var msgs int64
	tr.o.Activity = func() int64 { return msgs }
	for range 10 {
		tr.Login()
	}
	for range 60 { // a minute of messages
		msgs += 1000
		f.advance(time.Second)
	}
	if *n != 0 {
		t.Fatalf("trimmed %d times during message traffic", *n)
	}
	f.advance(2 * time.Second) // traffic stopped: one look sees it still, the next trims
	if *n != 1 {
		t.Fatalf("trims %d after traffic stopped, want 1", *n)
	}
}

func TestTooFewLoginsNoTrim(t *testing.T) {
	tr, f, n := newFake(100, time.Second, time.Minute)
	for range 99 {
		tr.Login()
	}
	f.advance(time.Hour)
	if *n != 0 || len(f.pending) != 0 {
		t.Fatalf("trims %d, pending %d after 99 of 100 logins", *n, len(f.pending))
	}
}

func TestAtMostOncePerInterval(t *testing.T) {
	tr, f, n := newFake(10, time.Second, time.Minute)
	burst := func() {
		for range 10 {
			tr.Login()
		}
	}
	burst()
	f.advance(time.Second)
	burst() // a second burst right after the trim
	f.advance(2 * time.Second)
	if *n != 1 {
		t.Fatalf("trims %d within the interval, want 1", *n)
	}
	f.advance(time.Minute)
	if *n != 2 {
		t.Fatalf("trims %d once the interval passed, want 2", *n)
	}
}

func TestDisabled(t *testing.T) {
	if New(Options{AfterLogins: 0, Quiet: time.Second, Tasks: &fakeSched{}}) != nil ||
		New(Options{AfterLogins: 10, Quiet: 0, Tasks: &fakeSched{}}) != nil {
		t.Fatal("0 should disable")
	}
	var tr *Trimmer
	tr.Login() // must not panic
	if tr.Trims() != 0 {
		t.Fatal("nil trimmer trimmed")
	}
}

// With the real owner: a pending check is dropped at Stop, no goroutine or
// timer outlives it, and a real trim runs.
func TestOwnedByTasks(t *testing.T) {
	defer goleak.VerifyNone(t)
	own := tasks.New()
	done := make(chan struct{})
	tr := New(Options{AfterLogins: 1, Quiet: time.Millisecond, Interval: time.Hour, Tasks: own,
		trim: func() { close(done) }})
	tr.Login()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("no trim after the quiet period")
	}
	tr.Login() // due again, but the interval holds it back: a timer pending at Stop
	own.Stop()
	if tr.Trims() != 1 {
		t.Fatalf("trims %d, want 1", tr.Trims())
	}
}

// TestGCEveryLogins: one GC per GCEvery logins, started without the login
// waiting for it, and never a second while one is pending; trims stay off
// when only GCEvery is set.
func TestGCEveryLogins(t *testing.T) {
	f := &fakeSched{clock: time.Unix(1000, 0)}
	gcs, trims := 0, 0
	tr := New(Options{GCEvery: 100, Tasks: f, now: func() time.Time { return f.clock },
		trim: func() { trims++ }, gc: func() { gcs++ }})
	if tr == nil {
		t.Fatal("GCEvery alone gave a disabled Trimmer")
	}
	for range 99 {
		tr.Login()
	}
	if len(f.pending) != 0 {
		t.Fatalf("a GC scheduled after 99 logins")
	}
	tr.Login()
	if len(f.pending) != 1 || gcs != 0 {
		t.Fatalf("after 100 logins: %d scheduled, %d ran; want 1 scheduled, none run by Login", len(f.pending), gcs)
	}
	for range 300 { // the first GC has not run yet: no second one
		tr.Login()
	}
	if len(f.pending) != 1 {
		t.Fatalf("%d GCs scheduled while one was pending, want 1", len(f.pending))
	}
	f.advance(0)
	if gcs != 1 || tr.GCs() != 1 {
		t.Fatalf("%d GCs ran (counted %d), want 1", gcs, tr.GCs())
	}
	for range 100 {
		tr.Login()
	}
	f.advance(0)
	if gcs != 2 {
		t.Fatalf("%d GCs after 100 more logins, want 2", gcs)
	}
	f.advance(time.Hour)
	if trims != 0 {
		t.Fatalf("%d trims with trims off", trims)
	}
	if New(Options{Tasks: f}) != nil {
		t.Fatal("a Trimmer with trims and GCs off is not nil")
	}
}
