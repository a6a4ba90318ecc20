package broker

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// Conversation event names (user stream).
const (
	eventConvRead    = "ConvRead"       // to the reader's own devices
	eventReadReceipt = "C2CReadReceipt" // to the peer of a C2C conversation
	eventConvDeleted = "ConvDeleted"    // to the user's own devices
)

// convTarget names a conversation in a request.
type convTarget struct {
	Type         json.RawMessage // 1 / "C2C" or 2 / "Group"
	Peer_Account string
	GroupId      string
}

// resolve checks the target and returns its kind and conversation id.
func (t convTarget) resolve() (int, string, error) {
	typ := strings.Trim(string(t.Type), `"`)
	switch typ {
	case "1", "C2C":
		if ids.CheckUserID(t.Peer_Account) != nil {
			return 0, "", imerr.BadAccount.New("invalid Peer_Account")
		}
		return convs.TypeC2C, convs.C2CID(t.Peer_Account), nil
	case "2", "Group":
		if ids.CheckGroupID(t.GroupId, false) != nil {
			return 0, "", imerr.GroupInvalid.New("invalid GroupId")
		}
		return convs.TypeGroup, convs.GroupID(t.GroupId), nil
	}
	return 0, "", imerr.BadParams.New("Type must be 1 (C2C) or 2 (Group)")
}

func (b *Broker) loadConv(uid, conv string) (convs.State, bool, error) {
	raw, ok, err := b.store.Get(convs.Key(uid, conv))
	if err != nil || !ok {
		return convs.State{}, ok, err
	}
	var st convs.State
	return st, true, convs.Decode(raw, &st)
}

// convView is a conversation as conv.list shows it.
func convView(st convs.State) map[string]any {
	v := map[string]any{"Type": st.Type, "LastMsg": st.LastMsg, "LastMsgTime": st.LastMsgTime,
		"UnreadMsgNum": st.UnreadMsgNum, "LastSeq": st.LastSeq, "LastUserSeq": st.LastUserSeq, "ReadSeq": st.ReadSeq}
	if st.Type == convs.TypeC2C {
		v["Peer_Account"] = st.Peer_Account
	} else {
		v["GroupId"] = st.GroupId
	}
	return v
}

// reqConvList lists the user's conversations, newest first, with the last
// message and the unread count. [IM-CONV-1]
func (b *Broker) reqConvList(_ context.Context, r *reqCtx) (any, error) {
	var q struct{ Limit, Offset int }
	if err := r.decode(&q, imerr.BadParams); err != nil {
		return nil, err
	}
	if q.Limit <= 0 || q.Limit > b.cfg.Conversations.MaxList {
		q.Limit = b.cfg.Conversations.MaxList
	}
	// Read-diffusion groups' conversations are built from their streams;
	// their records only hold the read (and delete) position. Before, any
	// record of such a group (even one msg.read wrote, with no message)
	// hid the group from the list.
	rd, list := b.readDiffusionConvs(r.user)
	if err := scanAll(b.store, convs.Prefix(r.user), func(v []byte) error {
		var st convs.State
		if err := json.Unmarshal(v, &st); err != nil {
			return err
		}
		if st.LastMsgTime > 0 && !(st.Type == convs.TypeGroup && rd[st.GroupId]) {
			list = append(list, st)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].LastMsgTime > list[j].LastMsgTime })
	total, unread := len(list), 0
	for _, c := range list {
		unread += c.UnreadMsgNum
	}
	out := []map[string]any{}
	for i := max(q.Offset, 0); i < len(list) && len(out) < q.Limit; i++ {
		out = append(out, convView(list[i]))
	}
	return map[string]any{"ConvList": out, "TotalCount": total, "AllUnreadMsgNum": unread}, nil
}

// readDiffusionConvs builds conversations for the user's stored
// read-diffusion groups, which keep no per-member record per message: the
// last message comes from the group stream, and unread (for types that
// count it) from the messages after the user's read position. It also
// returns every read-diffusion group of the user, listed or not.
func (b *Broker) readDiffusionConvs(uid string) (map[string]bool, []convs.State) {
	rd := map[string]bool{}
	var out []convs.State
	kvs, err := b.store.Scan(joinedPrefix(uid), "", b.cfg.Groups.MaxJoinedPerUser+1)
	if err != nil {
		return rd, nil
	}
	for _, kv := range kvs {
		gid := strings.TrimPrefix(kv.Name, joinedPrefix(uid))
		g, err := b.loadGroup(gid)
		if err != nil || g == nil || !g.policy.stored() {
			continue
		}
		g.mu.RLock()
		read := g.policy.readDiffusion(len(g.members), b.cfg.Groups.ReadDiffusionAbove)
		counts := g.policy.unread()
		floor := g.historyFloor(uid, false)
		g.mu.RUnlock()
		if !read {
			continue
		}
		rd[gid] = true
		st, _, _ := b.loadConv(uid, convs.GroupID(gid))
		st.Type, st.GroupId = convs.TypeGroup, gid
		if st = b.streamConv(uid, st, max(floor, b.clearedFloor(uid, convs.GroupID(gid))), counts); st.LastMsgTime > 0 && st.LastSeq > st.DeletedSeq {
			out = append(out, st)
		}
	}
	return rd, out
}

// streamConv fills a read-diffusion group conversation from the last 250
// entries of the group stream above floor (what the user may see): the
// last message, and unread as the messages from others after ReadSeq.
// Before, the scan started at ReadSeq, so a conversation read to the end
// had no last message and vanished from the list; and it started below the
// member's join point, counting messages from before they joined.
func (b *Broker) streamConv(uid string, st convs.State, floor uint64, counts bool) convs.State {
	st.LastMsg, st.LastMsgTime, st.LastSeq, st.UnreadMsgNum = nil, 0, 0, 0
	_, entries, err := b.store.Read(groupStream(st.GroupId), max(floor, b.historyStart(st.GroupId, 250)), 250)
	if err != nil {
		return st
	}
	for _, e := range entries {
		var ev struct {
			Event string
			Msg   json.RawMessage
		}
		var m struct {
			From_Account string
			MsgTime      int64
		}
		if json.Unmarshal(e.Payload, &ev) != nil || ev.Event != eventGroupMsg || json.Unmarshal(ev.Msg, &m) != nil {
			continue
		}
		st.LastMsg, st.LastMsgTime, st.LastSeq = ev.Msg, m.MsgTime, e.Pos.Seq
		if counts && m.From_Account != uid && e.Pos.Seq > st.ReadSeq {
			st.UnreadMsgNum++
		}
	}
	return st
}

// historyStart is the seq after which the last n entries of a group stream lie.
func (b *Broker) historyStart(gid string, n uint64) uint64 {
	head, err := b.store.Head(groupStream(gid))
	if err != nil || head.Seq <= n {
		return 0
	}
	return head.Seq - n
}

// reqMsgRead marks a conversation read up to a position: Seq (of the
// user's stream) for C2C and write-diffusion groups, or MsgSeq for groups;
// neither means everything. The user's other devices get ConvRead; a C2C
// peer gets a C2CReadReceipt. [IM-READ-1]
func (b *Broker) reqMsgRead(ctx context.Context, r *reqCtx) (any, error) {
	var q struct {
		convTarget
		Seq    uint64
		MsgSeq uint64
	}
	if err := r.decode(&q, imerr.BadParams); err != nil {
		return nil, err
	}
	kind, conv, err := q.resolve()
	if err != nil {
		return nil, err
	}
	readDiffusion, counts, floor := false, false, uint64(0)
	if kind == convs.TypeGroup {
		g, err := b.lockGroup(q.GroupId)
		if err != nil {
			return nil, err
		}
		member := g.role(r.user) != ""
		readDiffusion = g.policy.stored() && g.policy.readDiffusion(len(g.members), b.cfg.Groups.ReadDiffusionAbove)
		counts, floor = g.policy.unread(), g.historyFloor(r.user, false)
		g.op.Unlock()
		if !member {
			return nil, noPermission("not a member of %s", q.GroupId)
		}
	}
	cur, _, err := b.loadConv(r.user, conv)
	if err != nil {
		return nil, err
	}
	if readDiffusion {
		return b.readGroupStream(ctx, r, q.GroupId, q.MsgSeq, q.Seq, cur, max(floor, b.clearedFloor(r.user, conv)), counts)
	}
	all := q.Seq == 0 && q.MsgSeq == 0
	userSeq := q.Seq
	if !all && userSeq == 0 && q.MsgSeq < cur.LastSeq {
		// A group position below the last message: find the user-stream
		// Seq of the last message at or before it. Before, this was
		// treated as a read of everything, losing the remainder.
		if userSeq, err = b.userSeqAtGroupPos(r.user, q.GroupId, q.MsgSeq, cur.LastUserSeq); err != nil {
			return nil, err
		}
	}
	full := all || (q.Seq > 0 && q.Seq >= cur.LastUserSeq) || (q.Seq == 0 && q.MsgSeq >= cur.LastSeq)
	count := 0
	var lastRead json.RawMessage = cur.LastMsg
	readUser, readPos := cur.LastUserSeq, cur.LastSeq
	if !full {
		count, lastRead, err = b.countIncoming(r.user, cur, userSeq)
		if err != nil {
			return nil, err
		}
		readUser, readPos = userSeq, cur.ReadSeq
		if kind == convs.TypeGroup {
			var m struct{ MsgSeq uint64 }
			_ = json.Unmarshal(lastRead, &m)
			if p := max(q.MsgSeq, m.MsgSeq); p > 0 {
				readPos = p
			}
		}
	}
	recv0 := cur.RecvTotal
	state := convs.State{Type: kind, Peer_Account: q.Peer_Account, GroupId: q.GroupId}
	upd := storage.Update{Name: convs.Key(r.user, conv), Fn: func(old []byte, found bool, _ []storage.Pos) ([]byte, error) {
		st := state
		if found {
			_ = json.Unmarshal(old, &st)
		}
		if all { // everything, as of this commit
			st.UnreadMsgNum, st.ReadUserSeq, st.ReadSeq = 0, st.LastUserSeq, st.LastSeq
		} else {
			// Up to a position: what was unread after it when counted, plus
			// what arrived since. Before, a position at or past the last
			// message also marked messages that arrived meanwhile as read.
			st.UnreadMsgNum = count + int(st.RecvTotal-recv0)
			st.ReadUserSeq, st.ReadSeq = readUser, readPos
		}
		return mustJSON(st), nil
	}}
	batch := storage.Batch{Updates: []storage.Update{upd}}
	b.readEvents(&batch, r.user, kind, q.Peer_Account, q.GroupId, q.Seq, q.MsgSeq, count, lastRead)
	if _, err := b.store.Commit(ctx, batch); err != nil {
		return nil, err
	}
	if kind == convs.TypeC2C {
		b.afterMsgReport(r.user, q.Peer_Account, count) // C2C.CallbackAfterMsgReport
	}
	return map[string]any{"UnreadMsgNum": count}, nil
}

// readEvents adds a read report's events to batch: ConvRead to the reader's
// devices and, for C2C, a C2CReadReceipt naming the last message read to the peer.
func (b *Broker) readEvents(batch *storage.Batch, uid string, kind int, peer, gid string, seq, msgSeq uint64, unread int, lastRead json.RawMessage) {
	readEv, _ := wire.EncodeEvent(eventConvRead, map[string]any{"Type": kind, "Peer_Account": peer, "GroupId": gid,
		"Seq": seq, "MsgSeq": msgSeq, "UnreadMsgNum": unread, "ReadTime": time.Now().Unix()})
	batch.Appends = append(batch.Appends, storage.Append{Stream: userStream(uid), Payload: readEv})
	if kind == convs.TypeC2C && peer != uid && lastRead != nil {
		var m struct {
			MsgKey  string
			MsgTime int64
		}
		_ = json.Unmarshal(lastRead, &m)
		rc, _ := wire.EncodeEvent(eventReadReceipt, map[string]any{"Peer_Account": uid, "LastReadTime": m.MsgTime, "MsgKey": m.MsgKey})
		batch.Appends = append(batch.Appends, storage.Append{Stream: userStream(peer), Payload: rc})
	}
}

// readGroupStream is msg.read for a read-diffusion group, whose record
// only keeps ReadSeq: up to MsgSeq, or (none given) the group's head.
// Before, "everything" set ReadSeq to the record's LastSeq, which such
// groups never set, so it marked every message unread again.
func (b *Broker) readGroupStream(ctx context.Context, r *reqCtx, gid string, msgSeq, seq uint64, cur convs.State, floor uint64, counts bool) (any, error) {
	if msgSeq == 0 {
		head, err := b.store.Head(groupStream(gid))
		if err != nil {
			return nil, err
		}
		msgSeq = head.Seq
	}
	cur.Type, cur.GroupId, cur.ReadSeq = convs.TypeGroup, gid, msgSeq
	count := b.streamConv(r.user, cur, floor, counts).UnreadMsgNum
	state := convs.State{Type: convs.TypeGroup, GroupId: gid}
	upd := storage.Update{Name: convs.Key(r.user, convs.GroupID(gid)), Fn: func(old []byte, found bool, _ []storage.Pos) ([]byte, error) {
		st := state
		if found {
			_ = json.Unmarshal(old, &st)
		}
		st.ReadSeq, st.UnreadMsgNum = msgSeq, 0 // unread is counted from the stream when listed
		return mustJSON(st), nil
	}}
	batch := storage.Batch{Updates: []storage.Update{upd}}
	b.readEvents(&batch, r.user, convs.TypeGroup, "", gid, seq, msgSeq, count, nil)
	if _, err := b.store.Commit(ctx, batch); err != nil {
		return nil, err
	}
	return map[string]any{"UnreadMsgNum": count}, nil
}

// userSeqAtGroupPos finds, scanning the user's stream back from lastUserSeq,
// the Seq of the newest copy of a message of group gid at or before group
// position msgSeq (0 if there is none left).
func (b *Broker) userSeqAtGroupPos(uid, gid string, msgSeq, lastUserSeq uint64) (uint64, error) {
	for end := lastUserSeq; end > 0; {
		start := end - min(end, 500)
		_, entries, err := b.store.Read(userStream(uid), start, int(end-start))
		if err != nil || len(entries) == 0 {
			return 0, err
		}
		for i := len(entries) - 1; i >= 0; i-- {
			var ev struct {
				Event string
				Msg   struct {
					GroupId string
					MsgSeq  uint64
				}
			}
			if json.Unmarshal(entries[i].Payload, &ev) == nil && ev.Event == eventGroupMsg && ev.Msg.GroupId == gid && ev.Msg.MsgSeq <= msgSeq {
				return entries[i].Pos.Seq, nil
			}
		}
		end = entries[0].Pos.Seq - 1
	}
	return 0, nil
}

// countIncoming counts the conversation's incoming messages in the user's
// stream after seq, up to the record's last message, and returns the
// message at seq (the last one read). C2C messages sent with NoUnread do
// not count (they never did in UnreadMsgNum either).
func (b *Broker) countIncoming(uid string, st convs.State, seq uint64) (int, json.RawMessage, error) {
	n := 0
	var last json.RawMessage
	match := func(payload []byte) (json.RawMessage, bool, bool) {
		var ev struct {
			Event string
			Msg   json.RawMessage
		}
		if json.Unmarshal(payload, &ev) != nil {
			return nil, false, false
		}
		var m struct {
			From_Account, To_Account, GroupId string
			SendMsgControl                    []string
		}
		_ = json.Unmarshal(ev.Msg, &m)
		switch {
		case st.Type == convs.TypeC2C && ev.Event == wire.EventC2CMsg:
			ours := (m.From_Account == st.Peer_Account && m.To_Account == uid) || (m.From_Account == uid && m.To_Account == st.Peer_Account)
			noUnread, _ := convs.MsgControl(m.SendMsgControl)
			return ev.Msg, ours, ours && m.From_Account != uid && !noUnread
		case st.Type == convs.TypeGroup && ev.Event == eventGroupMsg:
			return ev.Msg, m.GroupId == st.GroupId, m.GroupId == st.GroupId && m.From_Account != uid
		}
		return nil, false, false
	}
	if seq > 0 {
		if _, at, err := b.store.Read(userStream(uid), seq-1, 1); err == nil && len(at) == 1 {
			if msg, ok, _ := match(at[0].Payload); ok {
				last = msg
			}
		}
	}
	// Start at what retention kept: an empty read below the cutoff would
	// otherwise end the count early.
	from := seq
	if _, low, err := b.store.Bounds(userStream(uid)); err == nil && low > 0 && low-1 > from {
		from = low - 1
	}
	for from < st.LastUserSeq {
		_, entries, err := b.store.Read(userStream(uid), from, 500)
		if err != nil || len(entries) == 0 {
			return n, last, err
		}
		for _, e := range entries {
			if e.Pos.Seq > st.LastUserSeq {
				// Done. Before, this only left the inner loop: when retention
				// had trimmed the rest of the range, from never advanced and
				// the outer loop spun forever.
				return n, last, nil
			}
			if _, _, in := match(e.Payload); in {
				n++
			}
			from = e.Pos.Seq
		}
	}
	return n, last, nil
}

// reqConvDelete removes a conversation from the list (and, with
// ClearRamble 1, hides its history up to now from this user). The user's
// devices get ConvDeleted.
func (b *Broker) reqConvDelete(ctx context.Context, r *reqCtx) (any, error) {
	var q struct {
		convTarget
		ClearRamble int
	}
	if err := r.decode(&q, imerr.BadParams); err != nil {
		return nil, err
	}
	kind, conv, err := q.resolve()
	if err != nil {
		return nil, err
	}
	stream := convs.PairStream(r.user, q.Peer_Account)
	if kind == convs.TypeGroup {
		stream = groupStream(q.GroupId)
	}
	head, err := b.store.Head(stream)
	if err != nil {
		return nil, err
	}
	batch := storage.Batch{Sets: map[string][]byte{}}
	if kind == convs.TypeGroup {
		// A tombstone, not a delete: a read-diffusion group's conversation
		// is rebuilt from its stream, so deleting the record made it come
		// straight back, with every message unread. The tombstone is not
		// listed (no last message) and a write-diffusion message simply
		// fills it in again.
		batch.Sets[convs.Key(r.user, conv)] = mustJSON(convs.State{Type: convs.TypeGroup, GroupId: q.GroupId, ReadSeq: head.Seq, DeletedSeq: head.Seq})
	} else {
		batch.Deletes = []string{convs.Key(r.user, conv)}
	}
	if q.ClearRamble == 1 {
		batch.Sets[clearedKey(r.user, conv)] = []byte(strconv.FormatUint(head.Seq, 10))
	}
	ev, _ := wire.EncodeEvent(eventConvDeleted, map[string]any{"Type": kind, "Peer_Account": q.Peer_Account, "GroupId": q.GroupId, "ClearRamble": q.ClearRamble})
	batch.Appends = []storage.Append{{Stream: userStream(r.user), Payload: ev}}
	if _, err := b.store.Commit(ctx, batch); err != nil {
		return nil, err
	}
	return nil, nil
}

// clearedKey holds the position up to which a user cleared a conversation's history.
func clearedKey(uid, conv string) string { return "cf/" + uid + "/" + conv }

func (b *Broker) clearedFloor(uid, conv string) uint64 {
	v, ok, err := b.store.Get(clearedKey(uid, conv))
	if err != nil || !ok {
		return 0
	}
	n, _ := strconv.ParseUint(string(v), 10, 64)
	return n
}
