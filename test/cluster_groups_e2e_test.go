package test

import (
	"slices"
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
	nodes := clusterProcs(t, 3, `groups:
  read_diffusion_above: 3
  types:
    Team:
      base: Private
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
		gtWait(t, what("gc told of joining"), c.Events, gtTip("MemberJoin"))
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
		gtWait(t, what("gc told of the kick"), c.Events, gtTip("MemberKicked"))
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
		gtWait(t, what("ga told of the destruction"), a.Events, gtTip("GroupDestroyed"))
		info = sameOnEveryNode(t, nodes, what("get_group_info after destroy"), "group_open_http_svc/get_group_info", map[string]any{"GroupIdList": []string{gid}})
		if e := jsonAt(info, "GroupInfo", 0, "ErrorCode"); e != float64(10010) {
			t.Fatalf("%s: ErrorCode %v, want 10010", what("get_group_info after destroy"), e)
		}
	}
	restClient.CloseIdleConnections()
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

// unsub ends c's subscription to topic.
func unsub(t *testing.T, c paho.Client, topic string) {
	t.Helper()
	if tok := c.Unsubscribe(topic); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("unsubscribe %s: %v", topic, tok.Error())
	}
}
