package test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imbroker/imbroker/broker"
	"github.com/imbroker/imbroker/broker/mqttd"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/rest"
	"github.com/mochi-mqtt/server/v2/packets"
)

// The cluster seam (docs/architecture.md "Cluster seams") without a
// cluster: a broker started with broker.NewLoopback() is never the owner,
// so every write goes through the seam — encoded, handed to the owner
// handlers (its own), run there, the answer decoded back. Each scenario
// runs on a plain broker and on a forwarding one, and everything the
// clients saw must be identical (but for clock readings and request ids).
// A forwarded path that dropped the caller's identity, the order of a
// connection's sends or a refusal's code changes what the clients see.

// startForwarded starts a broker whose writes all go through the seam.
func startForwarded(t *testing.T, mods ...func(*config.Config)) (*Broker, *broker.Loopback) {
	t.Helper()
	cfg := TestConfig(t)
	for _, m := range mods {
		m(&cfg)
	}
	lb := broker.NewLoopback()
	return StartWith(t, cfg, broker.WithCluster(lb)), lb
}

// bothWays runs scenario on a plain broker and on a forwarding one and
// fails unless both saw the same; it returns the loopback, for the caller
// to check that the writes did go through it.
func bothWays(t *testing.T, scenario func(t *testing.T, b *Broker) []string, mods ...func(*config.Config)) *broker.Loopback {
	t.Helper()
	var direct, forwarded []string
	t.Run("direct", func(t *testing.T) { direct = scenario(t, StartBroker(t, mods...)) })
	var lb *broker.Loopback
	t.Run("forwarded", func(t *testing.T) {
		var b *Broker
		b, lb = startForwarded(t, mods...)
		forwarded = scenario(t, b)
	})
	if t.Failed() {
		t.FailNow()
	}
	if len(direct) != len(forwarded) {
		t.Fatalf("direct saw %d answers, forwarded %d:\n%q\n%q", len(direct), len(forwarded), direct, forwarded)
	}
	for i := range direct {
		if direct[i] != forwarded[i] {
			t.Fatalf("answer %d differs:\n direct:    %s\n forwarded: %s", i, direct[i], forwarded[i])
		}
	}
	return lb
}

// wantForwarded fails unless each kind went through the seam at least once.
func wantForwarded(t *testing.T, lb *broker.Loopback, kinds ...string) {
	t.Helper()
	for _, k := range kinds {
		if lb.Forwarded(k) == 0 {
			t.Fatalf("nothing of kind %s was forwarded: the seam was bypassed", k)
		}
	}
}

// volatile fields: clock readings (every …Time and …TimeStamp, the
// stream epochs, keys made of times) and request ids, which differ between
// any two runs.
var volatile = map[string]bool{"Id": true, "MsgKey": true, "Epoch": true, "Raw": true}

func isVolatile(k string) bool {
	return volatile[k] || strings.HasSuffix(k, "Time") || strings.HasSuffix(k, "TimeStamp")
}

// seen is v as a line of a transcript: JSON with volatile fields masked,
// and those of also.
func seen(what string, v any, also ...string) string {
	b, _ := json.Marshal(v)
	var x any
	_ = json.Unmarshal(b, &x)
	b, _ = json.Marshal(mask(x, also))
	return what + " " + string(b)
}

func mask(v any, also []string) any {
	switch x := v.(type) {
	case map[string]any:
		if tag, _ := x["Tag"].(string); isVolatile(tag) { // {"Tag":"Tag_SNS_IM_AddTime","Value":…}
			x["Value"] = "~"
		}
		for k, e := range x {
			if isVolatile(k) || slices.Contains(also, k) {
				x[k] = "~"
			} else {
				x[k] = mask(e, also)
			}
		}
	case []any:
		for i := range x {
			x[i] = mask(x[i], also)
		}
	}
	return v
}

// One-to-one sends pipelined on one connection, a refused send, an unknown
// topic and a request in between, a resend: the PUBACKs (order, reason
// codes and strings) and bob's stream (seqs, order) are the same, and the
// owner got the sends in batches (KindC2C).
func TestE2E_SeamPipelinedAcks(t *testing.T) {
	lb := bothWays(t, pipelinedAcksScenario)
	wantForwarded(t, lb, mqttd.KindC2C, mqttd.KindLogin, rest.KindV4)
}

// Group sends and writing im/req operations as a user, with refusals: the
// replies, the group's history and the refused codes are the same.
func TestE2E_SeamGroupAndRequests(t *testing.T) {
	lb := bothWays(t, func(t *testing.T, b *Broker) []string {
		alice, bob, carol := b.Connect("alice", "alice"), b.Connect("bob", "bob"), b.Connect("carol", "carol")
		var out []string
		req := func(c *Client, op string, body map[string]any) map[string]any {
			r := c.Req(op, body)
			out = append(out, seen(c.User+" "+op, r))
			return r
		}
		req(alice, "profile.set", map[string]any{"ProfileItem": []any{map[string]any{"Tag": "Tag_Profile_IM_Nick", "Value": "Alice"}}})
		admin := b.Connect("administrator", "administrator") // the app admin may act for a user
		req(admin, "profile.set", map[string]any{"From_Account": "alice",
			"ProfileItem": []any{map[string]any{"Tag": "Tag_Profile_IM_Level", "Value": 3}}})
		req(bob, "profile.get", map[string]any{"To_Account": []any{"alice"}, "TagList": []any{"Tag_Profile_IM_Nick", "Tag_Profile_IM_Level"}})
		req(alice, "profile.set", map[string]any{"From_Account": "bob", // a user acting for another: refused
			"ProfileItem": []any{map[string]any{"Tag": "Tag_Profile_IM_Nick", "Value": "x"}}})
		r := req(alice, "group.create", map[string]any{"Type": "Private", "GroupId": "seam1", "Name": "team",
			"MemberList": []any{map[string]any{"Member_Account": "bob"}}})
		if code(r) != 0 {
			t.Fatalf("group.create: %v", r)
		}
		gid := "seam1"
		for _, random := range []uint32{7, 8, 7} { // the third is a resend of the first
			alice.Publish1("im/send/group/"+gidLevel(gid), Text(fmt.Sprintf("hi %d", random), random))
		}
		carol.Publish1("im/send/group/"+gidLevel(gid), Text("not a member", 9)) // refused: told on rpc (3.1.1)
		out = append(out, seen("carol send", carol.NextReply()))
		req(bob, "group.history", map[string]any{"GroupId": gid})
		req(bob, "group.kick", map[string]any{"GroupId": gid, "Member_Account": []any{"alice"}}) // not the owner
		req(alice, "group.destroy", map[string]any{"GroupId": "no_such_group"})
		req(alice, "friend.add", map[string]any{"AddFriendItem": []any{map[string]any{"To_Account": "carol"}}})
		req(carol, "friend.pending", map[string]any{})
		req(alice, "group.modify", map[string]any{"GroupId": gid, "Name": "renamed"})
		req(bob, "group.info", map[string]any{"GroupIdList": []any{gid}})
		req(alice, "no.such_op", map[string]any{})
		return out
	})
	wantForwarded(t, lb, mqttd.KindGroup, mqttd.KindOp)
}

// Writing REST calls, refused ones included, and reads of what they wrote.
func TestE2E_SeamREST(t *testing.T) {
	lb := bothWays(t, func(t *testing.T, b *Broker) []string {
		var out []string
		call := func(path string, body any) map[string]any {
			r := b.v4(path, body)
			out = append(out, seen(path, r, "MsgSeq", "LastMsgKey")) // a C2C MsgSeq is random (Tencent's)
			return r
		}
		text := []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "rest"}}}
		call("im_open_login_svc/multiaccount_import", map[string]any{"Accounts": []any{"dave", "erin"}})
		call("im_open_login_svc/account_import", map[string]any{"UserID": "bad id"})
		call("openim/sendmsg", map[string]any{"From_Account": "dave", "To_Account": "erin", "MsgRandom": 5, "MsgBody": text})
		call("openim/sendmsg", map[string]any{"From_Account": "dave", "To_Account": "erin", "MsgRandom": 5, "MsgBody": text}) // resend
		call("openim/sendmsg", map[string]any{"From_Account": "dave", "To_Account": "erin", "MsgBody": text})                 // no MsgRandom
		call("openim/admin_getroammsg", map[string]any{"Operator_Account": "dave", "Peer_Account": "erin", "MaxCnt": 10,
			"MinTime": 0, "MaxTime": 4102444800})
		call("profile/portrait_set", map[string]any{"From_Account": "dave", "ProfileItem": []any{map[string]any{"Tag": "Tag_Profile_IM_Nick", "Value": "Dave"}}})
		call("profile/portrait_get", map[string]any{"To_Account": []any{"dave"}, "TagList": []any{"Tag_Profile_IM_Nick"}})
		call("group_open_http_svc/create_group", map[string]any{"Owner_Account": "dave", "Type": "Public", "GroupId": "seam2", "Name": "r",
			"MemberList": []any{map[string]any{"Member_Account": "erin"}}})
		call("group_open_http_svc/send_group_msg", map[string]any{"GroupId": "seam2", "From_Account": "erin", "Random": 11, "MsgBody": text})
		call("group_open_http_svc/send_group_msg", map[string]any{"GroupId": "no_such", "From_Account": "erin", "Random": 12, "MsgBody": text})
		call("group_open_http_svc/get_group_info", map[string]any{"GroupIdList": []any{"seam2"}})
		call("sns/friend_import", map[string]any{"From_Account": "dave", "AddFriendItem": []any{map[string]any{"To_Account": "erin"}}})
		call("sns/friend_get", map[string]any{"From_Account": "dave"})
		return out
	})
	wantForwarded(t, lb, rest.KindV4)
}

// OptPlatform and the admin's rights cross the seam: the friend-add
// callback scenario (RESTAPI for a REST call, Unknown for a client,
// ForceFlag only for the admin) holds with every write forwarded.
func TestE2E_SeamCallbacksPlatform(t *testing.T) {
	var lb *broker.Loopback
	callbackPrevFriendAddScenario(t, func(mods ...func(*config.Config)) *Broker {
		var b *Broker
		b, lb = startForwarded(t, mods...)
		return b
	})
	wantForwarded(t, lb, mqttd.KindOp, rest.KindV4)
}

// The console answers join applications through the ops registry in
// cluster mode (internal/app clusterGroups), so the answer is forwarded;
// the console's scenario holds unchanged.
func TestE2E_SeamConsoleApplications(t *testing.T) {
	b, lb := startForwarded(t, consoleConfig)
	before := lb.Forwarded(mqttd.KindOp)
	consoleApplicationsScenario(t, b)
	if lb.Forwarded(mqttd.KindOp)-before < 7 { // group.create, two joins, four answers
		t.Fatalf("%d im/req operations forwarded, want at least 7", lb.Forwarded(mqttd.KindOp)-before)
	}
}

// When the owner cannot be reached, a forwarded send is never acknowledged
// as a success and a forwarded REST call fails with Internal (20005); the
// same connection's next sends, once the owner answers again, are stored
// in order and nothing of the failed ones is.
func TestE2E_SeamOwnerUnreachable(t *testing.T) {
	b, lb := startForwarded(t)
	b.importAccounts("bob")
	alice := mqDialOK(t, b, mqRawLogin(b, "alice", "alice"))
	send := func(id uint16, random uint32) {
		payload, _ := json.Marshal(Text("m", random))
		alice.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
			TopicName: "im/send/c2c/bob", Payload: payload, PacketID: id})
	}
	restore := lb.Fail(mqttd.KindC2C, errors.New("no owner"))
	for i := uint16(1); i <= 3; i++ {
		send(i, uint32(100+i))
	}
	for i := uint16(1); i <= 3; i++ {
		ack := alice.Expect(packets.Puback)
		if ack.PacketID != i || ack.ReasonCode < 0x80 || !strings.HasPrefix(ack.Properties.ReasonString, "20005 ") {
			t.Fatalf("PUBACK %d with the owner unreachable: id %d reason %#x %q, want a 20005 refusal", i, ack.PacketID, ack.ReasonCode, ack.Properties.ReasonString)
		}
	}
	restoreREST := lb.Fail(rest.KindV4, errors.New("no owner"))
	wantCode(t, "sendmsg with the owner unreachable", b.v4("openim/sendmsg", map[string]any{"From_Account": "alice",
		"To_Account": "bob", "MsgRandom": 1, "MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "x"}}}}), 20005)
	restoreREST()
	restore()
	for i := uint16(4); i <= 6; i++ {
		send(i, uint32(100+i))
	}
	for i := uint16(4); i <= 6; i++ {
		if ack := alice.Expect(packets.Puback); ack.PacketID != i || ack.ReasonCode != 0 {
			t.Fatalf("PUBACK %d once the owner answers: id %d reason %#x %q", i, ack.PacketID, ack.ReasonCode, ack.Properties.ReasonString)
		}
	}
	bySeq := map[uint64]uint32{} // a live copy may reach the replay's channel too
	for _, e := range b.Connect("bob", "bob").SyncAll(0) {
		if e.Event == "C2CMsg" {
			bySeq[e.Seq] = e.Msg.MsgRandom
		}
	}
	var got []uint32
	for _, seq := range slices.Sorted(maps.Keys(bySeq)) {
		got = append(got, bySeq[seq])
	}
	if !slices.Equal(got, []uint32{104, 105, 106}) {
		t.Fatalf("bob has %v, want [104 105 106]", got)
	}
}

// TestE2E_SeamReadsWhileLogStalls: while this node applies nothing from the
// log (the barrier of REST reads cannot finish, as after a node that served
// its consumer or led JetStream was killed), online status answers at once
// from presence, and a read of the store is refused (20005) after
// storage.commit_timeout instead of hanging until the client gives up.
func TestE2E_SeamReadsWhileLogStalls(t *testing.T) {
	const commit = 1500 * time.Millisecond
	b, lb := startForwarded(t, func(c *config.Config) { c.Storage.CommitTimeout = commit })
	alice := mqDialOK(t, b, mqRawLogin(b, "alice:web", "alice"))
	defer alice.Close()
	restore := lb.StallBarrier()
	defer restore()
	for _, path := range []string{"openim/query_online_status", "openim/querystate"} {
		start := time.Now()
		res := b.v4OK(path, map[string]any{"To_Account": []string{"alice"}, "IsNeedDetail": 1})
		if took := time.Since(start); took > commit/2 {
			t.Fatalf("%s took %s while the log stalled; it reads no store", path, took)
		}
		if got := fmt.Sprint(res["QueryResult"]); !strings.Contains(got, "Online") || !strings.Contains(got, "web") {
			t.Fatalf("%s while the log stalled: %s, want alice Online on web", path, got)
		}
	}
	start := time.Now()
	wantCode(t, "account_check while the log stalled", b.v4("im_open_login_svc/account_check",
		map[string]any{"CheckItem": []any{map[string]any{"UserID": "alice"}}}), 20005)
	if took := time.Since(start); took < commit || took > commit+2*time.Second {
		t.Fatalf("account_check refused after %s, want about storage.commit_timeout (%s)", took, commit)
	}
	restore()
	b.v4OK("im_open_login_svc/account_check", map[string]any{"CheckItem": []any{map[string]any{"UserID": "alice"}}})
}
