package broker

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/imbroker/imbroker/internal/ids"
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
			return 0, "", newError(CodeBadAccount, reasonImplementation, "invalid Peer_Account")
		}
		return convC2C, c2cConvID(t.Peer_Account), nil
	case "2", "Group":
		if ids.CheckGroupID(t.GroupId, false) != nil {
			return 0, "", newError(CodeGroupInvalid, reasonImplementation, "invalid GroupId")
		}
		return convGroup, groupConvID(t.GroupId), nil
	}
	return 0, "", newError(CodeBadParams, reasonPayloadFormat, "Type must be 1 (C2C) or 2 (Group)")
}

func (b *Broker) loadConv(uid, conv string) (convState, bool, error) {
	raw, ok, err := b.store.Get(convKey(uid, conv))
	if err != nil || !ok {
		return convState{}, ok, err
	}
	var st convState
	return st, true, json.Unmarshal(raw, &st)
}

// convView is a conversation as conv.list shows it.
func convView(st convState) map[string]any {
	v := map[string]any{"Type": st.Type, "LastMsg": st.LastMsg, "LastMsgTime": st.LastMsgTime,
		"UnreadMsgNum": st.UnreadMsgNum, "LastSeq": st.LastSeq, "LastUserSeq": st.LastUserSeq, "ReadSeq": st.ReadSeq}
	if st.Type == convC2C {
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
	if err := r.decode(&q, CodeBadParams); err != nil {
		return nil, err
	}
	if q.Limit <= 0 || q.Limit > b.cfg.Conversations.MaxList {
		q.Limit = b.cfg.Conversations.MaxList
	}
	var list []convState
	seen := map[string]bool{}
	if err := scanAll(b.store, convPrefix(r.user), func(v []byte) error {
		var st convState
		if err := json.Unmarshal(v, &st); err != nil {
			return err
		}
		if st.LastMsgTime > 0 {
			list = append(list, st)
		}
		seen[st.GroupId] = st.GroupId != ""
		return nil
	}); err != nil {
		return nil, err
	}
	list = append(list, b.readDiffusionConvs(r.user, seen)...)
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
// count it) from the messages after the user's read position.
func (b *Broker) readDiffusionConvs(uid string, seen map[string]bool) []convState {
	var out []convState
	kvs, err := b.store.Scan(joinedPrefix(uid), "", b.cfg.Groups.MaxJoinedPerUser+1)
	if err != nil {
		return nil
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
		g.mu.RUnlock()
		if !read {
			continue
		}
		st, _, _ := b.loadConv(uid, groupConvID(gid))
		st.Type, st.GroupId, st.UnreadMsgNum = convGroup, gid, 0
		head, entries, err := b.store.Read(groupStream(gid), max(st.ReadSeq, b.historyStart(gid, 250)), 250)
		if err != nil {
			continue
		}
		for _, e := range entries {
			var ev struct {
				Event string
				Msg   struct {
					From_Account string
					MsgTime      int64
				}
			}
			if json.Unmarshal(e.Payload, &ev) != nil || ev.Event != eventGroupMsg {
				continue
			}
			var m struct{ Msg json.RawMessage }
			_ = json.Unmarshal(e.Payload, &m)
			st.LastMsg, st.LastMsgTime, st.LastSeq = m.Msg, ev.Msg.MsgTime, e.Pos.Seq
			if counts && ev.Msg.From_Account != uid && e.Pos.Seq > st.ReadSeq {
				st.UnreadMsgNum++
			}
		}
		if st.LastMsgTime == 0 && head.Seq > 0 {
			continue // no message in the recent window
		}
		if st.LastMsgTime > 0 && !seen[gid] {
			out = append(out, st)
		}
	}
	return out
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
	if err := r.decode(&q, CodeBadParams); err != nil {
		return nil, err
	}
	kind, conv, err := q.resolve()
	if err != nil {
		return nil, err
	}
	if kind == convGroup {
		g, err := b.lockGroup(q.GroupId)
		if err != nil {
			return nil, err
		}
		member := g.role(r.user) != ""
		g.op.Unlock()
		if !member {
			return nil, noPermission("not a member of %s", q.GroupId)
		}
	}
	cur, _, err := b.loadConv(r.user, conv)
	if err != nil {
		return nil, err
	}
	full := (q.Seq == 0 && q.MsgSeq == 0) || (q.Seq > 0 && q.Seq >= cur.LastUserSeq) || (q.MsgSeq > 0 && q.MsgSeq >= cur.LastSeq)
	count := 0
	var lastRead json.RawMessage = cur.LastMsg
	if !full && q.Seq > 0 {
		count, lastRead, err = b.countIncoming(r.user, cur, q.Seq)
		if err != nil {
			return nil, err
		}
	} else if !full {
		full = true // a MsgSeq below the last message of a write-diffusion record: treat as the last
	}
	recv0 := cur.RecvTotal
	state := convState{Type: kind, Peer_Account: q.Peer_Account, GroupId: q.GroupId}
	upd := storage.Update{Name: convKey(r.user, conv), Fn: func(old []byte, found bool, _ []storage.Pos) []byte {
		st := state
		if found {
			_ = json.Unmarshal(old, &st)
		}
		if full {
			st.UnreadMsgNum, st.ReadUserSeq, st.ReadSeq = 0, st.LastUserSeq, st.LastSeq
			if q.MsgSeq > st.ReadSeq { // read-diffusion groups have no per-message record
				st.ReadSeq = q.MsgSeq
			}
		} else {
			st.UnreadMsgNum = count + int(st.RecvTotal-recv0)
			st.ReadUserSeq = q.Seq
		}
		return mustJSON(st)
	}}
	readEv, _ := encodeEvent(eventConvRead, map[string]any{"Type": kind, "Peer_Account": q.Peer_Account, "GroupId": q.GroupId,
		"Seq": q.Seq, "MsgSeq": q.MsgSeq, "UnreadMsgNum": count, "ReadTime": time.Now().Unix()})
	batch := storage.Batch{Updates: []storage.Update{upd}, Appends: []storage.Append{{Stream: userStream(r.user), Payload: readEv}}}
	if kind == convC2C && q.Peer_Account != r.user && lastRead != nil {
		var m struct {
			MsgKey  string
			MsgTime int64
		}
		_ = json.Unmarshal(lastRead, &m)
		rc, _ := encodeEvent(eventReadReceipt, map[string]any{"Peer_Account": r.user, "LastReadTime": m.MsgTime, "MsgKey": m.MsgKey})
		batch.Appends = append(batch.Appends, storage.Append{Stream: userStream(q.Peer_Account), Payload: rc})
	}
	if _, err := b.store.Commit(ctx, batch); err != nil {
		return nil, err
	}
	return map[string]any{"UnreadMsgNum": count}, nil
}

// countIncoming counts the conversation's incoming messages in the user's
// stream after seq, up to the record's last message, and returns the
// message at seq (the last one read).
func (b *Broker) countIncoming(uid string, st convState, seq uint64) (int, json.RawMessage, error) {
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
		var m struct{ From_Account, To_Account, GroupId string }
		_ = json.Unmarshal(ev.Msg, &m)
		switch {
		case st.Type == convC2C && ev.Event == eventC2CMsg:
			ours := (m.From_Account == st.Peer_Account && m.To_Account == uid) || (m.From_Account == uid && m.To_Account == st.Peer_Account)
			return ev.Msg, ours, ours && m.From_Account != uid
		case st.Type == convGroup && ev.Event == eventGroupMsg:
			return ev.Msg, m.GroupId == st.GroupId, m.GroupId == st.GroupId && m.From_Account != uid
		}
		return nil, false, false
	}
	if _, at, err := b.store.Read(userStream(uid), seq-1, 1); err == nil && len(at) == 1 {
		if msg, ok, _ := match(at[0].Payload); ok {
			last = msg
		}
	}
	for from := seq; from < st.LastUserSeq; {
		_, entries, err := b.store.Read(userStream(uid), from, 500)
		if err != nil || len(entries) == 0 {
			return n, last, err
		}
		for _, e := range entries {
			if e.Pos.Seq > st.LastUserSeq {
				break
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
	if err := r.decode(&q, CodeBadParams); err != nil {
		return nil, err
	}
	kind, conv, err := q.resolve()
	if err != nil {
		return nil, err
	}
	batch := storage.Batch{Deletes: []string{convKey(r.user, conv)}}
	if q.ClearRamble == 1 {
		stream := pairStream(r.user, q.Peer_Account)
		if kind == convGroup {
			stream = groupStream(q.GroupId)
		}
		head, err := b.store.Head(stream)
		if err != nil {
			return nil, err
		}
		batch.Sets = map[string][]byte{clearedKey(r.user, conv): []byte(strconv.FormatUint(head.Seq, 10))}
	}
	ev, _ := encodeEvent(eventConvDeleted, map[string]any{"Type": kind, "Peer_Account": q.Peer_Account, "GroupId": q.GroupId, "ClearRamble": q.ClearRamble})
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
