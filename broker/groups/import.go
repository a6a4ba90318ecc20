package groups

import (
	"context"
	"encoding/json"
	"time"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// Imports from another system (Tencent import_group, import_group_member,
// import_group_msg): the app admin's REST API.

// ImportGroup creates a group as Create does, with createTime (Unix
// seconds; 0: now) as its CreateTime, in the same commit. Members are
// imported with ImportMembers.
func (s *Service) ImportGroup(ctx context.Context, a ops.Actor, q *CreateRequest, createTime int64) (*CreateResponse, error) {
	if q.Type == "AVChatRoom" {
		return nil, imerr.GroupNoPermission.New("AVChatRoom groups cannot be imported")
	}
	q.MemberList = nil // import_group_member adds members
	return s.create(ctx, a, q, createTime, true)
}

// ImportedMember is one import_group_member entry.
type ImportedMember struct {
	Member_Account string
	Role           string
	JoinTime       int64
	UnreadMsgNum   int
}

// ImportMembers adds members with their roles and join times (Tencent
// import_group_member), with one MemberJoin tip, in one commit. Result per
// member: 1 added, 2 already a member, 0 failed.
func (s *Service) ImportMembers(ctx context.Context, gid string, list []ImportedMember) ([]int, error) {
	g, err := s.lock(gid)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	if g.policy.Kind == kindAVChatRoom {
		return nil, imerr.GroupNoPermission.New("AVChatRoom members cannot be imported")
	}
	res := make([]int, len(list))
	var add []string
	want := map[string]ImportedMember{}
	for i, m := range list {
		switch {
		case ids.CheckUserID(m.Member_Account) != nil:
		case m.Role != "" && m.Role != roleMember && !(m.Role == roleAdmin && g.policy.hasAdmins()):
		case g.isMember(m.Member_Account):
			res[i] = 2
		case want[m.Member_Account].Member_Account != "":
			res[i] = 2
		default:
			want[m.Member_Account] = m
			add = append(add, m.Member_Account)
			res[i] = 1
		}
	}
	if len(add) == 0 {
		return res, nil
	}
	err = s.addMembers(ctx, g, s.admin, add, joining{
		shape: func(m *Member) {
			im := want[m.Member_Account]
			if im.Role == roleAdmin {
				m.Role = roleAdmin
			}
			if im.JoinTime > 0 {
				m.JoinTime = im.JoinTime
			}
		},
		updates: func(uid string) *storage.Update {
			if n := want[uid].UnreadMsgNum; n > 0 {
				u := setUnread(uid, gid, n)
				return &u
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// ImportedMsg is one import_group_msg entry.
type ImportedMsg struct {
	From_Account string
	SendTime     int64
	Random       uint32
	MsgBody      json.RawMessage
}

// ImportMsgs appends historical messages to the group stream, each with
// its SendTime as MsgTime and a new MsgSeq (Tencent import_group_msg). They
// count no unread; with recentContact they update write-diffusion members'
// conversation records (and copies reach their user streams), otherwise
// they are only in the group history. Results: the MsgSeq each got, 0 for
// a refused one.
func (s *Service) ImportMsgs(ctx context.Context, gid string, recentContact bool, msgs []ImportedMsg) ([]uint64, error) {
	g, err := s.lock(gid)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	if !g.policy.stored() || g.policy.Kind == kindAVChatRoom {
		return nil, imerr.GroupNoPermission.New("%s keeps no imported messages", g.info.Type)
	}
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		if ids.CheckUserID(m.From_Account) != nil || len(m.MsgBody) == 0 || m.SendTime <= 0 {
			continue
		}
		ev := event{name: wire.EventGroupMsg, build: func(seq uint64, _ time.Time) any {
			return wire.GroupMsg{GroupId: gid, From_Account: m.From_Account, MsgSeq: seq, MsgRandom: m.Random, MsgTime: m.SendTime, MsgBody: m.MsgBody}
		}}
		var c change
		if recentContact {
			c.userCopies = s.userCopiesFor(g)
			ev.conv = &groupConv{from: m.From_Account, noUnread: true, msgTime: m.SendTime}
		}
		c.events = []event{ev}
		seq, _, err := s.commit(ctx, g, c)
		if err != nil {
			return out, err
		}
		out[i] = seq
		// An imported message is a group message: LastMsgTime moves to
		// it if it is the latest, as a node following the log sees it.
		g.apply(func() { g.info.LastMsgTime = max(g.info.LastMsgTime, m.SendTime) })
	}
	return out, nil
}
