package test

import (
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/imbroker/imbroker/config"
)

// The event callbacks (docs/callbacks.md "Event commands"): group, relation,
// state, read-report, recall and offline-push commands against a real
// callback server. The send callbacks and cbServer are in callbacks_test.go.

// cbLog reads a callback server's requests and hands them out by command
// and predicate, in arrival order, each once; requests of other commands
// are kept for later waits (after-callbacks of several workers interleave).
type cbLog struct {
	t    *testing.T
	cb   *cbServer
	seen []cbRequest
	used []bool
}

func newCBLog(t *testing.T, cb *cbServer) *cbLog { return &cbLog{t: t, cb: cb} }

func (l *cbLog) find(cmd string, pred func(map[string]any) bool) int {
	for i, r := range l.seen {
		if !l.used[i] && r.Command == cmd && (pred == nil || pred(r.Body)) {
			return i
		}
	}
	return -1
}

// wait returns the body of the first unconsumed callback of cmd matching pred.
func (l *cbLog) wait(cmd string, pred func(map[string]any) bool) map[string]any {
	l.t.Helper()
	return l.waitReq(cmd, pred).Body
}

// waitReq returns the first unconsumed callback of cmd matching pred.
func (l *cbLog) waitReq(cmd string, pred func(map[string]any) bool) cbRequest {
	l.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		if i := l.find(cmd, pred); i >= 0 {
			l.used[i] = true
			return l.seen[i]
		}
		select {
		case r := <-l.cb.got:
			l.seen, l.used = append(l.seen, r), append(l.used, false)
		case <-deadline:
			l.t.Fatalf("no %s callback (matching) within 5s; seen %d", cmd, len(l.seen))
		}
	}
}

// none checks that no callback of cmd matching pred arrived so far (call it
// after waiting for a later marker that went through the same FIFO queue).
func (l *cbLog) none(cmd string, pred func(map[string]any) bool, what string) {
	l.t.Helper()
	for {
		select {
		case r := <-l.cb.got:
			l.seen, l.used = append(l.seen, r), append(l.used, false)
			continue
		default:
		}
		break
	}
	if i := l.find(cmd, pred); i >= 0 {
		l.t.Fatalf("%s: unexpected %s %v", what, cmd, l.seen[i].Body)
	}
}

// cbReply makes the server answer cmd with out, everything else with 0.
func cbReply(cb *cbServer, cmd, out string) {
	cb.setReply(func(c string, _ map[string]any) (int, string) {
		if c == cmd {
			return 200, out
		}
		return 200, `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`
	})
}

func cbIs(k string, want any) func(map[string]any) bool {
	return func(m map[string]any) bool { return fmt.Sprint(m[k]) == fmt.Sprint(want) }
}

func cbMembers(v any) []string {
	var out []string
	for _, it := range v.([]any) {
		out = append(out, it.(map[string]any)["Member_Account"].(string))
	}
	return out
}

func TestE2E_CallbackGroupEvents(t *testing.T) {
	cb := newCBServer(t)
	b := StartBroker(t, func(c *config.Config) { c.Callbacks.URL = cb.URL; c.Callbacks.Commands = config.CallbackCommands })
	log := newCBLog(t, cb)
	alice := b.Connect("alice", "alice")
	bob := b.Connect("bob", "bob")
	carol := b.Connect("carol", "carol")
	dave := b.Connect("dave", "dave")
	create := func(typ, name string, extra map[string]any, mem ...string) map[string]any {
		body := map[string]any{"Type": typ, "Name": name, "MemberList": gtMembers(mem...)}
		for k, v := range extra {
			body[k] = v
		}
		return alice.Req("group.create", body)
	}

	// BeforeCreateGroup: reject (10016), the app's own code, allow.
	cbReply(cb, "Group.CallbackBeforeCreateGroup", `{"ErrorCode":1}`)
	gtCode(t, "create rejected", create("Public", "g1", nil, "bob"), 10016)
	body := log.wait("Group.CallbackBeforeCreateGroup", nil)
	if body["Operator_Account"] != "alice" || body["Owner_Account"] != "alice" || body["Type"] != "Public" ||
		body["Name"] != "g1" || fmt.Sprint(cbMembers(body["MemberList"])) != "[bob]" {
		t.Fatalf("BeforeCreateGroup body %v", body)
	}
	cbReply(cb, "Group.CallbackBeforeCreateGroup", `{"ErrorCode":10150,"ErrorInfo":"no groups today"}`)
	if r := create("Public", "g1", nil, "bob"); code(r) != 10150 || r["ErrorInfo"] != "no groups today" {
		t.Fatalf("custom code: %v", r)
	}
	cbReply(cb, "", "")
	gid := gtOK(t, "create", create("Public", "g1", map[string]any{"ApplyJoinOption": "FreeAccess"}, "bob"))["GroupId"].(string)
	body = log.wait("Group.CallbackAfterCreateGroup", cbIs("GroupId", gid))
	if body["Owner_Account"] != "alice" || body["Type"] != "Public" || len(cbMembers(body["MemberList"])) != 2 {
		t.Fatalf("AfterCreateGroup %v", body)
	}

	// BeforeApplyJoinGroup: reject, then allow; AfterNewMemberJoin (Apply).
	cbReply(cb, "Group.CallbackBeforeApplyJoinGroup", `{"ErrorCode":1}`)
	gtCode(t, "join rejected", carol.Req("group.join", map[string]any{"GroupId": gid}), 10016)
	body = log.wait("Group.CallbackBeforeApplyJoinGroup", cbIs("Requestor_Account", "carol"))
	if body["GroupId"] != gid || body["Type"] != "Public" {
		t.Fatalf("BeforeApplyJoinGroup %v", body)
	}
	cbReply(cb, "", "")
	if r := gtOK(t, "join", carol.Req("group.join", map[string]any{"GroupId": gid})); r["JoinResult"] != "Joined" {
		t.Fatalf("join: %v", r)
	}
	body = log.wait("Group.CallbackAfterNewMemberJoin", cbIs("GroupId", gid))
	if body["JoinType"] != "Apply" || body["Operator_Account"] != "carol" || fmt.Sprint(cbMembers(body["NewMemberList"])) != "[carol]" {
		t.Fatalf("AfterNewMemberJoin (apply) %v", body)
	}

	// BeforeInviteJoinGroup: RefusedMembers_Account are left out (Result 0).
	wg := gtOK(t, "create work", create("Private", "w", nil))["GroupId"].(string)
	cbReply(cb, "Group.CallbackBeforeInviteJoinGroup", `{"ErrorCode":0,"RefusedMembers_Account":["dave"]}`)
	r := gtOK(t, "invite", alice.Req("group.invite", map[string]any{"GroupId": wg, "MemberList": gtMembers("bob", "dave")}))
	res := map[string]float64{}
	for _, it := range r["MemberList"].([]any) {
		m := it.(map[string]any)
		res[m["Member_Account"].(string)] = m["Result"].(float64)
	}
	if res["bob"] != 1 || res["dave"] != 0 {
		t.Fatalf("invite results %v", r)
	}
	body = log.wait("Group.CallbackBeforeInviteJoinGroup", cbIs("GroupId", wg))
	if body["Operator_Account"] != "alice" || body["Type"] != "Private" || fmt.Sprint(cbMembers(body["DestinationMembers"])) != "[bob dave]" {
		t.Fatalf("BeforeInviteJoinGroup %v", body)
	}
	body = log.wait("Group.CallbackAfterNewMemberJoin", cbIs("GroupId", wg))
	if body["JoinType"] != "Invited" || body["Operator_Account"] != "alice" || fmt.Sprint(cbMembers(body["NewMemberList"])) != "[bob]" {
		t.Fatalf("AfterNewMemberJoin (invited) %v", body)
	}
	cbReply(cb, "Group.CallbackBeforeInviteJoinGroup", `{"ErrorCode":1}`)
	gtCode(t, "invite rejected", alice.Req("group.invite", map[string]any{"GroupId": wg, "MemberList": gtMembers("dave")}), 10016)
	cbReply(cb, "", "")

	// AfterMemberExit: Kicked and Quit.
	gtOK(t, "kick", alice.Req("group.kick", map[string]any{"GroupId": wg, "MemberToDel_Account": []string{"bob"}}))
	body = log.wait("Group.CallbackAfterMemberExit", cbIs("GroupId", wg))
	if body["ExitType"] != "Kicked" || body["Operator_Account"] != "alice" || fmt.Sprint(cbMembers(body["ExitMemberList"])) != "[bob]" {
		t.Fatalf("AfterMemberExit (kicked) %v", body)
	}
	gtOK(t, "quit", carol.Req("group.quit", map[string]any{"GroupId": gid}))
	body = log.wait("Group.CallbackAfterMemberExit", cbIs("GroupId", gid))
	if body["ExitType"] != "Quit" || fmt.Sprint(cbMembers(body["ExitMemberList"])) != "[carol]" {
		t.Fatalf("AfterMemberExit (quit) %v", body)
	}

	// AfterGroupInfoChanged.
	gtOK(t, "modify", alice.Req("group.modify", map[string]any{"GroupId": gid, "Name": "g1b", "Introduction": "hi"}))
	body = log.wait("Group.CallbackAfterGroupInfoChanged", cbIs("GroupId", gid))
	if body["Name"] != "g1b" || body["Introduction"] != "hi" || body["Operator_Account"] != "alice" || body["Notification"] != nil {
		t.Fatalf("AfterGroupInfoChanged %v", body)
	}

	// AfterRecallMsg.
	alice.Publish1("im/send/group/"+gidLevel(gid), Text("to recall", Random()))
	seq := log.wait("Group.CallbackAfterSendMsg", cbIs("GroupId", gid))["MsgSeq"]
	gtOK(t, "recall", alice.Req("msg.recall", map[string]any{"Type": 2, "GroupId": gid, "MsgSeq": seq}))
	body = log.wait("Group.CallbackAfterRecallMsg", cbIs("GroupId", gid))
	if jsonAt(body, "MsgSeqList", 0, "MsgSeq") != seq || body["Operator_Account"] != "alice" {
		t.Fatalf("AfterRecallMsg %v", body)
	}

	// AfterGroupFull: a group of 2 gets its second member.
	small := gtOK(t, "create small", create("Public", "small", map[string]any{"ApplyJoinOption": "FreeAccess", "MaxMemberCount": 2}))["GroupId"].(string)
	gtOK(t, "join small", dave.Req("group.join", map[string]any{"GroupId": small}))
	log.wait("Group.CallbackAfterGroupFull", cbIs("GroupId", small))

	// AfterGroupDestroyed.
	gtOK(t, "destroy", alice.Req("group.destroy", map[string]any{"GroupId": gid}))
	body = log.wait("Group.CallbackAfterGroupDestroyed", cbIs("GroupId", gid))
	if body["Name"] != "g1b" || body["Owner_Account"] != "alice" || body["Type"] != "Public" || len(cbMembers(body["MemberList"])) != 2 {
		t.Fatalf("AfterGroupDestroyed %v", body)
	}
	_ = bob
}

func TestE2E_CallbackSnsEvents(t *testing.T) {
	cb := newCBServer(t)
	b := StartBroker(t, func(c *config.Config) { c.Callbacks.URL = cb.URL; c.Callbacks.Commands = config.CallbackCommands })
	log := newCBLog(t, cb)
	alice := b.Connect("alice", "alice")
	bob := b.Connect("bob", "bob")
	carol := b.Connect("carol", "carol")
	dave := b.Connect("dave", "dave")
	relAllow(t, bob, "AllowAny")
	relAllow(t, carol, "AllowAny")

	// Profile.CallbackPortraitSet.
	body := log.wait("Profile.CallbackPortraitSet", cbIs("From_Account", "bob"))
	if body["Operator_Account"] != "bob" || jsonAt(body, "ProfileItem", 0, "Tag") != "Tag_Profile_IM_AllowType" ||
		jsonAt(body, "ProfileItem", 0, "Value") != "AllowType_Type_AllowAny" {
		t.Fatalf("PortraitSet %v", body)
	}

	// PrevFriendAdd refusing one item; FriendAdd for the other, both ways.
	cbReply(cb, "Sns.CallbackPrevFriendAdd", `{"ErrorCode":0,"ResultItem":[{"To_Account":"carol","ResultCode":38001,"ResultInfo":"no"}]}`)
	r := alice.Req("friend.add", map[string]any{"AddType": "Add_Type_Both",
		"AddFriendItem": []any{map[string]any{"To_Account": "bob"}, map[string]any{"To_Account": "carol"}}})
	relItem(t, "add bob", r, "bob", 0)
	relItem(t, "add carol refused", r, "carol", 38001)
	body = log.wait("Sns.CallbackPrevFriendAdd", nil)
	if body["Requester_Account"] != "alice" || body["From_Account"] != "alice" || body["AddType"] != "Add_Type_Both" ||
		jsonAt(body, "FriendItem", 1, "To_Account") != "carol" || body["ForceAddFlags"] == nil {
		t.Fatalf("PrevFriendAdd %v", body)
	}
	body = log.wait("Sns.CallbackFriendAdd", nil)
	if pairs := body["PairList"].([]any); len(pairs) != 2 || jsonAt(body, "PairList", 0, "From_Account") != "alice" ||
		jsonAt(body, "PairList", 0, "To_Account") != "bob" || jsonAt(body, "PairList", 0, "Initiator_Account") != "alice" {
		t.Fatalf("FriendAdd %v", body)
	}
	// A reject of the whole request (a code in 38000-39000) refuses every item.
	cbReply(cb, "Sns.CallbackPrevFriendAdd", `{"ErrorCode":38002,"ErrorInfo":"no"}`)
	relItem(t, "add dave refused", relAdd(alice, "dave", "", nil), "dave", 38002)

	// PrevFriendResponse refusing the item, then allowing it.
	cbReply(cb, "", "")
	relItem(t, "dave asks alice", relAdd(dave, "alice", "", nil), "alice", 30539)
	resp := map[string]any{"ResponseFriendItem": []any{map[string]any{"To_Account": "dave", "ResponseAction": "Response_Action_AgreeAndAdd"}}}
	cbReply(cb, "Sns.CallbackPrevFriendResponse", `{"ErrorCode":0,"ResultItem":[{"To_Account":"dave","ResultCode":38500}]}`)
	relItem(t, "response refused", alice.Req("friend.response", resp), "dave", 38500)
	body = log.wait("Sns.CallbackPrevFriendResponse", nil)
	if body["From_Account"] != "alice" || jsonAt(body, "ResponseFriendItem", 0, "To_Account") != "dave" ||
		jsonAt(body, "ResponseFriendItem", 0, "ResponseAction") != "Response_Action_AgreeAndAdd" {
		t.Fatalf("PrevFriendResponse %v", body)
	}
	cbReply(cb, "", "")
	relItem(t, "response allowed", alice.Req("friend.response", resp), "dave", 0)
	log.wait("Sns.CallbackFriendAdd", func(m map[string]any) bool { return jsonAt(m, "PairList", 0, "From_Account") == "dave" })

	// FriendDelete, BlackListAdd, BlackListDelete.
	relItem(t, "delete bob", alice.Req("friend.delete", map[string]any{"To_Account": []any{"bob"}}), "bob", 0)
	body = log.wait("Sns.CallbackFriendDelete", nil)
	if jsonAt(body, "PairList", 0, "From_Account") != "alice" || jsonAt(body, "PairList", 0, "To_Account") != "bob" {
		t.Fatalf("FriendDelete %v", body)
	}
	relItem(t, "black carol", alice.Req("black.add", map[string]any{"To_Account": []any{"carol"}}), "carol", 0)
	body = log.wait("Sns.CallbackBlackListAdd", nil)
	if jsonAt(body, "PairList", 0, "From_Account") != "alice" || jsonAt(body, "PairList", 0, "To_Account") != "carol" {
		t.Fatalf("BlackListAdd %v", body)
	}
	relItem(t, "unblack carol", alice.Req("black.delete", map[string]any{"To_Account": []any{"carol"}}), "carol", 0)
	body = log.wait("Sns.CallbackBlackListDelete", nil)
	if jsonAt(body, "PairList", 0, "To_Account") != "carol" {
		t.Fatalf("BlackListDelete %v", body)
	}
}

// TestE2E_CallbackEventsRefusePolicy: a failing callback under on_failure
// refuse gives 80003 for group creation and per friend item.
func TestE2E_CallbackEventsRefusePolicy(t *testing.T) {
	cb := newCBServer(t)
	b := StartBroker(t, func(c *config.Config) {
		c.Callbacks.URL, c.Callbacks.OnFailure = cb.URL, "refuse"
		c.Callbacks.Commands = config.CallbackCommands
	})
	cb.setReply(func(string, map[string]any) (int, string) { return 500, "boom" })
	alice := b.Connect("alice", "alice")
	gtCode(t, "create", alice.Req("group.create", map[string]any{"Type": "Public", "Name": "x"}), 80003)
	relItem(t, "add", relAdd(alice, "bob", "", nil), "bob", 80003)
}

func TestE2E_CallbackStateAndC2C(t *testing.T) {
	cb := newCBServer(t)
	b := StartBroker(t, func(c *config.Config) {
		c.Callbacks.URL, c.Callbacks.Workers = cb.URL, 1
		c.Callbacks.Commands = config.CallbackCommands
	})
	log := newCBLog(t, cb)
	login := func(user string) func(map[string]any) bool {
		return func(m map[string]any) bool {
			return jsonAt(m, "Info", "To_Account") == user && jsonAt(m, "Info", "Action") == "Login"
		}
	}
	lost := make(chan struct{})
	o := b.ClientOpts("alice", "alice", b.Sig("alice"))
	o.SetConnectionLostHandler(func(paho.Client, error) { close(lost) })
	alice := ConnectOpts(t, o, "alice")
	if body := log.wait("State.StateChange", login("alice")); jsonAt(body, "Info", "Reason") != "Register" {
		t.Fatalf("login %v", body)
	}
	bob := b.Connect("bob", "bob")
	log.wait("State.StateChange", login("bob"))

	// C2C.CallbackAfterMsgReport from msg.read.
	alice.Publish1("im/send/c2c/bob", Text("one", Random()))
	bob.NextEvent()
	gtOK(t, "read", bob.Req("msg.read", map[string]any{"Type": 1, "Peer_Account": "alice"}))
	body := log.wait("C2C.CallbackAfterMsgReport", nil)
	if body["Report_Account"] != "bob" || body["Peer_Account"] != "alice" || body["UnreadMsgNum"] != 0.0 || body["LastReadTime"].(float64) <= 0 {
		t.Fatalf("AfterMsgReport %v", body)
	}

	// C2C.CallbackAfterMsgWithDraw from a recall (bob has not read it: 1 unread).
	r2 := Random()
	alice.Publish1("im/send/c2c/bob", Text("two", r2))
	var key string
	for key == "" {
		if e := bob.NextEvent(); e.Event == "C2CMsg" && e.Msg.MsgRandom == r2 {
			key = e.Msg.MsgKey
		}
	}
	gtOK(t, "recall", alice.Req("msg.recall", map[string]any{"Type": 1, "Peer_Account": "bob", "MsgKey": key}))
	body = log.wait("C2C.CallbackAfterMsgWithDraw", nil)
	if body["From_Account"] != "alice" || body["To_Account"] != "bob" || body["MsgKey"] != key || body["UnreadMsgNum"] != 1.0 {
		t.Fatalf("AfterMsgWithDraw %v", body)
	}

	// A takeover (same ClientID) is a Login, never a Logout.
	alice2 := b.Connect("alice", "alice")
	log.wait("State.StateChange", login("alice"))
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("the taken-over connection did not close")
	}
	alice2.Disconnect(250) // a clean DISCONNECT: Logout
	body = log.wait("State.StateChange", func(m map[string]any) bool {
		return jsonAt(m, "Info", "To_Account") == "alice" && jsonAt(m, "Info", "Action") != "Login"
	})
	if jsonAt(body, "Info", "Action") != "Logout" || jsonAt(body, "Info", "Reason") != "Unregister" {
		t.Fatalf("logout %v", body)
	}
	// A dropped connection: Disconnect (LinkClose). It is also the marker:
	// one worker sends in order, so a Logout of the takeover would be seen.
	carol := mqUser3(t, b, "carol", "carol", nil)
	log.wait("State.StateChange", login("carol"))
	carol.drop()
	body = log.wait("State.StateChange", func(m map[string]any) bool {
		return jsonAt(m, "Info", "To_Account") == "carol" && jsonAt(m, "Info", "Action") != "Login"
	})
	if jsonAt(body, "Info", "Action") != "Disconnect" || jsonAt(body, "Info", "Reason") != "LinkClose" {
		t.Fatalf("disconnect %v", body)
	}
	log.none("State.StateChange", func(m map[string]any) bool {
		return jsonAt(m, "Info", "To_Account") == "alice" && jsonAt(m, "Info", "Action") != "Login"
	}, "takeover")
	_ = alice
}

func TestE2E_CallbackOfflinePush(t *testing.T) {
	cb := newCBServer(t)
	b := StartBroker(t, func(c *config.Config) {
		c.Callbacks.URL, c.Callbacks.Workers = cb.URL, 1 // one worker: pushes arrive in order
		c.Callbacks.Commands = []string{"Push.CallbackOfflinePush"}
	})
	log := newCBLog(t, cb)
	b.importAccounts("carol") // an account that never connects
	alice := b.Connect("alice", "alice")
	bob := b.Connect("bob", "bob")
	to := func(u string) func(map[string]any) bool { return cbIs("To_Account", u) }
	send := func(peer string, m map[string]any) { alice.Publish1("im/send/c2c/"+peer, m) }

	// carol has never connected: her message is pushed, with the text.
	send("carol", Text("hi carol", Random()))
	body := log.wait("Push.CallbackOfflinePush", to("carol"))
	if body["From_Account"] != "alice" || body["Desc"] != "hi carol" || body["MsgKey"] == "" || body["UnreadMsgNum"] != 1.0 || body["GroupId"] != nil {
		t.Fatalf("push %v", body)
	}

	// Online bob: no push. PushFlag 1: no push. The marker after both is a
	// custom element (its Desc) with the sender's Title and Ext.
	send("bob", Text("hi bob", Random()))
	bob.NextEvent()
	silent := Text("silent", Random())
	silent["OfflinePushInfo"] = map[string]any{"PushFlag": 1}
	send("carol", silent)
	custom := map[string]any{"MsgRandom": Random(), "MsgBody": []any{map[string]any{"MsgType": "TIMCustomElem",
		"MsgContent": map[string]any{"Data": "{}", "Desc": "a red packet"}}}, "OfflinePushInfo": map[string]any{"Title": "T", "Ext": "E"}}
	send("carol", custom)
	body = log.wait("Push.CallbackOfflinePush", to("carol"))
	if body["Desc"] != "a red packet" || body["Title"] != "T" || body["Ext"] != "E" || body["UnreadMsgNum"] != 3.0 {
		t.Fatalf("custom push %v", body)
	}
	log.none("Push.CallbackOfflinePush", to("bob"), "online recipient")
	log.none("Push.CallbackOfflinePush", cbIs("Desc", "silent"), "PushFlag 1")

	// OfflinePushInfo.Desc wins over the derived text.
	withDesc := Text("plain", Random())
	withDesc["OfflinePushInfo"] = map[string]any{"Desc": "D"}
	send("carol", withDesc)
	if body = log.wait("Push.CallbackOfflinePush", to("carol")); body["Desc"] != "D" {
		t.Fatalf("OfflinePushInfo.Desc %v", body)
	}

	// A write-diffusion group message: pushed to offline carol only.
	gid := gtCreate(t, alice, map[string]any{"Type": "Private", "Name": "w", "MemberList": gtMembers("bob", "carol")})
	alice.Publish1("im/send/group/"+gidLevel(gid), Text("group hi", Random()))
	body = log.wait("Push.CallbackOfflinePush", to("carol"))
	if body["GroupId"] != gid || body["Desc"] != "group hi" || body["From_Account"] != "alice" || body["MsgSeq"] == nil {
		t.Fatalf("group push %v", body)
	}
	send("carol", Text("marker", Random()))
	log.wait("Push.CallbackOfflinePush", cbIs("Desc", "marker"))
	log.none("Push.CallbackOfflinePush", to("bob"), "online group member")
	log.none("Push.CallbackOfflinePush", to("alice"), "group sender")
}
