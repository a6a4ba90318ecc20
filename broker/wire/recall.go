package wire

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/imbroker/imbroker/internal/imerr"
)

// MsgFlagRecalled is Tencent's MsgFlagBits for a recalled message.
const MsgFlagRecalled = 8

// Marker is a stored message rewritten as its recall marker.
type Marker struct {
	Event        []byte          // the stored event to replace the message by
	Msg          json.RawMessage // its message, for conversation records whose last message it was
	From_Account string          // the message's sender
	To_Account   string          // its recipient (one-to-one messages)
	MsgTime      int64
}

// RecallMarker rewrites a stored message event (one-to-one or group) as its
// recall marker: the body and custom data are gone, MsgFlagBits says
// recalled. An already recalled message is imerr.RecallAgain.
func RecallMarker(stored []byte) (Marker, error) {
	var ev struct {
		Event string
		Msg   map[string]json.RawMessage // every other field kept as stored: no float64 round trip
	}
	if err := json.Unmarshal(stored, &ev); err != nil {
		return Marker{}, fmt.Errorf("stored message: %w", err)
	}
	var flags int
	_ = json.Unmarshal(ev.Msg["MsgFlagBits"], &flags)
	if flags&MsgFlagRecalled != 0 {
		return Marker{}, imerr.RecallAgain.New("already recalled")
	}
	var m Marker
	_ = json.Unmarshal(ev.Msg["From_Account"], &m.From_Account)
	_ = json.Unmarshal(ev.Msg["To_Account"], &m.To_Account)
	_ = json.Unmarshal(ev.Msg["MsgTime"], &m.MsgTime)
	ev.Msg["MsgFlagBits"] = json.RawMessage(strconv.Itoa(MsgFlagRecalled))
	ev.Msg["MsgBody"] = json.RawMessage("[]")
	delete(ev.Msg, "CloudCustomData")
	var err error
	if m.Msg, err = json.Marshal(ev.Msg); err != nil { // in name order, as markers always were
		return Marker{}, fmt.Errorf("recall marker: %w", err)
	}
	if m.Event, err = EncodeEvent(ev.Event, m.Msg); err != nil {
		return Marker{}, fmt.Errorf("recall marker: %w", err)
	}
	return m, nil
}
