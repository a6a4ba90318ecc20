package groups

import (
	"context"
	"slices"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/wire"
)

// Member profiles as Tencent's REST API shows them (get_group_info's
// MemberList, get_group_member_info): the stored member record plus what
// Tencent derives (MsgSeq, the member's read position), each field only
// when the filters ask for it.

// Tencent's MsgFlag values (tencent-im.md §6).
const (
	msgFlagAcceptAndNotify = "AcceptAndNotify"
	msgFlagAcceptNotNotify = "AcceptNotNotify"
	msgFlagDiscard         = "Discard"
)

func checkMsgFlag(f string) error {
	switch f {
	case msgFlagAcceptAndNotify, msgFlagAcceptNotNotify, msgFlagDiscard:
		return nil
	}
	return badParams("MsgFlag must be %s, %s or %s", msgFlagAcceptAndNotify, msgFlagAcceptNotNotify, msgFlagDiscard)
}

// MemberFilter is Tencent's member filters. MemberInfoFilter names the
// fields (Member_Account always comes; none: every field);
// MemberRoleFilter the roles listed (none: all); and
// AppDefinedDataFilter_GroupMember the app-defined member keys shown (none:
// all of them when there are any, where Tencent shows none: a REST client
// that never asks still sees what it stored).
type MemberFilter struct {
	MemberInfoFilter                 []string
	MemberRoleFilter                 []string
	AppDefinedDataFilter_GroupMember []string
}

// given reports whether any member filter was set.
func (f *MemberFilter) given() bool {
	return f != nil && (f.MemberInfoFilter != nil || f.MemberRoleFilter != nil || f.AppDefinedDataFilter_GroupMember != nil)
}

// check refuses a role that is not Tencent's.
func (f *MemberFilter) check() error {
	if f == nil {
		return nil
	}
	for _, r := range f.MemberRoleFilter {
		if r != roleOwner && r != roleAdmin && r != roleMember {
			return badParams("MemberRoleFilter holds Owner, Admin or Member, not %q", r)
		}
	}
	return nil
}

// MemberInfo is one member's profile; a nil field was filtered out.
// MuteUntil and ShutUpUntil are the same value: Tencent's pages name it
// MuteUntil, its answers (and older clients) ShutUpUntil.
type MemberInfo struct {
	Member_Account       string
	Role                 *string        `json:",omitempty"`
	JoinTime             *int64         `json:",omitempty"`
	MsgSeq               *uint64        `json:",omitempty"` // the member's read position in the group
	MsgFlag              *string        `json:",omitempty"`
	LastSendMsgTime      *int64         `json:",omitempty"`
	NameCard             *string        `json:",omitempty"`
	MuteUntil            *int64         `json:",omitempty"`
	ShutUpUntil          *int64         `json:",omitempty"`
	AppMemberDefinedData *[]wire.KVItem `json:",omitempty"`
}

// memberInfos lists ms (g.op held) as f asks; each MsgSeq is one record
// read.
func (s *Service) memberInfos(g *group, ms []*Member, f *MemberFilter) []MemberInfo {
	if f == nil {
		f = &MemberFilter{}
	}
	want := func(field string) bool {
		return f.MemberInfoFilter == nil || slices.Contains(f.MemberInfoFilter, field)
	}
	out := make([]MemberInfo, 0, len(ms))
	for _, m := range ms {
		if f.MemberRoleFilter != nil && !slices.Contains(f.MemberRoleFilter, m.Role) {
			continue
		}
		m := *m
		it := MemberInfo{Member_Account: m.Member_Account}
		if want("Role") {
			it.Role = &m.Role
		}
		if want("JoinTime") {
			it.JoinTime = &m.JoinTime
		}
		if want("MsgSeq") {
			var seq uint64
			if st, ok, err := convs.Load(s.store, m.Member_Account, convs.GroupID(g.info.GroupId)); err == nil && ok {
				seq = st.ReadSeq
			}
			it.MsgSeq = &seq
		}
		if want("MsgFlag") {
			flag := m.MsgFlag
			if flag == "" {
				flag = msgFlagAcceptAndNotify
			}
			it.MsgFlag = &flag
		}
		if want("LastSendMsgTime") {
			it.LastSendMsgTime = &m.LastSendMsgTime
		}
		if want("NameCard") {
			it.NameCard = &m.NameCard
		}
		if want("MuteUntil") || want("ShutUpUntil") {
			it.MuteUntil, it.ShutUpUntil = &m.MuteUntil, &m.MuteUntil
		}
		defined := []wire.KVItem{}
		for _, kv := range m.AppMemberDefinedData {
			if f.AppDefinedDataFilter_GroupMember == nil || slices.Contains(f.AppDefinedDataFilter_GroupMember, kv.Key) {
				defined = append(defined, kv)
			}
		}
		if f.AppDefinedDataFilter_GroupMember != nil || len(defined) > 0 {
			it.AppMemberDefinedData = &defined
		}
		out = append(out, it)
	}
	return out
}

// MemberInfoRequest is Tencent get_group_member_info: a page of members
// with the member filters.
type MemberInfoRequest struct {
	MembersRequest
	MemberFilter
}

// MemberInfoResponse is a page of member profiles; Next is the offset of
// the next page, 0 after the last.
type MemberInfoResponse struct {
	MemberNum  int
	MemberList []MemberInfo
	Next       int
}

// MemberInfos is Members with Tencent's member fields and filters (REST
// get_group_member_info). The role filter applies within the page.
func (s *Service) MemberInfos(_ context.Context, a ops.Actor, q *MemberInfoRequest) (*MemberInfoResponse, error) {
	if err := q.MemberFilter.check(); err != nil {
		return nil, err
	}
	page, g, err := s.membersPage(a, &q.MembersRequest)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	return &MemberInfoResponse{MemberNum: page.MemberNum, MemberList: s.memberInfos(g, page.MemberList, &q.MemberFilter), Next: page.Next}, nil
}
