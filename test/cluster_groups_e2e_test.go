package test

import (
	"slices"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Group chat across the nodes of a three-process cluster (docs/cluster.md,
// "Groups across nodes"): every node follows the group changes it applies
// from the log. For each stored type (Work, Public, Meeting, a custom type,
// and a Public group under read diffusion) the group is loaded on every
// node before its members change, so a node that kept its first view would
// answer wrong: a member added on one node subscribes and receives on
// another, a message sent on n2 reaches members on n1 and n3, REST reads
// answer the same on every node, a mute and a role change show everywhere,
// a member kicked through n2 loses the group topic on n3 at once (no copy,
// SUBACK refused, no history, no send), and a destroyed group is gone on
// every node.
//
//	go test -race -count=1 -run TestE2E_ClusterGroups -v ./test
func TestE2E_ClusterGroups(t *testing.T) {
	cb := newCBServer(t)
	nodes := clusterProcs(t, 3, `groups:
  read_diffusion_above: 3
  types:
    Team:
      base: Private
callbacks:
  url: `+cb.URL+`
  commands: [Group.CallbackBeforeSendMsg, Group.CallbackAfterSendMsg, Group.CallbackAfterNewMemberJoin]
`)
	for _, n := range nodes {
		n.restart(t)
	}
	for _, n := range nodes {
		n.waitReady(t, 60*time.Second)
	}
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	t.Logf("three nodes ready; owner %s", ownerOf(t, nodes).name)
	a := n1.b.Connect("ga", "ga")
	b := n2.b.Connect("gb", "gb")
	c := n3.b.Connect("gc", "gc")
	n2.b.Connect("gd", "gd")             // an account, added to the read diffusion group
	bTab := n3.b.Connect("gb:tab", "gb") // gb's second device, on another node

	cases := []struct {
		typ   string
		add   []string // added through n2 once every node loaded the group
		read  bool     // read diffusion: messages on im/g/{gid}
		roles bool     // the type has admins and mutes
	}{
		{"Private", []string{"gc"}, false, false},
		{"Public", []string{"gc"}, false, true},
		{"ChatRoom", []string{"gc"}, true, true},
		{"Team", []string{"gc"}, false, false},
		{"Public", []string{"gc", "gd"}, true, true}, // 4 members > read_diffusion_above
	}
	for _, tc := range cases {
		create := map[string]any{"Type": tc.typ, "MemberList": gtMembers("gb")}
		gid := gtCreate(t, a, create)
		what := func(s string) string { return tc.typ + " " + gid + ": " + s }
		sameOnEveryNode(t, nodes, what("get_group_info"), "group_open_http_svc/get_group_info", map[string]any{"GroupIdList": []string{gid}})

		// The group's first message, from the app admin through n3 (no
		// member record changes): LastMsgTime moves on every node. The
		// REST answer comes once n3 applied it; each read below waits
		// until its node did.
		n3.b.v4OK("group_open_http_svc/send_group_msg", map[string]any{"GroupId": gid, "Random": Random(),
			"MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "from the admin"}}}})

		members := []map[string]any{}
		for _, u := range tc.add {
			members = append(members, map[string]any{"Member_Account": u})
		}
		n2.b.v4OK("group_open_http_svc/add_group_member", map[string]any{"GroupId": gid, "MemberList": members})
		gtWait(t, what("gc told of joining"), c.Events, tipIn(gid, "MemberJoin"))
		info := sameOnEveryNode(t, nodes, what("get_group_info after the add"), "group_open_http_svc/get_group_info", map[string]any{"GroupIdList": []string{gid}})
		if n := jsonAt(info, "GroupInfo", 0, "MemberNum"); n != float64(2+len(tc.add)) {
			t.Fatalf("%s: MemberNum %v, want %d", what("after the add"), n, 2+len(tc.add))
		}
		if lt, _ := jsonAt(info, "GroupInfo", 0, "LastMsgTime").(float64); lt == 0 {
			t.Fatalf("%s: LastMsgTime 0 after a message", what("after the add"))
		}

		// A message from gb on n2 reaches ga on n1 and gc on n3.
		var ga, gc, gbTab chan Event
		if tc.read {
			topic := "im/g/" + gidLevel(gid)
			rcs := []byte{}
			var rc byte
			rc, ga = gtSub(t, a, topic)
			rcs = append(rcs, rc)
			rc, gc = gtSub(t, c, topic)
			rcs = append(rcs, rc)
			rc, gbTab = gtSub(t, bTab, topic)
			rcs = append(rcs, rc)
			if !slices.Equal(rcs, []byte{1, 1, 1}) {
				t.Fatalf("%s: SUBACKs of ga (n1), gc (n3), gb's tab (n3): %v, want 1 each", what("members subscribe"), rcs)
			}
		}
		r := gtMustSend(t, b, gid)
		for _, rcv := range []struct {
			who string
			c   *Client
			g   chan Event
		}{{"ga on n1", a, ga}, {"gc on n3", c, gc}, {"gb's tab on n3", bTab, gbTab}} {
			if tc.read {
				gtWait(t, what(rcv.who+" (im/g)"), rcv.g, gtGroupMsg(r))
			} else {
				gtWait(t, what(rcv.who+" (im/u)"), rcv.c.Events, gtGroupMsg(r))
			}
		}
		if h, want := gtHistory(t, bTab, gid), gtHistory(t, b, gid); !slices.Equal(h, want) || !slices.Contains(h, r) {
			t.Fatalf("%s: gb's history on n3 %v, on n2 %v", what("history"), h, want)
		}

		// A mute set on n1 and a role set on n3 show on every node.
		if tc.roles {
			n1.b.v4OK("group_open_http_svc/forbid_send_msg", map[string]any{"GroupId": gid, "Members_Account": []string{"gc"}, "MuteTime": 600})
			gtCode(t, what("gc (muted) sends on n3"), gtSendReply(t, c, gid), 10017)
			n3.b.v4OK("group_open_http_svc/modify_group_member_info", map[string]any{"GroupId": gid, "Member_Account": "gb", "Role": "Admin"})
		}
		sameOnEveryNode(t, nodes, what("get_group_info after mute and role"), "group_open_http_svc/get_group_info", map[string]any{"GroupIdList": []string{gid}})
		mi := sameOnEveryNode(t, nodes, what("get_group_member_info"), "group_open_http_svc/get_group_member_info", map[string]any{"GroupId": gid})
		for _, m := range items(mi, "MemberList") {
			switch m["Member_Account"] {
			case "gc":
				if mu, _ := m["MuteUntil"].(float64); tc.roles && mu < float64(time.Now().Unix()) {
					t.Fatalf("%s: gc's MuteUntil %v", what("member info"), m["MuteUntil"])
				}
			case "gb":
				if want := map[bool]string{true: "Admin", false: "Member"}[tc.roles]; m["Role"] != want {
					t.Fatalf("%s: gb's Role %v, want %s", what("member info"), m["Role"], want)
				}
			}
		}

		// gc is kicked through n2: on n3 the group topic is gone at once.
		n2.b.v4OK("group_open_http_svc/delete_group_member", map[string]any{"GroupId": gid, "MemberToDel_Account": []string{"gc"}})
		gtWait(t, what("gc told of the kick"), c.Events, tipIn(gid, "MemberKicked"))
		r2 := gtMustSend(t, b, gid)
		if tc.read {
			gtWait(t, what("ga after the kick (im/g)"), ga, gtGroupMsg(r2))
			gtWait(t, what("gb's tab after the kick (im/g)"), gbTab, gtGroupMsg(r2))
			// gb's tab shares n3 with gc, and both copies leave n3's
			// delivery in one fan-out: gc's would be there by now.
			for len(gc) > 0 {
				if e := <-gc; e.Event == "GroupMsg" && e.Msg.MsgRandom == r2 {
					t.Fatalf("%s: gc still got %s", what("kicked, on n3"), e.Raw)
				}
			}
			if rc, _ := gtSub(t, c, "im/g/"+gidLevel(gid)); rc != 0x80 {
				t.Fatalf("%s: SUBACK 0x%02x, want 0x80", what("gc subscribes again on n3"), rc)
			}
			unsub(t, a, "im/g/"+gidLevel(gid))
			unsub(t, bTab, "im/g/"+gidLevel(gid))
		} else {
			gtWait(t, what("ga after the kick"), a.Events, gtGroupMsg(r2))
		}
		gtCode(t, what("gc (kicked) sends on n3"), gtSendReply(t, c, gid), 10007)
		if rep := c.Req("group.history", gtG(gid, "ReqMsgNumber", 20)); code(rep) == 0 {
			t.Fatalf("%s: %v", what("gc (kicked) reads the history on n3"), rep)
		}
		sameOnEveryNode(t, nodes, what("get_group_member_info after the kick"), "group_open_http_svc/get_group_member_info", map[string]any{"GroupId": gid})
		sameOnEveryNode(t, nodes, what("group_msg_get_simple"), "group_open_http_svc/group_msg_get_simple", map[string]any{"GroupId": gid, "ReqMsgNumber": 20})

		// Destroyed through n3: gone on every node.
		n3.b.v4OK("group_open_http_svc/destroy_group", map[string]any{"GroupId": gid})
		gtWait(t, what("ga told of the destruction"), a.Events, tipIn(gid, "GroupDestroyed"))
		info = sameOnEveryNode(t, nodes, what("get_group_info after destroy"), "group_open_http_svc/get_group_info", map[string]any{"GroupIdList": []string{gid}})
		if e := jsonAt(info, "GroupInfo", 0, "ErrorCode"); e != float64(10010) {
			t.Fatalf("%s: ErrorCode %v, want 10010", what("get_group_info after destroy"), e)
		}
	}
	clusterGroupConversation(t, nodes, a, b, c)
	clusterCallbacksOnce(t, cb)
	restClient.CloseIdleConnections()
}

// clusterGroupConversation: unread counts, read receipts, history
// visibility for a late joiner, recall, quit and a change of owner, each
// done on one node and seen alike on the others.
func clusterGroupConversation(t *testing.T, nodes []*clusterProc, a, b, c *Client) {
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	gid := gtCreate(t, a, map[string]any{"Type": "Public", "ApplyJoinOption": "FreeAccess", "MemberList": gtMembers("gb", "gc")})
	what := func(s string) string { return "conversation " + gid + ": " + s }
	sameOnEveryNode(t, nodes, what("get_group_info"), "group_open_http_svc/get_group_info", map[string]any{"GroupIdList": []string{gid}})
	cTab := n1.b.Connect("gc:tab", "gc") // gc's second device, on n1

	m1 := Text("read me", Random())
	m1["IsNeedReadReceipt"] = 1
	a.Publish1("im/send/group/"+gidLevel(gid), m1)
	var seq1 uint64
	for _, rcv := range []*Client{b, c, cTab} {
		e := nextEventOf(rcv, "GroupMsg")
		for e.Msg.MsgRandom != uint32(m1["MsgRandom"].(uint32)) {
			e = nextEventOf(rcv, "GroupMsg")
		}
		seq1 = uint64(gtMsg(e)["MsgSeq"].(float64))
	}
	// gc's conversations (and this group's unread count) on n3 and n1.
	convs := func(cl *Client) (string, float64) {
		r := gtOK(t, cl.User+" conv.list", cl.Req("conv.list", map[string]any{}))
		unread := -1.0
		for _, it := range r["ConvList"].([]any) {
			if it := it.(map[string]any); it["GroupId"] == gid {
				unread = it["UnreadMsgNum"].(float64)
			}
		}
		return mustJSONString([]any{r["AllUnreadMsgNum"], r["ConvList"]}), unread
	}
	if on3, unread := convs(c); unread != 1 {
		t.Fatalf("%s: gc's conversations on n3 %s", what("unread 1"), on3)
	} else if on1, _ := convs(cTab); on1 != on3 {
		t.Fatalf("%s: gc's conversations on n3 %s, on n1 %s", what("unread"), on3, on1)
	}
	gtOK(t, what("gc's receipt on n3"), c.Req("msg.receipt", map[string]any{"Type": 2, "GroupId": gid, "MsgSeqList": []uint64{seq1}}))
	if ev := nextEventOf(a, "GroupMsgReadReceipt"); !strings.Contains(ev.Raw, `"ReadNum":1`) {
		t.Fatalf("%s: ga on n1 got %s", what("receipt"), ev.Raw)
	}
	infoOf := func(cl *Client) string {
		r := gtOK(t, what(cl.User+" receipt_info"), cl.Req("msg.receipt_info", map[string]any{"GroupId": gid, "MsgSeqList": []uint64{seq1}}))
		return mustJSONString(r["GroupMsgReceiptList"])
	}
	aTab := n2.b.Connect("ga:tab", "ga")
	caughtUp(n2) // the receipt's event reached ga on n1: n2 may not have applied it yet
	if on1, on2 := infoOf(a), infoOf(aTab); on1 != on2 {
		t.Fatalf("%s: on n1 %s, on n2 %s", what("receipt_info"), on1, on2)
	}
	gtOK(t, what("gc reads on n3"), c.Req("msg.read", map[string]any{"Type": 2, "GroupId": gid}))
	caughtUp(n1) // an im/req read answers from what its node applied so far
	if on1, unread := convs(cTab); unread != 0 {
		t.Fatalf("%s: gc's conversations on n1 after reading on n3: %s", what("unread"), on1)
	}

	// gd joins through n2 after m1 (4 members: read diffusion from now
	// on): it subscribes on n2 and on n3, and its history, on both, starts
	// after it joined (Public: no history before joining).
	d := n2.b.Connect("gd:join", "gd")
	dTab := n3.b.Connect("gd:tab", "gd")
	gtOK(t, what("gd joins on n2"), d.Req("group.join", gtG(gid)))
	gtWait(t, what("gd:tab told of joining"), dTab.Events, tipIn(gid, "MemberJoin"))
	rc2, dG := gtSub(t, d, "im/g/"+gidLevel(gid))
	rc3, dTabG := gtSub(t, dTab, "im/g/"+gidLevel(gid))
	if rc2 != 1 || rc3 != 1 {
		t.Fatalf("%s: SUBACK 0x%02x on n2, 0x%02x on n3", what("gd subscribes"), rc2, rc3)
	}
	r2 := gtMustSend(t, a, gid)
	gtWait(t, what("gd on n2"), dG, gtGroupMsg(r2))
	caughtUp(n3)
	if h2, h3 := gtHistory(t, d, gid), gtHistory(t, dTab, gid); !slices.Equal(h2, []uint32{r2}) || !slices.Equal(h3, h2) {
		t.Fatalf("%s: gd's history on n2 %v, on n3 %v, want [%d]", what("late joiner"), h2, h3, r2)
	}

	// ga recalls m2 on n1; gd quits on n3; ga hands the group to gb on n1.
	var seq2 any
	gtWait(t, what("gd on n3"), dTabG, func(e Event) bool {
		seq2 = gtMsg(e)["MsgSeq"]
		return e.Event == "GroupMsg" && e.Msg.MsgRandom == r2
	})
	gtOK(t, what("ga recalls on n1"), a.Req("msg.recall", map[string]any{"Type": 2, "GroupId": gid, "MsgSeq": seq2}))
	gtWait(t, what("gd told of the recall on n3"), dTabG, tipIn(gid, "MsgRecalled"))
	gtOK(t, what("gd quits on n3"), dTab.Req("group.quit", gtG(gid)))
	gtOK(t, what("ga hands over on n1"), a.Req("group.transfer", gtG(gid, "NewOwner_Account", "gb")))
	sameOnEveryNode(t, nodes, what("group_msg_get_simple"), "group_open_http_svc/group_msg_get_simple", map[string]any{"GroupId": gid, "ReqMsgNumber": 20, "WithRecalledMsg": 1})
	sameOnEveryNode(t, nodes, what("get_group_member_info"), "group_open_http_svc/get_group_member_info", map[string]any{"GroupId": gid})
	info := sameOnEveryNode(t, nodes, what("get_group_info"), "group_open_http_svc/get_group_info", map[string]any{"GroupIdList": []string{gid}})
	for _, u := range []string{"gb", "gd"} {
		sameOnEveryNode(t, nodes, what(u+"'s joined groups"), "group_open_http_svc/get_joined_group_list", map[string]any{"Member_Account": u})
	}
	if o := jsonAt(info, "GroupInfo", 0, "Owner_Account"); o != "gb" {
		t.Fatalf("%s: owner %v", what("after the transfer"), o)
	}
	if r := gtSendReply(t, dTab, gid); code(r) != 10007 {
		t.Fatalf("%s: %v", what("gd (gone) sends on n3"), r)
	}
	gtOK(t, what("gb (owner) mutes all on n3"), n3.b.Connect("gb:mute", "gb").Req("group.mute_all", gtG(gid, "MuteAllMember", "On")))
	if r := gtSendReply(t, c, gid); code(r) != 10017 {
		t.Fatalf("%s: %v", what("gc sends on n3 under mute all"), r)
	}
}

// clusterCallbacksOnce: each group event reached the app's callback server
// once, whichever node it was made on and however many nodes applied it:
// every callback received, and whatever arrives within a second more (the
// last after-callbacks may still be on their way; a duplicate sent by a
// node that only applied the event would come as soon).
func clusterCallbacksOnce(t *testing.T, cb *cbServer) {
	seen := map[string]int{}
	deadline := time.After(10 * time.Second)
	settle := (<-chan time.Time)(nil)
	for {
		select {
		case r := <-cb.got:
			key := r.Command + " " + mustJSONString([]any{r.Body["GroupId"], r.Body["Random"], r.Body["MsgSeq"], r.Body["NewMemberList"]})
			seen[key]++
			if settle == nil {
				settle = time.After(time.Second)
			}
		case <-settle:
			befores, afters := 0, 0
			for key, n := range seen {
				if n != 1 {
					t.Fatalf("callback %s came %d times", key, n)
				}
				switch {
				case strings.HasPrefix(key, "Group.CallbackBeforeSendMsg"):
					befores++
				case strings.HasPrefix(key, "Group.CallbackAfterSendMsg"):
					afters++
				}
			}
			// A refused send (muted, not a member) may have had its
			// before-callback: never more afters than befores.
			if afters == 0 || afters > befores {
				t.Fatalf("%d before-send and %d after-send callbacks: %v", befores, afters, seen)
			}
			t.Logf("%d distinct callbacks, each once", len(seen))
			return
		case <-deadline:
			t.Fatalf("callbacks: none within 10s")
		}
	}
}

// sameOnEveryNode runs a REST read on every node (each waits until its
// node applied the log) and fails unless they answer alike; it returns
// the first node's answer.
func sameOnEveryNode(t *testing.T, nodes []*clusterProc, what, path string, body map[string]any) map[string]any {
	t.Helper()
	var first map[string]any
	var want string
	for i, n := range nodes {
		out := n.b.v4(path, body)
		got := mustJSONString(out)
		if i == 0 {
			first, want = out, got
		} else if got != want {
			t.Fatalf("%s on %s:\n%s\nwant (on %s):\n%s", what, n.name, got, nodes[0].name, want)
		}
	}
	return first
}

// caughtUp returns once n applied the log as far as it went when called
// (a REST read waits for that). An im/req read does not wait: it answers
// from what its node applied so far, so a test that reads on one node
// what it wrote through another waits here first.
func caughtUp(n *clusterProc) {
	n.b.v4OK("group_open_http_svc/get_appid_group_list", map[string]any{"Limit": 1})
}

// tipIn matches a GroupTip of one TipType in group gid.
func tipIn(gid, typ string) func(Event) bool {
	return func(e Event) bool { return gtTip(typ)(e) && gtMsg(e)["GroupId"] == gid }
}

// unsub ends c's subscription to topic.
func unsub(t *testing.T, c paho.Client, topic string) {
	t.Helper()
	if tok := c.Unsubscribe(topic); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("unsubscribe %s: %v", topic, tok.Error())
	}
}
