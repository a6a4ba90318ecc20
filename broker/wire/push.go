package wire

import (
	"encoding/json"
	"strings"
)

// offlinePushInfo is the part of a message's OfflinePushInfo the offline
// push uses.
type offlinePushInfo struct {
	PushFlag int
	Title    string
	Desc     string
	Ext      string
}

// PushText derives a message's push text as Tencent does: a text element's
// text, a custom element's Desc, and a bracketed label for the others.
func PushText(body json.RawMessage) string {
	var els []struct {
		MsgType    string
		MsgContent struct{ Text, Desc string }
	}
	if json.Unmarshal(body, &els) != nil {
		return ""
	}
	var sb strings.Builder
	for _, e := range els {
		switch e.MsgType {
		case "TIMTextElem":
			sb.WriteString(e.MsgContent.Text)
		case "TIMCustomElem":
			sb.WriteString(e.MsgContent.Desc)
		case "TIMLocationElem":
			sb.WriteString("[Location]")
		case "TIMFaceElem":
			sb.WriteString("[Face]")
		case "TIMImageElem":
			sb.WriteString("[Image]")
		case "TIMSoundElem":
			sb.WriteString("[Voice]")
		case "TIMVideoFileElem":
			sb.WriteString("[Video]")
		case "TIMFileElem":
			sb.WriteString("[File]")
		}
	}
	return sb.String()
}

// PushFields builds the body of an offline push callback
// (Push.CallbackOfflinePush) for one recipient, or nil when the message asks
// for no push (OfflinePushInfo.PushFlag 1). C2C and group pushes add their
// own fields.
func PushFields(to, from string, body, opi json.RawMessage) map[string]any {
	var info offlinePushInfo
	if len(opi) > 0 {
		_ = json.Unmarshal(opi, &info)
	}
	if info.PushFlag == 1 {
		return nil
	}
	desc := info.Desc
	if desc == "" {
		desc = PushText(body)
	}
	f := map[string]any{"To_Account": to, "From_Account": from, "Desc": desc}
	if info.Title != "" {
		f["Title"] = info.Title
	}
	if info.Ext != "" {
		f["Ext"] = info.Ext
	}
	return f
}
