package test

import (
	"testing"
)

// req publishes a request and returns its reply.
func (c *Client) Req(op string, body map[string]any) map[string]any {
	c.tb.Helper()
	id := op + "-" + string(rune('a'+Random()%26))
	body["Id"] = id
	c.Publish1("im/req/"+op, body)
	for {
		r := c.NextReply()
		if r["Id"] == id {
			return r
		}
	}
}

func code(r map[string]any) int {
	f, _ := r["ErrorCode"].(float64)
	return int(f)
}

func TestE2E_GroupSmoke(t *testing.T) {
	b := StartBroker(t)
	alice := b.Connect("alice", "alice")
	bob := b.Connect("bob", "bob")
	r := alice.Req("group.create", map[string]any{"Type": "Private", "Name": "team", "MemberList": []any{map[string]any{"Member_Account": "bob"}}})
	if code(r) != 0 {
		t.Fatalf("create: %v", r)
	}
	gid := r["GroupId"].(string)
	// both get the GroupCreated tip
	if e := bob.NextEvent(); e.Event != "GroupTip" {
		t.Fatalf("bob: %s", e.Raw)
	}
	alice.NextEvent()
	alice.Publish1("im/send/group/"+gidLevel(gid), Text("hello group", Random()))
	e := bob.NextEvent()
	if e.Event != "GroupMsg" {
		t.Fatalf("bob: %s", e.Raw)
	}
	t.Logf("%s", e.Raw)
	r = bob.Req("group.history", map[string]any{"GroupId": gid})
	if code(r) != 0 {
		t.Fatalf("history: %v", r)
	}
	t.Logf("%v", r)
	r = bob.Req("group.quit", map[string]any{"GroupId": gid})
	if code(r) != 0 {
		t.Fatalf("quit: %v", r)
	}
	r = alice.Req("group.quit", map[string]any{"GroupId": gid})
	t.Logf("owner quit: %v", r)
}
