package rest

import (
	"context"
	"strconv"

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

// appInfoDays is how many days getappinfo answers, as Tencent's does.
const appInfoDays = 30

// getAppInfo answers 30 Result items, today first, from the durable per-day
// statistics (broker/stats), with Tencent's field names; values are strings
// like Tencent's. Today's item adds imbroker's OnlineUserNum and
// OnlineConnNum (now).
func getAppInfo(c *call) (map[string]any, error) {
	var q struct{ RequestField []string }
	if err := c.decode(&q, imerr.BadParams); err != nil {
		return nil, err
	}
	days, err := c.a.Days(c.ctx, appInfoDays)
	if err != nil {
		return nil, err
	}
	n, err := c.a.Counters()
	if err != nil {
		return nil, err
	}
	result := make([]map[string]any, 0, len(days))
	for i := len(days) - 1; i >= 0; i-- {
		d := days[i]
		all := map[string]int64{
			"ActiveUserNum":        d.ActiveUsers,
			"LoginUserNum":         d.ActiveUsers,
			"RegistUserNumOneDay":  d.NewAccounts,
			"RegistUserNumTotal":   d.TotalAccounts,
			"MaxOnlineNum":         d.PeakOnlineUsers,
			"C2CUpMsgNum":          d.C2CMsgs,
			"GroupUpMsgNum":        d.GroupMsgs,
			"UpMsgNum":             d.C2CMsgs + d.GroupMsgs,
			"GroupNewGroupNum":     d.GroupsCreated,
			"GroupSendMsgGroupNum": d.GroupsActive,
			"GroupAllGroupNum":     d.TotalGroups,
		}
		if i == len(days)-1 {
			all["OnlineUserNum"] = int64(n.OnlineUserNum) // imbroker: users online now
			all["OnlineConnNum"] = int64(n.OnlineConnNum) // imbroker: connections now
			all["MaxOnlineConnNum"] = d.PeakOnlineConns
		}
		item := map[string]any{"Date": d.Date}
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
		result = append(result, item)
	}
	return map[string]any{"Result": result}, nil
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
