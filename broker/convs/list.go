package convs

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/storage"
)

// Conversation event names (user stream).
const (
	eventConvRead    = "ConvRead"       // to the reader's own devices
	eventReadReceipt = "C2CReadReceipt" // to the peer of a C2C conversation
	eventConvDeleted = "ConvDeleted"    // to the user's own devices
)

// streamConvWindow is how many of a read-diffusion group's last events
// conv.list and msg.read look at.
const streamConvWindow = 250

// ListRequest is conv.list's.
type ListRequest struct {
	Limit, Offset int
}

// ListResponse is a page of the user's conversations, newest first. Fields
// are in name order, as the reply always had them.
type ListResponse struct {
	AllUnreadMsgNum int    `json:"AllUnreadMsgNum"`
	ConvList        []Item `json:"ConvList"`
	TotalCount      int    `json:"TotalCount"`
}

// Item is a conversation as conv.list shows it.
type Item struct {
	GroupId      string          `json:"GroupId,omitempty"` // group
	LastMsg      json.RawMessage `json:"LastMsg"`
	LastMsgTime  int64           `json:"LastMsgTime"`
	LastSeq      uint64          `json:"LastSeq"`
	LastUserSeq  uint64          `json:"LastUserSeq"`
	Peer_Account string          `json:"Peer_Account,omitempty"` // C2C
	ReadSeq      uint64          `json:"ReadSeq"`
	Type         int             `json:"Type"`
	UnreadMsgNum int             `json:"UnreadMsgNum"`
}

func itemOf(st State) Item {
	it := Item{Type: st.Type, LastMsg: st.LastMsg, LastMsgTime: st.LastMsgTime, UnreadMsgNum: st.UnreadMsgNum,
		LastSeq: st.LastSeq, LastUserSeq: st.LastUserSeq, ReadSeq: st.ReadSeq}
	if st.Type == TypeC2C {
		it.Peer_Account = st.Peer_Account
	} else {
		it.GroupId = st.GroupId
	}
	return it
}

// List lists a.User's conversations, newest first, with the last message
// and the unread count (conv.list). [IM-CONV-1]
func (s *Service) List(_ context.Context, a ops.Actor, q *ListRequest) (*ListResponse, error) {
	limit := q.Limit
	if limit <= 0 || limit > s.cfg.MaxList {
		limit = s.cfg.MaxList
	}
	// Read-diffusion groups' conversations are built from their streams;
	// their records only hold the read (and delete) position. Before, any
	// record of such a group (even one msg.read wrote, with no message)
	// hid the group from the list.
	rd, list, err := s.readDiffusionConvs(a.User)
	if err != nil {
		return nil, err
	}
	if err := storage.ScanAll(s.store, Prefix(a.User), func(_ string, v []byte) error {
		var st State
		if err := Decode(v, &st); err != nil {
			return err
		}
		if st.LastMsgTime > 0 && !(st.Type == TypeGroup && rd[st.GroupId]) {
			list = append(list, st)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list conversations of %s: %w", a.User, err)
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].LastMsgTime > list[j].LastMsgTime })
	out := &ListResponse{ConvList: []Item{}, TotalCount: len(list)}
	for _, c := range list {
		out.AllUnreadMsgNum += c.UnreadMsgNum
	}
	for i := max(q.Offset, 0); i < len(list) && len(out.ConvList) < limit; i++ {
		if err := LastMsgOf(s.store, a.User, &list[i]); err != nil {
			return nil, err
		}
		out.ConvList = append(out.ConvList, itemOf(list[i]))
	}
	return out, nil
}

// readDiffusionConvs builds conversations for the user's stored
// read-diffusion groups, which keep no per-member record per message: the
// last message comes from the group stream, and unread (for types that
// count it) from the messages after the user's read position. It also
// returns every read-diffusion group of the user, listed or not.
func (s *Service) readDiffusionConvs(uid string) (map[string]bool, []State, error) {
	gcs, err := s.groups.ReadDiffusionConvs(uid)
	if err != nil {
		return nil, nil, fmt.Errorf("read-diffusion groups of %s: %w", uid, err)
	}
	rd := map[string]bool{}
	var out []State
	for _, gc := range gcs {
		rd[gc.GroupID] = true
		st, _, err := Load(s.store, uid, GroupID(gc.GroupID))
		if err != nil {
			return nil, nil, err
		}
		st.Type, st.GroupId = TypeGroup, gc.GroupID
		floor := max(gc.Floor, s.clearedFloor(uid, GroupID(gc.GroupID)))
		if st = s.streamConv(uid, st, floor, gc.CountsUnread); st.LastMsgTime > 0 && st.LastSeq > st.DeletedSeq {
			out = append(out, st)
		}
	}
	return rd, out, nil
}

// streamConv fills a read-diffusion group conversation from the last 250
// entries of the group stream above floor (what the user may see): the
// last message, and unread as the messages from others after ReadSeq.
// Before, the scan started at ReadSeq, so a conversation read to the end
// had no last message and vanished from the list; and it started below the
// member's join point, counting messages from before they joined.
func (s *Service) streamConv(uid string, st State, floor uint64, counts bool) State {
	st.LastMsg, st.LastMsgTime, st.LastSeq, st.UnreadMsgNum = nil, 0, 0, 0
	_, entries, err := s.store.Read(GroupStream(st.GroupId), max(floor, s.historyStart(st.GroupId, streamConvWindow)), streamConvWindow)
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
		if json.Unmarshal(e.Payload, &ev) != nil || ev.Event != wire.EventGroupMsg || json.Unmarshal(ev.Msg, &m) != nil {
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
func (s *Service) historyStart(gid string, n uint64) uint64 {
	head, err := s.store.Head(GroupStream(gid))
	if err != nil || head.Seq <= n {
		return 0
	}
	return head.Seq - n
}

// DeleteRequest is conv.delete's.
type DeleteRequest struct {
	Target
	ClearRamble int // 1: also hide the history up to now from this user
}

// Delete removes a conversation from a.User's list (conv.delete) and, with
// ClearRamble 1, hides its history up to now from them. Their devices get
// ConvDeleted.
func (s *Service) Delete(ctx context.Context, a ops.Actor, q *DeleteRequest) (*Empty, error) {
	kind, conv, err := q.resolve()
	if err != nil {
		return nil, err
	}
	stream := PairStream(a.User, q.Peer_Account)
	if kind == TypeGroup {
		stream = GroupStream(q.GroupId)
	}
	head, err := s.store.Head(stream)
	if err != nil {
		return nil, err
	}
	batch := storage.Batch{Sets: map[string][]byte{}}
	if kind == TypeGroup {
		// A tombstone, not a delete: a read-diffusion group's conversation
		// is rebuilt from its stream, so deleting the record made it come
		// straight back, with every message unread. The tombstone is not
		// listed (no last message) and a write-diffusion message simply
		// fills it in again.
		batch.Sets[Key(a.User, conv)] = Encode(&State{Type: TypeGroup, GroupId: q.GroupId, ReadSeq: head.Seq, DeletedSeq: head.Seq})
	} else {
		batch.Deletes = []string{Key(a.User, conv)}
	}
	if q.ClearRamble == 1 {
		batch.Sets[clearedKey(a.User, conv)] = []byte(strconv.FormatUint(head.Seq, 10))
	}
	ev, err := wire.EncodeEvent(eventConvDeleted, struct { // fields in name order, as stored before
		ClearRamble  int
		GroupId      string
		Peer_Account string
		Type         int
	}{q.ClearRamble, q.GroupId, q.Peer_Account, kind})
	if err != nil {
		return nil, err
	}
	batch.Appends = []storage.Append{{Stream: UserStream(a.User), Payload: ev}}
	if _, err := s.store.Commit(ctx, batch); err != nil {
		return nil, fmt.Errorf("delete conversation %s of %s: %w", conv, a.User, err)
	}
	return &Empty{}, nil
}

// clearedKey holds the position up to which a user cleared a conversation's history.
func clearedKey(uid, conv string) string { return "cf/" + uid + "/" + conv }

func (s *Service) clearedFloor(uid, conv string) uint64 {
	v, ok, err := s.store.Get(clearedKey(uid, conv))
	if err != nil || !ok {
		return 0
	}
	n, _ := strconv.ParseUint(string(v), 10, 64)
	return n
}

// PeerUnread is one C2C conversation's unread count.
type PeerUnread struct {
	Peer   string
	Unread int
}

// C2CUnread returns uid's unread counts per C2C peer, in peer order (all
// C2C conversations when peers is empty), and their total (Tencent
// get_c2c_unread_msg_num).
func (s *Service) C2CUnread(uid string, peers []string) ([]PeerUnread, int, error) {
	var out []PeerUnread
	total := 0
	if len(peers) == 0 {
		err := storage.ScanAll(s.store, Prefix(uid), func(_ string, v []byte) error {
			var st State
			if err := Decode(v, &st); err != nil {
				return err
			}
			if st.Type == TypeC2C {
				out = append(out, PeerUnread{st.Peer_Account, st.UnreadMsgNum})
			}
			return nil
		})
		if err != nil {
			return nil, 0, fmt.Errorf("unread counts of %s: %w", uid, err)
		}
	} else {
		for _, p := range peers {
			if slices.ContainsFunc(out, func(u PeerUnread) bool { return u.Peer == p }) {
				continue
			}
			st, _, err := Load(s.store, uid, C2CID(p))
			if err != nil {
				return nil, 0, err
			}
			out = append(out, PeerUnread{p, st.UnreadMsgNum})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Peer < out[j].Peer })
	for _, u := range out {
		total += u.Unread
	}
	return out, total, nil
}
