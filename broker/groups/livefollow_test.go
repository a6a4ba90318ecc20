package groups

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/storage"
)

// A live room's numbering on a node that does not own it follows the
// events the owner relays (FollowLive), loaded or not; a node that starts
// takes the others' heads (LiveHeads -> FollowHeads); so NextMsgSeq and
// LastMsgTime answer as on the owner, and a node that becomes the owner
// goes on from there.
func TestFollowLive(t *testing.T) {
	w, f, log := loggedPair(t)
	ctx := context.Background()
	gid := w.create(t, CreateRequest{Type: "AVChatRoom", Name: "live", Owner_Account: "alice"})
	gid2 := w.create(t, CreateRequest{Type: "AVChatRoom", Name: "live2", Owner_Account: "alice"})
	log.follow(t, f.store)
	info := func(s *testService, gid string) (uint64, int64) {
		t.Helper()
		g, err := s.existing(gid)
		if err != nil {
			t.Fatal(err)
		}
		v := s.view(g)
		return v.NextMsgSeq, v.LastMsgTime
	}
	info(f, gid) // loaded on the follower before the messages; gid2 is not
	send := func(gid string) {
		t.Helper()
		if _, err := w.Send(ctx, w.Service.admin, gid, []byte(`{"MsgRandom":7,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]}`)); err != nil {
			t.Fatal(err)
		}
	}
	send(gid)
	send(gid)
	send(gid2)
	w.conns.mu.Lock()
	relayed := slices.Clone(w.conns.delivered)
	w.conns.mu.Unlock()
	f.FollowLive(relayed)
	for _, g := range []string{gid, gid2} {
		wn, wt := info(w, g)
		if fn, ft := info(f, g); fn != wn || ft != wt || wn < 2 || wt == 0 {
			t.Fatalf("%s: follower NextMsgSeq %d LastMsgTime %d, owner %d %d", g, fn, ft, wn, wt)
		}
	}

	// A node that starts: nothing numbered until it takes the heads.
	var lateSvc *Service
	late := serviceOn(t, config.Default(), storage.Options{Dir: t.TempDir(), Log: log,
		OnApply: func(a storage.Applied) { lateSvc.Applied(a) }})
	lateSvc = late.Service
	log.follow(t, late.store)
	if n, _ := info(late, gid); n != 1 {
		t.Fatalf("a new node's room: NextMsgSeq %d, want 1", n)
	}
	raw, err := json.Marshal(w.LiveHeads())
	if err != nil {
		t.Fatal(err)
	}
	var heads []LiveHead
	if err := json.Unmarshal(raw, &heads); err != nil {
		t.Fatal(err)
	}
	late.FollowHeads(heads)
	wn, wt := info(w, gid)
	if n, lt := info(late, gid); n != wn || lt != wt {
		t.Fatalf("after the heads: NextMsgSeq %d LastMsgTime %d, want %d %d", n, lt, wn, wt)
	}
	// That node, the owner now, goes on from the owner's numbering.
	late.store.SetWriter(true)
	late.conns.mu.Lock()
	late.conns.delivered = nil
	late.conns.mu.Unlock()
	if _, err := late.Send(ctx, late.Service.admin, gid, []byte(`{"MsgRandom":8,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"on"}}]}`)); err != nil {
		t.Fatal(err)
	}
	late.conns.mu.Lock()
	defer late.conns.mu.Unlock()
	w.conns.mu.Lock()
	defer w.conns.mu.Unlock()
	if got, want := late.conns.delivered[0].Pos, (storage.Pos{Epoch: relayed[0].Pos.Epoch, Seq: uint64(wn)}); got != want {
		t.Fatalf("the next message numbered %+v, want %+v", got, want)
	}
}
