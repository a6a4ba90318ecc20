package test

import "testing"

// invisibleIDs are UserIDs that look like "alice" (or like nothing) on
// screen: Unicode whitespace and invisible format characters (category Cf).
// [IDS-UNICODE]
var invisibleIDs = map[string]string{
	"NBSP":              "ali\u00a0ce",
	"ideographic space": "alice\u3000",
	"zero-width space":  "ali\u200bce",
	"RLO":               "\u202ealice",
	"BOM":               "alice\ufeff",
	"ZWJ":               "al\u200dice",
}

// TestUnicodeInvisibleUserIDsRefused: such IDs cannot log in over MQTT
// (ClientID, user name and UserSig identifier alike) nor be imported or
// messaged over REST.
func TestUnicodeInvisibleUserIDsRefused(t *testing.T) {
	b := StartBroker(t)
	for name, id := range invisibleIDs {
		t.Run(name, func(t *testing.T) {
			_, ca := connect5(t, b, id, id, b.Sig(id))
			if ca.ReasonCode != 0x86 {
				t.Fatalf("CONNACK reason 0x%02x for %q, want 0x86", ca.ReasonCode, id)
			}
			if ca.Properties == nil || len(ca.Properties.ReasonString) < 5 || ca.Properties.ReasonString[:5] != "20003" {
				t.Fatalf("reason string %+v does not name 20003", ca.Properties)
			}
			wantCode(t, "account_import "+name, b.v4("im_open_login_svc/account_import", map[string]any{"UserID": id}), 70402)
			wantCode(t, "sendmsg to "+name, b.v4("openim/sendmsg", map[string]any{
				"To_Account": id, "MsgRandom": Random(),
				"MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "hi"}}},
			}), 20003)
		})
	}
	// A GroupId is printable ASCII: no Unicode whitespace or format character.
	b.v4OK("im_open_login_svc/account_import", map[string]any{"UserID": "alice"})
	for name, gid := range map[string]string{"NBSP": "g\u00a01", "ZWSP": "g\u200b1", "ideographic space": "g\u30001"} {
		out := b.v4("group_open_http_svc/create_group", map[string]any{"Owner_Account": "alice", "Type": "Public", "GroupId": gid, "Name": "x"})
		if out["ActionStatus"] != "FAIL" {
			t.Fatalf("create_group with %s GroupId: %v", name, out)
		}
	}
}
