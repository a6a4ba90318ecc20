package messages

import (
	"context"
	"fmt"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// BatchResult is the outcome of BatchSendC2C.
type BatchResult struct {
	MsgKey  string    // the message's, the same for every recipient; "" when every recipient was refused
	Refused []Refusal // the recipients refused, in request order
}

// Refusal is why one recipient of a batch did not get the message.
type Refusal struct {
	To  string
	Err error // an *imerr.Error
}

// BatchSendC2C sends one message from `from` to each of tos (Tencent
// openim/batchsendmsg) as one operation: one stamp, so every copy has the
// same MsgKey and MsgTime, and one synced batch holding every accepted
// recipient's copies, all stored or none. A recipient the checks refuse
// (invalid UserID, the relation gate) is listed in Refused and the others
// still get it; when every recipient is refused the first refusal is also
// the error. A UserID listed twice gets it once. Tencent fires no send
// callbacks for batchsendmsg; offline pushes go out as for SendC2C. A resend
// of the same batch (same sender, recipient list, MsgRandom and content)
// stores nothing. [IM-BATCHSEND]
func (s *Service) BatchSendC2C(ctx context.Context, from string, tos []string, payload []byte) (BatchResult, error) {
	var out BatchResult
	req, body, parseErr := wire.ParseSend(payload, s.cfg)
	var st Stamp
	if parseErr == nil {
		st = StampC2C(req.MsgSeq, *req.MsgRandom, 0)
	}
	var b storage.Batch
	var msgs []*wire.C2CMsg
	accepted := false
	seen := make(map[string]bool, len(tos))
	for _, to := range tos {
		if seen[to] {
			continue // before, one send each: the second was a resend of the first
		}
		seen[to] = true
		drop, err := s.checkC2C(from, to)
		if err == nil {
			err = parseErr
		}
		if err != nil {
			if imerr.CodeOf(err) == imerr.Internal.Code {
				return BatchResult{}, err
			}
			out.Refused = append(out.Refused, Refusal{To: to, Err: err})
			continue
		}
		accepted = true
		if drop { // blacklisted by to: looks sent, is not stored [IM-REL-C2C]
			continue
		}
		msg := &wire.C2CMsg{
			From: from, To: to, MsgSeq: st.MsgSeq, MsgRandom: st.MsgRandom, MsgTime: st.MsgTime, MsgKey: st.MsgKey,
			MsgBody: body, CloudCustomData: req.CloudCustomData, ClientMsgID: req.ClientMsgID,
			IsNeedReadReceipt: req.IsNeedReadReceipt, SendMsgControl: req.SendMsgControl, OfflinePushInfo: req.OfflinePushInfo,
		}
		s.addC2C(&b, msg, req.SyncOtherMachine, origin{rest: true}) // batchsendmsg is REST only
		msgs = append(msgs, msg)
	}
	if !accepted {
		if len(out.Refused) == 0 {
			return out, imerr.ToMissing.New("To_Account is required")
		}
		return out, out.Refused[0].Err
	}
	out.MsgKey = st.MsgKey
	if len(msgs) == 0 {
		return out, nil
	}
	b.DedupKey, b.DedupValue, b.DedupTTL = C2CResendKey(from, batchTarget(tos), req, body), dedupValue(st), s.cfg.DedupWindow
	pending, err := s.store.Submit(ctx, b)
	if err != nil {
		return BatchResult{}, fmt.Errorf("store c2c batch from %s to %d users: %w", from, len(msgs), err)
	}
	res, err := pending.Wait()
	if err != nil {
		return BatchResult{}, fmt.Errorf("store c2c batch from %s to %d users: %w", from, len(msgs), err)
	}
	if res.Duplicate {
		out.MsgKey = previous(res.DedupValue).MsgKey
		return out, nil
	}
	s.sent.Add(int64(len(msgs)))
	for _, m := range msgs {
		s.pushC2C(m)
	}
	return out, nil
}
