package rest

import (
	"strconv"
	"time"
)

func opsEndpoints() []*endpoint {
	return []*endpoint{
		{Path: "openconfigsvr/getappinfo", Summary: "the app's counters", Request: []string{"RequestField"}, handle: getAppInfo},
	}
}

// getAppInfo answers one Result item for today. Counts are this node's
// since it started (messages) or now (totals), as strings like Tencent's.
func getAppInfo(c *call) (map[string]any, error) {
	var q struct{ RequestField []string }
	if err := c.decode(&q, codeJSONParse); err != nil {
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
