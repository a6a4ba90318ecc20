package broker

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/messages"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// Tip types.
const (
	tipCreated            = "GroupCreated"
	tipMemberJoin         = "MemberJoin"
	tipMemberQuit         = "MemberQuit"
	tipMemberKicked       = "MemberKicked"
	tipRoleChanged        = "RoleChanged"
	tipMemberMuted        = "MemberMuted"
	tipInfoChanged        = "InfoChanged"
	tipOwnerChanged       = "OwnerChanged"
	tipDestroyed          = "GroupDestroyed"
	tipMemberInfo         = "MemberInfoChanged"
	tipJoinApplication    = "JoinApplication"    // to owner and admins only
	tipApplicationHandled = "ApplicationHandled" // to the applicant only
)

// groupChange is one committed change of a group: KV writes and, optionally,
// an event that takes the group's next seq. Callers hold g.op.
type groupChange struct {
	sets    map[string][]byte
	deletes []string
	drops   []string
	// build makes the event's Msg for the seq it gets; nil = no event.
	build     func(seq uint64, now time.Time) any
	eventName string
	// userCopies get the event on their user streams (write diffusion
	// members, plus whoever the change concerns, such as a kicked member).
	userCopies []string
	dedupKey   []byte
	dedupTTL   time.Duration
	// conv, for messages: update every copy holder's conversation record.
	conv *groupConv
	// replaces overwrite stored entries in the same batch (recall).
	replaces []storage.Replace
	// notice, when set, is a private tip (no group seq) appended to the
	// noticeTo users' streams in the same batch: a live room's member change
	// whose room tip is merged into a later one (grouptips.go).
	notice   *wire.GroupTip
	noticeTo []string
}

// groupConv says how a group message touches conversations.
type groupConv struct {
	from                string
	noUnread, noLastMsg bool
	msgTime             int64 // imported messages: their time (0: now)
}

// commitGroupChange writes a change in one synced batch and returns the
// event's group seq (0 without an event) and whether it was a duplicate.
// Stored groups put the event in their group stream; live rooms hand it to
// delivery directly, with an in-memory seq.
func (b *Broker) commitGroupChange(ctx context.Context, g *group, c groupChange) (uint64, bool, error) {
	gid := g.info.GroupId
	stream := groupStream(gid)
	batch := storage.Batch{Sets: c.sets, Deletes: c.deletes, Drops: c.drops, DedupKey: c.dedupKey, DedupTTL: c.dedupTTL, Replaces: c.replaces}
	var seq, epoch uint64
	var payload []byte
	now := time.Now()
	if c.build != nil {
		if g.policy.stored() {
			head, err := b.store.Head(stream)
			if err != nil {
				return 0, false, err
			}
			seq, epoch = head.Seq+1, head.Epoch // exact: g.op excludes other writers of this stream
		} else {
			seq, epoch = g.memSeq+1, g.memEpoch
		}
		var err error
		if payload, err = wire.EncodeEvent(c.eventName, c.build(seq, now)); err != nil {
			return 0, false, fmt.Errorf("encode %s: %w", c.eventName, err)
		}
		if g.policy.stored() {
			batch.Appends = append(batch.Appends, storage.Append{Stream: stream, Payload: payload})
		}
		base := len(batch.Appends)
		for _, uid := range c.userCopies {
			batch.Appends = append(batch.Appends, storage.Append{Stream: userStream(uid), Payload: payload})
		}
		if c.conv != nil {
			var ev struct{ Msg json.RawMessage }
			_ = json.Unmarshal(payload, &ev)
			msgTime := now.Unix()
			if c.conv.msgTime > 0 {
				msgTime = c.conv.msgTime
			}
			for i, uid := range c.userCopies {
				u := convs.Update{UID: uid, Conv: convs.GroupID(gid), State: convs.State{Type: convs.TypeGroup, GroupId: gid},
					Msg: ev.Msg, MsgTime: msgTime, Seq: seq, SeqFrom: -1, UserSeqFrom: base + i,
					Incoming: uid != c.conv.from, CountsUnread: g.policy.unread(),
					NoUnread: c.conv.noUnread, NoLastMsg: c.conv.noLastMsg}
				batch.Updates = append(batch.Updates, u.StorageUpdate(b.convCache))
			}
		}
		batch.DedupValue = []byte(fmt.Sprint(seq))
	}
	if c.notice != nil && len(c.noticeTo) > 0 {
		tip := *c.notice
		tip.MsgTime = now.Unix()
		p, err := wire.EncodeEvent(wire.EventGroupTip, tip)
		if err != nil {
			return 0, false, fmt.Errorf("encode %s: %w", wire.EventGroupTip, err)
		}
		for _, uid := range c.noticeTo {
			batch.Appends = append(batch.Appends, storage.Append{Stream: userStream(uid), Payload: p})
		}
	}
	if len(batch.Appends) > 0 || len(batch.Sets) > 0 || len(batch.Deletes) > 0 || len(batch.Drops) > 0 {
		res, err := b.store.Commit(ctx, batch)
		if err != nil {
			return 0, false, fmt.Errorf("commit group %s: %w", gid, err)
		}
		if res.Duplicate {
			var prev uint64
			_, _ = fmt.Sscan(string(res.DedupValue), &prev)
			return prev, true, nil
		}
		if c.build != nil && g.policy.stored() && res.Pos[0].Seq != seq {
			b.log.Error("group seq mismatch", "group", gid, "want", seq, "got", res.Pos[0].Seq)
		}
	}
	if c.build != nil && !g.policy.stored() {
		// Under g.mu too: groupView reads memSeq holding only g.mu (it
		// must not wait for g.op), so writing it under g.op alone raced.
		// Lock order op -> mu; then op -> deliverer.mu (enqueue).
		g.mu.Lock()
		g.memSeq = seq
		g.mu.Unlock()
		b.deliver.enqueue([]storage.Entry{{Stream: stream, Pos: storage.Pos{Epoch: epoch, Seq: seq}, Payload: payload}})
	}
	return seq, false, nil
}

// userCopiesFor lists who gets a group event on their user stream: every
// member under write diffusion, plus extra (deduplicated).
func (b *Broker) userCopiesFor(g *group, extra ...string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(u string) {
		if u != "" && !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	if !g.policy.readDiffusion(len(g.members), b.cfg.Groups.ReadDiffusionAbove) {
		for _, u := range g.memberIDs() {
			add(u)
		}
	}
	for _, u := range extra {
		add(u)
	}
	return out
}

// notifyUsers appends a private event (not a group event: no group seq) to
// some users' streams.
func (b *Broker) notifyUsers(ctx context.Context, users []string, tip wire.GroupTip) error {
	if len(users) == 0 {
		return nil
	}
	tip.MsgTime = time.Now().Unix()
	payload, err := wire.EncodeEvent(wire.EventGroupTip, tip)
	if err != nil {
		return err
	}
	batch := storage.Batch{}
	for _, u := range users {
		batch.Appends = append(batch.Appends, storage.Append{Stream: userStream(u), Payload: payload})
	}
	_, err = b.store.Commit(ctx, batch)
	return err
}

// SendGroup validates and stores (or, for live rooms, publishes) a group
// message. Members only (BChatRoom: owner, admins and the app admin); muted
// members and, under mute-all, ordinary members are refused with 10017.
// Messages beyond the group's rate are dropped, as Tencent does: the sender
// is told success with dropped=true. [IM-GROUP-SEND]
func (b *Broker) SendGroup(ctx context.Context, from, gid string, payload []byte) (seq uint64, dropped bool, err error) {
	if err := ids.CheckGroupID(gid, false); err != nil {
		return 0, false, imerr.GroupInvalid.New("invalid GroupId: %v", err)
	}
	if err := b.relations.CheckNoSpeaking(from, true); err != nil { // global mute [IM-NOSPEAKING]
		return 0, false, err
	}
	req, body, err := wire.ParseSend(payload, b.cfg.Messages)
	if err != nil {
		return 0, false, err
	}
	g, err := b.loadGroup(gid)
	if err != nil {
		return 0, false, err
	}
	if g == nil {
		return 0, false, imerr.GroupNotFound.New("group %s does not exist", gid)
	}
	// The before-callback runs outside the group's lock: a slow callback
	// server must not hold up the group's other senders and changes.
	g.mu.RLock()
	gtype := g.info.Type
	g.mu.RUnlock()
	cbFields := map[string]any{"GroupId": gid, "Type": gtype, "From_Account": from, "Operator_Account": from,
		"Random": *req.MsgRandom, "OnlineOnlyFlag": 0}
	if err := b.groupSendCallbacks().RunBefore(ctx, req.ForbidCallbackControl, cbFields, &body, &req.CloudCustomData); err == messages.ErrDropped {
		return 0, false, nil
	} else if err != nil {
		return 0, false, err
	}
	// Under op: the rate limiter's own lock, the commit, g.mu, and
	// devices.mu and callbacks.mu (pushGroup, afterSend); see Lock order.
	g.op.Lock()
	defer g.op.Unlock()
	if g.destroyed {
		return 0, false, imerr.GroupNotFound.New("group %s does not exist", gid)
	}
	now := time.Now()
	admin := from == b.cfg.App.Admin
	role := g.role(from)
	switch {
	case admin:
	case role == "":
		return 0, false, imerr.GroupNoPermission.New("%s is not a member of %s", from, gid)
	case g.policy.openReceive() && !g.policy.isManager(role):
		return 0, false, imerr.GroupNoPermission.New("only the owner and admins send in a BChatRoom")
	case g.members[from].MuteUntil > now.Unix():
		return 0, false, imerr.GroupMuted.New("muted until %d", g.members[from].MuteUntil)
	case g.info.MuteAllMember == "On" && !g.policy.isManager(role):
		return 0, false, imerr.GroupMuted.New("the group is muted")
	}
	var dedupKey []byte
	if g.policy.stored() {
		h := sha256.Sum256(append(append([]byte{}, body...), req.CloudCustomData...))
		dedupKey = fmt.Appendf(nil, "grp/%s/%s/%d/%x", gid, from, *req.MsgRandom, h[:16])
	}
	if !admin && !g.sendRate.AllowN(now, 1) {
		// A resend of a message already stored is not a new message: it
		// must not be reported as dropped.
		if dedupKey != nil {
			if v, found, err := b.store.Dedup(dedupKey); err == nil && found {
				prev, _ := strconv.ParseUint(string(v), 10, 64)
				return prev, false, nil
			}
		}
		b.metrics.groupDropped.Add(1)
		return 0, true, nil
	}
	noUnread, noLastMsg := convs.MsgControl(req.SendMsgControl)
	c := groupChange{
		eventName:  wire.EventGroupMsg,
		userCopies: b.userCopiesFor(g),
		conv:       &groupConv{from: from, noUnread: noUnread, noLastMsg: noLastMsg},
		build: func(seq uint64, now time.Time) any {
			return wire.GroupMsg{GroupId: gid, From_Account: from, MsgSeq: seq, MsgRandom: *req.MsgRandom, MsgTime: now.Unix(),
				MsgBody: body, CloudCustomData: req.CloudCustomData, ClientMsgID: req.ClientMsgID, IsNeedReadReceipt: req.IsNeedReadReceipt}
		},
	}
	if dedupKey != nil {
		c.dedupKey, c.dedupTTL = dedupKey, b.cfg.Messages.DedupWindow
	}
	seq, _, err = b.commitGroupChange(ctx, g, c)
	if err != nil {
		return 0, false, err
	}
	g.mu.Lock() // op -> mu
	g.info.LastMsgTime = now.Unix()
	g.mu.Unlock()
	b.metrics.groupSent.Add(1)
	cbFields["MsgBody"], cbFields["CloudCustomData"] = messages.RawJSON(body), req.CloudCustomData
	cbFields["MsgSeq"], cbFields["MsgTime"] = seq, now.Unix()
	b.groupSendCallbacks().RunAfter(req.ForbidCallbackControl, cbFields)
	if g.policy.stored() { // Push.CallbackOfflinePush to offline write-diffusion recipients
		b.pushGroup(gid, from, seq, c.userCopies, body, req.OfflinePushInfo)
	}
	return seq, false, nil
}
