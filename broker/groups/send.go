package groups

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/messages"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
)

// SendResult is what a group send returns.
type SendResult struct {
	MsgSeq  uint64 // the message's group seq (a resend: the stored one's); 0 when dropped
	MsgTime int64  // the send's stamp (messages.StampGroup): the stored message's MsgTime
	Dropped bool   // over the group's rate: not stored, yet a success (Tencent MsgDropReason MsgFreqLimit)
}

// Send validates and stores (or, for live rooms, publishes) a group message
// from `from` (the app admin included) with payload, the body of a publish
// to im/send/group/{gid}. Members only (BChatRoom: owner, admins and the app
// admin); muted members and, under mute-all, ordinary members are refused
// with 10017. Messages beyond the group's rate are dropped, as Tencent does:
// the sender is told success with Dropped. The message is stamped once
// (messages.StampGroup) and a resend is recognised by the one resend rule
// (messages.GroupResendKey). [IM-GROUP-SEND]
func (s *Service) Send(ctx context.Context, from, gid string, payload []byte) (SendResult, error) {
	if err := ids.CheckGroupID(gid, false); err != nil {
		return SendResult{}, imerr.GroupInvalid.New("invalid GroupId: %v", err)
	}
	if err := s.mutes.CheckNoSpeaking(from, true); err != nil { // global mute [IM-NOSPEAKING]
		return SendResult{}, err
	}
	req, body, err := wire.ParseSend(payload, s.msgs)
	if err != nil {
		return SendResult{}, err
	}
	if !wire.CheckMsgPriority(req.MsgPriority) {
		return SendResult{}, badParams("MsgPriority must be High, Normal, Low or Lowest")
	}
	if req.MsgPriority == "Normal" {
		req.MsgPriority = "" // the default is not stored
	}
	g, err := s.load(gid)
	if err != nil {
		return SendResult{}, err
	}
	if g == nil {
		return SendResult{}, imerr.GroupNotFound.New("group %s does not exist", gid)
	}
	st := messages.StampGroup(*req.MsgRandom, 0)
	res := SendResult{MsgTime: st.MsgTime}
	var resendKey []byte
	if g.policy.stored() { // the content as sent: before the callback may rewrite it
		resendKey = messages.GroupResendKey(gid, from, req, body)
	}
	// The before-callback runs outside the group's lock: a slow callback
	// server must not hold up the group's other senders and changes.
	g.mu.RLock()
	gtype := g.info.Type
	g.mu.RUnlock()
	cbFields := map[string]any{"GroupId": gid, "Type": gtype, "From_Account": from, "Operator_Account": from,
		"Random": st.MsgRandom, "OnlineOnlyFlag": 0}
	if err := s.send.RunBefore(ctx, req.ForbidCallbackControl, cbFields, &body, &req.CloudCustomData); err == messages.ErrDropped {
		return res, nil // a success that stored nothing
	} else if err != nil {
		return SendResult{}, err
	}
	// Under op: the rate limiter's own lock, the commit, g.mu, and the
	// presence and callback queues (push, after-callback); see Lock order.
	g.op.Lock()
	defer g.op.Unlock()
	if g.destroyed {
		return SendResult{}, imerr.GroupNotFound.New("group %s does not exist", gid)
	}
	admin := from == s.admin
	role := g.role(from)
	switch {
	case admin:
	case role == "":
		return SendResult{}, imerr.GroupNoPermission.New("%s is not a member of %s", from, gid)
	case g.policy.openReceive() && !g.policy.isManager(role):
		return SendResult{}, imerr.GroupNoPermission.New("only the owner and admins send in a BChatRoom")
	case g.members[from].MuteUntil > st.MsgTime:
		return SendResult{}, imerr.GroupMuted.New("muted until %d", g.members[from].MuteUntil)
	case g.info.MuteAllMember == "On" && !g.policy.isManager(role):
		return SendResult{}, imerr.GroupMuted.New("the group is muted")
	}
	// The limiter reads its own clock, under op: it must never see time go
	// back, as the stamp, read before the callback, could.
	if !admin && !g.sendRate.Allow() {
		// A resend of a message already stored is not a new message: it
		// must not be reported as dropped.
		if resendKey != nil {
			if v, found, err := s.store.Dedup(resendKey); err == nil && found {
				res.MsgSeq, _ = strconv.ParseUint(string(v), 10, 64)
				return res, nil
			}
		}
		s.dropped.Add(1)
		res.Dropped = true
		return res, nil
	}
	noUnread, noLastMsg := convs.MsgControl(req.SendMsgControl)
	c := change{
		now:        time.Unix(st.MsgTime, 0),
		userCopies: s.userCopiesFor(g),
		events: []event{{name: wire.EventGroupMsg,
			conv: &groupConv{from: from, noUnread: noUnread, noLastMsg: noLastMsg},
			build: func(seq uint64, _ time.Time) any {
				return wire.GroupMsg{GroupId: gid, From_Account: from, MsgSeq: seq, MsgRandom: st.MsgRandom, MsgTime: st.MsgTime,
					MsgBody: body, CloudCustomData: req.CloudCustomData, ClientMsgID: req.ClientMsgID, IsNeedReadReceipt: req.IsNeedReadReceipt,
					MsgPriority: req.MsgPriority}
			}}},
	}
	if resendKey != nil {
		c.dedupKey, c.dedupTTL = resendKey, s.msgs.DedupWindow
	}
	// The sender's LastSendMsgTime (Tencent's member field) is written with
	// the message: one small record more per stored group message.
	var sender *Member
	if role != "" && g.policy.stored() {
		sender = g.copyOf(from)
		sender.LastSendMsgTime = st.MsgTime
		c.sets = map[string][]byte{memberKey(gid, from): mustJSON(sender)}
	}
	var dup bool
	if res.MsgSeq, dup, err = s.commit(ctx, g, c); err != nil {
		return SendResult{}, err
	}
	g.mu.Lock() // op -> mu
	g.info.LastMsgTime = st.MsgTime
	if sender != nil && !dup { // a resend wrote nothing
		*g.members[from] = *sender
	}
	g.mu.Unlock()
	s.sent.Add(1)
	if s.onSent != nil {
		s.onSent(gid)
	}
	cbFields["MsgBody"], cbFields["CloudCustomData"] = messages.RawJSON(body), req.CloudCustomData
	cbFields["MsgSeq"], cbFields["MsgTime"] = res.MsgSeq, st.MsgTime
	s.send.RunAfter(ctx, req.ForbidCallbackControl, cbFields)
	if g.policy.stored() { // Push.CallbackOfflinePush to offline write-diffusion recipients
		s.push(gid, from, res.MsgSeq, c.userCopies, body, req.OfflinePushInfo)
	}
	return res, nil
}

// push queues the offline push of a stored write-diffusion group message
// for each recipient (its user-stream copy holders but the sender) with no
// live connection. UnreadMsgNum is omitted (a record read per recipient is
// not cheap on the send path).
func (s *Service) push(gid, from string, seq uint64, recipients []string, body, opi json.RawMessage) {
	if !s.cb.Enabled(messages.CmdOfflinePush) {
		return
	}
	for _, to := range recipients {
		if to == from || len(s.conns.Online(to)) > 0 {
			continue
		}
		f := wire.PushFields(to, from, body, opi)
		if f == nil {
			return
		}
		f["GroupId"], f["MsgSeq"] = gid, seq
		s.cb.After(context.Background(), messages.CmdOfflinePush, f) // our own command: no origin
	}
}
