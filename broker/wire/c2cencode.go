package wire

import (
	"encoding/hex"
	"encoding/json"
	"strconv"
)

// The send path encodes every message by hand: json.Marshal of a C2CMsg
// (reflection, and re-compacting MsgBody that ValidateBody has just
// compacted) was a tenth of SendC2C. The output is byte for byte what
// json.Marshal writes (TestEncodeC2CMatchesEncodingJSON), so stored events,
// live deliveries and dedup values look exactly as before.

// EncodeC2CMsg is json.Marshal(m).
func EncodeC2CMsg(m *C2CMsg) []byte {
	b := make([]byte, 0, 160+len(m.From)+len(m.To)+len(m.MsgKey)+len(m.MsgBody)+len(m.CloudCustomData)+len(m.ClientMsgID)+len(m.OfflinePushInfo))
	b = append(b, `{"From_Account":`...)
	b = AppendJSONString(b, m.From)
	b = append(b, `,"To_Account":`...)
	b = AppendJSONString(b, m.To)
	b = append(b, `,"MsgSeq":`...)
	b = strconv.AppendUint(b, uint64(m.MsgSeq), 10)
	b = append(b, `,"MsgRandom":`...)
	b = strconv.AppendUint(b, uint64(m.MsgRandom), 10)
	b = append(b, `,"MsgTime":`...)
	b = strconv.AppendInt(b, m.MsgTime, 10)
	b = append(b, `,"MsgKey":`...)
	b = AppendJSONString(b, m.MsgKey)
	b = append(b, `,"MsgBody":`...)
	b = appendClientJSON(b, m.MsgBody)
	if m.CloudCustomData != "" {
		b = append(b, `,"CloudCustomData":`...)
		b = AppendJSONString(b, m.CloudCustomData)
	}
	if m.ClientMsgID != "" {
		b = append(b, `,"ClientMsgID":`...)
		b = AppendJSONString(b, m.ClientMsgID)
	}
	if m.IsNeedReadReceipt != 0 {
		b = append(b, `,"IsNeedReadReceipt":`...)
		b = strconv.AppendInt(b, int64(m.IsNeedReadReceipt), 10)
	}
	if len(m.SendMsgControl) > 0 {
		b = append(b, `,"SendMsgControl":[`...)
		for i, s := range m.SendMsgControl {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendJSONString(b, s)
		}
		b = append(b, ']')
	}
	if len(m.OfflinePushInfo) > 0 {
		b = append(b, `,"OfflinePushInfo":`...)
		b = appendClientJSON(b, m.OfflinePushInfo)
	}
	if m.MsgFlagBits != 0 {
		b = append(b, `,"MsgFlagBits":`...)
		b = strconv.AppendInt(b, int64(m.MsgFlagBits), 10)
	}
	return append(b, '}')
}

// appendClientJSON appends a raw JSON value as json.Marshal would: as is
// when it is already in the form json.Marshal writes (no whitespace
// outside strings, no HTML characters, no U+2028/U+2029: what ValidateBody
// produces), else compacted and escaped by encoding/json. A nil or empty
// value is null.
func appendClientJSON(b []byte, v json.RawMessage) []byte {
	if len(v) == 0 {
		return append(b, "null"...)
	}
	if !marshalForm(v) {
		if q, err := json.Marshal(v); err == nil {
			return append(b, q...)
		}
	}
	return append(b, v...)
}

// marshalForm reports whether the valid JSON value v is already written as
// json.Marshal would write it.
func marshalForm(v []byte) bool {
	in, esc := false, false
	for i, c := range v {
		switch {
		case c == '<' || c == '>' || c == '&':
			return false
		case c == 0xe2 && i+2 < len(v) && v[i+1] == 0x80 && (v[i+2] == 0xa8 || v[i+2] == 0xa9): // U+2028, U+2029
			return false
		case in:
			if esc {
				esc = false
			} else if c == '\\' {
				esc = true
			} else if c == '"' {
				in = false
			}
		case c == '"':
			in = true
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			return false
		}
	}
	return true
}

// C2CEvent is EncodeEvent(EventC2CMsg, m) around an encoded message.
func C2CEvent(msgJSON []byte) []byte {
	const head = `{"Event":"` + EventC2CMsg + `","Msg":`
	ev := make([]byte, 0, len(head)+len(msgJSON)+1)
	ev = append(ev, head...)
	ev = append(ev, msgJSON...)
	return append(ev, '}')
}

// C2CMsgKey is fmt.Sprintf("%d_%d_%d", seq, random, time).
func C2CMsgKey(seq, random uint32, t int64) string {
	var a [48]byte
	b := strconv.AppendUint(a[:0], uint64(seq), 10)
	b = append(b, '_')
	b = strconv.AppendUint(b, uint64(random), 10)
	b = append(b, '_')
	b = strconv.AppendInt(b, t, 10)
	return string(b)
}

// AppendDedupKey is fmt.Appendf(nil, "c2c/%s/%s/%d/%x", from, to, random, sum).
func AppendDedupKey(from, to string, random uint32, sum []byte) []byte {
	b := make([]byte, 0, 16+len(from)+len(to)+2*len(sum))
	b = append(b, "c2c/"...)
	b = append(b, from...)
	b = append(b, '/')
	b = append(b, to...)
	b = append(b, '/')
	b = strconv.AppendUint(b, uint64(random), 10)
	b = append(b, '/')
	return hex.AppendEncode(b, sum)
}
