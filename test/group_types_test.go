package test

// End-to-end tests of the per-type group rules (tencent-im.md §6), with
// real paho clients; helpers in group_types_helpers_test.go.

import (
	"fmt"
	"slices"
	"testing"

	"github.com/imbroker/imbroker/config"
)

// TestE2E_GroupTypes runs one life cycle per built-in type: join, send and
// receive, history visibility, kick (and its immediate effect), mute, owner
// quit and destroy.
func TestE2E_GroupTypes(t *testing.T) {
	cases := []struct {
		typ          string
		read         bool // read diffusion: messages go to im/g/{gid}, not to members' streams
		stored       bool // history kept (else group.history gives 10044)
		join         int  // a non-member's group.join
		memberSends  bool // an ordinary member may send
		kick, mute   int  // the owner kicks / mutes an ordinary member
		edit         int  // an ordinary member renames the group
		ownerQuit    int
		ownerDestroy int
	}{
		{"Private", false, true, 10007, true, 0, 10007, 0, 0, 10007},
		{"Public", false, true, 0, true, 0, 0, 10007, 10009, 0},
		{"ChatRoom", true, true, 0, true, 0, 0, 10007, 10009, 0},
		{"AVChatRoom", true, false, 0, true, 10007, 0, 10007, 10009, 0},
		{"BChatRoom", true, false, 0, false, 0, 0, 10007, 10009, 0},
	}
	for _, tc := range cases {
		t.Run(tc.typ, func(t *testing.T) {
			b := StartBroker(t)
			alice, bob, carol := b.Connect("alice", "alice"), b.Connect("bob", "bob"), b.Connect("carol", "carol")
			carolTab := b.Connect("carol:tab", "carol") // a second device
			create := map[string]any{"Type": tc.typ}    // default ApplyJoinOption: NeedPermission
			if tc.typ == "Public" {
				create["ApplyJoinOption"] = "FreeAccess"
			}
			gid := gtCreate(t, alice, create)

			// Join rules: Work groups by invitation (from any member) only;
			// Public ones by applying; Meeting and live rooms freely, whatever
			// ApplyJoinOption says. Only Work groups take invitations.
			gtCode(t, "bob joins", bob.Req("group.join", gtG(gid)), tc.join)
			if tc.join != 0 {
				gtOK(t, "owner invites bob", alice.Req("group.invite", gtG(gid, "MemberList", gtMembers("bob"))))
			} else {
				gtCode(t, "owner invites carol", alice.Req("group.invite", gtG(gid, "MemberList", gtMembers("carol"))), 10007)
			}
			gtCode(t, "bob joins again", bob.Req("group.join", gtG(gid)), 10013)
			gtCode(t, "member renames", bob.Req("group.modify", gtG(gid, "Name", "bob's")), tc.edit)

			sender, receiver := bob, alice
			if !tc.memberSends {
				gtCode(t, "ordinary member sends", gtSendReply(t, bob, gid), 10007)
				sender, receiver = alice, bob
			}
			var recvG chan Event
			if tc.read {
				var rc byte
				rc, recvG = gtSub(t, receiver, "im/g/"+gidLevel(gid))
				if rc != 1 {
					t.Fatalf("member subscribes im/g: SUBACK 0x%02x", rc)
				}
				if rc, _ := gtSub(t, carol, "im/g/"+gidLevel(gid)); rc != 0x80 && tc.typ != "BChatRoom" {
					t.Fatalf("non-member subscribes im/g: SUBACK 0x%02x, want 0x80", rc)
				}
			}
			before := gtMustSend(t, sender, gid)
			gtDelivered(t, sender, receiver, recvG, tc.read, before)

			// carol becomes a member after that message.
			if tc.join != 0 {
				r := gtOK(t, "bob (a member) invites carol", bob.Req("group.invite", gtG(gid, "MemberList", gtMembers("carol"))))
				if res := r["MemberList"].([]any)[0].(map[string]any)["Result"]; res != 1.0 {
					t.Fatalf("invite result %v", r)
				}
			} else if r := gtOK(t, "carol joins", carol.Req("group.join", gtG(gid))); r["JoinResult"] != "Joined" {
				t.Fatalf("carol joins: %v", r)
			}
			carols := []*Client{carol, carolTab}
			carolG := map[*Client]chan Event{}
			for _, c := range carols {
				if tc.read {
					carolG[c] = make(chan Event, 1000)
					if rc := gtSubTo(t, c, "im/g/"+gidLevel(gid), carolG[c]); rc != 1 {
						t.Fatalf("carol subscribes im/g: SUBACK 0x%02x", rc)
					}
				}
			}
			after := gtMustSend(t, sender, gid)
			for _, c := range carols {
				gtDelivered(t, sender, c, carolG[c], tc.read, after)
			}

			// History: a new member does not see what came before joining.
			if tc.stored {
				if h := gtHistory(t, carol, gid); slices.Contains(h, before) || !slices.Contains(h, after) {
					t.Fatalf("carol's history %v: want %d, not %d", h, after, before)
				}
				if h := gtHistory(t, receiver, gid); !slices.Contains(h, before) || !slices.Contains(h, after) {
					t.Fatalf("%s's history %v lacks %d or %d", receiver.User, h, before, after)
				}
			} else {
				gtCode(t, "history", carol.Req("group.history", gtG(gid)), 10044)
				gtCode(t, "group.sync", carol.Req("group.sync", gtG(gid, "Since", 0)), 10044)
			}

			// Kick, and membership ends at once.
			gtCode(t, "owner kicks carol", alice.Req("group.kick", gtG(gid, "MemberToDel_Account", []string{"carol"})), tc.kick)
			if tc.kick == 0 {
				for _, c := range carols {
					gtWait(t, c.User, c.Events, func(e Event) bool {
						m := gtMsg(e)
						return gtTip("MemberKicked")(e) && m["Operator_Account"] == "alice" && fmt.Sprint(m["MemberList"]) == "[carol]"
					})
				}
				if tc.stored {
					gtCode(t, "kicked member reads history", carol.Req("group.history", gtG(gid)), 10007)
				}
				gtCode(t, "kicked member lists members", carol.Req("group.members", gtG(gid)), 10007)
				out := gtMustSend(t, sender, gid)
				gtDelivered(t, sender, receiver, recvG, tc.read, out)
				if !tc.read {
					marker := Random()
					alice.Publish1("im/send/c2c/carol", Text("marker", marker))
					for _, c := range carols {
						gtNone(t, "kicked member got a group message", gtWait(t, c.User, c.Events, gtC2C(marker)),
							func(e Event) bool { return e.Event == "GroupMsg" })
					}
				} else {
					// The broker dropped both devices' subscriptions with the
					// kick. carol rejoins and both subscribe again: the first
					// message they get must be one sent after that (one
					// stream, one order).
					if rc := gtSubTo(t, carol, "im/g/"+gidLevel(gid), carolG[carol]); (rc == 1) != (tc.typ == "BChatRoom") {
						t.Fatalf("kicked member resubscribes: SUBACK 0x%02x", rc)
					}
					gtOK(t, "carol rejoins", carol.Req("group.join", gtG(gid)))
					for _, c := range carols {
						gtSubTo(t, c, "im/g/"+gidLevel(gid), carolG[c])
					}
					again := gtMustSend(t, sender, gid)
					for _, c := range carols {
						gtNone(t, "kicked member got a message sent while out", gtWait(t, c.User, carolG[c], gtGroupMsg(again)),
							func(e Event) bool { return e.Event == "GroupMsg" })
					}
				}
			}

			// Mute an ordinary member.
			gtCode(t, "owner mutes bob", alice.Req("group.mute", gtG(gid, "Members_Account", []string{"bob"}, "MuteTime", 60)), tc.mute)
			if tc.mute == 0 && tc.memberSends {
				gtCode(t, "muted member sends", gtSendReply(t, bob, gid), 10017)
			}

			// Quit and destroy.
			gtCode(t, "member destroys", bob.Req("group.destroy", gtG(gid)), 10007)
			if tc.ownerDestroy != 0 {
				gtCode(t, "owner destroys", alice.Req("group.destroy", gtG(gid)), tc.ownerDestroy)
			}
			gtCode(t, "owner quits", alice.Req("group.quit", gtG(gid)), tc.ownerQuit)
			if tc.ownerDestroy == 0 {
				gtOK(t, "owner destroys", alice.Req("group.destroy", gtG(gid)))
			} else {
				admin := b.Connect("administrator", "administrator")
				gtOK(t, "app admin destroys", admin.Req("group.destroy", gtG(gid)))
			}
			gtWait(t, "bob", bob.Events, gtTip("GroupDestroyed"))
			gtCode(t, "join a destroyed group", bob.Req("group.join", gtG(gid)), 10010)
			gtCode(t, "send to a destroyed group", gtSendReply(t, bob, gid), 10010)
		})
	}
}

// TestE2E_GroupPublicJoin covers ApplyJoinOption on Public groups.
func TestE2E_GroupPublicJoin(t *testing.T) {
	cases := []struct {
		option string
		code   int
		result string
	}{
		{"NeedPermission", 0, "Pending"},
		{"FreeAccess", 0, "Joined"},
		{"DisableApply", 10007, ""},
	}
	for _, tc := range cases {
		t.Run(tc.option, func(t *testing.T) {
			b := StartBroker(t)
			alice, bob, carol := b.Connect("alice", "alice"), b.Connect("bob", "bob"), b.Connect("carol", "carol")
			erin, dave := b.Connect("erin", "erin"), b.Connect("dave", "dave")
			gid := gtCreate(t, alice, map[string]any{"Type": "Public", "ApplyJoinOption": tc.option,
				"MemberList": []any{map[string]any{"Member_Account": "erin", "Role": "Admin"}, map[string]any{"Member_Account": "dave"}}})
			r := bob.Req("group.join", gtG(gid, "ApplyMsg", "let me in"))
			gtCode(t, "bob joins", r, tc.code)
			if tc.result != "" && r["JoinResult"] != tc.result {
				t.Fatalf("JoinResult: %v, want %q", r, tc.result)
			}
			switch tc.result {
			case "Joined":
				gtHistory(t, bob, gid)
				return
			case "":
				gtCode(t, "refused applicant reads history", bob.Req("group.history", gtG(gid)), 10007)
				return
			}
			// Pending: not a member yet; the owner and admins (only) are told
			// on their streams.
			gtCode(t, "applicant reads history", bob.Req("group.history", gtG(gid)), 10007)
			for _, c := range []*Client{alice, erin} {
				gtWait(t, c.User, c.Events, func(e Event) bool {
					m := gtMsg(e)
					return gtTip("JoinApplication")(e) && m["Operator_Account"] == "bob" && m["ApplyMsg"] == "let me in" && m["GroupId"] == gid
				})
			}
			marker := Random()
			alice.Publish1("im/send/c2c/dave", Text("marker", marker))
			gtNone(t, "an ordinary member was told of an application", gtWait(t, "dave", dave.Events, gtC2C(marker)), gtTip("JoinApplication"))
			gtCode(t, "member lists applications", dave.Req("group.applications", gtG(gid)), 10007)
			apps := gtOK(t, "applications", alice.Req("group.applications", gtG(gid)))["ApplicationList"].([]any)
			if len(apps) != 1 || apps[0].(map[string]any)["Applicant_Account"] != "bob" {
				t.Fatalf("applications: %v", apps)
			}
			gtCode(t, "non-member handles", carol.Req("group.handle_application", gtG(gid, "Applicant_Account", "bob", "HandleResult", "Agree")), 10007)
			gtCode(t, "member handles", dave.Req("group.handle_application", gtG(gid, "Applicant_Account", "bob", "HandleResult", "Agree")), 10007)
			gtOK(t, "owner agrees", alice.Req("group.handle_application", gtG(gid, "Applicant_Account", "bob", "HandleResult", "Agree")))
			gtWait(t, "bob", bob.Events, func(e Event) bool { return gtTip("ApplicationHandled")(e) && gtMsg(e)["Result"] == "Agree" })
			gtHistory(t, bob, gid)
			gtCode(t, "member applies again", bob.Req("group.join", gtG(gid)), 10013)

			// A rejected applicant stays out; an admin may reject.
			if r := gtOK(t, "carol applies", carol.Req("group.join", gtG(gid))); r["JoinResult"] != "Pending" {
				t.Fatalf("carol applies: %v", r)
			}
			gtOK(t, "admin rejects", erin.Req("group.handle_application", gtG(gid, "Applicant_Account", "carol", "HandleResult", "Reject")))
			gtWait(t, "carol", carol.Events, func(e Event) bool { return gtTip("ApplicationHandled")(e) && gtMsg(e)["Result"] == "Reject" })
			gtCode(t, "rejected applicant reads history", carol.Req("group.history", gtG(gid)), 10007)
			members := gtOK(t, "members", alice.Req("group.members", gtG(gid)))
			if members["MemberNum"] != 4.0 {
				t.Fatalf("members: %v", members)
			}

			// An applicant who gets in another way has no application left.
			frank := b.Connect("frank", "frank")
			gtOK(t, "frank applies", frank.Req("group.join", gtG(gid)))
			gtOK(t, "group opens", alice.Req("group.modify", gtG(gid, "ApplyJoinOption", "FreeAccess")))
			if r := gtOK(t, "frank joins", frank.Req("group.join", gtG(gid))); r["JoinResult"] != "Joined" {
				t.Fatalf("frank joins: %v", r)
			}
			if apps := gtOK(t, "applications", alice.Req("group.applications", gtG(gid)))["ApplicationList"].([]any); len(apps) != 0 {
				t.Fatalf("applications left after everyone got in: %v", apps)
			}
		})
	}
}

// TestE2E_GroupHistoryBeforeJoin: a new member sees messages from before
// joining only where the type says so (history_before_join), including a
// custom type derived from Public and one derived from ChatRoom, whose
// group.sync replay on im/g obeys the same line.
func TestE2E_GroupHistoryBeforeJoin(t *testing.T) {
	yes := true
	mod := func(c *config.Config) {
		c.Groups.Types["OpenPublic"] = config.GroupType{Base: "Public", HistoryBeforeJoin: &yes}
		c.Groups.Types["OpenRoom"] = config.GroupType{Base: "ChatRoom", HistoryBeforeJoin: &yes}
	}
	cases := []struct {
		typ    string
		before bool
		read   bool
	}{
		{"Public", false, false},
		{"OpenPublic", true, false},
		{"ChatRoom", false, true},
		{"OpenRoom", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.typ, func(t *testing.T) {
			b := StartBroker(t, mod)
			alice, bob := b.Connect("alice", "alice"), b.Connect("bob", "bob")
			gid := gtCreate(t, alice, map[string]any{"Type": tc.typ, "ApplyJoinOption": "FreeAccess"})
			old := gtMustSend(t, alice, gid)
			gtOK(t, "bob joins", bob.Req("group.join", gtG(gid)))
			recent := gtMustSend(t, alice, gid)

			info := gtOK(t, "info", bob.Req("group.info", map[string]any{"GroupIdList": []string{gid}}))["GroupInfo"].([]any)[0].(map[string]any)
			if info["Type"] != tc.typ || info["HistoryBeforeJoin"] != tc.before {
				t.Fatalf("group.info: %v", info)
			}
			h := gtHistory(t, bob, gid)
			if slices.Contains(h, old) != tc.before || !slices.Contains(h, recent) {
				t.Fatalf("history %v: old %d visible should be %v; recent %d", h, old, tc.before, recent)
			}
			if !tc.read {
				return
			}
			rc, ch := gtSub(t, bob, "im/g/"+gidLevel(gid))
			if rc != 1 {
				t.Fatalf("subscribe: 0x%02x", rc)
			}
			r := bob.Req("group.sync", gtG(gid, "Since", 0))
			gtOK(t, "group.sync", r)
			// The replay is written before the reply, and paho hands messages
			// over in order, so every replayed event is in ch by now.
			var got []uint32
			for len(ch) > 0 {
				if e := <-ch; e.Event == "GroupMsg" {
					got = append(got, e.Msg.MsgRandom)
				}
			}
			if slices.Contains(got, old) != tc.before || !slices.Contains(got, recent) {
				t.Fatalf("group.sync replayed %v: old %d visible should be %v; recent %d", got, old, tc.before, recent)
			}
		})
	}
}
