package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"testing"
)

// Numbers in replies keep every digit, over MQTT (im/u/{uid}/rpc) and REST
// (/v4): an int64 above 2^53 that passes through float64 on the way out
// comes back as a different number.

const (
	exactMuteForever = "4611686018427387903" // MuteUntil of MuteTime 4294967295 (1<<62 - 1)
	exactFileSize    = "9007199254740993"    // 2^53 + 1: the first integer a float64 cannot hold
)

// exactDecode decodes a JSON object keeping each number as the literal sent.
func exactDecode(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v map[string]any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return v
}

// exactReq sends op from c (logged in as user, subscribed to its rpc topic)
// and returns the reply, which must be a success.
func exactReq(t *testing.T, c *mq3, user, op string, body map[string]any) map[string]any {
	t.Helper()
	id := fmt.Sprintf("%s-%d", op, Random())
	body["Id"] = id
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	c.pub("im/req/"+op, 1, false, string(raw))
	for {
		m := c.next() // fails the test after mqWait
		if m.Topic() != "im/u/"+user+"/rpc" {
			continue
		}
		if r := exactDecode(t, m.Payload()); r["Id"] == id {
			if r["ErrorCode"] != json.Number("0") {
				t.Fatalf("%s: %s", op, m.Payload())
			}
			return r
		}
	}
}

// exactV4 calls a v4 API as the admin and returns the envelope, which must
// be a success.
func exactV4(t *testing.T, b *Broker, path string, body any) map[string]any {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := restClient.Post(b.v4URL(path, nil), "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	out := exactDecode(t, data)
	if out["ActionStatus"] != "OK" {
		t.Fatalf("%s: %s", path, data)
	}
	return out
}

// exactItem is the object in list whose field is value.
func exactItem(t *testing.T, list any, field, value string) map[string]any {
	t.Helper()
	l, _ := list.([]any)
	for _, it := range l {
		if m, ok := it.(map[string]any); ok && m[field] == value {
			return m
		}
	}
	t.Fatalf("no item with %s %q in %v", field, value, list)
	return nil
}

// wantExact fails unless got is the number literal want.
func wantExact(t *testing.T, what string, got any, want string) {
	t.Helper()
	if n, ok := got.(json.Number); !ok || string(n) != want {
		t.Fatalf("%s: got %v, want %s", what, got, want)
	}
}

// TestE2E_ExactMuteUntil: a member muted forever (MuteUntil 1<<62 - 1) reads
// back with every digit through group.members and group.joined over MQTT
// and get_group_member_info, get_joined_group_list and
// get_group_muted_account over REST. [EXACT-NUMBERS]
func TestE2E_ExactMuteUntil(t *testing.T) {
	b := StartBroker(t)
	alice := mqUser3(t, b, "alice", "alice", nil)
	alice.sub("im/u/alice/rpc", 1)
	bob := mqUser3(t, b, "bob", "bob", nil)
	bob.sub("im/u/bob/rpc", 1)
	const g = "group_open_http_svc/"
	exactV4(t, b, g+"create_group", map[string]any{"Owner_Account": "alice", "Type": "Public", "GroupId": "exact", "Name": "exact",
		"MemberList": []map[string]any{{"Member_Account": "bob"}}})
	exactV4(t, b, g+"forbid_send_msg", map[string]any{"GroupId": "exact", "Members_Account": []string{"bob"}, "MuteTime": 4294967295})

	r := exactReq(t, alice, "alice", "group.members", map[string]any{"GroupId": "exact"})
	wantExact(t, "MQTT group.members", exactItem(t, r["MemberList"], "Member_Account", "bob")["MuteUntil"], exactMuteForever)
	r = exactReq(t, bob, "bob", "group.joined", map[string]any{})
	wantExact(t, "MQTT group.joined", jsonAt(exactItem(t, r["GroupIdList"], "GroupId", "exact"), "SelfInfo", "MuteUntil"), exactMuteForever)

	out := exactV4(t, b, g+"get_group_member_info", map[string]any{"GroupId": "exact"})
	wantExact(t, "REST get_group_member_info", exactItem(t, out["MemberList"], "Member_Account", "bob")["MuteUntil"], exactMuteForever)
	out = exactV4(t, b, g+"get_joined_group_list", map[string]any{"Member_Account": "bob"})
	wantExact(t, "REST get_joined_group_list", jsonAt(exactItem(t, out["GroupIdList"], "GroupId", "exact"), "SelfInfo", "MuteUntil"), exactMuteForever)
	out = exactV4(t, b, g+"get_group_muted_account", map[string]any{"GroupId": "exact"})
	wantExact(t, "REST get_group_muted_account", exactItem(t, out["MutedAccountList"], "Member_Account", "bob")["MutedUntil"], exactMuteForever)
}

// TestE2E_ExactFileSize: a TIMFileElem's FileSize of 2^53 + 1 reads back
// with every digit through msg.history and group.history over MQTT and
// admin_getroammsg and group_msg_get_simple over REST. [EXACT-NUMBERS]
func TestE2E_ExactFileSize(t *testing.T) {
	b := StartBroker(t)
	alice := mqUser3(t, b, "alice", "alice", nil)
	alice.sub("im/u/alice/rpc", 1)
	bob := mqUser3(t, b, "bob", "bob", nil)
	bob.sub("im/u/bob/rpc", 1)
	// Written out, not marshalled, so the literal is exactly what is sent.
	file := func() string {
		return fmt.Sprintf(`{"MsgRandom":%d,"MsgBody":[{"MsgType":"TIMFileElem","MsgContent":{"Url":"https://x/f.bin","UUID":"f1",`+
			`"FileSize":%s,"FileName":"f.bin","Download_Flag":2}}]}`, Random(), exactFileSize)
	}

	// The PUBACK comes once the message is stored, so history has it.
	alice.pub("im/send/c2c/bob", 1, false, file())
	r := exactReq(t, bob, "bob", "msg.history", map[string]any{"Type": 1, "Peer_Account": "alice"})
	wantExact(t, "MQTT msg.history", jsonAt(r, "MsgList", 0, "Msg", "MsgBody", 0, "MsgContent", "FileSize"), exactFileSize)
	out := exactV4(t, b, "openim/admin_getroammsg", map[string]any{"Operator_Account": "bob", "Peer_Account": "alice", "MaxCnt": 10})
	wantExact(t, "REST admin_getroammsg", jsonAt(out, "MsgList", 0, "MsgBody", 0, "MsgContent", "FileSize"), exactFileSize)

	const g = "group_open_http_svc/"
	exactV4(t, b, g+"create_group", map[string]any{"Owner_Account": "alice", "Type": "Public", "GroupId": "files", "Name": "files",
		"MemberList": []map[string]any{{"Member_Account": "bob"}}})
	alice.pub("im/send/group/files", 1, false, file())
	// Newest first: the message, then the tips of the group's creation.
	r = exactReq(t, bob, "bob", "group.history", map[string]any{"GroupId": "files"})
	wantExact(t, "MQTT group.history", jsonAt(r, "RspMsgList", 0, "Msg", "MsgBody", 0, "MsgContent", "FileSize"), exactFileSize)
	out = exactV4(t, b, g+"group_msg_get_simple", map[string]any{"GroupId": "files", "ReqMsgNumber": 10})
	wantExact(t, "REST group_msg_get_simple", jsonAt(out, "RspMsgList", 0, "MsgBody", 0, "MsgContent", "FileSize"), exactFileSize)
}
