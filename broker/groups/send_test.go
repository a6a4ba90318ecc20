package groups

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/wire"
)

// TestSendStampsOnceAndKeepsOneResendRule: the stored message, the
// members' conversation records, the group's LastMsgTime and the result
// carry the one stamp of the send; a resend (same sender, MsgRandom and
// content) stores nothing and is answered the first send's MsgSeq.
func TestSendStampsOnceAndKeepsOneResendRule(t *testing.T) {
	ts := newTestService(t)
	ctx := context.Background()
	gid := ts.create(t, CreateRequest{Type: "Public", Name: "g", Owner_Account: "alice",
		MemberList: []InitialMember{{Member_Account: "bob"}}})
	payload := []byte(`{"MsgRandom":7,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]}`)
	res, err := ts.Send(ctx, "alice", gid, payload)
	if err != nil || res.MsgSeq == 0 || res.Dropped {
		t.Fatalf("send: %+v, %v", res, err)
	}
	_, es, err := ts.store.Read(convs.GroupStream(gid), res.MsgSeq-1, 1)
	if err != nil || len(es) != 1 {
		t.Fatal(es, err)
	}
	var ev struct{ Msg wire.GroupMsg }
	if err := json.Unmarshal(es[0].Payload, &ev); err != nil || ev.Msg.MsgTime != res.MsgTime || ev.Msg.MsgSeq != res.MsgSeq {
		t.Fatalf("stored %s, result %+v (%v)", es[0].Payload, res, err)
	}
	st, ok, err := convs.Load(ts.store, "bob", convs.GroupID(gid))
	if err != nil || !ok || st.LastMsgTime != res.MsgTime || st.UnreadMsgNum != 1 {
		t.Fatalf("bob's conversation %+v (%v, %v), want LastMsgTime %d", st, ok, err, res.MsgTime)
	}
	g, _ := ts.load(gid)
	if g.info.LastMsgTime != res.MsgTime {
		t.Fatalf("LastMsgTime %d, want %d", g.info.LastMsgTime, res.MsgTime)
	}

	head := ts.head(t, gid)
	again, err := ts.Send(ctx, "alice", gid, payload)
	if err != nil || again.MsgSeq != res.MsgSeq || again.Dropped {
		t.Fatalf("resend: %+v, %v; want MsgSeq %d", again, err, res.MsgSeq)
	}
	if ts.head(t, gid) != head {
		t.Fatalf("a resend stored something: head %d -> %d", head, ts.head(t, gid))
	}
	if st, _, _ := convs.Load(ts.store, "bob", convs.GroupID(gid)); st.UnreadMsgNum != 1 {
		t.Fatalf("a resend counted: unread %d", st.UnreadMsgNum)
	}
	other := []byte(`{"MsgRandom":7,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"another"}}]}`)
	if r, err := ts.Send(ctx, "alice", gid, other); err != nil || r.MsgSeq != res.MsgSeq+1 {
		t.Fatalf("same MsgRandom, other content: %+v, %v; want a new message", r, err)
	}
}
