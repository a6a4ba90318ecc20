package test

import (
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// TestRESTAccounts: import, batch import, check and delete accounts.
// [REST-ACCOUNT]
func TestRESTAccounts(t *testing.T) {
	b := StartBroker(t)
	b.v4OK("im_open_login_svc/account_import", map[string]any{"UserID": "alice", "Nick": "Alice", "FaceUrl": "http://x/a.png"})
	b.v4OK("im_open_login_svc/account_import", map[string]any{"UserID": "alice"}) // again: success
	wantCode(t, "no UserID", b.v4("im_open_login_svc/account_import", map[string]any{"Nick": "x"}), 70402)
	wantCode(t, "bad UserID", b.v4("im_open_login_svc/account_import", map[string]any{"UserID": strings.Repeat("x", 40)}), 70402)

	prof := b.v4OK("profile/portrait_get", map[string]any{"To_Account": []string{"alice"}, "TagList": []string{"Tag_Profile_IM_Nick", "Tag_Profile_IM_Image"}})
	up := items(prof, "UserProfileItem")
	if len(up) != 1 || !strings.Contains(string(mustJSON(up[0])), `"Alice"`) || !strings.Contains(string(mustJSON(up[0])), `http://x/a.png`) {
		t.Fatalf("imported profile: %v", prof)
	}

	long := strings.Repeat("y", 40)
	out := b.v4OK("im_open_login_svc/multiaccount_import", map[string]any{"Accounts": []string{"bob", "carol", long}})
	if fa, _ := out["FailAccounts"].([]any); len(fa) != 1 || fa[0] != long {
		t.Fatalf("FailAccounts: %v", out)
	}
	many := make([]string, 101)
	for i := range many {
		many[i] = "u" + string(rune('a'+i%26))
	}
	wantCode(t, "101 accounts", b.v4("im_open_login_svc/multiaccount_import", map[string]any{"Accounts": many}), 70402)

	check := func(uids ...string) map[string]string {
		var ci []map[string]string
		for _, u := range uids {
			ci = append(ci, map[string]string{"UserID": u})
		}
		res := map[string]string{}
		for _, it := range items(b.v4OK("im_open_login_svc/account_check", map[string]any{"CheckItem": ci}), "ResultItem") {
			if it["ResultCode"].(float64) != 0 {
				t.Fatalf("check item %v", it)
			}
			res[it["UserID"].(string)] = it["AccountStatus"].(string)
		}
		return res
	}
	if got := check("alice", "bob", "nobody"); got["alice"] != "Imported" || got["bob"] != "Imported" || got["nobody"] != "NotImported" {
		t.Fatalf("account_check: %v", got)
	}
	del := b.v4OK("im_open_login_svc/account_delete", map[string]any{"DeleteItem": []map[string]string{{"UserID": "bob"}, {"UserID": "nobody"}}})
	ri := items(del, "ResultItem")
	if len(ri) != 2 || ri[0]["UserID"] != "bob" || ri[0]["ResultCode"].(float64) != 0 || ri[1]["ResultCode"].(float64) != 70107 {
		t.Fatalf("account_delete: %v", del)
	}
	if got := check("bob", "carol"); got["bob"] != "NotImported" || got["carol"] != "Imported" {
		t.Fatalf("after delete: %v", got)
	}
	wantCode(t, "empty CheckItem", b.v4("im_open_login_svc/account_check", map[string]any{}), 70402)
}

// TestRESTKickAndOnline: query_online_status sees a connected user; kick
// disconnects every connection of the user; the user may log in again.
// [REST-KICK]
func TestRESTKickAndOnline(t *testing.T) {
	b := StartBroker(t)
	lost := make(chan error, 2)
	o := b.ClientOpts("alice:phone", "alice", b.Sig("alice"))
	o.SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	ConnectOpts(t, o, "alice")
	o2 := b.ClientOpts("alice:web", "alice", b.Sig("alice"))
	o2.SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	ConnectOpts(t, o2, "alice")
	bob := b.Connect("bob", "bob")

	st := b.v4OK("openim/query_online_status", map[string]any{"To_Account": []string{"alice", "carol", strings.Repeat("z", 40)}, "IsNeedDetail": 1})
	qr := items(st, "QueryResult")
	if len(qr) != 2 || qr[0]["To_Account"] != "alice" || qr[0]["State"] != "Online" || qr[1]["State"] != "Offline" {
		t.Fatalf("query_online_status: %v", st)
	}
	if d := items(qr[0], "Detail"); len(d) != 2 {
		t.Fatalf("alice's devices: %v", qr[0])
	}
	if el := items(st, "ErrorList"); len(el) != 1 || el[0]["ErrorCode"].(float64) != 70107 {
		t.Fatalf("ErrorList: %v", st)
	}
	wantCode(t, "querystate without To_Account", b.v4("openim/querystate", map[string]any{}), 70402)

	b.v4OK("im_open_login_svc/kick", map[string]any{"UserID": "alice"})
	for i := 0; i < 2; i++ {
		select {
		case <-lost:
		case <-time.After(5 * time.Second):
			t.Fatalf("alice's connection %d was not closed by kick", i+1)
		}
	}
	if !bob.IsConnectionOpen() {
		t.Fatal("kick of alice closed bob")
	}
	b.Connect("alice:phone2", "alice") // logs in again
	wantCode(t, "kick without UserID", b.v4("im_open_login_svc/kick", map[string]any{}), 70402)
}

// TestRESTAccountImportIsOneCommit: the account record and its profile
// items are one commit: a refused Nick leaves no imported account behind.
// [REST-ACCOUNT]
func TestRESTAccountImportIsOneCommit(t *testing.T) {
	b := StartBroker(t)
	wantCode(t, "long Nick", b.v4("im_open_login_svc/account_import", map[string]any{"UserID": "alice", "Nick": strings.Repeat("n", 501)}), 40601)
	res := items(b.v4OK("im_open_login_svc/account_check", map[string]any{"CheckItem": []map[string]string{{"UserID": "alice"}}}), "ResultItem")
	if len(res) != 1 || res[0]["AccountStatus"] != "NotImported" {
		t.Fatalf("after a refused import: %v", res)
	}
	b.v4OK("im_open_login_svc/account_import", map[string]any{"UserID": "alice", "Nick": "Alice"})
	res = items(b.v4OK("im_open_login_svc/account_check", map[string]any{"CheckItem": []map[string]string{{"UserID": "alice"}}}), "ResultItem")
	if len(res) != 1 || res[0]["AccountStatus"] != "Imported" {
		t.Fatalf("after the import: %v", res)
	}
}
