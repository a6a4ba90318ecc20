package storage

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestCommitInterval_SpacesOnlyBusyGroups: with Options.CommitInterval a
// lone writer's batches commit at once, one group each; once a group
// carried more than one batch, the next group waits for the interval
// gathering what arrives, commits at once when it reaches MaxBatch, and
// commits what it holds when the store closes. The interval here is an
// hour, so a batch that waited for it would never finish within the test.
func TestCommitInterval_SpacesOnlyBusyGroups(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Options{Dir: dir, Sync: true, MaxBatch: 3, CommitInterval: time.Hour})
	taken := make(chan struct{}, 16)   // the committer took a group's first batch
	waiting := make(chan struct{}, 16) // a group started waiting for the interval
	s.spacing = func() { waiting <- struct{}{} }
	var mu sync.Mutex
	var gate chan struct{} // non-nil: the committer waits on it after taking a first batch
	s.gathering = func() {
		taken <- struct{}{}
		mu.Lock()
		g := gate
		mu.Unlock()
		if g != nil {
			<-g
		}
	}
	n := 0
	submit := func() *Pending {
		t.Helper()
		n++
		p, err := s.Submit(context.Background(), Batch{Appends: []Append{{Stream: "u/a", Payload: []byte(fmt.Sprint("m", n))}}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	finished := func(what string, ps ...*Pending) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for _, p := range ps {
			done := make(chan error, 1)
			go func() { _, err := p.Wait(); done <- err }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
			case <-deadline:
				t.Fatalf("%s: not committed within 10s (waiting for the hour-long interval?)", what)
			}
		}
	}
	groups := func() uint64 { return s.Stats().Groups }

	// A lone writer: each batch alone, each committed at once.
	for range 3 {
		finished("a lone writer's batch", submit())
	}
	if g := groups(); g != 3 {
		t.Fatalf("%d groups for 3 lone batches, want 3", g)
	}

	// Two batches in one group (the committer held while the second queues).
	mu.Lock()
	gate = make(chan struct{})
	mu.Unlock()
	first := submit()
	<-taken
	second := submit()
	mu.Lock()
	close(gate)
	gate = nil
	mu.Unlock()
	finished("a group of two", first, second)
	if g := groups(); g != 4 {
		t.Fatalf("%d groups after a group of two, want 4", g)
	}

	// Busy now: the next group waits for the interval and gathers up to MaxBatch.
	if len(waiting) != 0 {
		t.Fatal("a lone writer's group waited for the interval")
	}
	spaced := submit()
	<-taken
	select {
	case <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("the group after a busy one did not wait for the interval")
	}
	if spaced.Done() {
		t.Fatal("a batch after a busy group committed without waiting for the interval")
	}
	more := []*Pending{submit(), submit()} // the group is full with these
	finished("a full spaced group", append([]*Pending{spaced}, more...)...)
	if g := groups(); g != 5 {
		t.Fatalf("%d groups after the spaced group, want 5: the three batches commit together", g)
	}

	// Closing does not wait for the interval: what was gathered is committed.
	last := submit()
	<-taken
	<-waiting
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the commit interval")
	}
	finished("a batch gathered when the store closed", last)
	reopened := openStore(t, Options{Dir: dir, Sync: true})
	if _, entries, err := reopened.Read("u/a", 0, 100); err != nil || len(entries) != n {
		t.Fatalf("after reopening: %d entries (%v), want all %d committed", len(entries), err, n)
	}
}
