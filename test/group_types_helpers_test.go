package test

// Helpers for the group type tests (group_types_test.go,
// group_rules_test.go), prefixed gt to keep clear of other files.

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// gtOK fails unless r is a success and returns it.
func gtOK(t *testing.T, what string, r map[string]any) map[string]any {
	t.Helper()
	if code(r) != 0 {
		t.Fatalf("%s: %v", what, r)
	}
	return r
}

// gtCode fails unless r carries the Tencent code want (0 = success).
func gtCode(t *testing.T, what string, r map[string]any, want int) {
	t.Helper()
	if got := code(r); got != want {
		t.Fatalf("%s: ErrorCode %d, want %d (%v)", what, got, want, r)
	}
}

// gtCreate creates a group as c and returns its id.
func gtCreate(t *testing.T, c *Client, body map[string]any) string {
	t.Helper()
	if body["Name"] == nil {
		body["Name"] = "g"
	}
	r := gtOK(t, fmt.Sprintf("%s creates a %v group", c.User, body["Type"]), c.Req("group.create", body))
	return r["GroupId"].(string)
}

// gtG is a request body for group gid plus more fields (key, value, ...).
func gtG(gid string, kv ...any) map[string]any {
	m := map[string]any{"GroupId": gid}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// gtMembers is a MemberList of plain accounts.
func gtMembers(users ...string) []any {
	out := []any{}
	for _, u := range users {
		out = append(out, map[string]any{"Member_Account": u})
	}
	return out
}

// gtMsg decodes an event's Msg as a map: tips carry fields Event lacks.
func gtMsg(e Event) map[string]any {
	var v struct{ Msg map[string]any }
	_ = json.Unmarshal([]byte(e.Raw), &v)
	return v.Msg
}

// gtTip matches a GroupTip of one TipType.
func gtTip(typ string) func(Event) bool {
	return func(e Event) bool { return e.Event == "GroupTip" && gtMsg(e)["TipType"] == typ }
}

// gtGroupMsg matches the group message with MsgRandom r.
func gtGroupMsg(r uint32) func(Event) bool {
	return func(e Event) bool { return e.Event == "GroupMsg" && e.Msg.MsgRandom == r }
}

// gtC2C matches the C2C message with MsgRandom r (used as an order marker).
func gtC2C(r uint32) func(Event) bool {
	return func(e Event) bool { return e.Event == "C2CMsg" && e.Msg.MsgRandom == r }
}

// gtWait reads ch until an event matching want arrives (5 s deadline) and
// returns the events that came before it.
func gtWait(t *testing.T, who string, ch chan Event, want func(Event) bool) []Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	var skipped []Event
	for {
		select {
		case e := <-ch:
			if want(e) {
				return skipped
			}
			skipped = append(skipped, e)
		case <-deadline:
			t.Fatalf("%s: the awaited event did not arrive within 5s (%d others did)", who, len(skipped))
		}
	}
}

// gtNone fails if any of evs matches bad.
func gtNone(t *testing.T, what string, evs []Event, bad func(Event) bool) {
	t.Helper()
	for _, e := range evs {
		if bad(e) {
			t.Fatalf("%s: got %s", what, e.Raw)
		}
	}
}

// gtSub subscribes c to topic with a handler of its own, so what arrives
// there is told apart from the user stream. It returns the SUBACK code and
// the topic's channel.
func gtSub(t *testing.T, c paho.Client, topic string) (byte, chan Event) {
	t.Helper()
	ch := make(chan Event, 1000)
	return gtSubTo(t, c, topic, ch), ch
}

// gtSubTo is gtSub into an existing channel.
func gtSubTo(t *testing.T, c paho.Client, topic string, ch chan Event) byte {
	t.Helper()
	tok := c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
		e := Event{Raw: string(m.Payload())}
		_ = json.Unmarshal(m.Payload(), &e)
		ch <- e
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", topic, tok.Error())
	}
	rc, ok := tok.(*paho.SubscribeToken).Result()[topic]
	if !ok {
		t.Fatalf("subscribe %s: no result", topic)
	}
	return rc
}

// gtFlush sends a marker request and returns the rpc replies that arrived
// before its reply: the broker answers a connection's publishes in order.
func gtFlush(t *testing.T, c *Client) []map[string]any {
	t.Helper()
	id := fmt.Sprintf("flush-%d", Random())
	c.Publish1("im/req/group.joined", map[string]any{"Id": id})
	var out []map[string]any
	for {
		r := c.NextReply()
		if r["Id"] == id {
			return out
		}
		out = append(out, r)
	}
}

// gtSend publishes a group message as c and returns the rpc report about it
// (a refusal, or a MsgDropReason), or nil when it was silently accepted.
func gtSend(t *testing.T, c *Client, gid string, random uint32) map[string]any {
	t.Helper()
	c.Publish1("im/send/group/"+gidLevel(gid), Text(fmt.Sprintf("m%d", random), random))
	var rep map[string]any
	for _, r := range gtFlush(t, c) {
		if r["Op"] == "send" {
			if rep != nil {
				t.Fatalf("two reports for one send: %v and %v", rep, r)
			}
			if r["Topic"] != "im/send/group/"+gidLevel(gid) || r["MsgRandom"] != float64(random) {
				t.Fatalf("send report names another message: %v", r)
			}
			rep = r
		}
	}
	return rep
}

// gtMustSend sends and fails on any report.
func gtMustSend(t *testing.T, c *Client, gid string) uint32 {
	t.Helper()
	r := Random()
	if rep := gtSend(t, c, gid, r); rep != nil {
		t.Fatalf("%s sends to %s: %v", c.User, gid, rep)
	}
	return r
}

// gtHistory returns the MsgRandoms of the messages c's group.history shows.
func gtHistory(t *testing.T, c *Client, gid string) []uint32 {
	t.Helper()
	r := gtOK(t, c.User+" reads history", c.Req("group.history", gtG(gid, "ReqMsgNumber", 20)))
	var out []uint32
	for _, it := range r["RspMsgList"].([]any) {
		ev := it.(map[string]any)
		if ev["Event"] == "GroupMsg" {
			out = append(out, uint32(ev["Msg"].(map[string]any)["MsgRandom"].(float64)))
		}
	}
	return out
}

// gtDelivered waits until to receives message r: on its im/g channel for
// read diffusion, or on its user stream for write diffusion. Under read
// diffusion it then proves the message did not also land on the user
// stream: from sends a C2C marker, which must come first.
func gtDelivered(t *testing.T, from, to *Client, gch chan Event, read bool, r uint32) {
	t.Helper()
	if !read {
		gtWait(t, to.User+" (im/u)", to.Events, gtGroupMsg(r))
		return
	}
	gtWait(t, to.User+" (im/g)", gch, gtGroupMsg(r))
	marker := Random()
	from.Publish1("im/send/c2c/"+to.User, Text("marker", marker))
	skipped := gtWait(t, to.User+" (im/u marker)", to.Events, gtC2C(marker))
	gtNone(t, "read diffusion message on the user stream", skipped, func(e Event) bool { return e.Event == "GroupMsg" })
}

// gtGuest connects an MQTT 3.1.1 guest: no user name, no password,
// ClientID guest/{id}. lost receives the error when the broker drops it.
func gtGuest(t *testing.T, b *Broker, id string) (c paho.Client, lost chan error) {
	t.Helper()
	o := b.ClientOpts("guest/"+id, "", "")
	lost = make(chan error, 1)
	o.SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	c = paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("guest connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, lost
}

// gtSendReply makes a send's outcome look like a reply (code 0 if accepted).
func gtSendReply(t *testing.T, c *Client, gid string) map[string]any {
	t.Helper()
	if r := gtSend(t, c, gid, Random()); r != nil {
		return r
	}
	return map[string]any{"ErrorCode": 0.0}
}

// gtInfoItem is group.info's per-group result for one id.
func gtInfoItem(c *Client, gid string) map[string]any {
	r := c.Req("group.info", map[string]any{"GroupIdList": []string{gid}})
	if code(r) != 0 {
		return r
	}
	return r["GroupInfo"].([]any)[0].(map[string]any)
}

// gtWorld is a broker with one group of each type, all owned by alice.
// pub has admins bob and erin and members carol and dave; room has admin
// bob and member carol; work has carol and dave; live and bcast have carol.
// frank belongs to nothing.
type gtWorld struct {
	b                                    *Broker
	alice, bob, carol, dave, erin, frank *Client
	work, pub, room, live, bcast         string
}

func gtNewWorld(t *testing.T) *gtWorld {
	t.Helper()
	b := StartBroker(t)
	w := &gtWorld{b: b}
	w.alice, w.bob, w.carol = b.Connect("alice", "alice"), b.Connect("bob", "bob"), b.Connect("carol", "carol")
	w.dave, w.erin, w.frank = b.Connect("dave", "dave"), b.Connect("erin", "erin"), b.Connect("frank", "frank")
	admin := func(u string) any { return map[string]any{"Member_Account": u, "Role": "Admin"} }
	w.work = gtCreate(t, w.alice, map[string]any{"Type": "Private", "MemberList": gtMembers("carol", "dave")})
	w.pub = gtCreate(t, w.alice, map[string]any{"Type": "Public", "ApplyJoinOption": "FreeAccess",
		"MemberList": append([]any{admin("bob"), admin("erin")}, gtMembers("carol", "dave")...)})
	w.room = gtCreate(t, w.alice, map[string]any{"Type": "ChatRoom", "MemberList": append([]any{admin("bob")}, gtMembers("carol")...)})
	w.live = gtCreate(t, w.alice, map[string]any{"Type": "AVChatRoom"})
	w.bcast = gtCreate(t, w.alice, map[string]any{"Type": "BChatRoom"})
	gtOK(t, "carol joins live", w.carol.Req("group.join", gtG(w.live)))
	gtOK(t, "carol joins bcast", w.carol.Req("group.join", gtG(w.bcast)))
	return w
}
