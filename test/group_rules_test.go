package test

// End-to-end tests of group refusals (each with its Tencent code), mutes,
// guests, BChatRoom broadcasting and the group rate and join limits.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/imbroker/imbroker/config"
)

func TestE2E_GroupGuests(t *testing.T) {
	no := false
	guests := func(c *config.Config) {
		c.Guests.Enabled = true
		c.Groups.Types["QuietLive"] = config.GroupType{Base: "AVChatRoom", Guests: &no}
	}
	for _, tc := range []struct {
		typ string
		rc  byte // SUBACK to a guest subscribing im/g/{gid}
	}{
		{"Private", 0x80}, {"Public", 0x80}, {"ChatRoom", 0x80}, {"AVChatRoom", 1}, {"BChatRoom", 1}, {"QuietLive", 0x80},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			b := StartBroker(t, guests)
			alice := b.Connect("alice", "alice")
			gid := gtCreate(t, alice, map[string]any{"Type": tc.typ})
			guest, _ := gtGuest(t, b, "g1")
			rc, ch := gtSub(t, guest, "im/g/"+gidLevel(gid))
			if rc != tc.rc {
				t.Fatalf("guest subscribes im/g/%s: SUBACK 0x%02x, want 0x%02x", gid, rc, tc.rc)
			}
			for _, filter := range []string{"im/u/alice", "im/u/alice/rpc", "im/u/+", "im/u/#", "im/g/+", "#"} {
				if rc, _ := gtSub(t, guest, filter); rc != 0x80 {
					t.Errorf("guest subscribes %s: SUBACK 0x%02x, want 0x80", filter, rc)
				}
			}
			if tc.rc == 1 {
				r := gtMustSend(t, alice, gid)
				gtWait(t, "guest", ch, gtGroupMsg(r))
			}
		})
	}

	t.Run("publish", func(t *testing.T) {
		b := StartBroker(t, guests)
		alice := b.Connect("alice", "alice")
		gid := gtCreate(t, alice, map[string]any{"Type": "AVChatRoom"})
		_, aliceG := gtSub(t, alice, "im/g/"+gidLevel(gid))

		// MQTT 5: every publish is refused with PUBACK 0x87.
		c5, ca := connect5(t, b, "guest/v5", "", "")
		if ca.ReasonCode != 0 {
			t.Fatalf("v5 guest CONNACK 0x%02x", ca.ReasonCode)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, topic := range []string{"im/send/group/" + gidLevel(gid), "im/req/group.join", "im/send/c2c/alice", "im/g/" + gidLevel(gid)} {
			pr, err := c5.Publish(ctx, &paho5.Publish{Topic: topic, QoS: 1, Payload: mustJSON(Text("guest", Random()))})
			if pr == nil || pr.ReasonCode != 0x87 {
				t.Fatalf("v5 guest publishes %s: %+v %v", topic, pr, err)
			}
		}
		// MQTT 3.1.1 has no refusal code: the guest is disconnected.
		g3, lost := gtGuest(t, b, "v3")
		g3.Publish("im/send/group/"+gidLevel(gid), 1, false, mustJSON(Text("guest", Random())))
		select {
		case <-lost:
		case <-time.After(5 * time.Second):
			t.Fatal("a 3.1.1 guest's publish did not end its connection")
		}
		// Nothing of theirs reached the room, and nobody joined.
		r := gtMustSend(t, alice, gid)
		gtNone(t, "guest message in the room", gtWait(t, "alice", aliceG, gtGroupMsg(r)),
			func(e Event) bool { return e.Event == "GroupMsg" })
		if m := gtOK(t, "members", alice.Req("group.members", gtG(gid))); m["MemberNum"] != 1.0 {
			t.Fatalf("members: %v", m)
		}
	})

	t.Run("disabled", func(t *testing.T) {
		b := StartBroker(t)
		c := paho.NewClient(b.ClientOpts("guest/g1", "", ""))
		tok := c.Connect()
		if !tok.WaitTimeout(5 * time.Second) {
			t.Fatal("connect timed out")
		}
		defer c.Disconnect(0)
		if tok.Error() == nil {
			t.Fatal("a guest connected with guests disabled")
		}
	})
}

// TestE2E_GroupBChatRoom: owner and admins broadcast to every subscribed
// online user, member or not; nobody else sends.
func TestE2E_GroupBChatRoom(t *testing.T) {
	b := StartBroker(t)
	alice, bob, carol, dave := b.Connect("alice", "alice"), b.Connect("bob", "bob"), b.Connect("carol", "carol"), b.Connect("dave", "dave")
	gid := gtCreate(t, alice, map[string]any{"Type": "BChatRoom"})
	gtOK(t, "bob joins", bob.Req("group.join", gtG(gid)))
	gtOK(t, "bob made admin", alice.Req("group.set_role", gtG(gid, "Member_Account", "bob", "Role", "Admin")))
	gtOK(t, "carol joins", carol.Req("group.join", gtG(gid)))
	listeners := map[string]chan Event{}
	for _, c := range []*Client{carol, dave} { // a plain member and a logged-in non-member
		rc, ch := gtSub(t, c, "im/g/"+gidLevel(gid))
		if rc != 1 {
			t.Fatalf("%s subscribes: SUBACK 0x%02x", c.User, rc)
		}
		listeners[c.User] = ch
	}
	for _, s := range []struct {
		from *Client
		code int
	}{{carol, 10007}, {dave, 10007}, {alice, 0}, {bob, 0}} { // refusals first: the later waits prove they reached nobody
		r := Random()
		rep := gtSend(t, s.from, gid, r)
		if got := map[bool]int{true: 0, false: code(rep)}[rep == nil]; got != s.code {
			t.Fatalf("%s sends: code %d, want %d (%v)", s.from.User, got, s.code, rep)
		}
		if s.code != 0 {
			continue
		}
		for who, ch := range listeners {
			gtNone(t, who+" got a refused message", gtWait(t, who, ch, gtGroupMsg(r)),
				func(e Event) bool { return e.Event == "GroupMsg" })
		}
	}
}

func TestE2E_GroupRefusals(t *testing.T) {
	type w = gtWorld
	kick := func(c *Client, gid string, who ...string) map[string]any {
		return c.Req("group.kick", gtG(gid, "MemberToDel_Account", who))
	}
	mute := func(c *Client, gid string, who ...string) map[string]any {
		return c.Req("group.mute", gtG(gid, "Members_Account", who, "MuteTime", 60))
	}
	create := func(c *Client, kv ...any) map[string]any {
		body := gtG("", kv...)
		if body["GroupId"] == "" {
			delete(body, "GroupId")
		}
		body["Name"] = "x"
		return c.Req("group.create", body)
	}
	cases := []struct {
		name string
		code int
		do   func(t *testing.T, w *w) map[string]any
	}{
		// 10007: no permission.
		{"Private/outsider joins", 10007, func(t *testing.T, w *w) map[string]any { return w.erin.Req("group.join", gtG(w.work)) }},
		{"Private/member kicks", 10007, func(t *testing.T, w *w) map[string]any { return kick(w.carol, w.work, "dave") }},
		{"Private/owner mutes", 10007, func(t *testing.T, w *w) map[string]any { return mute(w.alice, w.work, "carol") }},
		{"Private/owner mutes all", 10007, func(t *testing.T, w *w) map[string]any {
			return w.alice.Req("group.mute_all", gtG(w.work, "MuteAllMember", "On"))
		}},
		{"Private/owner sets a role", 10007, func(t *testing.T, w *w) map[string]any {
			return w.alice.Req("group.set_role", gtG(w.work, "Member_Account", "carol", "Role", "Admin"))
		}},
		{"Private/owner destroys", 10007, func(t *testing.T, w *w) map[string]any { return w.alice.Req("group.destroy", gtG(w.work)) }},
		{"Private/outsider sends", 10007, func(t *testing.T, w *w) map[string]any { return gtSendReply(t, w.frank, w.work) }},
		{"Private/outsider reads info", 10007, func(t *testing.T, w *w) map[string]any { return gtInfoItem(w.frank, w.work) }},
		{"Public/member kicks", 10007, func(t *testing.T, w *w) map[string]any { return kick(w.carol, w.pub, "dave") }},
		{"Public/admin kicks admin", 10007, func(t *testing.T, w *w) map[string]any { return kick(w.bob, w.pub, "erin") }},
		{"Public/admin kicks owner", 10007, func(t *testing.T, w *w) map[string]any { return kick(w.bob, w.pub, "alice") }},
		{"Public/admin mutes admin", 10007, func(t *testing.T, w *w) map[string]any { return mute(w.bob, w.pub, "erin") }},
		{"Public/member mutes", 10007, func(t *testing.T, w *w) map[string]any { return mute(w.carol, w.pub, "dave") }},
		{"Public/member mutes all", 10007, func(t *testing.T, w *w) map[string]any {
			return w.carol.Req("group.mute_all", gtG(w.pub, "MuteAllMember", "On"))
		}},
		{"Public/member edits", 10007, func(t *testing.T, w *w) map[string]any {
			return w.carol.Req("group.modify", gtG(w.pub, "Name", "mine"))
		}},
		{"Public/owner invites", 10007, func(t *testing.T, w *w) map[string]any {
			return w.alice.Req("group.invite", gtG(w.pub, "MemberList", gtMembers("frank")))
		}},
		{"Public/admin sets a role", 10007, func(t *testing.T, w *w) map[string]any {
			return w.bob.Req("group.set_role", gtG(w.pub, "Member_Account", "carol", "Role", "Admin"))
		}},
		{"Public/admin destroys", 10007, func(t *testing.T, w *w) map[string]any { return w.bob.Req("group.destroy", gtG(w.pub)) }},
		{"Public/admin transfers", 10007, func(t *testing.T, w *w) map[string]any {
			return w.bob.Req("group.transfer", gtG(w.pub, "NewOwner_Account", "bob"))
		}},
		{"Public/outsider sends", 10007, func(t *testing.T, w *w) map[string]any { return gtSendReply(t, w.frank, w.pub) }},
		{"Public/outsider reads history", 10007, func(t *testing.T, w *w) map[string]any { return w.frank.Req("group.history", gtG(w.pub)) }},
		{"Public/outsider lists members", 10007, func(t *testing.T, w *w) map[string]any { return w.frank.Req("group.members", gtG(w.pub)) }},
		{"Public/outsider quits", 10007, func(t *testing.T, w *w) map[string]any { return w.frank.Req("group.quit", gtG(w.pub)) }},
		{"ChatRoom/owner invites", 10007, func(t *testing.T, w *w) map[string]any {
			return w.alice.Req("group.invite", gtG(w.room, "MemberList", gtMembers("frank")))
		}},
		{"ChatRoom/member kicks", 10007, func(t *testing.T, w *w) map[string]any { return kick(w.carol, w.room, "bob") }},
		{"AVChatRoom/owner kicks", 10007, func(t *testing.T, w *w) map[string]any { return kick(w.alice, w.live, "carol") }},
		{"AVChatRoom/owner invites", 10007, func(t *testing.T, w *w) map[string]any {
			return w.alice.Req("group.invite", gtG(w.live, "MemberList", gtMembers("frank")))
		}},
		{"AVChatRoom/owner sets a role", 10007, func(t *testing.T, w *w) map[string]any {
			return w.alice.Req("group.set_role", gtG(w.live, "Member_Account", "carol", "Role", "Admin"))
		}},
		{"AVChatRoom/create with members", 10007, func(t *testing.T, w *w) map[string]any {
			return create(w.alice, "Type", "AVChatRoom", "MemberList", gtMembers("bob"))
		}},
		{"AVChatRoom/member mutes", 10007, func(t *testing.T, w *w) map[string]any { return mute(w.carol, w.live, "alice") }},
		{"AVChatRoom/outsider sends", 10007, func(t *testing.T, w *w) map[string]any { return gtSendReply(t, w.frank, w.live) }},
		{"BChatRoom/member sends", 10007, func(t *testing.T, w *w) map[string]any { return gtSendReply(t, w.carol, w.bcast) }},
		{"BChatRoom/outsider sends", 10007, func(t *testing.T, w *w) map[string]any { return gtSendReply(t, w.frank, w.bcast) }},

		// What the refusals above are the other side of.
		{"Private/member invites", 0, func(t *testing.T, w *w) map[string]any {
			return w.carol.Req("group.invite", gtG(w.work, "MemberList", gtMembers("frank")))
		}},
		{"Private/member edits", 0, func(t *testing.T, w *w) map[string]any {
			return w.carol.Req("group.modify", gtG(w.work, "Name", "ours"))
		}},
		{"Private/owner kicks", 0, func(t *testing.T, w *w) map[string]any { return kick(w.alice, w.work, "dave") }},
		{"Private/app admin mutes", 10007, func(t *testing.T, w *w) map[string]any { // forbid_send_msg: not for Work groups
			return mute(w.b.Connect("administrator", "administrator"), w.work, "carol")
		}},
		{"Public/app admin mutes", 0, func(t *testing.T, w *w) map[string]any {
			return mute(w.b.Connect("administrator", "administrator"), w.pub, "bob")
		}},
		{"Public/admin kicks member", 0, func(t *testing.T, w *w) map[string]any { return kick(w.bob, w.pub, "carol") }},
		{"Public/admin mutes member", 0, func(t *testing.T, w *w) map[string]any { return mute(w.bob, w.pub, "carol") }},
		{"Public/admin edits", 0, func(t *testing.T, w *w) map[string]any { return w.bob.Req("group.modify", gtG(w.pub, "Name", "ours")) }},
		{"Public/owner kicks admin", 0, func(t *testing.T, w *w) map[string]any { return kick(w.alice, w.pub, "bob") }},
		{"Public/app admin invites", 0, func(t *testing.T, w *w) map[string]any {
			return w.b.Connect("administrator", "administrator").Req("group.invite", gtG(w.pub, "MemberList", gtMembers("frank")))
		}},
		{"ChatRoom/admin kicks member", 0, func(t *testing.T, w *w) map[string]any { return kick(w.bob, w.room, "carol") }},
		{"AVChatRoom/owner mutes", 0, func(t *testing.T, w *w) map[string]any { return mute(w.alice, w.live, "carol") }},
		{"AVChatRoom/member sends", 0, func(t *testing.T, w *w) map[string]any { return gtSendReply(t, w.carol, w.live) }},
		{"BChatRoom/owner sends", 0, func(t *testing.T, w *w) map[string]any { return gtSendReply(t, w.alice, w.bcast) }},

		// 10009: only a Work group's owner may quit.
		{"Public/owner quits", 10009, func(t *testing.T, w *w) map[string]any { return w.alice.Req("group.quit", gtG(w.pub)) }},
		{"ChatRoom/owner quits", 10009, func(t *testing.T, w *w) map[string]any { return w.alice.Req("group.quit", gtG(w.room)) }},
		{"AVChatRoom/owner quits", 10009, func(t *testing.T, w *w) map[string]any { return w.alice.Req("group.quit", gtG(w.live)) }},
		{"BChatRoom/owner quits", 10009, func(t *testing.T, w *w) map[string]any { return w.alice.Req("group.quit", gtG(w.bcast)) }},

		// 10010: no such group.
		{"unknown/join", 10010, func(t *testing.T, w *w) map[string]any { return w.bob.Req("group.join", gtG("nope")) }},
		{"unknown/send", 10010, func(t *testing.T, w *w) map[string]any { return gtSendReply(t, w.bob, "nope") }},
		{"unknown/history", 10010, func(t *testing.T, w *w) map[string]any { return w.bob.Req("group.history", gtG("nope")) }},
		{"unknown/info", 10010, func(t *testing.T, w *w) map[string]any { return gtInfoItem(w.bob, "nope") }},
		{"unknown/kick", 10010, func(t *testing.T, w *w) map[string]any { return kick(w.alice, "nope", "bob") }},
		{"unknown/destroy", 10010, func(t *testing.T, w *w) map[string]any { return w.alice.Req("group.destroy", gtG("nope")) }},

		// 10013: already a member.
		{"Private/member joins", 10013, func(t *testing.T, w *w) map[string]any { return w.carol.Req("group.join", gtG(w.work)) }},
		{"Public/member joins", 10013, func(t *testing.T, w *w) map[string]any { return w.carol.Req("group.join", gtG(w.pub)) }},
		{"ChatRoom/member joins", 10013, func(t *testing.T, w *w) map[string]any { return w.carol.Req("group.join", gtG(w.room)) }},
		{"AVChatRoom/member joins", 10013, func(t *testing.T, w *w) map[string]any { return w.carol.Req("group.join", gtG(w.live)) }},

		// 10014: full.
		{"Public/join when full", 10014, func(t *testing.T, w *w) map[string]any {
			gid := gtCreate(t, w.alice, map[string]any{"Type": "Public", "ApplyJoinOption": "FreeAccess", "MaxMemberCount": 2})
			gtOK(t, "frank joins", w.frank.Req("group.join", gtG(gid)))
			return w.erin.Req("group.join", gtG(gid))
		}},
		{"Public/apply when full", 10014, func(t *testing.T, w *w) map[string]any {
			gid := gtCreate(t, w.alice, map[string]any{"Type": "Public", "MaxMemberCount": 2, "MemberList": gtMembers("carol")})
			return w.frank.Req("group.join", gtG(gid))
		}},
		{"Public/approve when full", 10014, func(t *testing.T, w *w) map[string]any {
			gid := gtCreate(t, w.alice, map[string]any{"Type": "Public", "MaxMemberCount": 2})
			gtOK(t, "frank applies", w.frank.Req("group.join", gtG(gid)))
			gtOK(t, "erin applies", w.erin.Req("group.join", gtG(gid)))
			gtOK(t, "frank approved", w.alice.Req("group.handle_application", gtG(gid, "Applicant_Account", "frank", "HandleResult", "Agree")))
			return w.alice.Req("group.handle_application", gtG(gid, "Applicant_Account", "erin", "HandleResult", "Agree"))
		}},
		{"ChatRoom/join when full", 10014, func(t *testing.T, w *w) map[string]any {
			gid := gtCreate(t, w.alice, map[string]any{"Type": "ChatRoom", "MaxMemberCount": 1})
			return w.frank.Req("group.join", gtG(gid))
		}},
		{"AVChatRoom/join when full", 10014, func(t *testing.T, w *w) map[string]any {
			gid := gtCreate(t, w.alice, map[string]any{"Type": "AVChatRoom", "MaxMemberCount": 2})
			gtOK(t, "frank joins", w.frank.Req("group.join", gtG(gid)))
			return w.erin.Req("group.join", gtG(gid))
		}},
		{"Private/invite when full", 10014, func(t *testing.T, w *w) map[string]any {
			gid := gtCreate(t, w.alice, map[string]any{"Type": "Private", "MaxMemberCount": 2, "MemberList": gtMembers("carol")})
			return w.carol.Req("group.invite", gtG(gid, "MemberList", gtMembers("frank")))
		}},
		{"Private/create over the limit", 10014, func(t *testing.T, w *w) map[string]any {
			return create(w.alice, "Type", "Private", "MaxMemberCount", 2, "MemberList", gtMembers("bob", "carol"))
		}},

		// 10015: invalid group id.
		{"id/space", 10015, func(t *testing.T, w *w) map[string]any {
			return create(w.alice, "Type", "Public", "GroupId", "my group")
		}},
		{"id/@TGS#", 10015, func(t *testing.T, w *w) map[string]any {
			return create(w.alice, "Type", "Public", "GroupId", "@TGS#abc")
		}},
		{"id/@TGS_", 10015, func(t *testing.T, w *w) map[string]any {
			return create(w.alice, "Type", "Public", "GroupId", "@TGS_abc")
		}},
		{"id/too long", 10015, func(t *testing.T, w *w) map[string]any {
			return create(w.alice, "Type", "Public", "GroupId", strings.Repeat("g", 49))
		}},
		{"id/wildcard", 10015, func(t *testing.T, w *w) map[string]any { return create(w.alice, "Type", "Public", "GroupId", "a+b") }},
		{"id/join with a space", 10015, func(t *testing.T, w *w) map[string]any { return w.bob.Req("group.join", gtG("my group")) }},
		{"id/send with a space", 10015, func(t *testing.T, w *w) map[string]any { return gtSendReply(t, w.bob, "my group") }},
		{"id/info with a space", 10015, func(t *testing.T, w *w) map[string]any { return gtInfoItem(w.bob, "my group") }},

		// 10021: id taken, whatever the type.
		{"id/taken", 10021, func(t *testing.T, w *w) map[string]any {
			gtOK(t, "create team", create(w.alice, "Type", "Public", "GroupId", "team"))
			return create(w.bob, "Type", "ChatRoom", "GroupId", "team")
		}},
		{"id/reserved prefix of an existing group", 10015, func(t *testing.T, w *w) map[string]any {
			return create(w.bob, "Type", "Public", "GroupId", w.pub)
		}},

		// 10044: live rooms keep no history.
		{"AVChatRoom/history", 10044, func(t *testing.T, w *w) map[string]any { return w.carol.Req("group.history", gtG(w.live)) }},
		{"AVChatRoom/sync", 10044, func(t *testing.T, w *w) map[string]any { return w.carol.Req("group.sync", gtG(w.live)) }},
		{"BChatRoom/history", 10044, func(t *testing.T, w *w) map[string]any { return w.carol.Req("group.history", gtG(w.bcast)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gtCode(t, tc.name, tc.do(t, gtNewWorld(t)), tc.code)
		})
	}
}

// TestE2E_GroupMute: a muted member gets 10017, also after leaving and
// rejoining; under mute-all ordinary members get 10017 while the owner and
// admins still speak.
func TestE2E_GroupMute(t *testing.T) {
	for _, tc := range []struct {
		typ    string
		admins bool
	}{{"Public", true}, {"ChatRoom", true}, {"AVChatRoom", false}} {
		t.Run(tc.typ, func(t *testing.T) {
			b := StartBroker(t)
			alice, bob, carol := b.Connect("alice", "alice"), b.Connect("bob", "bob"), b.Connect("carol", "carol")
			gid := gtCreate(t, alice, map[string]any{"Type": tc.typ, "ApplyJoinOption": "FreeAccess"})
			gtOK(t, "bob joins", bob.Req("group.join", gtG(gid)))
			gtOK(t, "carol joins", carol.Req("group.join", gtG(gid)))
			if tc.admins {
				gtOK(t, "bob made admin", alice.Req("group.set_role", gtG(gid, "Member_Account", "bob", "Role", "Admin")))
			}

			gtOK(t, "mute carol", alice.Req("group.mute", gtG(gid, "Members_Account", []string{"carol"}, "MuteTime", 600)))
			gtCode(t, "muted carol sends", gtSendReply(t, carol, gid), 10017)
			gtMustSend(t, bob, gid)
			gtOK(t, "carol quits", carol.Req("group.quit", gtG(gid)))
			gtOK(t, "carol rejoins", carol.Req("group.join", gtG(gid)))
			gtCode(t, "muted carol sends after rejoining", gtSendReply(t, carol, gid), 10017)
			gtOK(t, "unmute carol", alice.Req("group.mute", gtG(gid, "Members_Account", []string{"carol"}, "MuteTime", 0)))
			gtMustSend(t, carol, gid)

			gtCode(t, "member mutes all", carol.Req("group.mute_all", gtG(gid, "MuteAllMember", "On")), 10007)
			gtOK(t, "owner mutes all", alice.Req("group.mute_all", gtG(gid, "MuteAllMember", "On")))
			if info := gtInfoItem(alice, gid); info["MuteAllMember"] != "On" {
				t.Fatalf("info: %v", info)
			}
			gtCode(t, "member sends under mute-all", gtSendReply(t, carol, gid), 10017)
			gtMustSend(t, alice, gid)
			if tc.admins {
				gtMustSend(t, bob, gid)
			} else {
				gtCode(t, "member sends under mute-all", gtSendReply(t, bob, gid), 10017)
			}
			gtOK(t, "owner unmutes all", alice.Req("group.modify", gtG(gid, "MuteAllMember", "Off")))
			gtMustSend(t, carol, gid)
		})
	}
}

// TestE2E_GroupRateLimit: beyond groups.rate_limit, messages are dropped
// with success: PUBACK as usual, MsgDropReason on rpc, nothing stored or
// delivered. The app admin is not limited.
func TestE2E_GroupRateLimit(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) { c.Groups.RateLimit = 2 })
	alice, bob := b.Connect("alice", "alice"), b.Connect("bob", "bob")
	gid := gtCreate(t, alice, map[string]any{"Type": "Public", "ApplyJoinOption": "FreeAccess"})
	gtOK(t, "bob joins", bob.Req("group.join", gtG(gid)))

	var sent []uint32
	var toks []paho.Token
	for range 5 {
		r := Random()
		sent = append(sent, r)
		toks = append(toks, alice.Publish("im/send/group/"+gidLevel(gid), 1, false, mustJSON(Text("burst", r))))
	}
	for i, tok := range toks {
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("PUBACK %d: %v", i, tok.Error())
		}
	}
	var dropped []uint32
	for _, r := range gtFlush(t, alice) {
		if r["Op"] != "send" {
			continue
		}
		if code(r) != 0 || r["MsgDropReason"] != "MsgFreqLimit" {
			t.Fatalf("send report: %v", r)
		}
		dropped = append(dropped, uint32(r["MsgRandom"].(float64)))
	}
	if len(dropped) == 0 || len(dropped) > 3 {
		t.Fatalf("dropped %v of %v: want 1 to 3 (burst of 2)", dropped, sent)
	}
	if got := b.App.Broker.Stats().GroupDropped; got != int64(len(dropped)) {
		t.Fatalf("GroupDropped counter %d, want %d", got, len(dropped))
	}
	var kept []uint32
	for _, r := range sent {
		if !slices.Contains(dropped, r) {
			kept = append(kept, r)
		}
	}
	stored := gtHistory(t, bob, gid)
	slices.Reverse(stored) // history is newest first
	if !slices.Equal(stored, kept) {
		t.Fatalf("stored %v, want exactly the kept %v (dropped %v)", stored, kept, dropped)
	}
	gtNone(t, "bob got a dropped message", gtWait(t, "bob", bob.Events, gtGroupMsg(kept[len(kept)-1])),
		func(e Event) bool { return e.Event == "GroupMsg" && slices.Contains(dropped, e.Msg.MsgRandom) })

	admin := b.Connect("administrator", "administrator")
	for range 5 {
		gtMustSend(t, admin, gid)
	}
}

// TestE2E_GroupJoinLimit: groups.max_joined_per_user bounds every way in (10037).
func TestE2E_GroupJoinLimit(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) { c.Groups.MaxJoinedPerUser = 2 })
	alice, bob, carol := b.Connect("alice", "alice"), b.Connect("bob", "bob"), b.Connect("carol", "carol")
	g1 := gtCreate(t, alice, map[string]any{"Type": "Public", "ApplyJoinOption": "FreeAccess"})
	g2 := gtCreate(t, alice, map[string]any{"Type": "ChatRoom"})
	gtCode(t, "alice creates a third", alice.Req("group.create", map[string]any{"Type": "Public", "Name": "x"}), 10037)
	gtOK(t, "bob joins g1", bob.Req("group.join", gtG(g1)))
	gtCreate(t, bob, map[string]any{"Type": "Private"})
	gtCode(t, "bob joins a third", bob.Req("group.join", gtG(g2)), 10037)
	gtCode(t, "carol creates with bob", carol.Req("group.create", map[string]any{"Type": "Private", "Name": "x", "MemberList": gtMembers("bob")}), 10037)
	w := gtCreate(t, carol, map[string]any{"Type": "Private"})
	gtCode(t, "carol invites bob", carol.Req("group.invite", gtG(w, "MemberList", gtMembers("bob"))), 10037)
	gtOK(t, "bob quits g1", bob.Req("group.quit", gtG(g1)))
	gtOK(t, "bob joins g2", bob.Req("group.join", gtG(g2)))
}

// TestE2E_GroupInfoDuringLiveSends reads a live room's profile (NextMsgSeq
// comes from its in-memory seq) while messages are sent: run under -race.
func TestE2E_GroupInfoDuringLiveSends(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) { c.Groups.RateLimit, c.MQTT.ReqBurst = 100000, 1000 })
	alice, bob := b.Connect("alice", "alice"), b.Connect("bob", "bob")
	gid := gtCreate(t, alice, map[string]any{"Type": "AVChatRoom"})
	gtOK(t, "bob joins", bob.Req("group.join", gtG(gid)))
	const n = 200
	var toks []paho.Token
	for i := range n {
		toks = append(toks, alice.Publish("im/send/group/"+gidLevel(gid), 1, false, mustJSON(Text("live", Random()))))
		toks = append(toks, bob.Publish("im/req/group.info", 1, false, mustJSON(map[string]any{"Id": fmt.Sprint("info", i), "GroupIdList": []string{gid}})))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	info := gtInfoItem(bob, gid)
	if info["NextMsgSeq"].(float64) < n {
		t.Fatalf("NextMsgSeq %v after %d messages", info["NextMsgSeq"], n)
	}
}
