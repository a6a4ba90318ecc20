package test

import (
	"encoding/json"
	"strings"
	"testing"

	paho5 "github.com/eclipse/paho.golang/paho"
)

// badNumberBodies are MsgBodies with numbers that are not finite or out of
// their documented range. [IM-NUMBERS]
var badNumberBodies = map[string]string{
	"Index 1e400":         `[{"MsgType":"TIMFaceElem","MsgContent":{"Index":1e400}}]`,
	"Latitude 1e999999":   `[{"MsgType":"TIMLocationElem","MsgContent":{"Latitude":1e999999,"Longitude":1}}]`,
	"Latitude 91":         `[{"MsgType":"TIMLocationElem","MsgContent":{"Latitude":91,"Longitude":1}}]`,
	"FileSize 400 digits": `[{"MsgType":"TIMFileElem","MsgContent":{"FileName":"f","FileSize":` + strings.Repeat("7", 400) + `}}]`,
	"custom field 1e400":  `[{"MsgType":"TIMCustomElem","MsgContent":{"Data":"x","N":1e400}}]`,
}

// TestOutOfRangeNumbersRefused: sends over MQTT 5 (PUBACK 0x99 with 90002)
// and REST (90001: the body is refused before it is read) refuse them and
// deliver nothing; an im/req request with such a number anywhere is
// refused with 90001; in-range values pass.
func TestOutOfRangeNumbersRefused(t *testing.T) {
	b := StartBroker(t)
	alice := mqUser5(t, b, "alice", "alice")
	bob := b.Connect("bob", "bob")
	for name, body := range badNumberBodies {
		payload := `{"MsgRandom":1,"MsgBody":` + body + `}`
		if rc := alice.pub(&paho5.Publish{Topic: "im/send/c2c/bob", QoS: 1, Payload: []byte(payload)}); rc != 0x99 {
			t.Errorf("MQTT send with %s: PUBACK 0x%02x, want 0x99", name, rc)
		}
		out := v4Raw(t, b.v4URL("openim/sendmsg", nil), []byte(`{"From_Account":"alice","To_Account":"bob","MsgRandom":2,"MsgBody":`+body+`}`))
		if out["ActionStatus"] != "FAIL" || (errCode(out) != 90001 && errCode(out) != 90002) {
			t.Errorf("REST sendmsg with %s: %v", name, out)
		}
	}
	r := bob.Req("friend.get", map[string]any{"StartIndex": 0, "Extra": json.RawMessage("1e400")})
	if code(r) != 90001 {
		t.Fatalf("im/req with 1e400: %v", r)
	}
	ok := `{"MsgRandom":3,"MsgBody":[{"MsgType":"TIMLocationElem","MsgContent":{"Latitude":-90,"Longitude":180}}]}`
	if rc := alice.pub(&paho5.Publish{Topic: "im/send/c2c/bob", QoS: 1, Payload: []byte(ok)}); rc != 0 {
		t.Fatalf("in-range location: PUBACK 0x%02x", rc)
	}
	if ev := bob.NextEvent(); !strings.Contains(string(mustJSON(ev)), `"Latitude":-90`) {
		t.Fatalf("bob got %v, want the in-range location only", ev)
	}
}
