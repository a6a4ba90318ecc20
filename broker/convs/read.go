package convs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/storage"
)

// ReadRequest is msg.read's: a position marks read up to it, Seq (of the
// user's stream: C2C and write-diffusion groups) or MsgSeq (a group
// position); neither marks everything read.
type ReadRequest struct {
	Target
	Seq    uint64
	MsgSeq uint64
}

// ReadResponse is what is left unread.
type ReadResponse struct {
	UnreadMsgNum int `json:"UnreadMsgNum"`
}

// Read marks a.User's conversation read up to a position (msg.read). Their
// other devices get ConvRead; a C2C peer gets a C2CReadReceipt. [IM-READ-1]
func (s *Service) Read(ctx context.Context, a ops.Actor, q *ReadRequest) (*ReadResponse, error) {
	kind, conv, err := q.resolve()
	if err != nil {
		return nil, err
	}
	readDiffusion, counts, floor := false, false, uint64(0)
	if kind == TypeGroup {
		gc, err := s.groups.Conv(q.GroupId, a.User)
		if err != nil {
			return nil, err
		}
		if !gc.Member {
			return nil, notMember(q.GroupId)
		}
		readDiffusion, counts, floor = gc.ReadDiffusion, gc.CountsUnread, gc.Floor
	}
	cur, _, err := Load(s.store, a.User, conv)
	if err == nil {
		err = LastMsgOf(s.store, a.User, &cur)
	}
	if err != nil {
		return nil, err
	}
	if readDiffusion {
		return s.readGroupStream(ctx, a.User, q.GroupId, q.MsgSeq, q.Seq, cur, max(floor, s.clearedFloor(a.User, conv)), counts)
	}
	all := q.Seq == 0 && q.MsgSeq == 0
	userSeq := q.Seq
	if !all && userSeq == 0 && q.MsgSeq < cur.LastSeq {
		// A group position below the last message: find the user-stream
		// Seq of the last message at or before it. Before, this was
		// treated as a read of everything, losing the remainder.
		if userSeq, err = s.userSeqAtGroupPos(a.User, q.GroupId, q.MsgSeq, cur.LastUserSeq); err != nil {
			return nil, err
		}
	}
	full := all || (q.Seq > 0 && q.Seq >= cur.LastUserSeq) || (q.Seq == 0 && q.MsgSeq >= cur.LastSeq)
	count := 0
	var lastRead json.RawMessage = cur.LastMsg
	readUser, readPos := cur.LastUserSeq, cur.LastSeq
	if !full {
		count, lastRead, err = s.countIncoming(a.User, cur, userSeq)
		if err != nil {
			return nil, err
		}
		readUser, readPos = userSeq, cur.ReadSeq
		if kind == TypeGroup {
			var m struct{ MsgSeq uint64 }
			_ = json.Unmarshal(lastRead, &m)
			if p := max(q.MsgSeq, m.MsgSeq); p > 0 {
				readPos = p
			}
		}
	}
	recv0 := cur.RecvTotal
	state := State{Type: kind, Peer_Account: q.Peer_Account, GroupId: q.GroupId}
	upd := storage.Update{Name: Key(a.User, conv), Fn: func(old []byte, found bool, _ []storage.Pos) ([]byte, error) {
		st := state
		if found {
			_ = Decode(old, &st)
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
		return Encode(&st), nil
	}}
	batch := storage.Batch{Updates: []storage.Update{upd}}
	if err := readEvents(&batch, a.User, kind, q.Peer_Account, q.GroupId, q.Seq, q.MsgSeq, count, lastRead); err != nil {
		return nil, err
	}
	if _, err := s.store.Commit(ctx, batch); err != nil {
		return nil, fmt.Errorf("read report of %s in %s: %w", a.User, conv, err)
	}
	if kind == TypeC2C {
		s.afterMsgReport(ctx, a.User, q.Peer_Account, count) // C2C.CallbackAfterMsgReport
	}
	return &ReadResponse{UnreadMsgNum: count}, nil
}

// readEvents adds a read report's events to batch: ConvRead to the reader's
// devices and, for C2C, a C2CReadReceipt naming the last message read to
// the peer. Their fields are in name order, as they were always stored.
func readEvents(batch *storage.Batch, uid string, kind int, peer, gid string, seq, msgSeq uint64, unread int, lastRead json.RawMessage) error {
	readEv, err := wire.EncodeEvent(eventConvRead, struct {
		GroupId      string
		MsgSeq       uint64
		Peer_Account string
		ReadTime     int64
		Seq          uint64
		Type         int
		UnreadMsgNum int
	}{gid, msgSeq, peer, time.Now().Unix(), seq, kind, unread})
	if err != nil {
		return err
	}
	batch.Appends = append(batch.Appends, storage.Append{Stream: UserStream(uid), Payload: readEv})
	if kind == TypeC2C && peer != uid && lastRead != nil {
		var m struct {
			MsgKey  string
			MsgTime int64
		}
		_ = json.Unmarshal(lastRead, &m)
		rc, err := wire.EncodeEvent(eventReadReceipt, struct {
			LastReadTime int64
			MsgKey       string
			Peer_Account string
		}{m.MsgTime, m.MsgKey, uid})
		if err != nil {
			return err
		}
		batch.Appends = append(batch.Appends, storage.Append{Stream: UserStream(peer), Payload: rc})
	}
	return nil
}

// readGroupStream is msg.read for a read-diffusion group, whose record
// only keeps ReadSeq: up to MsgSeq, or (none given) the group's head.
// Before, "everything" set ReadSeq to the record's LastSeq, which such
// groups never set, so it marked every message unread again.
func (s *Service) readGroupStream(ctx context.Context, uid, gid string, msgSeq, seq uint64, cur State, floor uint64, counts bool) (*ReadResponse, error) {
	if msgSeq == 0 {
		head, err := s.store.Head(GroupStream(gid))
		if err != nil {
			return nil, err
		}
		msgSeq = head.Seq
	}
	cur.Type, cur.GroupId, cur.ReadSeq = TypeGroup, gid, msgSeq
	count := s.streamConv(uid, cur, floor, counts).UnreadMsgNum
	state := State{Type: TypeGroup, GroupId: gid}
	upd := storage.Update{Name: Key(uid, GroupID(gid)), Fn: func(old []byte, found bool, _ []storage.Pos) ([]byte, error) {
		st := state
		if found {
			_ = Decode(old, &st)
		}
		st.ReadSeq, st.UnreadMsgNum = msgSeq, 0 // unread is counted from the stream when listed
		return Encode(&st), nil
	}}
	batch := storage.Batch{Updates: []storage.Update{upd}}
	if err := readEvents(&batch, uid, TypeGroup, "", gid, seq, msgSeq, count, nil); err != nil {
		return nil, err
	}
	if _, err := s.store.Commit(ctx, batch); err != nil {
		return nil, fmt.Errorf("read report of %s in group %s: %w", uid, gid, err)
	}
	return &ReadResponse{UnreadMsgNum: count}, nil
}

// userSeqAtGroupPos finds, scanning the user's stream back from lastUserSeq,
// the Seq of the newest copy of a message of group gid at or before group
// position msgSeq (0 if there is none left).
func (s *Service) userSeqAtGroupPos(uid, gid string, msgSeq, lastUserSeq uint64) (uint64, error) {
	for end := lastUserSeq; end > 0; {
		start := end - min(end, 500)
		_, entries, err := s.store.Read(UserStream(uid), start, int(end-start))
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
			if json.Unmarshal(entries[i].Payload, &ev) == nil && ev.Event == wire.EventGroupMsg && ev.Msg.GroupId == gid && ev.Msg.MsgSeq <= msgSeq {
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
func (s *Service) countIncoming(uid string, st State, seq uint64) (int, json.RawMessage, error) {
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
		case st.Type == TypeC2C && ev.Event == wire.EventC2CMsg:
			ours := (m.From_Account == st.Peer_Account && m.To_Account == uid) || (m.From_Account == uid && m.To_Account == st.Peer_Account)
			noUnread, _ := MsgControl(m.SendMsgControl)
			return ev.Msg, ours, ours && m.From_Account != uid && !noUnread
		case st.Type == TypeGroup && ev.Event == wire.EventGroupMsg:
			return ev.Msg, m.GroupId == st.GroupId, m.GroupId == st.GroupId && m.From_Account != uid
		}
		return nil, false, false
	}
	if seq > 0 {
		if _, at, err := s.store.Read(UserStream(uid), seq-1, 1); err == nil && len(at) == 1 {
			if msg, ok, _ := match(at[0].Payload); ok {
				last = msg
			}
		}
	}
	// Start at what retention kept: an empty read below the cutoff would
	// otherwise end the count early.
	from := seq
	if _, low, err := s.store.Bounds(UserStream(uid)); err == nil && low > 0 && low-1 > from {
		from = low - 1
	}
	for from < st.LastUserSeq {
		_, entries, err := s.store.Read(UserStream(uid), from, 500)
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
