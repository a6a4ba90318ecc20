package main

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/imbroker/imbroker/config"
	imtest "github.com/imbroker/imbroker/test"
)

func redPacket(data string) map[string]any {
	return map[string]any{"MsgRandom": imtest.Random(), "MsgBody": []any{map[string]any{
		"MsgType": "TIMCustomElem", "MsgContent": map[string]any{"Data": data, "Desc": "[Red packet]"}}}}
}

func dataOf(t *testing.T, e imtest.Event) custom {
	t.Helper()
	var body []struct{ MsgContent struct{ Data string } }
	if err := json.Unmarshal(e.Msg.MsgBody, &body); err != nil || len(body) == 0 {
		t.Fatalf("not a custom message: %s", e.Raw)
	}
	var c custom
	if err := json.Unmarshal([]byte(body[0].MsgContent.Data), &c); err != nil {
		t.Fatalf("bad Data in %s", e.Raw)
	}
	return c
}

// TestRedPacket: alice sends bob a red packet; the before-callback rejects
// a bad one and stamps a good one with its id; bob claims it and the
// backend pays through REST; a second claim is refused.
func TestRedPacket(t *testing.T) {
	s := &Backend{Account: "redpacket", AppID: 1400000000, Key: imtest.TestKey, Admin: "administrator"}
	cb := httptest.NewServer(s)
	defer cb.Close()
	b := imtest.StartBroker(t, func(c *config.Config) {
		c.Callbacks.URL = cb.URL
		c.Callbacks.Commands = []string{"C2C.CallbackBeforeSendMsg", "Group.CallbackBeforeSendMsg", "C2C.CallbackAfterSendMsg"}
	})
	s.REST = "http://" + b.App.HTTPAddr()
	if err := s.Register(); err != nil {
		t.Fatal(err)
	}
	alice := b.Connect("alice", "alice")
	bob := b.Connect("bob", "bob")

	alice.Publish1("im/send/c2c/bob", redPacket(`{"type":"redpacket","total":5,"count":10}`))
	if r := alice.NextReply(); r["ErrorCode"].(float64) != codeBadPacketC2C || !strings.Contains(r["ErrorInfo"].(string), "count") {
		t.Fatalf("bad packet not refused: %v", r)
	}
	alice.Publish1("im/send/c2c/bob", redPacket(`{"type":"redpacket","total":300,"count":2}`))
	got := dataOf(t, bob.NextEvent())
	if got.Type != "redpacket" || got.ID == "" || got.Total != 300 {
		t.Fatalf("bob got %+v", got)
	}
	claim, _ := json.Marshal(custom{Type: "claim", ID: got.ID})
	for i, want := range []custom{{Type: "claimed", ID: got.ID, Amount: 150}, {Type: "claim_failed", ID: got.ID, Reason: "already claimed"}} {
		bob.Publish1("im/send/c2c/redpacket", redPacket(string(claim)))
		var e imtest.Event
		for e = bob.NextEvent(); e.Msg.From_Account != "redpacket"; e = bob.NextEvent() {
		}
		if c := dataOf(t, e); c != want {
			t.Fatalf("claim %d: got %+v, want %+v", i, c, want)
		}
	}
}
