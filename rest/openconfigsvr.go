package rest

import (
	"context"
	"strconv"
	"time"

	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
)

// Mutes is the global mute (broker/relations).
type Mutes interface {
	SetNoSpeaking(ctx context.Context, uid string, c2c, group *uint32) error
	GetNoSpeaking(uid string) (c2c, group uint32, err error)
}

// openconfigsvrEndpoints are the openconfigsvr service: the app's counters
// and global mutes.
func openconfigsvrEndpoints() []*endpoint {
	return []*endpoint{
		{Path: "openconfigsvr/getappinfo", Summary: "the app's counters", Request: []string{"RequestField"}, handle: getAppInfo},
		{Path: "openconfigsvr/setnospeaking", Summary: "set an account's global mute",
			Request: []string{"Set_Account", "C2CmsgNospeakingTime", "GroupmsgNospeakingTime"}, typed: typed(setNoSpeaking)},
		{Path: "openconfigsvr/getnospeaking", Summary: "an account's global mute", Request: []string{"Get_Account"}, typed: typed(getNoSpeaking)},
	}
}

// getAppInfo answers one Result item for today. Counts are this node's
// since it started (messages) or now (totals), as strings like Tencent's.
func getAppInfo(c *call) (map[string]any, error) {
	var q struct{ RequestField []string }
	if err := c.decode(&q, imerr.BadParams); err != nil {
		return nil, err
	}
	n, err := c.a.Counters()
	if err != nil {
		return nil, err
	}
	all := map[string]int64{
		"C2CUpMsgNum":        n.C2CUpMsgNum,
		"GroupUpMsgNum":      n.GroupUpMsgNum,
		"UpMsgNum":           n.C2CUpMsgNum + n.GroupUpMsgNum,
		"RegistUserNumTotal": int64(n.RegistUserNumTotal),
		"GroupAllGroupNum":   int64(n.GroupAllGroupNum),
		"OnlineUserNum":      int64(n.OnlineUserNum), // imbroker: users online now
		"OnlineConnNum":      int64(n.OnlineConnNum), // imbroker: connections now
	}
	item := map[string]any{"Date": time.Now().UTC().Format("20060102")}
	fields := q.RequestField
	if len(fields) == 0 {
		for k := range all {
			fields = append(fields, k)
		}
	}
	for _, f := range fields {
		if v, ok := all[f]; ok {
			item[f] = strconv.FormatInt(v, 10)
		}
	}
	return map[string]any{"Result": []map[string]any{item}}, nil
}

func setNoSpeaking(c *call) (*noFields, error) {
	var q struct {
		Set_Account                                  string
		C2CmsgNospeakingTime, GroupmsgNospeakingTime *uint32
	}
	if err := c.decode(&q, imerr.BadParams); err != nil {
		return nil, err
	}
	if ids.CheckUserID(q.Set_Account) != nil {
		return nil, fail(imerr.BadParams, "Set_Account is missing or invalid")
	}
	if q.C2CmsgNospeakingTime == nil && q.GroupmsgNospeakingTime == nil {
		return nil, fail(imerr.BadParams, "C2CmsgNospeakingTime or GroupmsgNospeakingTime is required")
	}
	return &noFields{}, c.rel.SetNoSpeaking(c.ctx, q.Set_Account, q.C2CmsgNospeakingTime, q.GroupmsgNospeakingTime)
}

// noSpeakingReply is an account's global mute: the seconds left of each
// (0 unmuted, 4294967295 until unmuted).
type noSpeakingReply struct {
	C2CmsgNospeakingTime   uint32
	GroupmsgNospeakingTime uint32
}

func getNoSpeaking(c *call) (*noSpeakingReply, error) {
	var q struct{ Get_Account string }
	if err := c.decode(&q, imerr.BadParams); err != nil {
		return nil, err
	}
	if ids.CheckUserID(q.Get_Account) != nil {
		return nil, fail(imerr.BadParams, "Get_Account is missing or invalid")
	}
	c2c, group, err := c.rel.GetNoSpeaking(q.Get_Account)
	if err != nil {
		return nil, err
	}
	return &noSpeakingReply{C2CmsgNospeakingTime: c2c, GroupmsgNospeakingTime: group}, nil
}
