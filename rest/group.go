package rest

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/imbroker/imbroker/broker/groups"
	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
)

// Group service limits (tencent-im.md §2, §8).
const (
	groupServicePath  = "group_open_http_svc/"
	maxRecallSeqs     = 10
	maxNoticeMembers  = 500
	maxImportMembers  = 300
	maxImportMsgs     = 20
	maxGroupListLimit = 10000
)

// Groups is the groups domain (broker/groups), whose typed operations the
// group_open_http_svc endpoints call directly.
type Groups interface {
	GroupOps
	GroupMessages
	GroupAdmin
}

// GroupOps are the group and member operations, the composite member ones
// (ModifyMember, MutedMembers, Roles) included.
type GroupOps interface {
	Create(ctx context.Context, a ops.Actor, q *groups.CreateRequest) (*groups.CreateResponse, error)
	Info(ctx context.Context, a ops.Actor, q *groups.InfoRequest) (*groups.InfoResponse, error)
	MemberInfos(ctx context.Context, a ops.Actor, q *groups.MemberInfoRequest) (*groups.MemberInfoResponse, error)
	Joined(ctx context.Context, a ops.Actor, q *groups.JoinedRequest) (*groups.JoinedResponse, error)
	Modify(ctx context.Context, a ops.Actor, q *groups.ModifyRequest) (*groups.Empty, error)
	Invite(ctx context.Context, a ops.Actor, q *groups.InviteRequest) (*groups.InviteResponse, error)
	Kick(ctx context.Context, a ops.Actor, q *groups.KickRequest) (*groups.Empty, error)
	Destroy(ctx context.Context, a ops.Actor, q *groups.GroupRequest) (*groups.Empty, error)
	Mute(ctx context.Context, a ops.Actor, q *groups.MuteRequest) (*groups.Empty, error)
	Transfer(ctx context.Context, a ops.Actor, q *groups.TransferRequest) (*groups.Empty, error)
	ModifyMember(ctx context.Context, a ops.Actor, q *groups.ModifyMemberRequest) (*groups.Empty, error)
	MutedMembers(ctx context.Context, a ops.Actor, q *groups.GroupRequest) (*groups.MutedResponse, error)
	Roles(ctx context.Context, a ops.Actor, q *groups.RolesRequest) (*groups.RolesResponse, error)
}

// GroupMessages are group sends, history and recall.
type GroupMessages interface {
	Send(ctx context.Context, from, gid string, payload []byte) (groups.SendResult, error)
	History(ctx context.Context, a ops.Actor, q *groups.HistoryRequest) (*groups.HistoryResponse, error)
	Recall(ctx context.Context, a ops.Actor, gid string, seq uint64) error
}

// GroupAdmin are the operations only the REST API has: the app's group
// list, online counts, system notices, unread counts, deleting a sender's
// messages and imports.
type GroupAdmin interface {
	GroupIDs(groupType string) ([]string, error)
	OnlineMemberNum(gid string) (int, error)
	SystemNotice(gid string, to []string, content string) (int, error)
	SetUnread(ctx context.Context, gid, uid string, n int) error
	DeleteMsgsBySender(ctx context.Context, gid, sender string) (int, error)
	ImportGroup(ctx context.Context, a ops.Actor, q *groups.CreateRequest, createTime int64) (*groups.CreateResponse, error)
	ImportMembers(ctx context.Context, gid string, list []groups.ImportedMember) ([]int, error)
	ImportMsgs(ctx context.Context, gid string, recentContact bool, msgs []groups.ImportedMsg) ([]uint64, error)
}

// groupEndpoints are the group_open_http_svc service: groups, their
// members and messages, and group import. Each is one operation of the
// groups domain, run as the app admin (get_joined_group_list: as
// Member_Account).
func groupEndpoints() []*endpoint {
	g := func(cmd, summary string, h func(c *call) (any, error), fields ...string) *endpoint {
		return &endpoint{Path: groupServicePath + cmd, Summary: summary, Request: fields, typed: h}
	}
	return []*endpoint{
		g("create_group", "create a group", typed(asGroupAdmin(Groups.Create)), "Owner_Account", "Type", "GroupId", "Name", "Introduction",
			"Notification", "FaceUrl", "MaxMemberCount", "ApplyJoinOption", "AppDefinedData", "MemberList"),
		g("get_group_info", "group profiles with their members", typed(asGroupAdmin(Groups.Info)), "GroupIdList", "ResponseFilter"),
		g("get_group_member_info", "a page of a group's members", typed(asGroupAdmin(Groups.MemberInfos)), "GroupId", "Limit", "Offset",
			"MemberInfoFilter", "MemberRoleFilter", "AppDefinedDataFilter_GroupMember"),
		g("modify_group_base_info", "change a group's profile", typed(asGroupAdmin(Groups.Modify)), "GroupId", "Name", "Introduction",
			"Notification", "FaceUrl", "MaxMemberNum", "ApplyJoinOption", "AppDefinedData", "MuteAllMember", "ShutUpAllMember"),
		g("add_group_member", "add up to 100 members", typed(asGroupAdmin(Groups.Invite)), "GroupId", "Silence", "MemberList"),
		g("delete_group_member", "remove up to 500 members", typed(asGroupAdmin(Groups.Kick)), "GroupId", "Silence", "Reason", "MemberToDel_Account"),
		g("destroy_group", "dismiss a group", typed(asGroupAdmin(Groups.Destroy)), "GroupId"),
		g("get_joined_group_list", "the groups a user is in", typed(joinedGroups), "Member_Account", "Limit", "Offset"),
		g("get_role_in_group", "roles of up to 500 users in a group", typed(asGroupAdmin(Groups.Roles)), "GroupId", "User_Account"),
		g("forbid_send_msg", "mute members", typed(asGroupAdmin(Groups.Mute)), "GroupId", "Members_Account", "MuteTime", "ShutUpTime"),
		g("change_group_owner", "transfer ownership", typed(asGroupAdmin(Groups.Transfer)), "GroupId", "NewOwner_Account"),
		g("send_group_msg", "send a group message", typed(sendGroupMsg), "GroupId", "Random", "MsgBody", "From_Account", "CloudCustomData",
			"MsgPriority", "OfflinePushInfo", "SendMsgControl", "ForbidCallbackControl"),
		g("group_msg_recall", "recall up to 10 group messages", typed(groupMsgRecall), "GroupId", "MsgSeqList"),
		g("group_msg_get_simple", "group history, newest first", typed(groupMsgGetSimple), "GroupId", "ReqMsgNumber", "ReqMsgSeq", "WithRecalledMsg"),
		g("modify_group_member_info", "change a member's role, name card, data or mute, as one change", typed(asGroupAdmin(Groups.ModifyMember)),
			"GroupId", "Member_Account", "Role", "NameCard", "AppMemberDefinedData", "MuteTime", "ShutUpTime", "MsgFlag"),
		g("get_group_muted_account", "muted members of a group", typed(asGroupAdmin(Groups.MutedMembers)), "GroupId"),
		g("get_appid_group_list", "every group of the app, paged", typed(appGroupList), "Limit", "Next", "GroupType"),
		g("get_group_shutted_uin", "old name of get_group_muted_account, with its old field names", typed(getShuttedUin), "GroupId"),
		g("get_online_member_num", "members with a live connection", typed(onlineMemberNum), "GroupId"),
		g("send_group_system_notification", "an online-only system notice to members", typed(groupSystemNotice), "GroupId", "ToMembers_Account", "Content"),
		g("set_unread_msg_num", "set a member's unread count", typed(setUnreadMsgNum), "GroupId", "Member_Account", "UnreadMsgNum"),
		g("delete_group_msg_by_sender", "recall every message of one sender", typed(deleteGroupMsgBySender), "GroupId", "Sender_Account"),
		g("import_group", "import a group", typed(importGroup), "Owner_Account", "Type", "GroupId", "Name", "Introduction",
			"Notification", "FaceUrl", "MaxMemberCount", "ApplyJoinOption", "AppDefinedData", "CreateTime"),
		g("import_group_member", "import up to 300 members", typed(importGroupMember), "GroupId", "MemberList"),
		g("import_group_msg", "import up to 20 messages", typed(importGroupMsg), "GroupId", "RecentContactFlag", "MsgList"),
	}
}

// asGroupAdmin runs op of the groups domain as the app admin with the body
// decoded into its request.
func asGroupAdmin[Req, Resp any](op func(Groups, context.Context, ops.Actor, *Req) (*Resp, error)) func(c *call) (*Resp, error) {
	return func(c *call) (*Resp, error) {
		q := new(Req)
		if err := c.decode(q, imerr.GroupBadParams); err != nil {
			return nil, err
		}
		return op(c.grp, c.ctx, c.actor(c.admin), q)
	}
}

func joinedGroups(c *call) (*groups.JoinedResponse, error) {
	var q struct {
		Member_Account string
		groups.JoinedRequest
	}
	if err := c.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if ids.CheckUserID(q.Member_Account) != nil {
		return nil, fail(imerr.GroupBadParams, "Member_Account is missing or invalid")
	}
	return c.grp.Joined(c.ctx, c.actor(q.Member_Account), &q.JoinedRequest)
}

type sendGroupMsgReply struct {
	MsgTime       int64
	MsgSeq        uint64
	MsgDropReason string `json:",omitempty"`
}

// sendGroupMsg sends the body as a group message from From_Account (the
// admin when omitted). Tencent's group field for the dedup value is
// Random; MsgRandom is accepted too.
func sendGroupMsg(c *call) (*sendGroupMsgReply, error) {
	var q struct{ GroupId, From_Account, MsgRandom, Random json.RawMessage }
	if err := c.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	var gid, from string
	_ = json.Unmarshal(q.GroupId, &gid) // a GroupId that is not a string is refused as invalid by the send
	_ = json.Unmarshal(q.From_Account, &from)
	from, err := sender(c, from)
	if err != nil {
		return nil, err
	}
	var payload bytes.Buffer
	if err := json.Compact(&payload, c.body); err != nil {
		return nil, fail(imerr.GroupBadParams, "body is not valid JSON")
	}
	if q.MsgRandom == nil && q.Random != nil {
		// A member of its own at the end (the body is a non-empty object):
		// the message's fields pass to the send as they came.
		payload.Truncate(payload.Len() - 1)
		payload.WriteString(`,"MsgRandom":`)
		payload.Write(q.Random)
		payload.WriteByte('}')
	}
	res, err := c.grp.Send(c.ctx, from, gid, payload.Bytes())
	if err != nil {
		return nil, err
	}
	out := &sendGroupMsgReply{MsgTime: res.MsgTime, MsgSeq: res.MsgSeq}
	if res.Dropped {
		out.MsgDropReason = "MsgFreqLimit"
	}
	return out, nil
}

type recallReply struct {
	RecallRetList []recallRet
}

type recallRet struct {
	MsgSeq  uint64
	RetCode int
}

func groupMsgRecall(c *call) (*recallReply, error) {
	var q struct {
		GroupId    string
		MsgSeqList []struct{ MsgSeq uint64 }
	}
	if err := c.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if len(q.MsgSeqList) == 0 || len(q.MsgSeqList) > maxRecallSeqs {
		return nil, fail(imerr.GroupBadParams, "MsgSeqList must hold 1 to 10 items")
	}
	out := &recallReply{RecallRetList: []recallRet{}}
	for _, it := range q.MsgSeqList {
		err := c.grp.Recall(c.ctx, c.actor(c.admin), q.GroupId, it.MsgSeq)
		if code(err) == imerr.Internal.Code {
			return nil, err
		}
		out.RecallRetList = append(out.RecallRetList, recallRet{MsgSeq: it.MsgSeq, RetCode: code(err)})
	}
	return out, nil
}

type historyReply struct {
	GroupId    string
	IsFinished int
	RspMsgList []historyMsg
}

// historyMsg is one message of group_msg_get_simple, with the fields and
// types of Tencent's page. Group tips are listed as system messages
// (IsSystemMsg 1) with an empty MsgBody.
type historyMsg struct {
	CloudCustomData string
	From_Account    string
	IsPlaceMsg      int // 2: recalled (MsgBody empty); Tencent's 1 (expired or deleted) never shows: those seqs are gone
	IsSystemMsg     int
	MsgBody         json.RawMessage
	MsgPriority     int // Tencent's 1 High, 2 Normal, 3 Low, 4 Lowest, as sent (tips: 2)
	MsgRandom       uint32
	MsgSeq          uint64
	MsgTimeStamp    int64
}

// placeMsgRecalled is group_msg_get_simple's IsPlaceMsg of a recalled message.
const placeMsgRecalled = 2

// groupMsgGetSimple reshapes group.history (stream envelopes, newest
// first) into Tencent's RspMsgList. Recalled messages are left out unless
// WithRecalledMsg is 1 (Tencent: "by default recalled messages are not
// pulled"); then they come as IsPlaceMsg 2 with an empty MsgBody.
func groupMsgGetSimple(c *call) (*historyReply, error) {
	var opt struct{ WithRecalledMsg int }
	if err := c.decode(&opt, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if opt.WithRecalledMsg != 0 && opt.WithRecalledMsg != 1 {
		return nil, fail(imerr.GroupBadParams, "WithRecalledMsg must be 0 or 1")
	}
	res, err := asGroupAdmin(Groups.History)(c)
	if err != nil {
		return nil, err
	}
	out := &historyReply{GroupId: res.GroupId, RspMsgList: []historyMsg{}}
	if res.IsFinished {
		out.IsFinished = 1
	}
	for _, raw := range res.RspMsgList {
		var e struct {
			Event string
			Msg   struct {
				From_Account, CloudCustomData, Operator_Account, MsgPriority string
				MsgSeq                                                       uint64
				MsgRandom                                                    uint32
				MsgTime                                                      int64
				MsgFlagBits                                                  int
				MsgBody                                                      json.RawMessage
			}
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, err
		}
		m := e.Msg
		item := historyMsg{From_Account: m.From_Account, MsgPriority: wire.MsgPriorityNumber(m.MsgPriority), MsgRandom: m.MsgRandom, MsgSeq: m.MsgSeq,
			MsgTimeStamp: m.MsgTime, MsgBody: m.MsgBody, CloudCustomData: m.CloudCustomData}
		if m.MsgFlagBits&wire.MsgFlagRecalled != 0 {
			if opt.WithRecalledMsg != 1 {
				continue
			}
			item.IsPlaceMsg, item.MsgBody, item.CloudCustomData = placeMsgRecalled, nil, ""
		}
		if len(item.MsgBody) == 0 {
			item.MsgBody = json.RawMessage("[]")
		}
		if e.Event != "GroupMsg" {
			item.IsSystemMsg, item.From_Account = 1, m.Operator_Account
		}
		out.RspMsgList = append(out.RspMsgList, item)
	}
	return out, nil
}

type shuttedUinReply struct {
	GroupId        string
	ShuttedUinList []shuttedUin
}

type shuttedUin struct {
	Member_Account string
	ShuttedUntil   int64
}

// getShuttedUin is get_group_shutted_uin: get_group_muted_account under the
// names of its own Tencent page (ShuttedUinList[{Member_Account,
// ShuttedUntil}]), which the clients of the old name read.
func getShuttedUin(c *call) (*shuttedUinReply, error) {
	var q groups.GroupRequest
	if err := c.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	res, err := c.grp.MutedMembers(c.ctx, c.actor(c.admin), &q)
	if err != nil {
		return nil, err
	}
	out := &shuttedUinReply{GroupId: q.GroupId, ShuttedUinList: make([]shuttedUin, 0, len(res.MutedAccountList))}
	for _, m := range res.MutedAccountList {
		out.ShuttedUinList = append(out.ShuttedUinList, shuttedUin{Member_Account: m.Member_Account, ShuttedUntil: m.MutedUntil})
	}
	return out, nil
}

type groupListReply struct {
	TotalCount  int
	GroupIdList []groupListItem
	Next        int
}

type groupListItem struct {
	GroupId string
}

// appGroupList pages through every group; Next is the offset of the next
// page (0: none).
func appGroupList(c *call) (*groupListReply, error) {
	var q struct {
		Limit     int
		Next      int
		GroupType string
	}
	if err := c.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if q.Limit <= 0 || q.Limit > maxGroupListLimit {
		q.Limit = maxGroupListLimit
	}
	if q.Next < 0 {
		return nil, fail(imerr.GroupBadParams, "Next must not be negative")
	}
	gids, err := c.grp.GroupIDs(q.GroupType)
	if err != nil {
		return nil, err
	}
	out := &groupListReply{TotalCount: len(gids), GroupIdList: []groupListItem{}}
	i := q.Next
	for ; i < len(gids) && len(out.GroupIdList) < q.Limit; i++ {
		out.GroupIdList = append(out.GroupIdList, groupListItem{GroupId: gids[i]})
	}
	if i < len(gids) {
		out.Next = i
	}
	return out, nil
}

type onlineReply struct {
	OnlineMemberNum int
}

func onlineMemberNum(c *call) (*onlineReply, error) {
	var q struct{ GroupId string }
	if err := c.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	n, err := c.grp.OnlineMemberNum(q.GroupId)
	if err != nil {
		return nil, err
	}
	return &onlineReply{OnlineMemberNum: n}, nil
}

func groupSystemNotice(c *call) (*noFields, error) {
	var q struct {
		GroupId           string
		ToMembers_Account []string
		Content           string
	}
	if err := c.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if q.Content == "" {
		return nil, fail(imerr.GroupBadParams, "Content is required")
	}
	if len(q.ToMembers_Account) > maxNoticeMembers {
		return nil, fail(imerr.GroupBadParams, "ToMembers_Account holds at most 500 accounts")
	}
	if _, err := c.grp.SystemNotice(q.GroupId, q.ToMembers_Account, q.Content); err != nil {
		return nil, err
	}
	return &noFields{}, nil
}

func setUnreadMsgNum(c *call) (*noFields, error) {
	var q struct {
		GroupId, Member_Account string
		UnreadMsgNum            *int
	}
	if err := c.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if ids.CheckUserID(q.Member_Account) != nil || q.UnreadMsgNum == nil || *q.UnreadMsgNum < 0 {
		return nil, fail(imerr.GroupBadParams, "Member_Account and a non-negative UnreadMsgNum are required")
	}
	if err := c.grp.SetUnread(c.ctx, q.GroupId, q.Member_Account, *q.UnreadMsgNum); err != nil {
		return nil, err
	}
	return &noFields{}, nil
}

func deleteGroupMsgBySender(c *call) (*noFields, error) {
	var q struct{ GroupId, Sender_Account string }
	if err := c.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if ids.CheckUserID(q.Sender_Account) != nil {
		return nil, fail(imerr.GroupBadParams, "Sender_Account is missing or invalid")
	}
	if _, err := c.grp.DeleteMsgsBySender(c.ctx, q.GroupId, q.Sender_Account); err != nil {
		return nil, err
	}
	return &noFields{}, nil
}

type importGroupReply struct {
	GroupId string
}

// importGroup creates a group with its CreateTime, in one commit; members
// come with import_group_member.
func importGroup(c *call) (*importGroupReply, error) {
	var t struct{ CreateTime json.RawMessage }
	if err := c.decode(&t, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	var created int64
	if t.CreateTime != nil {
		if err := json.Unmarshal(t.CreateTime, &created); err != nil || created < 0 {
			return nil, fail(imerr.GroupBadParams, "CreateTime must be a Unix time")
		}
	}
	var q struct {
		groups.CreateRequest
		MemberList json.RawMessage // not decoded: import_group_member adds members
	}
	if err := c.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	res, err := c.grp.ImportGroup(c.ctx, c.actor(c.admin), &q.CreateRequest, created)
	if err != nil {
		return nil, err
	}
	return &importGroupReply{GroupId: res.GroupId}, nil
}

type importMembersReply struct {
	MemberList []groups.MemberResult
}

func importGroupMember(c *call) (*importMembersReply, error) {
	var q struct {
		GroupId    string
		MemberList []groups.ImportedMember
	}
	if err := c.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if len(q.MemberList) == 0 || len(q.MemberList) > maxImportMembers {
		return nil, fail(imerr.GroupBadParams, "MemberList must hold 1 to 300 members")
	}
	res, err := c.grp.ImportMembers(c.ctx, q.GroupId, q.MemberList)
	if err != nil {
		return nil, err
	}
	out := &importMembersReply{MemberList: make([]groups.MemberResult, 0, len(q.MemberList))}
	for i, m := range q.MemberList {
		out.MemberList = append(out.MemberList, groups.MemberResult{Member_Account: m.Member_Account, Result: res[i]})
	}
	return out, nil
}

type importMsgsReply struct {
	ImportMsgResult []importMsgResult
}

type importMsgResult struct {
	MsgSeq  uint64
	MsgTime int64
	Result  int // 0 imported, 1 refused
}

func importGroupMsg(c *call) (*importMsgsReply, error) {
	var q struct {
		GroupId           string
		RecentContactFlag int
		MsgList           []groups.ImportedMsg
	}
	if err := c.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if len(q.MsgList) == 0 || len(q.MsgList) > maxImportMsgs {
		return nil, fail(imerr.GroupBadParams, "MsgList must hold 1 to 20 messages")
	}
	for i := 1; i < len(q.MsgList); i++ {
		if q.MsgList[i].SendTime < q.MsgList[i-1].SendTime {
			return nil, fail(imerr.GroupBadParams, "MsgList must be in ascending SendTime")
		}
	}
	seqs, err := c.grp.ImportMsgs(c.ctx, q.GroupId, q.RecentContactFlag == 1, q.MsgList)
	if err != nil {
		return nil, err
	}
	out := &importMsgsReply{ImportMsgResult: make([]importMsgResult, 0, len(q.MsgList))}
	for i, m := range q.MsgList {
		r := importMsgResult{MsgSeq: seqs[i], MsgTime: m.SendTime}
		if seqs[i] == 0 {
			r.Result = 1
		}
		out.ImportMsgResult = append(out.ImportMsgResult, r)
	}
	return out, nil
}
