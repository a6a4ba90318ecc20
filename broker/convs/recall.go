package convs

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// eventMsgRecalled tells both users of a C2C conversation of a recall.
const eventMsgRecalled = "MsgRecalled"

// RecallRequest is msg.recall's: a C2C message by Peer_Account and MsgKey,
// or a group message by GroupId and MsgSeq.
type RecallRequest struct {
	Target
	MsgKey       string
	MsgSeq       uint64
	From_Account string // app admin only: the C2C sender (Peer_Account is then the recipient)
}

// Recall recalls a message (msg.recall; Tencent admin_msgwithdraw when the
// app admin names both users). [IM-RECALL-1]
func (s *Service) Recall(ctx context.Context, a ops.Actor, q *RecallRequest) (*Empty, error) {
	kind, _, err := q.resolve()
	if err != nil {
		return nil, err
	}
	if kind == TypeGroup {
		return &Empty{}, s.groups.Recall(ctx, a, q.GroupId, q.MsgSeq)
	}
	self := a.User
	if a.Admin && q.From_Account != "" {
		// The app admin recalls in any conversation (Tencent's
		// admin_msgwithdraw names both users). Before, it could only name
		// a peer, so only its own conversations were reachable.
		if ids.CheckUserID(q.From_Account) != nil {
			return nil, imerr.BadAccount.New("invalid From_Account")
		}
		self = q.From_Account
	}
	return &Empty{}, s.recallC2C(ctx, a, self, q.Peer_Account, q.MsgKey)
}

// recallC2C recalls the message msgKey of the conversation between self
// (the requester, or whom the app admin names) and peer.
func (s *Service) recallC2C(ctx context.Context, a ops.Actor, self, peer, msgKey string) error {
	seq, stored, err := s.c2cMessage(self, peer, msgKey)
	if err != nil {
		return err
	}
	m, err := wire.RecallMarker(stored)
	if err != nil {
		return err
	}
	if !a.Admin {
		if m.From_Account != a.User {
			return imerr.GroupNoPermission.New("only the sender recalls a one-to-one message")
		}
		if time.Since(time.Unix(m.MsgTime, 0)) > s.cfg.RecallWindow {
			return imerr.RecallWindow.New("the recall window of %v has passed", s.cfg.RecallWindow)
		}
	}
	from, to := m.From_Account, m.To_Account
	ev, err := wire.EncodeEvent(eventMsgRecalled, struct { // fields in name order, as stored before
		From_Account     string
		MsgFlagBits      int
		MsgKey           string
		Operator_Account string
		To_Account       string
		Type             int
	}{from, wire.MsgFlagRecalled, msgKey, a.User, to, TypeC2C})
	if err != nil {
		return err
	}
	batch := storage.Batch{
		Replaces: []storage.Replace{{Stream: PairStream(self, peer), Seq: seq, Payload: m.Event}},
		Appends:  []storage.Append{{Stream: UserStream(to), Payload: ev}},
		Updates:  []storage.Update{lastMsgReplaced(to, from, msgKey, m.Msg), lastMsgReplaced(from, to, msgKey, m.Msg)},
	}
	if from != to {
		batch.Appends = append(batch.Appends, storage.Append{Stream: UserStream(from), Payload: ev})
	}
	if _, err = s.store.Commit(ctx, batch); err != nil {
		return fmt.Errorf("recall %s: %w", msgKey, err)
	}
	s.afterWithDraw(ctx, from, to, msgKey) // C2C.CallbackAfterMsgWithDraw
	return nil
}

// c2cMessage finds the stored message msgKey of the a–b conversation: its
// position in the pair stream and its stored event.
func (s *Service) c2cMessage(a, b, msgKey string) (uint64, []byte, error) {
	raw, ok, err := s.store.Get(MsgKeyIndex(a, b, msgKey))
	if err != nil {
		return 0, nil, err
	}
	if !ok {
		return 0, nil, imerr.RecallNone.New("no message %q between %s and %s", msgKey, a, b)
	}
	seq, _ := strconv.ParseUint(string(raw), 10, 64)
	_, entries, err := s.store.Read(PairStream(a, b), seq-1, 1)
	if err != nil {
		return 0, nil, err
	}
	if len(entries) != 1 {
		return 0, nil, imerr.RecallNone.New("message %q is no longer stored", msgKey)
	}
	return seq, entries[0].Payload, nil
}

// lastMsgReplaced replaces uid's conversation with peer's last message by
// msg (a recall marker, a modified message) when it is the message msgKey.
func lastMsgReplaced(uid, peer, msgKey string, msg json.RawMessage) storage.Update {
	return storage.Update{Name: Key(uid, C2CID(peer)), Fn: func(old []byte, found bool, _ []storage.Pos) ([]byte, error) {
		if !found {
			return nil, nil
		}
		var st State
		if Decode(old, &st) != nil {
			return old, nil
		}
		var last struct{ MsgKey string }
		_ = json.Unmarshal(st.LastMsg, &last)
		if last.MsgKey == msgKey {
			st.LastMsg = msg
		}
		return Encode(&st), nil
	}}
}

// LastGroupMsgReplaced replaces uid's group conversation's last message by
// msg (a recall marker) when it is the group message at position seq.
func LastGroupMsgReplaced(uid, gid string, seq uint64, msg json.RawMessage) storage.Update {
	return storage.Update{Name: Key(uid, GroupID(gid)), Fn: func(old []byte, found bool, _ []storage.Pos) ([]byte, error) {
		if !found {
			return nil, nil
		}
		var st State
		if Decode(old, &st) != nil {
			return old, nil
		}
		var last struct{ MsgSeq uint64 }
		if json.Unmarshal(st.LastMsg, &last) == nil && last.MsgSeq == seq { // not LastSeq: NoLastMsg messages advance it
			st.LastMsg = msg
		}
		return Encode(&st), nil
	}}
}
