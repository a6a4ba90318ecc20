package groups

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/imerr"
)

// Who may read a group: its history (group.history here, group.sync on the
// MQTT side through Readable), its live events (the im/g/{gid} delivery
// ACL, CanRead), and what the conversation operations need to know of a
// user's groups (Conv, ReadDiffusionConvs of convs.Groups).

// historyFloor is the last group seq a member may not read: their join
// point, unless the type shows history from before joining.
func (g *group) historyFloor(uid string, admin bool) uint64 {
	if admin || g.policy.HistoryBeforeJoin {
		return 0
	}
	if m := g.members[uid]; m != nil {
		return m.JoinSeq
	}
	return 0
}

// Readable checks that a may read gid's stored history (members and the
// app admin of stored groups) and returns the floor: the last group seq a
// may not see.
func (s *Service) Readable(a ops.Actor, gid string) (uint64, error) {
	g, err := s.lock(gid)
	if err != nil {
		return 0, err
	}
	defer g.op.Unlock()
	if !g.policy.stored() {
		return 0, imerr.GroupNoRoaming.New("%s groups keep no history", g.info.Type)
	}
	if !a.Admin && g.role(a.User) == "" {
		return 0, noPermission("only members read a group's history")
	}
	return g.historyFloor(a.User, a.Admin), nil
}

// HistoryRequest is group.history (Tencent group_msg_get_simple).
type HistoryRequest struct {
	GroupId      string
	ReqMsgSeq    uint64 // the newest seq to return (0: the newest)
	ReqMsgNumber int    // at most 20
}

// HistoryResponse holds stored events as they were delivered (with Seq
// and Epoch), newest first.
type HistoryResponse struct {
	GroupId    string
	IsFinished bool // nothing older is visible
	RspMsgList []json.RawMessage
}

// History returns up to ReqMsgNumber (≤ 20) stored events at or below
// ReqMsgSeq (0 = newest), newest first, as they were delivered.
func (s *Service) History(_ context.Context, a ops.Actor, q *HistoryRequest) (*HistoryResponse, error) {
	n := q.ReqMsgNumber
	if n <= 0 || n > 20 {
		n = 20
	}
	floor, err := s.Readable(a, q.GroupId)
	if err != nil {
		return nil, err
	}
	stream := convs.GroupStream(q.GroupId)
	head, low, err := s.store.Bounds(stream)
	if err != nil {
		return nil, fmt.Errorf("bounds of %s: %w", stream, err)
	}
	floor = max(floor, low-1) // retention deleted what lies below low
	end := head.Seq
	if q.ReqMsgSeq > 0 && q.ReqMsgSeq < end {
		end = q.ReqMsgSeq
	}
	start := floor
	if end > uint64(n) && end-uint64(n) > start {
		start = end - uint64(n)
	}
	list := []json.RawMessage{}
	if end > start {
		_, entries, err := s.store.Read(stream, start, int(end-start))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		for i := len(entries) - 1; i >= 0; i-- {
			list = append(list, wire.Envelope(entries[i].Pos.Epoch, entries[i].Pos.Seq, entries[i].Payload))
		}
	}
	return &HistoryResponse{GroupId: q.GroupId, IsFinished: start <= floor, RspMsgList: list}, nil
}

// CanRead is the delivery ACL of im/g/{gid}: members; every user for a
// BChatRoom; guests (user "") for live rooms whose type admits them, when
// guests are enabled; the app admin.
func (s *Service) CanRead(user, gid string) bool {
	g, err := s.load(gid)
	if err != nil || g == nil {
		return false
	}
	return s.canRead(g, user)
}

// Reader is CanRead of group gid for many users, the group looked up once:
// a live room's fan-out checks every member for each message. Each call
// reads the group's state as it is then, as CanRead does; user is a
// client's user name ([]byte: no copy per call).
func (s *Service) Reader(gid string) func(user []byte) bool {
	g, err := s.load(gid)
	if err != nil || g == nil {
		return func([]byte) bool { return false }
	}
	return func(user []byte) bool { return s.canRead(g, string(user)) }
}

func (s *Service) canRead(g *group, user string) bool {
	if user == "" {
		return s.guests && g.policy.Guests && !g.isDestroyed()
	}
	if user == s.admin || (g.policy.openReceive() && !g.isDestroyed()) {
		return true
	}
	return g.isMember(user)
}

// Conv is uid's standing in group gid for the conversation operations
// (convs.Groups), read under the group's lock, so no change is in flight.
func (s *Service) Conv(gid, uid string) (convs.GroupConv, error) {
	g, err := s.lock(gid)
	if err != nil {
		return convs.GroupConv{}, err
	}
	defer g.op.Unlock()
	return s.standing(g, uid), nil
}

// standing is uid's standing in g; callers hold g.op or g.mu.
func (s *Service) standing(g *group, uid string) convs.GroupConv {
	stored := g.policy.stored()
	return convs.GroupConv{GroupID: g.info.GroupId, Type: g.info.Type, Member: g.role(uid) != "", Stored: stored,
		ReadDiffusion: stored && g.policy.readDiffusion(len(g.members), s.cfg.ReadDiffusionAbove),
		CountsUnread:  g.policy.unread(), Floor: g.historyFloor(uid, false)}
}

// ReadDiffusionConvs lists uid's standing in each of their stored groups
// under read diffusion (convs.Groups), as committed: each read under the
// group's mu, since conv.list must not wait for a group's commits.
func (s *Service) ReadDiffusionConvs(uid string) ([]convs.GroupConv, error) {
	kvs, err := s.store.Scan(joinedPrefix(uid), "", s.cfg.MaxJoinedPerUser+1)
	if err != nil {
		return nil, fmt.Errorf("list the groups of %s: %w", uid, err)
	}
	var out []convs.GroupConv
	for _, kv := range kvs {
		g, err := s.load(strings.TrimPrefix(kv.Name, joinedPrefix(uid)))
		if err != nil || g == nil {
			continue
		}
		g.mu.RLock()
		gc := s.standing(g, uid)
		g.mu.RUnlock()
		if gc.ReadDiffusion {
			out = append(out, gc)
		}
	}
	return out, nil
}
