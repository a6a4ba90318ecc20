package groups

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/imerr"
)

// tipTypes lists the tips of gid's stream after seq `after`.
func (ts *testService) tipTypes(t *testing.T, gid string, after uint64) []string {
	t.Helper()
	_, es, err := ts.store.Read(convs.GroupStream(gid), after, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i, e := range es {
		var ev struct{ Msg wire.GroupTip }
		if err := json.Unmarshal(e.Payload, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Msg.MsgSeq != after+uint64(i)+1 {
			t.Fatalf("tip %s has MsgSeq %d at %d", ev.Msg.TipType, ev.Msg.MsgSeq, after+uint64(i)+1)
		}
		out = append(out, ev.Msg.TipType)
	}
	return out
}

func (ts *testService) head(t *testing.T, gid string) uint64 {
	t.Helper()
	p, err := ts.store.Head(convs.GroupStream(gid))
	if err != nil {
		t.Fatal(err)
	}
	return p.Seq
}

// TestModifyMemberIsOneCommit: role, name card and mute of one member are
// one commit with one tip per part, in order; a refused part (here the
// last) leaves the member as it was and the group stream without a tip.
func TestModifyMemberIsOneCommit(t *testing.T) {
	ts := newTestService(t)
	ctx := context.Background()
	gid := ts.create(t, CreateRequest{Type: "Public", Name: "g", Owner_Account: "alice",
		MemberList: []InitialMember{{Member_Account: "bob"}}})

	head, batches := ts.head(t, gid), ts.store.Stats().Batches
	card, bad := "Bobby", int64(-1)
	_, err := ts.ModifyMember(ctx, ts.admin(), &ModifyMemberRequest{GroupId: gid, Member_Account: "bob", Role: "Admin",
		NameCard: &card, AppMemberDefinedData: []wire.KVItem{{Key: "k", Value: "v"}}, MuteTime: &bad})
	if !imerr.GroupBadParams.Is(err) {
		t.Fatalf("a bad MuteTime after a good role and card: %v, want 10004", err)
	}
	g, _ := ts.load(gid)
	if m := *g.members["bob"]; m.Role != roleMember || m.NameCard != "" || m.AppMemberDefinedData != nil {
		t.Fatalf("after a refused change: %+v", m)
	}
	if got := ts.head(t, gid); got != head || ts.store.Stats().Batches != batches {
		t.Fatalf("a refused change wrote: head %d -> %d, %d commits", head, got, ts.store.Stats().Batches-batches)
	}

	mute := int64(600)
	if _, err := ts.ModifyMember(ctx, ts.admin(), &ModifyMemberRequest{GroupId: gid, Member_Account: "bob", Role: "Admin",
		NameCard: &card, MuteTime: &mute}); err != nil {
		t.Fatal(err)
	}
	if n := ts.store.Stats().Batches - batches; n != 1 {
		t.Fatalf("%d commits, want 1", n)
	}
	want := []string{tipRoleChanged, tipMemberInfo, tipMemberMuted}
	if got := ts.tipTypes(t, gid, head); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("tips %v, want %v", got, want)
	}
	if m := *g.members["bob"]; m.Role != roleAdmin || m.NameCard != card || m.MuteUntil == 0 {
		t.Fatalf("after the change: %+v", m)
	}
	raw, _, _ := ts.store.Get(memberKey(gid, "bob"))
	var stored Member
	if err := json.Unmarshal(raw, &stored); err != nil || stored.Role != roleAdmin || stored.NameCard != card || stored.MuteUntil != g.members["bob"].MuteUntil {
		t.Fatalf("stored record %s (%v)", raw, err)
	}
}

// TestModifyMemberKeepsEachPartsRules: each part keeps the rules of the
// operation it was: the owner makes a member Admin and mutes her in one
// change; an admin may not mute an admin.
func TestModifyMemberKeepsEachPartsRules(t *testing.T) {
	ts := newTestService(t)
	ctx := context.Background()
	gid := ts.create(t, CreateRequest{Type: "Public", Name: "g", Owner_Account: "alice",
		MemberList: []InitialMember{{Member_Account: "bob", Role: "Admin"}, {Member_Account: "carol"}}})
	mute := int64(60)
	// alice (the owner) makes carol Admin and mutes her: the owner mutes admins.
	if _, err := ts.ModifyMember(ctx, actor("alice"), &ModifyMemberRequest{GroupId: gid, Member_Account: "carol", Role: "Admin", MuteTime: &mute}); err != nil {
		t.Fatal(err)
	}
	// bob (an admin) may mute members but not admins, nor set roles.
	if _, err := ts.ModifyMember(ctx, actor("bob"), &ModifyMemberRequest{GroupId: gid, Member_Account: "carol", MuteTime: &mute}); !imerr.GroupNoPermission.Is(err) {
		t.Fatalf("an admin mutes an admin: %v", err)
	}
}

// TestMutedMembersAndRoles read one state: muted members in member order,
// roles with NotMember for others.
func TestMutedMembersAndRoles(t *testing.T) {
	ts := newTestService(t)
	ctx := context.Background()
	gid := ts.create(t, CreateRequest{Type: "Public", Name: "g", Owner_Account: "alice",
		MemberList: []InitialMember{{Member_Account: "bob"}, {Member_Account: "carol"}}})
	forever := int64(muteForever)
	if _, err := ts.Mute(ctx, ts.admin(), &MuteRequest{GroupId: gid, Members_Account: []string{"carol", "bob"}, MuteTime: &forever}); err != nil {
		t.Fatal(err)
	}
	muted, err := ts.MutedMembers(ctx, ts.admin(), &GroupRequest{GroupId: gid})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(muted)
	if string(raw) != `{"MutedAccountList":[{"Member_Account":"bob","MutedUntil":4611686018427387903},{"Member_Account":"carol","MutedUntil":4611686018427387903}]}` {
		t.Fatalf("muted: %s", raw)
	}
	if _, err := ts.MutedMembers(ctx, actor("zed"), &GroupRequest{GroupId: gid}); !imerr.GroupNoPermission.Is(err) {
		t.Fatalf("a stranger lists muted members: %v", err)
	}
	roles, err := ts.Roles(ctx, ts.admin(), &RolesRequest{GroupId: gid, User_Account: []string{"alice", "bob", "zed"}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = json.Marshal(roles)
	if string(raw) != `{"UserIdList":[{"Member_Account":"alice","Role":"Owner"},{"Member_Account":"bob","Role":"Member"},{"Member_Account":"zed","Role":"NotMember"}]}` {
		t.Fatalf("roles: %s", raw)
	}
	if _, err := ts.Roles(ctx, ts.admin(), &RolesRequest{GroupId: gid}); !imerr.GroupBadParams.Is(err) {
		t.Fatalf("no users: %v", err)
	}
}
