package messages

import (
	"context"
	"fmt"
	"slices"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/callbacks"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// SendC2C validates and stores a one-to-one message from `from` to `to`:
// the recipient's and the sender's stream copies are written in one synced
// batch, so when it returns nil the message is durable in both streams.
// Delivery follows from the commit. [IM-C2C-1]
func (s *Service) SendC2C(ctx context.Context, from, to string, payload []byte) (wire.SendResult, error) {
	return s.sendC2C(ctx, from, to, payload, 0)
}

func (s *Service) sendC2C(ctx context.Context, from, to string, payload []byte, msgTime int64) (wire.SendResult, error) {
	pending, res, err := s.startC2C(ctx, from, to, payload, msgTime)
	if err != nil || pending == nil {
		return res, err
	}
	return pending.Finish()
}

// Pending is a one-to-one send whose commit is queued (StartC2C).
type Pending struct {
	commit *storage.Pending
	after  func(storage.Result, error) (wire.SendResult, error)
}

// Done reports whether the commit's outcome is known, so that Finish does
// not wait for it. Sends queued in order finish in that order.
func (p *Pending) Done() bool { return p.commit.Done() }

// Finish waits until the message is durable and does what follows the
// commit (the after-callback, the offline push).
func (p *Pending) Finish() (wire.SendResult, error) { return p.after(p.commit.Wait()) }

// StartC2C does everything of SendC2C up to queueing the commit: checks,
// validation, the before-callback, encoding, and the store submission, in
// the caller's order. pending (nil when the send ended without a commit:
// refused, or dropped with res) waits until the message is durable and does
// what follows the commit. A connection can so have several sends
// committing at once while keeping their order. [IM-C2C-PIPELINE]
func (s *Service) StartC2C(ctx context.Context, from, to string, payload []byte) (pending *Pending, res wire.SendResult, err error) {
	return s.startC2C(ctx, from, to, payload, 0)
}

func (s *Service) startC2C(ctx context.Context, from, to string, payload []byte, msgTime int64) (pending *Pending, res wire.SendResult, err error) {
	drop, err := s.checkC2C(from, to)
	if err != nil {
		return nil, wire.SendResult{}, err
	}
	req, body, err := wire.ParseSend(payload, s.cfg)
	if err != nil {
		return nil, wire.SendResult{}, err
	}
	st := StampC2C(req.MsgSeq, *req.MsgRandom, msgTime)
	if drop {
		// The recipient blacklisted the sender (relations.blacklisted_send
		// success, Tencent's default): the sender is told it was sent, with
		// a result like a real send's, and nothing is stored. [IM-REL-C2C]
		return nil, st.Result(), nil
	}
	msg := wire.C2CMsg{
		From: from, To: to, MsgSeq: st.MsgSeq, MsgRandom: st.MsgRandom, MsgTime: st.MsgTime, MsgKey: st.MsgKey,
		MsgBody: body, CloudCustomData: req.CloudCustomData, ClientMsgID: req.ClientMsgID,
		IsNeedReadReceipt: req.IsNeedReadReceipt, SendMsgControl: req.SendMsgControl, OfflinePushInfo: req.OfflinePushInfo,
	}
	var cbFields map[string]any // only built for callbacks that are configured
	if s.send.Enabled() {
		cbFields = map[string]any{"From_Account": from, "To_Account": to, "MsgSeq": st.MsgSeq, "MsgRandom": st.MsgRandom,
			"MsgTime": st.MsgTime, "MsgKey": st.MsgKey, "OnlineOnlyFlag": 0}
	}
	body0 := []byte(msg.MsgBody)
	if err := s.send.RunBefore(ctx, req.ForbidCallbackControl, cbFields, &body0, &msg.CloudCustomData); err == ErrDropped {
		return nil, st.Result(), nil
	} else if err != nil {
		return nil, wire.SendResult{}, err
	}
	msg.MsgBody = body0
	res = st.Result()
	var b storage.Batch
	s.addC2C(&b, &msg, req.SyncOtherMachine, origin{rest: callbacks.FromREST(ctx), imported: msgTime != 0})
	b.DedupKey, b.DedupValue, b.DedupTTL = C2CResendKey(from, to, req, body), dedupValue(st), s.cfg.DedupWindow
	commit, err := s.store.Submit(ctx, b)
	if err != nil {
		return nil, wire.SendResult{}, fmt.Errorf("store c2c %s->%s: %w", from, to, err)
	}
	after := func(out storage.Result, err error) (wire.SendResult, error) {
		if err != nil {
			return wire.SendResult{}, fmt.Errorf("store c2c %s->%s: %w", from, to, err)
		}
		if out.Duplicate {
			return previous(out.DedupValue), nil
		}
		s.sent.Add(1)
		if cbFields != nil {
			cbFields["MsgBody"], cbFields["CloudCustomData"] = RawJSON(msg.MsgBody), msg.CloudCustomData
			cbFields["SendMsgResult"], cbFields["ErrorInfo"] = 0, ""
			s.send.RunAfter(ctx, req.ForbidCallbackControl, cbFields)
		}
		s.pushC2C(&msg) // Push.CallbackOfflinePush when the recipient is offline
		return res, nil
	}
	return &Pending{commit: commit, after: after}, res, nil
}

// checkC2C runs the checks of a one-to-one send before its body is read:
// the recipient's UserID, the sender's global mute, the relation gate.
func (s *Service) checkC2C(from, to string) (drop bool, err error) {
	if err := ids.CheckUserID(to); err != nil {
		return false, imerr.BadAccount.New("invalid To_Account: %v", err)
	}
	if err := s.rel.CheckNoSpeaking(from, false); err != nil { // global mute [IM-NOSPEAKING]
		return false, err
	}
	return s.rel.CheckC2C(from, to) // blacklist, friendship [IM-REL-C2C]
}

// origin is where a C2C message comes from, for the sender's conversation:
// only a message the sender sent themselves (MQTT) marks what came before
// as read; a REST send or an import (the app acting for them) leaves their
// unread count and read position alone, and an import older than the
// conversation's last message does not become the last message (its time
// never moves back). Tencent documents neither case; docs/rest.md.
type origin struct {
	rest, imported bool
}

// addC2C adds msg to b: the appends to the recipient's stream, the
// sender's (all their devices; not with SyncOtherMachine 2) and the pair's
// conversation history (indexed by MsgKey), and both users' conversation
// updates. The event's bytes are stored once: the sender's and the pair's
// entries share the recipient's (storage.Append.SameAs), and both
// conversation records refer to the pair's entry (convs.Update.MsgRef).
func (s *Service) addC2C(b *storage.Batch, msg *wire.C2CMsg, syncOtherMachine int, o origin) {
	from, to := msg.From, msg.To
	msgJSON := wire.EncodeC2CMsg(msg)
	event := wire.C2CEvent(msgJSON)
	b.Appends, b.Updates = slices.Grow(b.Appends, 3), slices.Grow(b.Updates, 2)
	b.Appends = append(b.Appends, storage.Append{Stream: convs.UserStream(to), Payload: event})
	userAt := len(b.Appends) - 1
	senderAt := -1
	if to != from && syncOtherMachine != 2 {
		senderAt = len(b.Appends)
		b.Appends = append(b.Appends, storage.Append{Stream: convs.UserStream(from), SameAs: userAt + 1})
	}
	pairAt := len(b.Appends)
	b.Appends = append(b.Appends, storage.Append{Stream: convs.PairStream(from, to), SameAs: userAt + 1, Index: convs.MsgKeyIndex(from, to, msg.MsgKey)})
	noUnread, noLastMsg := convs.MsgControl(msg.SendMsgControl)
	in := convs.Update{UID: to, Conv: convs.C2CID(from), State: convs.State{Type: convs.TypeC2C, Peer_Account: from}, Msg: msgJSON,
		MsgTime: msg.MsgTime, SeqFrom: pairAt, UserSeqFrom: userAt, Incoming: to != from, CountsUnread: true,
		NoUnread: noUnread, NoLastMsg: noLastMsg, NoEarlier: o.imported, MsgRef: true}
	b.Updates = append(b.Updates, in.StorageUpdate(s.convs))
	if to != from {
		out := in
		out.UID, out.Conv, out.State, out.Incoming, out.UserSeqFrom = from, convs.C2CID(to), convs.State{Type: convs.TypeC2C, Peer_Account: to}, false, senderAt
		out.NotRead = o.rest || o.imported
		b.Updates = append(b.Updates, out.StorageUpdate(s.convs))
	}
}
