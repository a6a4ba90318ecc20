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
	"github.com/imbroker/imbroker/storage"
)

// View is a group's profile as group.info shows it.
type View struct {
	GroupId           string
	Type              string
	Name              string
	Introduction      string
	Notification      string
	FaceUrl           string
	Owner_Account     string
	CreateTime        int64
	InfoSeq           uint64
	LastInfoTime      int64
	LastMsgTime       int64
	NextMsgSeq        uint64
	MemberNum         int
	MaxMemberNum      int
	ApplyJoinOption   string
	MuteAllMember     string
	AppDefinedData    []wire.KVItem
	Diffusion         string // "write" or "read" (docs/architecture.md, "Groups")
	HistoryBeforeJoin bool
}

// view is g's View.
func (s *Service) view(g *group) *View {
	g.mu.RLock() // g.mu -> store: a Pebble read of the head, never a commit
	defer g.mu.RUnlock()
	head := g.memSeq
	if g.policy.stored() {
		if p, err := s.store.Head(convs.GroupStream(g.info.GroupId)); err == nil {
			head = p.Seq
		}
	}
	diff := "write"
	if g.policy.readDiffusion(len(g.members), s.cfg.ReadDiffusionAbove) {
		diff = "read"
	}
	defined := g.info.AppDefinedData
	if defined == nil {
		defined = []wire.KVItem{}
	}
	return &View{
		GroupId: g.info.GroupId, Type: g.info.Type, Name: g.info.Name, Introduction: g.info.Introduction,
		Notification: g.info.Notification, FaceUrl: g.info.FaceUrl, Owner_Account: g.info.Owner_Account,
		CreateTime: g.info.CreateTime, InfoSeq: g.info.InfoSeq, LastInfoTime: g.info.LastInfoTime,
		LastMsgTime: g.info.LastMsgTime, NextMsgSeq: head + 1, MemberNum: len(g.members),
		MaxMemberNum: g.info.MaxMemberNum, ApplyJoinOption: g.info.ApplyJoinOption,
		MuteAllMember: g.info.MuteAllMember, AppDefinedData: defined,
		Diffusion: diff, HistoryBeforeJoin: g.policy.HistoryBeforeJoin,
	}
}

// InfoRequest is group.info (Tencent get_group_info).
type InfoRequest struct {
	GroupIdList    []string
	ResponseFilter *InfoFilter // REST: which member fields MemberList shows
}

// InfoFilter is get_group_info's ResponseFilter. Only the member filters
// are applied: every base field and every group-defined field is shown.
type InfoFilter struct {
	GroupBaseInfoFilter        []string
	AppDefinedDataFilter_Group []string
	MemberFilter
}

// InfoResponse answers group.info.
type InfoResponse struct {
	GroupInfo []InfoItem
}

// InfoItem is one group of group.info: its profile, or only its id and
// the error.
type InfoItem struct {
	GroupId         string
	*View                        // nil on error
	ShutUpAllMember string       `json:",omitempty"` // Tencent's older name of MuteAllMember, which its answers still carry
	MemberList      []MemberInfo `json:",omitempty"` // REST only: with no ResponseFilter, or one with a member filter
	ErrorCode       int
	ErrorInfo       string
}

// Info returns the profiles of up to 50 groups. Members (and the app
// admin) see any group; others see all but Work groups. Over REST (the app
// admin acting) each group also lists its members, as Tencent's
// get_group_info does, filtered by ResponseFilter's member filters; with a
// ResponseFilter naming none of them, no MemberList.
func (s *Service) Info(_ context.Context, a ops.Actor, q *InfoRequest) (*InfoResponse, error) {
	if len(q.GroupIdList) == 0 || len(q.GroupIdList) > 50 {
		return nil, badParams("GroupIdList must hold 1 to 50 ids")
	}
	var mf *MemberFilter
	if q.ResponseFilter != nil {
		mf = &q.ResponseFilter.MemberFilter
		if err := mf.check(); err != nil {
			return nil, err
		}
	}
	withMembers := a.ViaAdmin && (mf == nil || mf.given())
	out := &InfoResponse{GroupInfo: make([]InfoItem, 0, len(q.GroupIdList))}
	for _, gid := range q.GroupIdList {
		item := InfoItem{GroupId: gid}
		g, err := s.lock(gid)
		if err != nil {
			e := imerr.As(err)
			item.ErrorCode, item.ErrorInfo = e.Code, e.Info
			out.GroupInfo = append(out.GroupInfo, item)
			continue
		}
		visible := a.Admin || g.role(a.User) != "" || g.policy.Kind != kindPrivate
		if visible && withMembers {
			ms := make([]*Member, 0, len(g.members))
			for _, uid := range g.memberIDs() {
				ms = append(ms, g.members[uid])
			}
			item.MemberList = s.memberInfos(g, ms, mf)
		}
		g.op.Unlock()
		if visible {
			item.View = s.view(g)
			if a.ViaAdmin {
				item.ShutUpAllMember = item.View.MuteAllMember
			}
		} else {
			item.ErrorCode, item.ErrorInfo = imerr.GroupNoPermission.Code, "not a member of this Work group"
		}
		out.GroupInfo = append(out.GroupInfo, item)
	}
	return out, nil
}

// MembersRequest is group.members (Tencent get_group_member_info).
type MembersRequest struct {
	GroupId       string
	Limit, Offset int
}

// MembersResponse is a page of members; Next is the offset of the next
// page, 0 after the last.
type MembersResponse struct {
	GroupId    string
	MemberNum  int
	MemberList []*Member
	Next       int
}

// Members lists members, paged by Offset/Limit, for members and the app admin.
func (s *Service) Members(_ context.Context, a ops.Actor, q *MembersRequest) (*MembersResponse, error) {
	page, g, err := s.membersPage(a, q)
	if err != nil {
		return nil, err
	}
	g.op.Unlock()
	return page, nil
}

// membersPage is Members with the group's op lock still held on success.
func (s *Service) membersPage(a ops.Actor, q *MembersRequest) (*MembersResponse, *group, error) {
	limit := q.Limit
	if limit <= 0 || limit > s.cfg.MaxPageSize {
		limit = s.cfg.MaxPageSize
	}
	if q.Offset < 0 {
		return nil, nil, badParams("Offset must not be negative")
	}
	g, err := s.lock(q.GroupId)
	if err != nil {
		return nil, nil, err
	}
	if !a.Admin && g.role(a.User) == "" {
		g.op.Unlock()
		return nil, nil, noPermission("only members list members")
	}
	all := g.memberIDs()
	list := []*Member{}
	for i := q.Offset; i < len(all) && len(list) < limit; i++ {
		m := *g.members[all[i]] // a copy: the reply is encoded after op is released
		list = append(list, &m)
	}
	next := q.Offset + len(list)
	if next >= len(all) {
		next = 0
	}
	return &MembersResponse{GroupId: q.GroupId, MemberNum: len(all), MemberList: list, Next: next}, g, nil
}

// JoinedRequest is group.joined (Tencent get_joined_group_list).
type JoinedRequest struct {
	Limit, Offset int
}

// JoinedResponse lists the actor's groups.
type JoinedResponse struct {
	TotalCount  int
	GroupIdList []JoinedGroup
}

// JoinedGroup is one of the actor's groups with the actor's member info.
type JoinedGroup struct {
	GroupId  string
	Type     string
	Name     string
	FaceUrl  string
	SelfInfo *SelfInfo `json:",omitempty"`
}

// SelfInfo is the actor's member info in a group.
type SelfInfo struct {
	Role      string
	JoinTime  int64
	NameCard  string
	MuteUntil int64
}

// Joined lists the actor's groups with their own member info.
func (s *Service) Joined(_ context.Context, a ops.Actor, q *JoinedRequest) (*JoinedResponse, error) {
	limit := q.Limit
	if limit <= 0 || limit > s.cfg.MaxPageSize {
		limit = s.cfg.MaxPageSize
	}
	kvs, err := s.store.Scan(joinedPrefix(a.User), "", s.cfg.MaxJoinedPerUser+1)
	if err != nil {
		return nil, fmt.Errorf("list the groups of %s: %w", a.User, err)
	}
	list := []JoinedGroup{}
	for i := max(q.Offset, 0); i < len(kvs) && len(list) < limit; i++ {
		gid := strings.TrimPrefix(kvs[i].Name, joinedPrefix(a.User))
		g, err := s.load(gid)
		if err != nil || g == nil {
			continue
		}
		g.mu.RLock()
		item := JoinedGroup{GroupId: gid, Type: g.info.Type, Name: g.info.Name, FaceUrl: g.info.FaceUrl}
		if m := g.members[a.User]; m != nil {
			item.SelfInfo = &SelfInfo{Role: m.Role, JoinTime: m.JoinTime, NameCard: m.NameCard, MuteUntil: m.MuteUntil}
		}
		g.mu.RUnlock()
		list = append(list, item)
	}
	return &JoinedResponse{TotalCount: len(kvs), GroupIdList: list}, nil
}

// GroupIDs lists every group's id in id order, only those of groupType
// when it is not empty (Tencent get_appid_group_list).
func (s *Service) GroupIDs(groupType string) ([]string, error) {
	var out []string
	err := storage.ScanAll(s.store, groupPrefix, func(_ string, v []byte) error {
		var info struct{ GroupId, Type string }
		if err := json.Unmarshal(v, &info); err != nil {
			return err
		}
		if groupType == "" || info.Type == groupType {
			out = append(out, info.GroupId)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return out, nil
}
