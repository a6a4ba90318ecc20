package test

import (
	"strings"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/imbroker/imbroker/config"
)

// Accounts as Tencent has them (issue 16 point 8): a one-to-one message
// goes only to an account (imported, or logged in once with a valid
// UserSig), and kick ends the validity of the login: UserSigs issued
// before it no longer log in.

// TestRESTSendToUnknownAccount: REST and MQTT sends to a UserID that never
// logged in and was never imported fail with 90012; importing it, or its
// first login, makes it an account. [REST-ACCOUNTS]
func TestRESTSendToUnknownAccount(t *testing.T) {
	b := StartBroker(t)
	alice := b.Connect("alice", "alice")

	m := restText("hello", Random())
	m["From_Account"], m["To_Account"] = "alice", "ghost"
	wantCode(t, "sendmsg to a never-imported account", b.v4("openim/sendmsg", m), 90012)
	bm := restText("batch", Random())
	bm["From_Account"], bm["To_Account"] = "alice", []string{"ghost", "alice"}
	out := b.v4OK("openim/batchsendmsg", bm)
	if el := items(out, "ErrorList"); len(el) != 1 || el[0]["To_Account"] != "ghost" || el[0]["ErrorCode"] != float64(90012) {
		t.Fatalf("batchsendmsg ErrorList: %v", out)
	}
	alice.NextEvent() // the batch copy to alice herself
	// Over MQTT 3.1.1: acked, not delivered, the error on rpc.
	alice.Publish1("im/send/c2c/ghost", Text("over mqtt", Random()))
	if r := alice.NextReply(); r["ErrorCode"] != float64(90012) || !strings.Contains(r["ErrorInfo"].(string), "ghost") {
		t.Fatalf("MQTT send to a never-imported account: %v", r)
	}
	// Over MQTT 5: PUBACK with a refusal and the code in the reason string.
	c5 := mqUser5(t, b, "alice:v5", "alice")
	if rc := c5.pub(&paho5.Publish{Topic: "im/send/c2c/ghost", QoS: 1, Payload: []byte(`{"MsgRandom":9,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"x"}}]}`)}); rc < 0x80 {
		t.Fatalf("MQTT 5 send to a never-imported account: PUBACK %#x", rc)
	}

	// Imported: the message goes through.
	b.v4OK("im_open_login_svc/account_import", map[string]any{"UserID": "ghost"})
	b.v4OK("openim/sendmsg", m)
	// Logged in once: an account too, and account_check says so.
	b.Accounts("walker")
	m["To_Account"], m["MsgRandom"] = "walker", Random()
	b.v4OK("openim/sendmsg", m)
	chk := b.v4OK("im_open_login_svc/account_check", map[string]any{"CheckItem": []any{map[string]any{"UserID": "walker"}, map[string]any{"UserID": "nobody"}}})
	if st := items(chk, "ResultItem"); st[0]["AccountStatus"] != "Imported" || st[1]["AccountStatus"] != "NotImported" {
		t.Fatalf("account_check after a login: %v", chk)
	}
}

// TestRESTSendToAnyUserIDWhenAccountsNotRequired: relations.require_accounts
// false lets any valid UserID receive.
func TestRESTSendToAnyUserIDWhenAccountsNotRequired(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) { c.Relations.RequireAccounts = false })
	m := restText("hello", Random())
	m["From_Account"], m["To_Account"] = "alice", "ghost"
	b.v4OK("openim/sendmsg", m)
}

// TestE2E_KickInvalidatesUserSig: after kick the user's connections are
// closed and the UserSig it used (issued before the kick) is refused
// with 70001; a UserSig issued afterwards logs in. [REST-KICK]
func TestE2E_KickInvalidatesUserSig(t *testing.T) {
	b := StartBroker(t)
	old, err := b.Signer.GenAt("bob", time.Now().Add(-time.Minute), 3600, nil)
	if err != nil {
		t.Fatal(err)
	}
	login := func(id, sig string) *paho5.Connect {
		return &paho5.Connect{ClientID: id, CleanStart: true, KeepAlive: 30, Username: "bob", UsernameFlag: true,
			Password: []byte(sig), PasswordFlag: true}
	}
	c, ca := mqConnect5(t, b, login("bob", old))
	if ca.ReasonCode != 0 {
		t.Fatalf("bob's first login: %#x", ca.ReasonCode)
	}
	b.v4OK("im_open_login_svc/kick", map[string]any{"UserID": "bob"})
	select {
	case d := <-c.disc:
		if d.ReasonCode != 0x98 {
			t.Fatalf("kicked with %#x", d.ReasonCode)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("bob was not disconnected by kick")
	}
	again, ca := mqConnect5(t, b, login("bob", old))
	if ca.ReasonCode < 0x80 || ca.Properties == nil || !strings.Contains(ca.Properties.ReasonString, "70001") {
		t.Fatalf("the UserSig issued before the kick logged in again: %#x %+v", ca.ReasonCode, ca.Properties)
	}
	again.close()
	fresh, ca := mqConnect5(t, b, login("bob", b.Sig("bob")))
	if ca.ReasonCode != 0 {
		t.Fatalf("a UserSig issued after the kick: %#x %+v", ca.ReasonCode, ca.Properties)
	}
	fresh.close()
	// Over 3.1.1 as well: the old sig is refused.
	cl := paho.NewClient(b.ClientOpts("bob:old", "bob", old))
	if tok := cl.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		cl.Disconnect(0)
		t.Fatal("MQTT 3.1.1 login with the pre-kick UserSig succeeded")
	}
}
