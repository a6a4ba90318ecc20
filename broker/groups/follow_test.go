package groups

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/storage"
)

// memLog is a log in memory: the writer's store appends to it, the
// follower's applies from it (as the cluster package does over JetStream).
type memLog struct {
	mu      sync.Mutex
	effects [][]byte
}

func (l *memLog) Append(_ context.Context, prev uint64, effect []byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev != uint64(len(l.effects)) {
		return 0, fmt.Errorf("at %d, not %d: %w", len(l.effects), prev, storage.ErrFenced)
	}
	l.effects = append(l.effects, append([]byte(nil), effect...))
	return uint64(len(l.effects)), nil
}

// follow applies to st what it has not applied yet, failing if that does
// not end within 5 s (an apply waiting for a group's lock would hang).
func (l *memLog) follow(t *testing.T, st *storage.Store) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		l.mu.Lock()
		effects := slices.Clone(l.effects)
		l.mu.Unlock()
		for pos := st.Applied() + 1; pos <= uint64(len(effects)); pos++ {
			if err := st.Apply(pos, effects[pos-1]); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("applying the log did not end within 5s")
	}
}

// loggedPair is a writer Service and a follower Service whose stores
// share a log; the follower's store tells its Service what it applies.
func loggedPair(t *testing.T) (w, f *testService, log *memLog) {
	t.Helper()
	log = &memLog{}
	cfg := config.Default()
	open := func(onApply func(storage.Applied)) *testService {
		return serviceOn(t, cfg, storage.Options{Dir: t.TempDir(), Log: log, OnApply: onApply})
	}
	w = open(nil)
	w.store.SetWriter(true)
	var fs *Service
	f = open(func(a storage.Applied) { fs.Applied(a) })
	fs = f.Service
	return w, f, log
}

// A follower's loaded group takes the changes it applies in place (same
// state object, so live-room counters and timers stay); one whose lock a
// reader holds is dropped instead, never waited for: the reader keeps its
// view, the next lookup loads the new one, and a removed member's
// subscriptions end at once either way.
func TestFollow_LoadedGroupsFollowTheLog(t *testing.T) {
	w, f, log := loggedPair(t)
	ctx := context.Background()
	gid := w.create(t, CreateRequest{Type: "Public", Name: "g", Owner_Account: "alice",
		MemberList: []InitialMember{{Member_Account: "bob"}, {Member_Account: "carol"}}})
	log.follow(t, f.store)
	if !f.CanRead("bob", gid) || f.CanRead("dave", gid) {
		t.Fatal("the follower's first view of the group")
	}
	loaded := f.reg.loaded[gid]

	// In place: a mute and a new member.
	mute := int64(600)
	if _, err := w.Mute(ctx, w.admin(), &MuteRequest{GroupId: gid, Members_Account: []string{"carol"}, MuteTime: &mute}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Invite(ctx, w.admin(), &InviteRequest{GroupId: gid, MemberList: []struct{ Member_Account string }{{Member_Account: "dave"}}}); err != nil {
		t.Fatal(err)
	}
	log.follow(t, f.store)
	if f.reg.loaded[gid] != loaded || !f.CanRead("dave", gid) || loaded.members["carol"].MuteUntil <= time.Now().Unix() {
		t.Fatalf("after a mute and an invite: same state %v, dave reads %v, carol %+v",
			f.reg.loaded[gid] == loaded, f.CanRead("dave", gid), loaded.members["carol"])
	}

	// A reader holds the group's lock while bob is kicked.
	held, err := f.lock(gid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Kick(ctx, w.admin(), &KickRequest{GroupId: gid, MemberToDel_Account: []string{"bob"}}); err != nil {
		t.Fatal(err)
	}
	log.follow(t, f.store)
	if held.role("bob") == "" {
		t.Fatal("the reader's view changed under its lock")
	}
	held.op.Unlock()
	if f.CanRead("bob", gid) || !f.CanRead("dave", gid) || f.reg.loaded[gid] == held {
		t.Fatalf("after the kick: bob reads %v, dave reads %v, same state %v", f.CanRead("bob", gid), f.CanRead("dave", gid), f.reg.loaded[gid] == held)
	}
	if got := f.conns.local; !slices.Equal(got, []string{gid}) || len(f.conns.dropped) != 0 {
		t.Fatalf("subscriptions dropped for %v (this node), %v (every node), want bob's in %s on this node", got, f.conns.dropped, gid)
	}

	// In place again: dave is kicked.
	if _, err := w.Kick(ctx, w.admin(), &KickRequest{GroupId: gid, MemberToDel_Account: []string{"dave"}}); err != nil {
		t.Fatal(err)
	}
	log.follow(t, f.store)
	if f.CanRead("dave", gid) || len(f.conns.local) != 2 {
		t.Fatalf("dave kicked: reads %v, drops %v", f.CanRead("dave", gid), f.conns.local)
	}
	// Destroyed while a reader holds the lock: every subscription ends.
	if held, err = f.lock(gid); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Destroy(ctx, w.admin(), &GroupRequest{GroupId: gid}); err != nil {
		t.Fatal(err)
	}
	log.follow(t, f.store)
	held.op.Unlock()
	if f.CanRead("carol", gid) || len(f.conns.local) != 3 || len(f.conns.dropped) != 0 || f.reg.loaded[gid] != nil {
		t.Fatalf("destroyed: carol reads %v, drops %v, loaded %v", f.CanRead("carol", gid), f.conns.local, f.reg.loaded[gid] != nil)
	}
}

// LastMsgTime, which the writer keeps in memory between profile writes,
// follows the group messages a follower applies: the app admin's (which
// change no member record) and imported ones alike.
func TestFollow_LastMsgTime(t *testing.T) {
	w, f, log := loggedPair(t)
	ctx := context.Background()
	gid := w.create(t, CreateRequest{Type: "Public", Name: "g", Owner_Account: "alice"})
	log.follow(t, f.store)
	lastMsgTime := func(s *testService) int64 {
		g, err := s.existing(gid)
		if err != nil {
			t.Fatal(err)
		}
		return s.view(g).LastMsgTime
	}
	if lastMsgTime(f) != 0 {
		t.Fatal("LastMsgTime of a new group")
	}
	later := time.Now().Unix() + 100
	if _, err := w.ImportMsgs(ctx, gid, false, []ImportedMsg{{From_Account: "alice", SendTime: later, Random: 1,
		MsgBody: []byte(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"old"}}]`)}}); err != nil {
		t.Fatal(err)
	}
	log.follow(t, f.store)
	if w, f := lastMsgTime(w), lastMsgTime(f); w != later || f != w {
		t.Fatalf("after an import: writer %d, follower %d, want %d", w, f, later)
	}
	gid = w.create(t, CreateRequest{Type: "Public", Name: "g2", Owner_Account: "alice"}) // lastMsgTime's group from here on
	log.follow(t, f.store)
	lastMsgTime(f) // loaded on the follower before the message
	if _, err := w.Send(ctx, w.Service.admin, gid, []byte(`{"MsgRandom":7,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]}`)); err != nil {
		t.Fatal(err)
	}
	log.follow(t, f.store)
	if w, f := lastMsgTime(w), lastMsgTime(f); w == 0 || f != w {
		t.Fatalf("after the admin's message: writer %d, follower %d", w, f)
	}
}
