package rest

import (
	"encoding/json"
	"time"

	"github.com/imbroker/imbroker/internal/ids"
)

// Group codes (tencent-im.md §2).
const (
	codeGroupParams  = 10004
	maxRecallSeqs    = 10
	maxRoleQuery     = 500
	groupServicePath = "group_open_http_svc/"
)

func groupEndpoints() []*endpoint {
	g := func(cmd, summary string, handle func(*call) (map[string]any, error), fields ...string) *endpoint {
		return &endpoint{Path: groupServicePath + cmd, Summary: summary, Request: fields, handle: handle}
	}
	return append([]*endpoint{
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
	}, group2Endpoints()...)
}

func joinedGroups(c *call) (map[string]any, error) {
	var q struct {
		Member_Account string
		Limit, Offset  int
	}
	if err := c.decode(&q, codeGroupParams); err != nil {
		return nil, err
	}
	if ids.CheckUserID(q.Member_Account) != nil {
		return nil, fail(codeGroupParams, "Member_Account is missing or invalid")
	}
	return c.op("group.joined", q.Member_Account, map[string]any{"Limit": q.Limit, "Offset": q.Offset})
}

func roleInGroup(c *call) (map[string]any, error) {
	var q struct {
		GroupId      string
		User_Account []string
	}
	if err := c.decode(&q, codeGroupParams); err != nil {
		return nil, err
	}
	if len(q.User_Account) == 0 || len(q.User_Account) > maxRoleQuery {
		return nil, fail(codeGroupParams, "User_Account must hold 1 to 500 accounts")
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
	if err := c.decode(&q, codeGroupParams); err != nil {
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
	if err := c.decode(&q, codeGroupParams); err != nil {
		return nil, err
	}
	if len(q.MsgSeqList) == 0 || len(q.MsgSeqList) > maxRecallSeqs {
		return nil, fail(codeGroupParams, "MsgSeqList must hold 1 to 10 items")
	}
	list := []map[string]any{}
	for _, it := range q.MsgSeqList {
		_, err := c.op("msg.recall", c.admin, map[string]any{"Type": 2, "GroupId": q.GroupId, "MsgSeq": it.MsgSeq})
		if code(err) == codeInternal {
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
