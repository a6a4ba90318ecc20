package rest

import (
	"context"
	"encoding/json"
	"time"

	"github.com/imbroker/imbroker/broker/groups"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
)

// Group codes (tencent-im.md §2).
const (
	maxRecallSeqs    = 10
	maxRoleQuery     = 500
	groupServicePath = "group_open_http_svc/"
)

const (
	maxNoticeMembers = 500
	maxImportMembers = 300
	maxImportMsgs    = 20
)

// groupAdmin is what the online count, notice, unread, delete-by-sender and
// import endpoints need beyond Admin; the broker has it.
type groupAdmin interface {
	GroupOnlineMemberNum(gid string) (int, error)
	GroupSystemNotice(gid string, to []string, content string) (int, error)
	SetGroupUnread(ctx context.Context, gid, uid string, n int) error
	DeleteGroupMsgBySender(ctx context.Context, gid, sender string) (int, error)
	ImportGroup(ctx context.Context, q *groups.CreateRequest, createTime int64) (string, error)
	ImportGroupMembers(ctx context.Context, gid string, list []groups.ImportedMember) ([]int, error)
	ImportGroupMsgs(ctx context.Context, gid string, recentContact bool, msgs []groups.ImportedMsg) ([]uint64, error)
}

// groupEndpoints are the group_open_http_svc service: groups, their
// members and messages, and group import.
func groupEndpoints() []*endpoint {
	g := func(cmd, summary string, handle func(*call) (map[string]any, error), fields ...string) *endpoint {
		return &endpoint{Path: groupServicePath + cmd, Summary: summary, Request: fields, handle: handle}
	}
	return []*endpoint{
		g("create_group", "create a group", passOp("group.create"), "Owner_Account", "Type", "GroupId", "Name", "Introduction",
			"Notification", "FaceUrl", "MaxMemberCount", "ApplyJoinOption", "AppDefinedData", "MemberList"),
		g("get_group_info", "group profiles", passOp("group.info"), "GroupIdList", "ResponseFilter"),
		g("get_group_member_info", "a page of a group's members", passOp("group.members"), "GroupId", "Limit", "Offset"),
		g("modify_group_base_info", "change a group's profile", passOp("group.modify"), "GroupId", "Name", "Introduction",
			"Notification", "FaceUrl", "MaxMemberNum", "ApplyJoinOption", "AppDefinedData", "MuteAllMember"),
		g("add_group_member", "add up to 100 members", passOp("group.invite"), "GroupId", "Silence", "MemberList"),
		g("delete_group_member", "remove up to 500 members", passOp("group.kick"), "GroupId", "Silence", "Reason", "MemberToDel_Account"),
		g("destroy_group", "dismiss a group", passOp("group.destroy"), "GroupId"),
		g("get_joined_group_list", "the groups a user is in", joinedGroups, "Member_Account", "Limit", "Offset"),
		g("get_role_in_group", "roles of up to 500 users in a group", roleInGroup, "GroupId", "User_Account"),
		g("forbid_send_msg", "mute members", passOp("group.mute"), "GroupId", "Members_Account", "MuteTime"),
		g("change_group_owner", "transfer ownership", passOp("group.transfer"), "GroupId", "NewOwner_Account"),
		g("send_group_msg", "send a group message", sendGroupMsg, "GroupId", "Random", "MsgBody", "From_Account", "CloudCustomData",
			"MsgPriority", "OfflinePushInfo", "SendMsgControl", "ForbidCallbackControl"),
		g("group_msg_recall", "recall up to 10 group messages", groupMsgRecall, "GroupId", "MsgSeqList"),
		g("group_msg_get_simple", "group history, newest first", groupMsgGetSimple, "GroupId", "ReqMsgNumber", "ReqMsgSeq"),
		g("modify_group_member_info", "change a member's role, name card, data or mute", modifyMember,
			"GroupId", "Member_Account", "Role", "NameCard", "AppMemberDefinedData", "MuteTime"),
		g("get_group_muted_account", "muted members of a group", mutedAccounts, "GroupId"),
		g("get_appid_group_list", "every group of the app, paged", appGroupList, "Limit", "Next", "GroupType"),
		g("get_group_shutted_uin", "old name of get_group_muted_account", mutedAccounts, "GroupId"),
		g("get_online_member_num", "members with a live connection", onlineMemberNum, "GroupId"),
		g("send_group_system_notification", "an online-only system notice to members", groupSystemNotice, "GroupId", "ToMembers_Account", "Content"),
		g("set_unread_msg_num", "set a member's unread count", setUnreadMsgNum, "GroupId", "Member_Account", "UnreadMsgNum"),
		g("delete_group_msg_by_sender", "recall every message of one sender", deleteGroupMsgBySender, "GroupId", "Sender_Account"),
		g("import_group", "import a group", importGroup, "Owner_Account", "Type", "GroupId", "Name", "Introduction",
			"Notification", "FaceUrl", "MaxMemberCount", "ApplyJoinOption", "AppDefinedData", "CreateTime"),
		g("import_group_member", "import up to 300 members", importGroupMember, "GroupId", "MemberList"),
		g("import_group_msg", "import up to 20 messages", importGroupMsg, "GroupId", "RecentContactFlag", "MsgList"),
	}
}

func joinedGroups(c *call) (map[string]any, error) {
	var q struct {
		Member_Account string
		Limit, Offset  int
	}
	if err := c.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if ids.CheckUserID(q.Member_Account) != nil {
		return nil, fail(imerr.GroupBadParams, "Member_Account is missing or invalid")
	}
	return c.op("group.joined", q.Member_Account, map[string]any{"Limit": q.Limit, "Offset": q.Offset})
}

func roleInGroup(c *call) (map[string]any, error) {
	var q struct {
		GroupId      string
		User_Account []string
	}
	if err := c.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if len(q.User_Account) == 0 || len(q.User_Account) > maxRoleQuery {
		return nil, fail(imerr.GroupBadParams, "User_Account must hold 1 to 500 accounts")
	}
	roles := map[string]string{}
	for offset := 0; ; {
		res, err := c.op("group.members", c.admin, map[string]any{"GroupId": q.GroupId, "Offset": offset})
		if err != nil {
			return nil, err
		}
		page := items(res, "MemberList")
		for _, m := range page {
			acc, _ := m["Member_Account"].(string)
			role, _ := m["Role"].(string)
			roles[acc] = role
		}
		offset += len(page)
		if len(page) == 0 || offset >= toInt(res["MemberNum"]) {
			break
		}
	}
	list := []map[string]any{}
	for _, u := range q.User_Account {
		role := roles[u]
		if role == "" {
			role = "NotMember"
		}
		list = append(list, map[string]any{"Member_Account": u, "Role": role})
	}
	return map[string]any{"UserIdList": list}, nil
}

func sendGroupMsg(c *call) (map[string]any, error) {
	var q map[string]json.RawMessage
	if err := c.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	var gid, from string
	_ = json.Unmarshal(q["GroupId"], &gid)
	_ = json.Unmarshal(q["From_Account"], &from)
	from, err := sender(c, from)
	if err != nil {
		return nil, err
	}
	if _, ok := q["MsgRandom"]; !ok && q["Random"] != nil {
		q["MsgRandom"] = q["Random"] // Tencent's group field name
	}
	body, _ := json.Marshal(q)
	seq, dropped, err := c.a.SendGroup(c.ctx, from, gid, body)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"MsgTime": time.Now().Unix(), "MsgSeq": seq}
	if dropped {
		out["MsgDropReason"] = "MsgFreqLimit"
	}
	return out, nil
}

func groupMsgRecall(c *call) (map[string]any, error) {
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
	list := []map[string]any{}
	for _, it := range q.MsgSeqList {
		_, err := c.op("msg.recall", c.admin, map[string]any{"Type": 2, "GroupId": q.GroupId, "MsgSeq": it.MsgSeq})
		if code(err) == imerr.Internal.Code {
			return nil, err
		}
		list = append(list, map[string]any{"MsgSeq": it.MsgSeq, "RetCode": code(err)})
	}
	return map[string]any{"RecallRetList": list}, nil
}

// groupMsgGetSimple reshapes group.history (stream envelopes, newest
// first) into Tencent's RspMsgList. Group tips are listed as system
// messages (IsSystemMsg 1) with their event as MsgBody-less entries.
func groupMsgGetSimple(c *call) (map[string]any, error) {
	res, err := c.a.AdminRequest(c.ctx, "group.history", c.admin, c.body)
	if err != nil {
		return nil, err
	}
	raw, _ := json.Marshal(res["RspMsgList"])
	var evs []struct {
		Event string
		Msg   struct {
			From_Account, CloudCustomData, Operator_Account string
			MsgSeq                                          uint64
			MsgRandom                                       uint32
			MsgTime                                         int64
			MsgFlagBits                                     int
			MsgBody                                         json.RawMessage
		}
	}
	if err := json.Unmarshal(raw, &evs); err != nil {
		return nil, err
	}
	list := []map[string]any{}
	for _, e := range evs {
		m := e.Msg
		body := m.MsgBody
		if len(body) == 0 {
			body = json.RawMessage("[]")
		}
		system := 0
		from := m.From_Account
		if e.Event != "GroupMsg" {
			system, from = 1, m.Operator_Account
		}
		list = append(list, map[string]any{"From_Account": from, "IsPlaceMsg": 0, "IsSystemMsg": system, "MsgPriority": "Normal",
			"MsgRandom": m.MsgRandom, "MsgSeq": m.MsgSeq, "MsgTimeStamp": m.MsgTime, "MsgBody": body,
			"CloudCustomData": m.CloudCustomData, "MsgFlagBits": m.MsgFlagBits})
	}
	finished := 0
	if res["IsFinished"] == true {
		finished = 1
	}
	return map[string]any{"GroupId": res["GroupId"], "IsFinished": finished, "RspMsgList": list}, nil
}

func modifyMember(c *call) (map[string]any, error) {
	var q struct {
		GroupId, Member_Account, Role string
		NameCard                      *string
		AppMemberDefinedData          []map[string]any
		MuteTime                      *int64
	}
	if err := c.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if q.GroupId == "" || q.Member_Account == "" {
		return nil, fail(imerr.GroupBadParams, "GroupId and Member_Account are required")
	}
	if q.Role != "" {
		if _, err := c.op("group.set_role", c.admin, map[string]any{"GroupId": q.GroupId, "Member_Account": q.Member_Account, "Role": q.Role}); err != nil {
			return nil, err
		}
	}
	if q.NameCard != nil || q.AppMemberDefinedData != nil {
		body := map[string]any{"GroupId": q.GroupId, "Member_Account": q.Member_Account}
		if q.NameCard != nil {
			body["NameCard"] = *q.NameCard
		}
		if q.AppMemberDefinedData != nil {
			body["AppMemberDefinedData"] = q.AppMemberDefinedData
		}
		if _, err := c.op("group.set_member", c.admin, body); err != nil {
			return nil, err
		}
	}
	if q.MuteTime != nil {
		if _, err := c.op("group.mute", c.admin, map[string]any{"GroupId": q.GroupId, "Members_Account": []string{q.Member_Account}, "MuteTime": *q.MuteTime}); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func mutedAccounts(c *call) (map[string]any, error) {
	var q struct{ GroupId string }
	if err := c.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	now := time.Now().Unix()
	list := []map[string]any{}
	for offset := 0; ; {
		res, err := c.op("group.members", c.admin, map[string]any{"GroupId": q.GroupId, "Offset": offset})
		if err != nil {
			return nil, err
		}
		page := items(res, "MemberList")
		for _, m := range page {
			if until := toInt(m["MuteUntil"]); int64(until) > now {
				list = append(list, map[string]any{"Member_Account": m["Member_Account"], "MutedUntil": until})
			}
		}
		offset += len(page)
		if len(page) == 0 || offset >= toInt(res["MemberNum"]) {
			break
		}
	}
	return map[string]any{"MutedAccountList": list}, nil
}

const maxGroupListLimit = 10000

// appGroupList pages through every group; Next is the offset of the next
// page (0: none).
func appGroupList(c *call) (map[string]any, error) {
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
	gids, err := c.a.GroupIDs(q.GroupType)
	if err != nil {
		return nil, err
	}
	list := []map[string]any{}
	i := q.Next
	for ; i < len(gids) && len(list) < q.Limit; i++ {
		list = append(list, map[string]any{"GroupId": gids[i]})
	}
	if i >= len(gids) {
		i = 0
	}
	return map[string]any{"TotalCount": len(gids), "GroupIdList": list, "Next": i}, nil
}

func groupAdm(c *call) (groupAdmin, error) {
	ga, ok := c.a.(groupAdmin)
	if !ok {
		return nil, fail(imerr.Internal, "not supported by this server")
	}
	return ga, nil
}

func onlineMemberNum(c *call) (map[string]any, error) {
	var q struct{ GroupId string }
	if err := c.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	ga, err := groupAdm(c)
	if err != nil {
		return nil, err
	}
	n, err := ga.GroupOnlineMemberNum(q.GroupId)
	if err != nil {
		return nil, err
	}
	return map[string]any{"OnlineMemberNum": n}, nil
}

func groupSystemNotice(c *call) (map[string]any, error) {
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
	ga, err := groupAdm(c)
	if err != nil {
		return nil, err
	}
	if _, err := ga.GroupSystemNotice(q.GroupId, q.ToMembers_Account, q.Content); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

func setUnreadMsgNum(c *call) (map[string]any, error) {
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
	ga, err := groupAdm(c)
	if err != nil {
		return nil, err
	}
	return map[string]any{}, ga.SetGroupUnread(c.ctx, q.GroupId, q.Member_Account, *q.UnreadMsgNum)
}

func deleteGroupMsgBySender(c *call) (map[string]any, error) {
	var q struct{ GroupId, Sender_Account string }
	if err := c.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if ids.CheckUserID(q.Sender_Account) != nil {
		return nil, fail(imerr.GroupBadParams, "Sender_Account is missing or invalid")
	}
	ga, err := groupAdm(c)
	if err != nil {
		return nil, err
	}
	if _, err := ga.DeleteGroupMsgBySender(c.ctx, q.GroupId, q.Sender_Account); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

func importGroup(c *call) (map[string]any, error) {
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
	ga, err := groupAdm(c)
	if err != nil {
		return nil, err
	}
	gid, err := ga.ImportGroup(c.ctx, &q.CreateRequest, created)
	if err != nil {
		return nil, err
	}
	return map[string]any{"GroupId": gid}, nil
}

func importGroupMember(c *call) (map[string]any, error) {
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
	ga, err := groupAdm(c)
	if err != nil {
		return nil, err
	}
	res, err := ga.ImportGroupMembers(c.ctx, q.GroupId, q.MemberList)
	if err != nil {
		return nil, err
	}
	list := []map[string]any{}
	for i, m := range q.MemberList {
		list = append(list, map[string]any{"Member_Account": m.Member_Account, "Result": res[i]})
	}
	return map[string]any{"MemberList": list}, nil
}

func importGroupMsg(c *call) (map[string]any, error) {
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
	ga, err := groupAdm(c)
	if err != nil {
		return nil, err
	}
	seqs, err := ga.ImportGroupMsgs(c.ctx, q.GroupId, q.RecentContactFlag == 1, q.MsgList)
	if err != nil {
		return nil, err
	}
	list := []map[string]any{}
	for i, m := range q.MsgList {
		r := 0
		if seqs[i] == 0 {
			r = 1
		}
		list = append(list, map[string]any{"Result": r, "MsgTime": m.SendTime, "MsgSeq": seqs[i]})
	}
	return map[string]any{"ImportMsgResult": list}, nil
}
