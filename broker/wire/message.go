package wire

import "encoding/json"

// C2CMsg is a stored and delivered one-to-one message (Tencent field names).
type C2CMsg struct {
	From              string          `json:"From_Account"`
	To                string          `json:"To_Account"`
	MsgSeq            uint32          `json:"MsgSeq"`
	MsgRandom         uint32          `json:"MsgRandom"`
	MsgTime           int64           `json:"MsgTime"`
	MsgKey            string          `json:"MsgKey"`
	MsgBody           json.RawMessage `json:"MsgBody"`
	CloudCustomData   string          `json:"CloudCustomData,omitempty"`
	ClientMsgID       string          `json:"ClientMsgID,omitempty"`
	IsNeedReadReceipt int             `json:"IsNeedReadReceipt,omitempty"`
	SendMsgControl    []string        `json:"SendMsgControl,omitempty"`
	OfflinePushInfo   json.RawMessage `json:"OfflinePushInfo,omitempty"`
	MsgFlagBits       int             `json:"MsgFlagBits,omitempty"` // 8: recalled (history only)
}

// SendResult is what a successful send returns.
type SendResult struct {
	MsgKey    string
	MsgTime   int64
	MsgSeq    uint32
	Duplicate bool // an identical resend inside the dedup window; nothing new was stored
}

// AppendJSONString appends s as a JSON string. IDs are plain ASCII and
// take the fast path; anything else goes through encoding/json so the
// escaping (HTML characters, control characters, bad UTF-8) is its own.
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
