package groups

import (
	"context"
	"testing"
	"time"

	"github.com/imbroker/imbroker/broker/ops"
)

// TestPendingMemberTipIsDroppedWithItsTimer: a join in a busy live room is
// merged into a tip scheduled on the task owner (Timers); when the owner
// shuts down before the timer fires, the merged tip is dropped, never
// flushed, and once shutdown began nothing more is scheduled.
func TestPendingMemberTipIsDroppedWithItsTimer(t *testing.T) {
	ts := newTestService(t)
	ctx := context.Background()
	gid := ts.create(t, CreateRequest{Type: "AVChatRoom", Name: "room"})
	g, err := ts.load(gid)
	if err != nil || g == nil {
		t.Fatal(g, err)
	}
	// The room's tip budget is spent for the next hour: the next join is
	// merged into a tip whose timer cannot fire during the test.
	g.op.Lock()
	g.tips.next = time.Now().Add(time.Hour)
	g.op.Unlock()
	delivered := len(ts.conns.delivered)

	if _, err := ts.Join(ctx, ops.Actor{User: "ann"}, &JoinRequest{GroupId: gid}); err != nil {
		t.Fatal(err)
	}
	g.op.Lock()
	timer, pending := g.tips.timer, len(g.tips.pending)
	g.op.Unlock()
	if timer == nil || pending != 1 || ts.timers.scheduled() != 1 {
		t.Fatalf("after a join in a busy room: timer %v, %d pending changes, %d scheduled; want a scheduled flush of 1",
			timer, pending, ts.timers.scheduled())
	}
	if n := len(ts.conns.delivered); n != delivered {
		t.Fatalf("%d room events delivered at once, want the join merged into a later tip", n-delivered)
	}

	// Shutdown: the owner drops the timer (heldTimers never runs it) and
	// schedules nothing more.
	ts.timers.mu.Lock()
	ts.timers.closed = true
	ts.timers.mu.Unlock()
	g.op.Lock()
	g.tips.timer = nil // as if the flush had run into a shut-down owner
	g.op.Unlock()
	if _, err := ts.Join(ctx, ops.Actor{User: "bob"}, &JoinRequest{GroupId: gid}); err != nil {
		t.Fatal(err)
	}
	g.op.Lock()
	timer, pending = g.tips.timer, len(g.tips.pending)
	g.op.Unlock()
	if timer != nil || pending != 2 || ts.timers.scheduled() != 1 {
		t.Fatalf("after shutdown: timer %v, %d pending, %d scheduled; want nothing scheduled and both changes dropped unflushed",
			timer, pending, ts.timers.scheduled())
	}
}
