package groups

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/wire"
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
	tipMsgRecalled        = "MsgRecalled"        // a recall: a group event with its own seq
	tipJoinApplication    = "JoinApplication"    // to owner and admins only
	tipApplicationHandled = "ApplicationHandled" // to the applicant only
)

// change is one committed change of a group: KV writes and the events that
// take the group's next seqs, all in one batch. Callers hold g.op.
type change struct {
	sets    map[string][]byte
	deletes []string
	drops   []string
	// updates are read-modify-writes of KV records (conversation records)
	// in the same batch.
	updates []storage.Update
	// events take the group's next seqs, in order.
	events []event
	// userCopies get every event on their user streams (write diffusion
	// members, plus whoever the change concerns, such as a kicked member).
	userCopies []string
	dedupKey   []byte
	dedupTTL   time.Duration
	// replaces overwrite stored entries in the same batch (recall).
	replaces []storage.Replace
	// notice, when set, is a private tip (no group seq) appended to the
	// noticeTo users' streams in the same batch: a live room's member change
	// whose room tip is merged into a later one (livetips.go).
	notice   *wire.GroupTip
	noticeTo []string
	// now is the change's time (a send reads it once); zero: read here.
	now time.Time
}

// event is one group event of a change.
type event struct {
	name string
	// build makes the event's Msg for the seq it gets.
	build func(seq uint64, now time.Time) any
	// conv, for messages: update every copy holder's conversation record.
	conv *groupConv
}

// tipEvent is a change's event for a tip.
func tipEvent(t wire.GroupTip) event {
	return event{name: wire.EventGroupTip, build: func(seq uint64, now time.Time) any {
		t.MsgSeq, t.MsgTime = seq, now.Unix()
		return t
	}}
}

// groupConv says how a group message touches conversations.
type groupConv struct {
	from                string
	noUnread, noLastMsg bool
	msgTime             int64 // imported messages: their time (0: the change's)
}

// commit writes a change in one synced batch and returns its first event's
// group seq (0 without events) and whether it was a duplicate. Stored
// groups put the events in their group stream; live rooms hand them to
// delivery directly, with in-memory seqs.
func (s *Service) commit(ctx context.Context, g *group, c change) (uint64, bool, error) {
	gid := g.info.GroupId
	stream := convs.GroupStream(gid)
	stored := g.policy.stored()
	batch := storage.Batch{Sets: c.sets, Deletes: c.deletes, Drops: c.drops, DedupKey: c.dedupKey, DedupTTL: c.dedupTTL,
		Replaces: c.replaces, Updates: c.updates}
	now := c.now
	if now.IsZero() {
		now = time.Now()
	}
	var first, epoch uint64
	if len(c.events) > 0 {
		if stored {
			head, err := s.store.Head(stream)
			if err != nil {
				return 0, false, fmt.Errorf("head of %s: %w", stream, err)
			}
			first, epoch = head.Seq+1, head.Epoch // exact: g.op excludes other writers of this stream
		} else {
			g.mu.RLock() // FollowLive moves it holding only g.mu
			first, epoch = g.memSeq+1, g.memEpoch
			g.mu.RUnlock()
		}
		batch.DedupValue = []byte(fmt.Sprint(first))
	}
	var live []storage.Entry
	var streamAt []int // index in batch.Appends of each event's group-stream append
	for i, ev := range c.events {
		seq := first + uint64(i)
		payload, err := wire.EncodeEvent(ev.name, ev.build(seq, now))
		if err != nil {
			return 0, false, fmt.Errorf("encode %s: %w", ev.name, err)
		}
		if stored {
			streamAt = append(streamAt, len(batch.Appends))
			batch.Appends = append(batch.Appends, storage.Append{Stream: stream, Payload: payload})
		} else {
			live = append(live, storage.Entry{Stream: stream, Pos: storage.Pos{Epoch: epoch, Seq: seq}, Payload: payload})
		}
		base := len(batch.Appends)
		for _, uid := range c.userCopies {
			batch.Appends = append(batch.Appends, storage.Append{Stream: convs.UserStream(uid), Payload: payload})
		}
		if ev.conv != nil {
			batch.Updates = append(batch.Updates, s.convUpdates(g, ev.conv, c.userCopies, payload, seq, base, now)...)
		}
	}
	if c.notice != nil && len(c.noticeTo) > 0 {
		tip := *c.notice
		tip.MsgTime = now.Unix()
		p, err := wire.EncodeEvent(wire.EventGroupTip, tip)
		if err != nil {
			return 0, false, fmt.Errorf("encode %s: %w", wire.EventGroupTip, err)
		}
		for _, uid := range c.noticeTo {
			batch.Appends = append(batch.Appends, storage.Append{Stream: convs.UserStream(uid), Payload: p})
		}
	}
	if len(batch.Appends) > 0 || len(batch.Sets) > 0 || len(batch.Deletes) > 0 || len(batch.Drops) > 0 ||
		len(batch.Updates) > 0 || len(batch.Replaces) > 0 {
		res, err := s.store.Commit(ctx, batch)
		if err != nil {
			return 0, false, fmt.Errorf("commit group %s: %w", gid, err)
		}
		if res.Duplicate {
			var prev uint64
			_, _ = fmt.Sscan(string(res.DedupValue), &prev)
			return prev, true, nil
		}
		for i, at := range streamAt {
			if got := res.Pos[at].Seq; got != first+uint64(i) {
				s.log.Error("group seq mismatch", "group", gid, "want", first+uint64(i), "got", got)
			}
		}
	}
	if len(live) > 0 {
		// Under g.mu too: view reads memSeq holding only g.mu (it must
		// not wait for g.op), so writing it under g.op alone raced. Lock
		// order op -> mu; then op -> the delivery queue (Deliver).
		g.mu.Lock()
		g.memSeq = live[len(live)-1].Pos.Seq
		g.mu.Unlock()
		s.conns.Deliver(live)
	}
	return first, false, nil
}

// convUpdates are the conversation record updates of a group message for
// its copy holders; the copy of users[i] is the batch's append base+i.
func (s *Service) convUpdates(g *group, c *groupConv, users []string, payload []byte, seq uint64, base int, now time.Time) []storage.Update {
	var ev struct{ Msg json.RawMessage }
	_ = json.Unmarshal(payload, &ev)
	msgTime := now.Unix()
	if c.msgTime > 0 {
		msgTime = c.msgTime
	}
	gid := g.info.GroupId
	out := make([]storage.Update, 0, len(users))
	for i, uid := range users {
		u := convs.Update{UID: uid, Conv: convs.GroupID(gid), State: convs.State{Type: convs.TypeGroup, GroupId: gid},
			Msg: ev.Msg, MsgTime: msgTime, Seq: seq, SeqFrom: -1, UserSeqFrom: base + i,
			Incoming: uid != c.from, CountsUnread: g.policy.unread(),
			NoUnread: c.noUnread, NoLastMsg: c.noLastMsg}
		out = append(out, u.StorageUpdate(s.convCache))
	}
	return out
}

// userCopiesFor lists who gets a group event on their user stream: every
// member under write diffusion, plus extra (deduplicated).
func (s *Service) userCopiesFor(g *group, extra ...string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(u string) {
		if u != "" && !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	if !g.policy.readDiffusion(len(g.members), s.cfg.ReadDiffusionAbove) {
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
func (s *Service) notifyUsers(ctx context.Context, users []string, tip wire.GroupTip) error {
	if len(users) == 0 {
		return nil
	}
	tip.MsgTime = time.Now().Unix()
	payload, err := wire.EncodeEvent(wire.EventGroupTip, tip)
	if err != nil {
		return fmt.Errorf("encode %s: %w", tip.TipType, err)
	}
	batch := storage.Batch{}
	for _, u := range users {
		batch.Appends = append(batch.Appends, storage.Append{Stream: convs.UserStream(u), Payload: payload})
	}
	if _, err = s.store.Commit(ctx, batch); err != nil {
		return fmt.Errorf("commit %s tip of %s: %w", tip.TipType, tip.GroupId, err)
	}
	return nil
}
