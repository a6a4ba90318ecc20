package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/imbroker/imbroker/config"
)

// The composite group endpoints are one domain operation each:
// modify_group_member_info changes all it names or nothing, with one set of
// tips; get_group_muted_account reads one state of the group.

// groupTipsAfter returns the TipType of each event of gid's history after
// seq `after` (oldest first), read with group.history by member c, and
// fails unless their MsgSeqs follow one another from after+1.
func groupTipsAfter(t *testing.T, c *Client, gid string, after uint64) []string {
	t.Helper()
	id := fmt.Sprintf("h%d", Random())
	c.Publish1("im/req/group.history", map[string]any{"Id": id, "GroupId": gid, "ReqMsgNumber": 20})
	var r map[string]any
	for r = c.NextReply(); r["Id"] != id; r = c.NextReply() {
	}
	if r["ErrorCode"].(float64) != 0 {
		t.Fatalf("group.history: %v", r)
	}
	raw, _ := json.Marshal(r["RspMsgList"])
	var evs []struct {
		Event string
		Msg   struct {
			MsgSeq  uint64
			TipType string
		}
	}
	if err := json.Unmarshal(raw, &evs); err != nil {
		t.Fatal(err)
	}
	var tips []string
	for i := len(evs) - 1; i >= 0; i-- { // newest first
		if e := evs[i]; e.Msg.MsgSeq > after {
			if e.Msg.MsgSeq != after+uint64(len(tips))+1 {
				t.Fatalf("history after %d: seq %d where %d was due: %s", after, e.Msg.MsgSeq, after+uint64(len(tips))+1, raw)
			}
			tips = append(tips, e.Event+"/"+e.Msg.TipType)
		}
	}
	return tips
}

// groupHead is gid's newest group seq (NextMsgSeq - 1 of get_group_info).
func groupHead(b *Broker, gid string) uint64 {
	b.tb.Helper()
	info := items(b.v4OK("group_open_http_svc/get_group_info", map[string]any{"GroupIdList": []string{gid}}), "GroupInfo")
	return uint64(info[0]["NextMsgSeq"].(float64)) - 1
}

// memberOf is uid's record as get_group_member_info lists it.
func memberOf(b *Broker, gid, uid string) map[string]any {
	b.tb.Helper()
	for _, m := range items(b.v4OK("group_open_http_svc/get_group_member_info", map[string]any{"GroupId": gid}), "MemberList") {
		if m["Member_Account"] == uid {
			return m
		}
	}
	b.tb.Fatalf("%s is not a member of %s", uid, gid)
	return nil
}

// TestE2E_RESTModifyGroupMemberInfoIsAtomic: a modify_group_member_info
// whose last part is refused changes neither the member nor the group's
// history; one that succeeds commits every part, with exactly one tip per
// part, in consecutive seqs. Before, the parts were separate operations:
// the role was committed (and announced) before the name card or the mute
// was refused. [REST-GROUP-MEMBER]
func TestE2E_RESTModifyGroupMemberInfoIsAtomic(t *testing.T) {
	b := StartBroker(t)
	const g = "group_open_http_svc/"
	b.v4OK(g+"create_group", map[string]any{"Owner_Account": "alice", "Type": "Public", "GroupId": "atom1", "Name": "atomic",
		"MemberList": []map[string]any{{"Member_Account": "bob"}, {"Member_Account": "carol"}}})
	alice := b.Connect("alice", "alice")
	head := groupHead(b, "atom1")

	for _, refused := range []map[string]any{
		{"Role": "Admin", "NameCard": "Bobby", "MuteTime": -1},                                                     // the mute part
		{"Role": "Admin", "AppMemberDefinedData": []map[string]any{{"Key": "no spaces", "Value": "v"}}},            // the member-data part
		{"Role": "Admin", "NameCard": "Bobby", "AppMemberDefinedData": []map[string]any{{"Key": "k", "Value": 1}}}, // a data value that is no string
	} {
		refused["GroupId"], refused["Member_Account"] = "atom1", "bob"
		wantCode(t, fmt.Sprintf("refused part %v", refused), b.v4(g+"modify_group_member_info", refused), 10004)
		if m := memberOf(b, "atom1", "bob"); m["Role"] != "Member" || m["NameCard"] != "" || m["MuteUntil"].(float64) != 0 || m["AppMemberDefinedData"] != nil {
			t.Fatalf("after a refused change %v: bob is %v", refused, m)
		}
		if h := groupHead(b, "atom1"); h != head {
			t.Fatalf("after a refused change %v: group head %d, want %d (no tip)", refused, h, head)
		}
	}
	if tips := groupTipsAfter(t, alice, "atom1", head); len(tips) != 0 {
		t.Fatalf("tips of refused changes: %v", tips)
	}

	b.v4OK(g+"modify_group_member_info", map[string]any{"GroupId": "atom1", "Member_Account": "bob", "Role": "Admin", "NameCard": "Bobby",
		"AppMemberDefinedData": []map[string]any{{"Key": "k", "Value": "v"}}, "MuteTime": 600})
	m := memberOf(b, "atom1", "bob")
	if m["Role"] != "Admin" || m["NameCard"] != "Bobby" || m["MuteUntil"].(float64) == 0 || len(m["AppMemberDefinedData"].([]any)) != 1 {
		t.Fatalf("after the change: bob is %v", m)
	}
	want := []string{"GroupTip/RoleChanged", "GroupTip/MemberInfoChanged", "GroupTip/MemberMuted"}
	tips := groupTipsAfter(t, alice, "atom1", head)
	if fmt.Sprint(tips) != fmt.Sprint(want) {
		t.Fatalf("tips of the change: %v, want %v", tips, want)
	}
}

// TestE2E_RESTMutedAccountListIsOneState: get_group_muted_account reads the
// group once, under its lock. Before, it paged through the member list
// (groups.max_page_size at a time), so a member leaving or joining between
// two pages shifted the offsets: a muted member was skipped or listed
// twice. Here a member sorted before the muted ones leaves and comes back
// while the list is read, with pages of 2. [REST-GROUP-MEMBER]
func TestE2E_RESTMutedAccountListIsOneState(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) { c.Groups.MaxPageSize = 2 })
	const g = "group_open_http_svc/"
	b.v4OK(g+"create_group", map[string]any{"Owner_Account": "alice", "Type": "Public", "GroupId": "atom2", "Name": "muted",
		"MemberList": []map[string]any{{"Member_Account": "b1"}, {"Member_Account": "b2"}, {"Member_Account": "m1"},
			{"Member_Account": "m2"}, {"Member_Account": "z"}}})
	b.v4OK(g+"forbid_send_msg", map[string]any{"GroupId": "atom2", "Members_Account": []string{"m1", "m2"}, "MuteTime": 3600})

	// post is b.v4 for another goroutine: it reports instead of failing.
	post := func(path string, body any) error {
		raw, _ := json.Marshal(body)
		resp, err := restClient.Post(b.v4URL(g+path, nil), "application/json", bytes.NewReader(raw))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if !bytes.Contains(out, []byte(`"ActionStatus":"OK"`)) {
			return fmt.Errorf("%s: %s", path, out)
		}
		return nil
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // b1 leaves and comes back, over and over
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := post("delete_group_member", map[string]any{"GroupId": "atom2", "MemberToDel_Account": []string{"b1"}}); err != nil {
				t.Error(err)
				return
			}
			if err := post("add_group_member", map[string]any{"GroupId": "atom2", "MemberList": []map[string]any{{"Member_Account": "b1"}}}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()
	for i := 0; i < 100; i++ {
		var got []string
		for _, m := range items(b.v4OK(g+"get_group_muted_account", map[string]any{"GroupId": "atom2"}), "MutedAccountList") {
			got = append(got, m["Member_Account"].(string))
		}
		if fmt.Sprint(got) != "[m1 m2]" {
			t.Fatalf("list %d: muted %v, want [m1 m2]", i, got)
		}
	}
}
