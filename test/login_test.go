package test

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/imbroker/imbroker/internal/usersig"
)

// connect5 performs an MQTT 5 CONNECT and returns the CONNACK.
func connect5(t *testing.T, b *Broker, clientID, user, sig string) (*paho5.Client, *paho5.Connack) {
	t.Helper()
	return connect5With(t, b, clientID, user, sig, nil)
}

// connect5With is connect5 with a hook to adjust the client config.
func connect5With(t *testing.T, b *Broker, clientID, user, sig string, mod func(*paho5.ClientConfig)) (*paho5.Client, *paho5.Connack) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", b.MQTTAddr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cc := paho5.ClientConfig{Conn: conn}
	if mod != nil {
		mod(&cc)
	}
	c := paho5.NewClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ca, err := c.Connect(ctx, &paho5.Connect{
		ClientID: clientID, Username: user, UsernameFlag: true, Password: []byte(sig), PasswordFlag: sig != "",
		KeepAlive: 30, CleanStart: true,
	})
	if err != nil && ca == nil {
		t.Fatalf("connect5: %v", err)
	}
	t.Cleanup(func() {
		_ = c.Disconnect(&paho5.Disconnect{})
		conn.Close()
	})
	return c, ca
}

func TestE2E_LoginV5(t *testing.T) {
	b := StartBroker(t)
	other := usersig.New(b.Cfg.App.SDKAppID, "some-other-key-0123456789")
	otherApp := usersig.New(1400000001, TestKey)
	expired, _ := b.Signer.GenAt("alice", time.Now().Add(-2*time.Hour), 3600, nil)
	forged, _ := other.Gen("alice", 3600)
	wrongApp, _ := otherApp.Gen("alice", 3600)
	cases := []struct {
		name, clientID, user, sig string
		reason                    byte
		tencent                   string
	}{
		{"valid", "alice", "alice", b.Sig("alice"), 0, ""},
		{"valid device", "alice:phone", "alice", b.Sig("alice"), 0, ""},
		{"expired", "alice", "alice", expired, 0x86, "70001"},
		{"forged", "alice", "alice", forged, 0x86, "70009"},
		{"other user's sig", "alice", "alice", b.Sig("bob"), 0x87, "70013"},
		{"other app's sig", "alice", "alice", wrongApp, 0x87, "70014"},
		{"empty sig", "alice", "alice", "", 0x86, "70002"},
		{"garbage sig", "alice", "alice", "!!not-a-sig!!", 0x86, "70003"},
		{"foreign clientID", "bob", "alice", b.Sig("alice"), 0x85, "70402"},
		{"foreign clientID with device", "bob:phone", "alice", b.Sig("alice"), 0x85, "70402"},
		{"clientID prefix trick", "alicex", "alice", b.Sig("alice"), 0x85, "70402"},
		{"bad user id", "a/b", "a/b", b.Sig("a/b"), 0x86, "20003"},
		{"too long user id", strings.Repeat("x", 33), strings.Repeat("x", 33), b.Sig("x"), 0x86, "20003"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, ca := connect5(t, b, tc.clientID, tc.user, tc.sig)
			if ca.ReasonCode != tc.reason {
				t.Fatalf("CONNACK reason 0x%02x, want 0x%02x", ca.ReasonCode, tc.reason)
			}
			if tc.tencent != "" {
				if ca.Properties == nil || !strings.HasPrefix(ca.Properties.ReasonString, tc.tencent) {
					t.Fatalf("reason string %+v does not name %s", ca.Properties, tc.tencent)
				}
			}
		})
	}
}

func TestE2E_LoginV311(t *testing.T) {
	b := StartBroker(t)
	forged, _ := usersig.New(b.Cfg.App.SDKAppID, "some-other-key-0123456789").Gen("alice", 3600)
	cases := []struct {
		name, clientID, user, sig string
		rc                        byte
	}{
		{"valid", "alice", "alice", b.Sig("alice"), 0},
		{"forged", "alice", "alice", forged, 4},
		{"empty", "alice", "alice", "", 4},
		{"other user's sig", "alice", "alice", b.Sig("bob"), 5},
		{"foreign clientID", "bob", "alice", b.Sig("alice"), 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := paho.NewClient(b.ClientOpts(tc.clientID, tc.user, tc.sig))
			tok := c.Connect()
			if !tok.WaitTimeout(5 * time.Second) {
				t.Fatal("connect timed out")
			}
			defer c.Disconnect(0)
			rc := tok.(*paho.ConnectToken).ReturnCode()
			if rc != tc.rc {
				t.Fatalf("return code %d, want %d (err %v)", rc, tc.rc, tok.Error())
			}
		})
	}
}

func TestE2E_SessionTakeoverRefused(t *testing.T) {
	b := StartBroker(t)
	bob := b.Connect("bob", "bob")
	// mallory holds a valid sig of her own but claims bob's ClientID.
	c := paho.NewClient(b.ClientOpts("bob", "mallory", b.Sig("mallory")))
	tok := c.Connect()
	tok.WaitTimeout(5 * time.Second)
	defer c.Disconnect(0)
	if tok.Error() == nil {
		t.Fatal("mallory connected with bob's ClientID")
	}
	// bob is still connected and still receives.
	alice := b.Connect("alice", "alice")
	alice.Publish1("im/send/c2c/bob", Text("still here?", Random()))
	if e := bob.NextEvent(); e.Msg.From_Account != "alice" {
		t.Fatalf("bob got %s", e.Raw)
	}
	if !bob.IsConnected() {
		t.Fatal("bob was disconnected")
	}
}

func TestE2E_TopicACL(t *testing.T) {
	b := StartBroker(t)
	alice := b.Connect("alice", "alice")
	for _, filter := range []string{"im/u/bob", "im/u/bob/rpc", "im/u/+", "im/u/#", "#", "im/send/c2c/alice", "$SYS/#", "im/u/alicex", "$share/g/im/u/bob"} {
		tok := alice.Subscribe(filter, 1, nil)
		tok.WaitTimeout(5 * time.Second)
		st := tok.(*paho.SubscribeToken)
		key := filter
		if strings.HasPrefix(filter, "$share/") { // paho keys shared results by the bare filter
			key = strings.SplitN(filter, "/", 3)[2]
		}
		if rc, ok := st.Result()[key]; !ok || rc != 0x80 {
			t.Errorf("subscribe %q: rc 0x%02x, want 0x80 (%v)", filter, rc, st.Result())
		}
	}
	for _, filter := range []string{"im/u/alice", "im/u/alice/rpc", "im/u/alice/#"} {
		tok := alice.Subscribe(filter, 1, nil)
		tok.WaitTimeout(5 * time.Second)
		if rc := tok.(*paho.SubscribeToken).Result()[filter]; rc != 1 {
			t.Errorf("subscribe own %q: rc 0x%02x", filter, rc)
		}
	}

	// MQTT 5: PUBACK 0x87 and SUBACK 0x87.
	c5, ca := connect5(t, b, "carol", "carol", b.Sig("carol"))
	if ca.ReasonCode != 0 {
		t.Fatalf("carol connack 0x%02x", ca.ReasonCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sa, _ := c5.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "im/u/alice", QoS: 1}}})
	if sa == nil || sa.Reasons[0] != 0x87 {
		t.Fatalf("v5 foreign subscribe: %+v", sa)
	}
	pr, _ := c5.Publish(ctx, &paho5.Publish{Topic: "devices/x", QoS: 1, Payload: []byte("{}")})
	if pr == nil || pr.ReasonCode != 0x87 {
		t.Fatalf("v5 forbidden publish: %+v", pr)
	}
	pr, _ = c5.Publish(ctx, &paho5.Publish{Topic: "im/u/alice", QoS: 1, Payload: []byte("{}")})
	if pr == nil || pr.ReasonCode != 0x87 {
		t.Fatalf("v5 publish into a user stream: %+v", pr)
	}

	// 3.1.1: a forbidden publish is acked, not delivered, and reported on rpc.
	mallory := b.Connect("mallory", "mallory")
	mallory.Publish1("im/u/alice", `{"Seq":1,"Event":"C2CMsg","Msg":{"From_Account":"bob"}}`)
	r := mallory.NextReply()
	if r["ErrorCode"].(float64) != 20001 {
		t.Fatalf("rpc reply %v", r)
	}
	// alice received nothing: prove it by a real message arriving first.
	bob := b.Connect("bob", "bob")
	bob.Publish1("im/send/c2c/alice", Text("real", Random()))
	if e := alice.NextEvent(); e.Msg.From_Account != "bob" || e.Seq != 1 {
		t.Fatalf("alice got %s", e.Raw)
	}
	if !mallory.IsConnected() {
		t.Fatal("3.1.1 client was disconnected for a forbidden publish")
	}
}

// A CONNECT with the Password Flag set and a zero-length password is a valid
// CONNECT (the password is present, empty): it is refused as an empty
// UserSig, 0x86 / 70002 (3.1.1: return code 4), not as a protocol error
// (mochi: 0x82, also to 3.1.1 clients, which have no such code).
func TestE2E_LoginEmptyPasswordFlagged(t *testing.T) {
	b := StartBroker(t)
	for _, tc := range []struct {
		name  string
		level byte
		want  []byte // the CONNACK's start
		text  string // in the CONNACK (reason string)
	}{
		{"MQTT 5", 5, []byte{0x20}, "70002"},
		{"MQTT 3.1.1", 4, []byte{0x20, 2, 0, 4}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte{0, 4, 'M', 'Q', 'T', 'T', tc.level, 0x80 | 0x40 | 0x02, 0, 30}
			if tc.level == 5 {
				body = append(body, 0) // no properties
			}
			body = append(body, 0, 5, 'a', 'l', 'i', 'c', 'e') // ClientID
			body = append(body, 0, 5, 'a', 'l', 'i', 'c', 'e') // User Name
			body = append(body, 0, 0)                          // Password: present, empty
			conn, err := net.DialTimeout("tcp", b.MQTTAddr(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := conn.Write(append([]byte{0x10, byte(len(body))}, body...)); err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(conn) // the broker closes after refusing
			if !bytes.HasPrefix(got, tc.want) || !bytes.Contains(got, []byte(tc.text)) {
				t.Fatalf("got % x (%q), want % x… naming %q", got, got, tc.want, tc.text)
			}
			if tc.level == 5 && (len(got) < 4 || got[3] != 0x86) {
				t.Fatalf("CONNACK reason % x, want 0x86", got)
			}
		})
	}
}
