package stats

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/imbroker/imbroker/storage"
)

// node is a fake node: its counters and a settable clock.
type node struct {
	mu  sync.Mutex
	s   Sample
	now time.Time
}

func (n *node) sample() (Sample, error) { n.mu.Lock(); defer n.mu.Unlock(); return n.s, nil }
func (n *node) clock() time.Time        { n.mu.Lock(); defer n.mu.Unlock(); return n.now }
func (n *node) set(f func(*node))       { n.mu.Lock(); defer n.mu.Unlock(); f(n) }

func open(t *testing.T, dir string) *storage.Store {
	t.Helper()
	st, err := storage.Open(storage.Options{Dir: dir, Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func start(t *testing.T, st *storage.Store, n *node) *Collector {
	t.Helper()
	c, err := Start(Options{Store: st, Sample: n.sample, Interval: time.Hour, KeepDays: 90, Now: n.clock})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func day(t *testing.T, c *Collector, n int) Day {
	t.Helper()
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	days, err := c.Days(n)
	if err != nil || len(days) != n {
		t.Fatalf("Days(%d): %v %v", n, days, err)
	}
	return days[0]
}

// TestCollectorDurable: a day's figures survive a restart (DAU and active
// groups are not counted twice, message counters start again from the new
// process's zero), the day closes at UTC midnight, and records older than
// KeepDays are deleted.
func TestCollectorDurable(t *testing.T) {
	dir := t.TempDir()
	d1 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	n := &node{now: d1, s: Sample{Accounts: 10, Groups: 2}}
	st := open(t, dir)
	c := start(t, st, n)
	n.set(func(n *node) {
		n.s = Sample{C2CSent: 5, GroupSent: 2, Accounts: 13, Groups: 3, OnlineUsers: 2, OnlineConns: 3}
	})
	c.Seen("alice")
	c.Seen("bob")
	c.Seen("alice")
	c.GroupActive("g1")
	want := Day{Date: "20260301", NewAccounts: 3, TotalAccounts: 13, ActiveUsers: 2, PeakOnlineUsers: 2, PeakOnlineConns: 3,
		C2CMsgs: 5, GroupMsgs: 2, GroupsCreated: 1, GroupsActive: 1, TotalGroups: 3}
	if got := day(t, c, 1); got != want {
		t.Fatalf("day 1:\n got %+v\nwant %+v", got, want)
	}
	c.Stop()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// A new process: counters since start are 0 again.
	st = open(t, dir)
	defer st.Close()
	n.set(func(n *node) { n.s = Sample{Accounts: 13, Groups: 3}; n.now = d1.Add(time.Hour) })
	c = start(t, st, n)
	defer c.Stop()
	c.Seen("alice")
	c.Seen("carol")
	c.GroupActive("g1")
	n.set(func(n *node) { n.s.C2CSent = 1 })
	want.ActiveUsers, want.C2CMsgs = 3, 6
	if got := day(t, c, 1); got != want {
		t.Fatalf("after restart:\n got %+v\nwant %+v", got, want)
	}

	// Midnight: day 1 is closed as last sampled, day 2 starts empty but
	// for its totals.
	n.set(func(n *node) { n.now = time.Date(2026, 3, 2, 0, 0, 1, 0, time.UTC); n.s.Accounts = 14 })
	c.Seen("dave")
	c.Seen("alice")
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	days, err := c.Days(2)
	if err != nil || days[0].Date != "20260301" || days[0].C2CMsgs != 6 || days[1].Date != "20260302" ||
		days[1].NewAccounts != 1 || days[1].TotalAccounts != 14 || days[1].C2CMsgs != 0 {
		t.Fatalf("rollover: %+v %v", days, err)
	}
	// dave, seen before the new day's first sample, counted on the old day
	// (figures are exact to within one stats.interval); erin on the new one.
	c.Seen("erin")
	if got := day(t, c, 1); got.ActiveUsers != 1 {
		t.Fatalf("day 2 active users %d, want 1", got.ActiveUsers)
	}

	// KeepDays later day 1 is gone; its active set went at the first rollover.
	n.set(func(n *node) { n.now = d1.AddDate(0, 0, 90) })
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if days, _ := c.Days(91); days[0].Date != "20260301" || days[0].C2CMsgs != 0 || days[1].Date != "20260302" || days[1].TotalAccounts != 14 {
		t.Fatalf("prune: %+v %+v", days[0], days[1])
	}
	for _, prefix := range []string{userPrefix + "20260301/", groupPrefix + "20260301/", dayPrefix + "20260301"} {
		if kvs, err := st.Scan(prefix, "", 10); err != nil || len(kvs) != 0 {
			t.Fatalf("%s left: %v %v", prefix, kvs, err)
		}
	}
}
