package rest

import (
	"context"
	"encoding/json"

	"github.com/imbroker/imbroker/broker"
	"github.com/imbroker/imbroker/internal/ids"
)

// More group APIs: online count, system notifications, unread, delete by
// sender, and the import family (docs/rest.md).

const (
	maxNoticeMembers  = 500
	maxImportMembers  = 300
	maxImportMsgs     = 20
	codeGroupNoRights = 10007
)

// groupAdmin is what these endpoints need beyond Admin; the broker has it.
type groupAdmin interface {
	GroupOnlineMemberNum(gid string) (int, error)
	GroupSystemNotice(gid string, to []string, content string) (int, error)
	SetGroupUnread(ctx context.Context, gid, uid string, n int) error
	DeleteGroupMsgBySender(ctx context.Context, gid, sender string) (int, error)
	ImportGroup(ctx context.Context, gid string, createTime int64) error
	ImportGroupMembers(ctx context.Context, gid string, list []broker.ImportedMember) ([]int, error)
	ImportGroupMsgs(ctx context.Context, gid string, recentContact bool, msgs []broker.ImportedMsg) ([]uint64, error)
}

func group2Endpoints() []*endpoint {
	g := func(cmd, summary string, handle func(*call) (map[string]any, error), fields ...string) *endpoint {
		return &endpoint{Path: groupServicePath + cmd, Summary: summary, Request: fields, handle: handle}
	}
	return []*endpoint{
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

func groupAdm(c *call) (groupAdmin, error) {
	ga, ok := c.a.(groupAdmin)
	if !ok {
		return nil, fail(codeInternal, "not supported by this server")
	}
	return ga, nil
}

func onlineMemberNum(c *call) (map[string]any, error) {
	var q struct{ GroupId string }
	if err := c.decode(&q, codeGroupParams); err != nil {
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
	if err := c.decode(&q, codeGroupParams); err != nil {
		return nil, err
	}
	if q.Content == "" {
		return nil, fail(codeGroupParams, "Content is required")
	}
	if len(q.ToMembers_Account) > maxNoticeMembers {
		return nil, fail(codeGroupParams, "ToMembers_Account holds at most 500 accounts")
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
	if err := c.decode(&q, codeGroupParams); err != nil {
		return nil, err
	}
	if ids.CheckUserID(q.Member_Account) != nil || q.UnreadMsgNum == nil || *q.UnreadMsgNum < 0 {
		return nil, fail(codeGroupParams, "Member_Account and a non-negative UnreadMsgNum are required")
	}
	ga, err := groupAdm(c)
	if err != nil {
		return nil, err
	}
	return map[string]any{}, ga.SetGroupUnread(c.ctx, q.GroupId, q.Member_Account, *q.UnreadMsgNum)
}

func deleteGroupMsgBySender(c *call) (map[string]any, error) {
	var q struct{ GroupId, Sender_Account string }
	if err := c.decode(&q, codeGroupParams); err != nil {
		return nil, err
	}
	if ids.CheckUserID(q.Sender_Account) != nil {
		return nil, fail(codeGroupParams, "Sender_Account is missing or invalid")
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
	var q map[string]json.RawMessage
	if err := c.decode(&q, codeGroupParams); err != nil {
		return nil, err
	}
	var gtype string
	var created int64
	_ = json.Unmarshal(q["Type"], &gtype)
	if raw, ok := q["CreateTime"]; ok {
		if err := json.Unmarshal(raw, &created); err != nil || created < 0 {
			return nil, fail(codeGroupParams, "CreateTime must be a Unix time")
		}
	}
	if gtype == "AVChatRoom" {
		return nil, fail(codeGroupNoRights, "AVChatRoom groups cannot be imported")
	}
	ga, err := groupAdm(c)
	if err != nil {
		return nil, err
	}
	delete(q, "CreateTime")
	delete(q, "MemberList") // import_group_member adds members
	res, err := c.op("group.create", c.admin, q)
	if err != nil {
		return nil, err
	}
	gid, _ := res["GroupId"].(string)
	if err := ga.ImportGroup(c.ctx, gid, created); err != nil {
		return nil, err
	}
	return map[string]any{"GroupId": gid}, nil
}

func importGroupMember(c *call) (map[string]any, error) {
	var q struct {
		GroupId    string
		MemberList []broker.ImportedMember
	}
	if err := c.decode(&q, codeGroupParams); err != nil {
		return nil, err
	}
	if len(q.MemberList) == 0 || len(q.MemberList) > maxImportMembers {
		return nil, fail(codeGroupParams, "MemberList must hold 1 to 300 members")
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
		MsgList           []broker.ImportedMsg
	}
	if err := c.decode(&q, codeGroupParams); err != nil {
		return nil, err
	}
	if len(q.MsgList) == 0 || len(q.MsgList) > maxImportMsgs {
		return nil, fail(codeGroupParams, "MsgList must hold 1 to 20 messages")
	}
	for i := 1; i < len(q.MsgList); i++ {
		if q.MsgList[i].SendTime < q.MsgList[i-1].SendTime {
			return nil, fail(codeGroupParams, "MsgList must be in ascending SendTime")
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
