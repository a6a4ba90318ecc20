package test

import "testing"

// TestRESTRecentContact: recentcontact get_list and delete. [REST-RECENT]
func TestRESTRecentContact(t *testing.T) {
	b := StartBroker(t)
	b.importAccounts("bob")
	req := Text("hi", Random())
	req["From_Account"], req["To_Account"] = "alice", "bob"
	b.v4OK("openim/sendmsg", req)
	list := b.v4OK("recentcontact/get_list", map[string]any{"From_Account": "bob", "StartIndex": 0})
	si := items(list, "SessionItem")
	if len(si) != 1 || si[0]["To_Account"] != "alice" || si[0]["Type"].(float64) != 1 || list["CompleteFlag"].(float64) != 1 {
		t.Fatalf("get_list: %v", list)
	}
	bob := b.Connect("bob", "bob")
	b.v4OK("recentcontact/delete", map[string]any{"From_Account": "bob", "Type": 1, "To_Account": "alice", "ClearRamble": 1})
	if e := bob.NextEvent(); e.Event != "ConvDeleted" {
		t.Fatalf("bob got %s", e.Raw)
	}
	if si := items(b.v4OK("recentcontact/get_list", map[string]any{"From_Account": "bob"}), "SessionItem"); len(si) != 0 {
		t.Fatalf("after delete: %v", si)
	}
	wantCode(t, "no From_Account", b.v4("recentcontact/get_list", map[string]any{}), 50001)
}
