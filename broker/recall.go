package broker

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// Recall.
const (
	eventMsgRecalled = "MsgRecalled" // C2C: to both users' streams
	tipMsgRecalled   = "MsgRecalled" // group: a GroupTip with a group seq
	msgFlagRecalled  = 8             // Tencent MsgFlagBits for a recalled message
)

// recalledPayload rewrites a stored event as its recall marker: the body
// and custom data are gone, MsgFlagBits says recalled.
func recalledPayload(stored []byte) ([]byte, map[string]any, error) {
	var ev struct {
		Event string
		Msg   map[string]any
	}
	if err := json.Unmarshal(stored, &ev); err != nil {
		return nil, nil, err
	}
	if f, _ := ev.Msg["MsgFlagBits"].(float64); int(f)&msgFlagRecalled != 0 {
		return nil, ev.Msg, imerr.RecallAgain.New("already recalled")
	}
	ev.Msg["MsgFlagBits"] = msgFlagRecalled
	ev.Msg["MsgBody"] = []any{}
	delete(ev.Msg, "CloudCustomData")
	out, err := wire.EncodeEvent(ev.Event, ev.Msg)
	return out, ev.Msg, err
}

// reqMsgRecall recalls a C2C message (Peer_Account + MsgKey) or a group
// message (GroupId + MsgSeq). [IM-RECALL-1]
func (b *Broker) reqMsgRecall(ctx context.Context, r *reqCtx) (any, error) {
	var q struct {
		convTarget
		MsgKey       string
		MsgSeq       uint64
		From_Account string // app admin only: the C2C sender (Peer_Account is then the recipient)
	}
	if err := r.decode(&q, imerr.BadParams); err != nil {
		return nil, err
	}
	kind, _, err := q.resolve()
	if err != nil {
		return nil, err
	}
	if kind == convs.TypeGroup {
		return nil, b.recallGroup(ctx, r, q.GroupId, q.MsgSeq)
	}
	self := r.user
	if r.admin && q.From_Account != "" {
		// The app admin recalls in any conversation (Tencent's
		// admin_msgwithdraw names both users). Before, it could only name
		// a peer, so only its own conversations were reachable.
		if ids.CheckUserID(q.From_Account) != nil {
			return nil, imerr.BadAccount.New("invalid From_Account")
		}
		self = q.From_Account
	}
	return nil, b.recallC2C(ctx, r, self, q.Peer_Account, q.MsgKey)
}

// recallC2C recalls the message msgKey of the conversation between self
// (the requester, or whom the app admin names) and peer.
func (b *Broker) recallC2C(ctx context.Context, r *reqCtx, self, peer, msgKey string) error {
	raw, ok, err := b.store.Get(convs.MsgKeyIndex(self, peer, msgKey))
	if err != nil {
		return err
	}
	if !ok {
		return imerr.RecallNone.New("no message %q with %s", msgKey, peer)
	}
	seq, _ := strconv.ParseUint(string(raw), 10, 64)
	stream := convs.PairStream(self, peer)
	_, entries, err := b.store.Read(stream, seq-1, 1)
	if err != nil {
		return err
	}
	if len(entries) != 1 {
		return imerr.RecallNone.New("message %q is no longer stored", msgKey)
	}
	marker, msg, err := recalledPayload(entries[0].Payload)
	if err != nil {
		return err
	}
	from, _ := msg["From_Account"].(string)
	to, _ := msg["To_Account"].(string)
	sent, _ := msg["MsgTime"].(float64)
	if !r.admin {
		if from != r.user {
			return noPermission("only the sender recalls a one-to-one message")
		}
		if time.Since(time.Unix(int64(sent), 0)) > b.cfg.Conversations.RecallWindow {
			return imerr.RecallWindow.New("the recall window of %v has passed", b.cfg.Conversations.RecallWindow)
		}
	}
	ev, _ := wire.EncodeEvent(eventMsgRecalled, map[string]any{"Type": convs.TypeC2C, "From_Account": from, "To_Account": to,
		"MsgKey": msgKey, "Operator_Account": r.user, "MsgFlagBits": msgFlagRecalled})
	recalledMsg, _ := json.Marshal(msg)
	batch := storage.Batch{
		Replaces: []storage.Replace{{Stream: stream, Seq: seq, Payload: marker}},
		Appends:  []storage.Append{{Stream: userStream(to), Payload: ev}},
		Updates:  []storage.Update{lastMsgRecalled(to, convs.C2CID(from), msgKey, recalledMsg), lastMsgRecalled(from, convs.C2CID(to), msgKey, recalledMsg)},
	}
	if from != to {
		batch.Appends = append(batch.Appends, storage.Append{Stream: userStream(from), Payload: ev})
	}
	if _, err = b.store.Commit(ctx, batch); err != nil {
		return err
	}
	b.afterWithDraw(from, to, msgKey) // C2C.CallbackAfterMsgWithDraw
	return nil
}

// lastMsgRecalled replaces a conversation's last message by its recall
// marker when it is the recalled one.
func lastMsgRecalled(uid, conv, msgKey string, marker json.RawMessage) storage.Update {
	return storage.Update{Name: convs.Key(uid, conv), Fn: func(old []byte, found bool, _ []storage.Pos) ([]byte, error) {
		if !found {
			return nil, nil
		}
		var st convs.State
		if json.Unmarshal(old, &st) != nil {
			return old, nil
		}
		var last struct{ MsgKey string }
		_ = json.Unmarshal(st.LastMsg, &last)
		if last.MsgKey == msgKey {
			st.LastMsg = marker
		}
		return mustJSON(st), nil
	}}
}

// recallGroup recalls a stored group message: its sender within the
// window, owner and admins for ordinary members' messages, the app admin
// always. The marker replaces it in the group stream and a MsgRecalled tip
// (with its own group seq) reaches members as other group events do.
func (b *Broker) recallGroup(ctx context.Context, r *reqCtx, gid string, seq uint64) error {
	g, err := b.lockGroup(gid)
	if err != nil {
		return err
	}
	defer g.op.Unlock()
	if !g.policy.stored() {
		return noPermission("%s messages cannot be recalled", g.info.Type)
	}
	role := g.role(r.user)
	if role == "" && !r.admin {
		return noPermission("not a member of %s", gid)
	}
	if seq == 0 {
		return imerr.RecallNone.New("MsgSeq is required")
	}
	_, entries, err := b.store.Read(groupStream(gid), seq-1, 1)
	if err != nil {
		return err
	}
	if len(entries) != 1 || !isGroupMsg(entries[0].Payload) {
		return imerr.RecallNone.New("no message %d in %s", seq, gid)
	}
	marker, msg, err := recalledPayload(entries[0].Payload)
	if err != nil {
		return err
	}
	from, _ := msg["From_Account"].(string)
	sent, _ := msg["MsgTime"].(float64)
	switch {
	case r.admin:
	case from == r.user:
		if time.Since(time.Unix(int64(sent), 0)) > b.cfg.Conversations.RecallWindow {
			return imerr.GroupRecallWindow.New("the recall window of %v has passed", b.cfg.Conversations.RecallWindow)
		}
	case role == roleOwner: // the owner recalls anyone's message, at any time
	case g.policy.isManager(role) && (g.role(from) == roleMember || g.role(from) == ""): // admins: ordinary members' and former members'

	default:
		return noPermission("%s may not recall %s's message", r.user, from)
	}
	copies := b.userCopiesFor(g)
	if _, _, err = b.commitGroupChange(ctx, g, groupChange{
		replaces:  []storage.Replace{{Stream: groupStream(gid), Seq: seq, Payload: marker}},
		eventName: eventGroupTip, userCopies: copies,
		build: tipBuilder(groupTip{GroupId: gid, TipType: tipMsgRecalled, Operator_Account: r.user,
			MemberList: []string{from}, RecalledMsgSeq: seq}),
	}); err != nil {
		return err
	}
	// Write-diffusion members' conversation records hold the message as
	// their last one: replace it by the marker, as C2C recalls do. Before,
	// conv.list kept showing a recalled group message's body. groupChange
	// carries no record updates, hence a second commit (still under g.op).
	recalledMsg, _ := json.Marshal(msg)
	var upd []storage.Update
	for _, uid := range copies {
		upd = append(upd, lastGroupMsgRecalled(uid, gid, seq, recalledMsg))
	}
	if len(upd) > 0 {
		_, err = b.store.Commit(ctx, storage.Batch{Updates: upd})
	}
	b.afterGroupRecall(gid, g.info.Type, r.user, seq) // the recall itself committed above
	return err
}

// lastGroupMsgRecalled replaces a group conversation's last message by its
// recall marker when it is the recalled one (group position seq).
func lastGroupMsgRecalled(uid, gid string, seq uint64, marker json.RawMessage) storage.Update {
	return storage.Update{Name: convs.Key(uid, convs.GroupID(gid)), Fn: func(old []byte, found bool, _ []storage.Pos) ([]byte, error) {
		if !found {
			return nil, nil
		}
		var st convs.State
		if json.Unmarshal(old, &st) != nil {
			return old, nil
		}
		var last struct{ MsgSeq uint64 }
		if json.Unmarshal(st.LastMsg, &last) == nil && last.MsgSeq == seq { // not LastSeq: NoLastMsg messages advance it
			st.LastMsg = marker
		}
		return mustJSON(st), nil
	}}
}

func isGroupMsg(payload []byte) bool {
	var ev struct{ Event string }
	return json.Unmarshal(payload, &ev) == nil && ev.Event == eventGroupMsg
}
