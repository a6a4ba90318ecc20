package broker

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/callbacks"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// userStream names a user's event stream in the store.
func userStream(uid string) string { return "u/" + uid }

// SendC2C validates and stores a one-to-one message from `from` to `to`:
// the recipient's and the sender's stream copies are written in one synced
// batch, so when it returns nil the message is durable in both streams.
// Delivery follows from the commit. [IM-C2C-1]
func (b *Broker) SendC2C(ctx context.Context, from, to string, payload []byte) (wire.SendResult, error) {
	finish, res, err := b.startC2C(ctx, from, to, payload)
	if err != nil || finish == nil {
		return res, err
	}
	return finish()
}

// startC2C does everything of SendC2C up to queueing the commit: checks,
// validation, the before-callback, encoding, and the store submission, in
// the caller's order. finish (nil when the send ended without a commit:
// refused, or dropped by the callback with res) waits until the message is
// durable and does what follows the commit. A connection can so have several
// sends committing at once while keeping their order. [IM-C2C-PIPELINE]
func (b *Broker) startC2C(ctx context.Context, from, to string, payload []byte) (finish func() (wire.SendResult, error), res wire.SendResult, err error) {
	if err := ids.CheckUserID(to); err != nil {
		return nil, wire.SendResult{}, imerr.BadAccount.New("invalid To_Account: %v", err)
	}
	if err := b.relations.CheckNoSpeaking(from, false); err != nil { // global mute [IM-NOSPEAKING]
		return nil, wire.SendResult{}, err
	}
	if drop, err := b.relations.CheckC2C(from, to); err != nil { // blacklist, friendship [IM-REL-C2C]
		return nil, wire.SendResult{}, err
	} else if drop {
		res, err := silentResult(payload, b.cfg.Messages)
		return nil, res, err
	}
	req, body, err := wire.ParseSend(payload, b.cfg.Messages)
	if err != nil {
		return nil, wire.SendResult{}, err
	}
	now := time.Now()
	msg := wire.C2CMsg{
		From: from, To: to, MsgSeq: req.MsgSeq, MsgRandom: *req.MsgRandom, MsgTime: msgTimeOf(ctx, now),
		MsgBody: body, CloudCustomData: req.CloudCustomData, ClientMsgID: req.ClientMsgID,
		IsNeedReadReceipt: req.IsNeedReadReceipt, SendMsgControl: req.SendMsgControl, OfflinePushInfo: req.OfflinePushInfo,
	}
	if msg.MsgSeq == 0 {
		msg.MsgSeq = rand.Uint32N(1<<31-1) + 1 // Tencent: random when the sender sets none
	}
	msg.MsgKey = wire.C2CMsgKey(msg.MsgSeq, msg.MsgRandom, msg.MsgTime)
	var cbFields map[string]any // only built for callbacks that are configured
	if b.callbacks.Enabled(cbC2CBefore) || b.callbacks.Enabled(cbC2CAfter) {
		cbFields = map[string]any{"From_Account": from, "To_Account": to, "MsgSeq": msg.MsgSeq, "MsgRandom": msg.MsgRandom,
			"MsgTime": msg.MsgTime, "MsgKey": msg.MsgKey, "OnlineOnlyFlag": 0}
	}
	body0 := []byte(msg.MsgBody)
	if err := b.beforeSend(ctx, cbC2CBefore, req.ForbidCallbackControl, cbFields, &body0, &msg.CloudCustomData,
		callbacks.C2CVerdicts); err == errDroppedByCallback {
		return nil, wire.SendResult{MsgKey: msg.MsgKey, MsgTime: msg.MsgTime, MsgSeq: msg.MsgSeq}, nil
	} else if err != nil {
		return nil, wire.SendResult{}, err
	}
	msg.MsgBody = body0
	msgJSON := wire.EncodeC2CMsg(&msg)
	event := wire.C2CEvent(msgJSON)
	res = wire.SendResult{MsgKey: msg.MsgKey, MsgTime: msg.MsgTime, MsgSeq: msg.MsgSeq}
	resJSON := wire.EncodeSendResult(res)
	// Streams: the recipient's, the sender's (all their devices; not with
	// SyncOtherMachine 2), and the pair's conversation history.
	appends := []storage.Append{{Stream: userStream(to), Payload: event}}
	senderAt := -1
	if to != from && req.SyncOtherMachine != 2 {
		senderAt = len(appends)
		appends = append(appends, storage.Append{Stream: userStream(from), Payload: event})
	}
	pairAt := len(appends)
	appends = append(appends, storage.Append{Stream: convs.PairStream(from, to), Payload: event, Index: convs.MsgKeyIndex(from, to, msg.MsgKey)})
	noUnread, noLastMsg := convs.MsgControl(req.SendMsgControl)
	in := convs.Update{UID: to, Conv: convs.C2CID(from), State: convs.State{Type: convs.TypeC2C, Peer_Account: from}, Msg: msgJSON,
		MsgTime: msg.MsgTime, SeqFrom: pairAt, UserSeqFrom: 0, Incoming: to != from, CountsUnread: true,
		NoUnread: noUnread, NoLastMsg: noLastMsg}
	updates := []storage.Update{in.StorageUpdate(b.convCache)}
	if to != from {
		outConv := in
		outConv.UID, outConv.Conv, outConv.State, outConv.Incoming, outConv.UserSeqFrom = from, convs.C2CID(to), convs.State{Type: convs.TypeC2C, Peer_Account: to}, false, senderAt
		updates = append(updates, outConv.StorageUpdate(b.convCache))
	}
	pending, err := b.store.Submit(ctx, storage.Batch{
		Appends:    appends,
		Updates:    updates,
		DedupKey:   c2cDedupKey(from, to, msg.MsgRandom, body, req),
		DedupValue: resJSON,
		DedupTTL:   b.cfg.Messages.DedupWindow,
	})
	if err != nil {
		return nil, wire.SendResult{}, fmt.Errorf("store c2c %s->%s: %w", from, to, err)
	}
	finish = func() (wire.SendResult, error) {
		out, err := pending.Wait()
		if err != nil {
			return wire.SendResult{}, fmt.Errorf("store c2c %s->%s: %w", from, to, err)
		}
		if out.Duplicate {
			var prev wire.SendResult
			_ = json.Unmarshal(out.DedupValue, &prev)
			prev.Duplicate = true
			return prev, nil
		}
		b.metrics.c2cSent.Add(1)
		if cbFields != nil {
			cbFields["MsgBody"], cbFields["CloudCustomData"] = rawJSON(msg.MsgBody), msg.CloudCustomData
			cbFields["SendMsgResult"], cbFields["ErrorInfo"] = 0, ""
			b.afterSend(cbC2CAfter, req.ForbidCallbackControl, cbFields)
		}
		b.pushC2C(&msg) // Push.CallbackOfflinePush when the recipient is offline
		return res, nil
	}
	return finish, res, nil
}

// c2cDedupKey identifies a resend: same sender, recipient, MsgRandom and
// content (Tencent treats the same Random and content as a duplicate).
func c2cDedupKey(from, to string, random uint32, body []byte, req *wire.SendRequest) []byte {
	h := sha256.New()
	h.Write(body)
	h.Write([]byte{0})
	h.Write([]byte(req.CloudCustomData))
	h.Write([]byte{0})
	h.Write([]byte(req.ClientMsgID))
	var sum [sha256.Size]byte
	return wire.AppendDedupKey(from, to, random, h.Sum(sum[:0])[:16])
}

// silentResult is what the sender of a message nobody will get (the
// recipient blacklisted them, relations.blacklisted_send success) is told:
// the payload is still validated, and the result looks like a real send's,
// but nothing is stored in any stream.
func silentResult(payload []byte, lim config.Messages) (wire.SendResult, error) {
	req, _, err := wire.ParseSend(payload, lim)
	if err != nil {
		return wire.SendResult{}, err
	}
	res := wire.SendResult{MsgSeq: req.MsgSeq, MsgTime: time.Now().Unix()}
	if res.MsgSeq == 0 {
		res.MsgSeq = rand.Uint32N(1<<31-1) + 1
	}
	res.MsgKey = wire.C2CMsgKey(res.MsgSeq, *req.MsgRandom, res.MsgTime)
	return res, nil
}
