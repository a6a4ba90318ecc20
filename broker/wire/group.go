package wire

import "encoding/json"

// Group event names in group and user streams (docs/protocol.md).
const (
	EventGroupMsg = "GroupMsg"
	EventGroupTip = "GroupTip"
)

// GroupMsg is a group message as stored and delivered.
type GroupMsg struct {
	GroupId           string          `json:"GroupId"`
	From_Account      string          `json:"From_Account"`
	MsgSeq            uint64          `json:"MsgSeq"`
	MsgRandom         uint32          `json:"MsgRandom"`
	MsgTime           int64           `json:"MsgTime"`
	MsgBody           json.RawMessage `json:"MsgBody"`
	CloudCustomData   string          `json:"CloudCustomData,omitempty"`
	ClientMsgID       string          `json:"ClientMsgID,omitempty"`
	IsNeedReadReceipt int             `json:"IsNeedReadReceipt,omitempty"`
	MsgFlagBits       int             `json:"MsgFlagBits,omitempty"` // 8: recalled (history only)
	MsgPriority       string          `json:"MsgPriority,omitempty"` // High, Low or Lowest as sent; omitted: Normal
}

// Tencent's group message priorities, and their numbers in
// group_msg_get_simple (1 High … 4 Lowest).
var msgPriorities = map[string]int{"High": 1, "Normal": 2, "Low": 3, "Lowest": 4}

// CheckMsgPriority accepts "" (Normal) and Tencent's four priorities.
func CheckMsgPriority(p string) bool {
	_, ok := msgPriorities[p]
	return ok || p == ""
}

// MsgPriorityNumber is a priority as group_msg_get_simple gives it: 1
// High, 2 Normal (also ""), 3 Low, 4 Lowest.
func MsgPriorityNumber(p string) int {
	if n, ok := msgPriorities[p]; ok {
		return n
	}
	return msgPriorities["Normal"]
}

// GroupTip is a group system event (Tencent "group tips"). Group events
// take a group seq; private tips (JoinApplication, ApplicationHandled,
// GroupDestroyed) go to user streams only and have none.
type GroupTip struct {
	GroupId          string           `json:"GroupId"`
	MsgSeq           uint64           `json:"MsgSeq,omitempty"`
	MsgTime          int64            `json:"MsgTime"`
	TipType          string           `json:"TipType"`
	Operator_Account string           `json:"Operator_Account,omitempty"`
	MemberList       []string         `json:"MemberList,omitempty"`
	MemberCount      int              `json:"MemberCount,omitempty"` // merged live-room tips whose MemberList was cut
	Role             string           `json:"Role,omitempty"`
	MuteTime         *int64           `json:"MuteTime,omitempty"`
	NewOwner_Account string           `json:"NewOwner_Account,omitempty"`
	Changed          *GroupInfoChange `json:"Changed,omitempty"`
	Result           string           `json:"Result,omitempty"`
	ApplyMsg         string           `json:"ApplyMsg,omitempty"`
	Type             string           `json:"Type,omitempty"`
	RecalledMsgSeq   uint64           `json:"RecalledMsgSeq,omitempty"`
}

// GroupInfoChange is an InfoChanged tip's Changed: the profile fields a
// change set, each with its new value (an empty string is a value). The
// fields are in name order, as the map this replaced encoded them.
type GroupInfoChange struct {
	AppDefinedData  *[]KVItem `json:"AppDefinedData,omitempty"`
	ApplyJoinOption *string   `json:"ApplyJoinOption,omitempty"`
	FaceUrl         *string   `json:"FaceUrl,omitempty"`
	Introduction    *string   `json:"Introduction,omitempty"`
	MaxMemberNum    *int      `json:"MaxMemberNum,omitempty"`
	MuteAllMember   *string   `json:"MuteAllMember,omitempty"`
	Name            *string   `json:"Name,omitempty"`
	Notification    *string   `json:"Notification,omitempty"`
}

// Empty reports whether the change sets nothing.
func (c *GroupInfoChange) Empty() bool { return *c == GroupInfoChange{} }

// KVItem is Tencent's {Key, Value} pair of app-defined fields.
type KVItem struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}
