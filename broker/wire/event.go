package wire

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// Event names in a user's stream (docs/protocol.md).
const (
	EventC2CMsg = "C2CMsg"
)

// EncodeEvent makes the stored form of an event: {"Event":name,"Msg":body}.
// The stream position is not part of it; Envelope adds it on the way out,
// so live deliveries and sync replays are built by the same code from the
// same stored bytes and are identical.
func EncodeEvent(name string, body any) ([]byte, error) {
	return json.Marshal(struct {
		Event string `json:"Event"`
		Msg   any    `json:"Msg"`
	}{name, body})
}

// Envelope prefixes a stored event object with its stream position:
// {"Seq":n,"Epoch":e,<stored fields>}.
func Envelope(epoch, seq uint64, stored []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(stored) + 48)
	buf.WriteString(`{"Seq":`)
	buf.WriteString(strconv.FormatUint(seq, 10))
	buf.WriteString(`,"Epoch":`)
	buf.WriteString(strconv.FormatUint(epoch, 10))
	if len(stored) > 2 { // stored is a non-empty JSON object: splice its fields in
		buf.WriteByte(',')
		buf.Write(stored[1:])
	} else {
		buf.WriteByte('}')
	}
	return buf.Bytes()
}
