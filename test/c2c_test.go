package test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"
)

// allElements is one message carrying every TIM element type.
func allElements(random uint32) map[string]any {
	el := func(t string, c map[string]any) map[string]any { return map[string]any{"MsgType": t, "MsgContent": c} }
	return map[string]any{
		"MsgRandom":       random,
		"CloudCustomData": "ccd",
		"ClientMsgID":     "cmid-1",
		"MsgBody": []any{
			el("TIMTextElem", map[string]any{"Text": "hello"}),
			el("TIMFaceElem", map[string]any{"Index": 1, "Data": "smile"}),
			el("TIMLocationElem", map[string]any{"Desc": "office", "Latitude": 22.5, "Longitude": 113.9}),
			el("TIMImageElem", map[string]any{"UUID": "img1", "ImageFormat": 1, "ImageInfoArray": []any{
				map[string]any{"Type": 1, "Size": 100, "Width": 10, "Height": 10, "URL": "https://x/1.jpg"}}}),
			el("TIMSoundElem", map[string]any{"Url": "https://x/a.mp3", "UUID": "s1", "Size": 10, "Second": 3, "Download_Flag": 2}),
			el("TIMVideoFileElem", map[string]any{"VideoUrl": "https://x/v.mp4", "VideoUUID": "v1", "VideoSize": 1000, "VideoSecond": 5,
				"VideoFormat": "mp4", "VideoDownloadFlag": 2, "ThumbUrl": "https://x/t.jpg", "ThumbUUID": "t1", "ThumbSize": 10,
				"ThumbWidth": 10, "ThumbHeight": 10, "ThumbFormat": "JPG", "ThumbDownloadFlag": 2}),
			el("TIMFileElem", map[string]any{"Url": "https://x/f.pdf", "UUID": "f1", "FileSize": 10, "FileName": "f.pdf", "Download_Flag": 2}),
			el("TIMCustomElem", map[string]any{"Data": `{"type":"redpacket"}`, "Desc": "Red packet", "Ext": "e", "Sound": "dingdong.aiff"}),
			el("TIMRelayElem", map[string]any{"Title": "History", "MsgNum": 1, "CompatibleText": "upgrade", "AbstractList": []any{"a: hi"},
				"MsgList": []any{map[string]any{"From_Account": "a", "MsgBody": []any{}}}}),
		},
	}
}

func TestE2E_C2COnlineAndSenderDevices(t *testing.T) {
	b := StartBroker(t)
	bob := b.Connect("bob", "bob")
	alicePhone := b.Connect("alice:phone", "alice")
	alicePC := b.Connect("alice:pc", "alice")

	msg := allElements(Random())
	alicePhone.Publish1("im/send/c2c/bob", msg)

	got := bob.NextEvent()
	if got.Event != "C2CMsg" || got.Seq != 1 || got.Epoch == 0 {
		t.Fatalf("bob got %s", got.Raw)
	}
	m := got.Msg
	if m.From_Account != "alice" || m.To_Account != "bob" || m.CloudCustomData != "ccd" || m.ClientMsgID != "cmid-1" ||
		m.MsgRandom != msg["MsgRandom"].(uint32) || m.MsgTime == 0 || m.MsgSeq == 0 ||
		m.MsgKey != fmt.Sprintf("%d_%d_%d", m.MsgSeq, m.MsgRandom, m.MsgTime) {
		t.Fatalf("stamped fields wrong: %s", got.Raw)
	}
	var body []map[string]any
	if err := json.Unmarshal(m.MsgBody, &body); err != nil || len(body) != 9 {
		t.Fatalf("body: %v %s", err, m.MsgBody)
	}
	// Both of alice's devices, including the one that sent, get the sent copy.
	for _, dev := range []*Client{alicePhone, alicePC} {
		e := dev.NextEvent()
		if e.Msg.MsgKey != m.MsgKey || e.Seq != 1 || e.Msg.From_Account != "alice" {
			t.Fatalf("sender copy: %s", e.Raw)
		}
	}
	// A reply continues both streams gap-free.
	bob.Publish1("im/send/c2c/alice", Text("hi back", Random()))
	if e := alicePC.NextEvent(); e.Seq != 2 || e.Msg.From_Account != "bob" {
		t.Fatalf("alice pc: %s", e.Raw)
	}
	if e := bob.NextEvent(); e.Seq != 2 || e.Msg.To_Account != "alice" {
		t.Fatalf("bob's own copy: %s", e.Raw)
	}
}

func TestE2E_C2COverWebSocket(t *testing.T) {
	b := StartBroker(t)
	bob := b.Connect("bob", "bob")
	o := b.ClientOpts("alice", "alice", b.Sig("alice"))
	o.Servers = nil
	o.AddBroker("ws://" + b.WSAddr() + "/mqtt")
	alice := ConnectOpts(t, o, "alice")
	alice.Publish1("im/send/c2c/bob", Text("over ws", Random()))
	if e := bob.NextEvent(); e.Msg.From_Account != "alice" {
		t.Fatalf("bob got %s", e.Raw)
	}
	if e := alice.NextEvent(); e.Msg.To_Account != "bob" {
		t.Fatalf("alice echo %s", e.Raw)
	}
}

// badInputs are sends the broker must refuse, with their Tencent codes.
func badInputs() []struct {
	name, topic string
	payload     string
	code        int
	reason      byte
} {
	long := strings.Repeat("x", 12001)
	return []struct {
		name, topic string
		payload     string
		code        int
		reason      byte
	}{
		{"not json", "im/send/c2c/bob", `{"MsgBody":`, 90001, 0x99},
		{"no MsgRandom", "im/send/c2c/bob", `{"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"x"}}]}`, 90005, 0x99},
		{"no MsgBody", "im/send/c2c/bob", `{"MsgRandom":1}`, 90002, 0x99},
		{"empty MsgBody", "im/send/c2c/bob", `{"MsgRandom":1,"MsgBody":[]}`, 90002, 0x99},
		{"unknown MsgType", "im/send/c2c/bob", `{"MsgRandom":1,"MsgBody":[{"MsgType":"TIMBogus","MsgContent":{}}]}`, 90002, 0x99},
		{"text not a string", "im/send/c2c/bob", `{"MsgRandom":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":5}}]}`, 90002, 0x99},
		{"location missing latitude", "im/send/c2c/bob", `{"MsgRandom":1,"MsgBody":[{"MsgType":"TIMLocationElem","MsgContent":{"Longitude":1}}]}`, 90002, 0x99},
		{"two custom elems", "im/send/c2c/bob", `{"MsgRandom":1,"MsgBody":[{"MsgType":"TIMCustomElem","MsgContent":{}},{"MsgType":"TIMCustomElem","MsgContent":{}}]}`, 90002, 0x99},
		{"too long", "im/send/c2c/bob", `{"MsgRandom":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"` + long + `"}}]}`, 80002, 0x99},
		{"oversized packet", "im/send/c2c/bob", `{"MsgRandom":1,"CloudCustomData":"` + strings.Repeat("y", 20000) + `"}`, 93000, 0x99},
		{"recipient with space", "im/send/c2c/b b", `{"MsgRandom":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"x"}}]}`, 20003, 0x83},
		{"recipient too long", "im/send/c2c/" + strings.Repeat("b", 33), `{"MsgRandom":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"x"}}]}`, 20003, 0x83},
		{"recipient with colon", "im/send/c2c/bob:x", `{"MsgRandom":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"x"}}]}`, 20003, 0x83},
		{"recipient with level", "im/send/c2c/bob/x", `{"MsgRandom":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"x"}}]}`, 20003, 0x83},
		{"empty recipient", "im/send/c2c/", `{"MsgRandom":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"x"}}]}`, 20003, 0x83},
		{"unknown send kind", "im/send/fax/bob", `{}`, 60009, 0x90},
	}
}

func TestE2E_BadInputV311(t *testing.T) {
	b := StartBroker(t)
	bob := b.Connect("bob", "bob")
	alice := b.Connect("alice", "alice")
	for _, tc := range badInputs() {
		t.Run(tc.name, func(t *testing.T) {
			alice.Publish1(tc.topic, tc.payload) // acked, not delivered
			r := alice.NextReply()
			if int(r["ErrorCode"].(float64)) != tc.code || r["Topic"] != tc.topic || r["ErrorInfo"] == "" {
				t.Fatalf("reply %v, want code %d", r, tc.code)
			}
		})
	}
	// Nothing was stored: the next good message is Seq 1 in both streams.
	alice.Publish1("im/send/c2c/bob", Text("good", Random()))
	if e := bob.NextEvent(); e.Seq != 1 || e.Msg.From_Account != "alice" {
		t.Fatalf("bob: %s", e.Raw)
	}
	if e := alice.NextEvent(); e.Seq != 1 {
		t.Fatalf("alice: %s", e.Raw)
	}
	if evs, _ := bob.Sync("check", 0); len(evs) != 1 {
		t.Fatalf("bob's stream holds %d events, want 1", len(evs))
	}
}

func TestE2E_BadInputV5(t *testing.T) {
	b := StartBroker(t)
	bob := b.Connect("bob", "bob")
	c5, ca := connect5(t, b, "alice", "alice", b.Sig("alice"))
	if ca.ReasonCode != 0 {
		t.Fatalf("connack 0x%02x", ca.ReasonCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range badInputs() {
		t.Run(tc.name, func(t *testing.T) {
			pr, _ := c5.Publish(ctx, &paho5.Publish{Topic: tc.topic, QoS: 1, Payload: []byte(tc.payload)})
			if pr == nil || pr.ReasonCode != tc.reason || pr.Properties == nil ||
				!strings.HasPrefix(pr.Properties.ReasonString, fmt.Sprint(tc.code)) {
				t.Fatalf("PUBACK %+v, want 0x%02x with code %d", pr, tc.reason, tc.code)
			}
		})
	}
	pr, err := c5.Publish(ctx, &paho5.Publish{Topic: "im/send/c2c/bob", QoS: 1, Payload: mustJSON(Text("good", Random()))})
	if err != nil || pr.ReasonCode != 0 {
		t.Fatalf("good publish: %+v %v", pr, err)
	}
	if e := bob.NextEvent(); e.Seq != 1 {
		t.Fatalf("bob: %s", e.Raw)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestE2E_OfflineCatchUpAfterReconnect(t *testing.T) {
	b := StartBroker(t)
	alice := b.Connect("alice", "alice")
	bob := b.Connect("bob", "bob")
	bob.Publish1("im/send/c2c/alice", Text("first", Random()))
	if e := bob.NextEvent(); e.Seq != 1 {
		t.Fatalf("bob: %s", e.Raw)
	}
	bob.Disconnect(100)

	const n = 250 // more than two sync pages
	for i := 0; i < n; i++ {
		alice.Publish1("im/send/c2c/bob", Text(fmt.Sprintf("m%d", i), Random()))
	}
	bob = b.Connect("bob", "bob")
	evs := bob.SyncAll(1)
	// The last sends' live copies may reach the new connection during the
	// replay: check the bodies in Seq order, as a client keeps them.
	for i, e := range checkSeqRun(t, evs, 2, n) {
		if want := fmt.Sprintf(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"m%d"}}]`, i); string(e.Msg.MsgBody) != want {
			t.Fatalf("event %d body %s", i, e.Msg.MsgBody)
		}
	}
}

// checkSeqRun asserts evs (deduplicated by Seq, as a client does) are exactly
// Seqs from..from+n-1, in order.
func checkSeqRun(t *testing.T, evs []Event, from uint64, n int) []Event {
	t.Helper()
	var uniq []Event
	seen := map[uint64]bool{}
	for _, e := range evs {
		if !seen[e.Seq] {
			seen[e.Seq] = true
			uniq = append(uniq, e)
		}
	}
	// A live copy can overtake the replay; a client orders by Seq.
	sort.Slice(uniq, func(i, j int) bool { return uniq[i].Seq < uniq[j].Seq })
	if len(uniq) != n {
		t.Fatalf("got %d distinct events, want %d", len(uniq), n)
	}
	for i, e := range uniq {
		if e.Seq != from+uint64(i) {
			t.Fatalf("event %d has Seq %d, want %d", i, e.Seq, from+uint64(i))
		}
	}
	return uniq
}

func TestE2E_SyncIsIdenticalToLive(t *testing.T) {
	b := StartBroker(t)
	bob := b.Connect("bob", "bob")
	alice := b.Connect("alice", "alice")
	alice.Publish1("im/send/c2c/bob", allElements(Random()))
	live := bob.NextEvent()
	evs, r := bob.Sync("x", 0)
	if len(evs) != 1 || evs[0].Raw != live.Raw {
		t.Fatalf("replay %v differs from live %s", evs, live.Raw)
	}
	if r["Complete"] != true || r["Seq"].(float64) != 1 || r["Epoch"].(float64) != float64(live.Epoch) {
		t.Fatalf("reply %v", r)
	}
}

func TestE2E_ResendIsStoredOnce(t *testing.T) {
	b := StartBroker(t)
	bob := b.Connect("bob", "bob")
	alice := b.Connect("alice", "alice")
	msg := Text("once", Random())
	alice.Publish1("im/send/c2c/bob", msg)
	alice.Publish1("im/send/c2c/bob", msg) // e.g. a resend after a lost PUBACK
	alice.Publish1("im/send/c2c/bob", Text("next", Random()))
	evs := []Event{bob.NextEvent(), bob.NextEvent()}
	if evs[0].Seq != 1 || evs[1].Seq != 2 || !strings.Contains(string(evs[1].Msg.MsgBody), "next") {
		t.Fatalf("got %s / %s", evs[0].Raw, evs[1].Raw)
	}
}

func TestE2E_SyncRequestErrors(t *testing.T) {
	b := StartBroker(t)
	alice := b.Connect("alice", "alice")
	for _, tc := range []struct {
		topic, payload string
		code           float64
	}{
		{"im/req/sync", `nope`, 90001},
		{"im/req/sync", `{"Id":"a","Since":-1}`, 60003},
		{"im/req/sync", `{"Id":"` + strings.Repeat("i", 100) + `"}`, 60003},
		{"im/req/bogus", `{"Id":"b"}`, 60009},
	} {
		alice.Publish1(tc.topic, tc.payload)
		if r := alice.NextReply(); r["ErrorCode"].(float64) != tc.code {
			t.Errorf("%s %s: reply %v, want %v", tc.topic, tc.payload, r, tc.code)
		}
	}
	// A client not subscribed to its stream is told so instead of getting nothing.
	o := b.ClientOpts("carol", "carol", b.Sig("carol"))
	replies := make(chan paho.Message, 1)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(0)
	c.Subscribe("im/u/carol/rpc", 1, func(_ paho.Client, m paho.Message) { replies <- m }).WaitTimeout(5 * time.Second)
	c.Publish("im/req/sync", 1, false, `{"Id":"z","Since":0}`).WaitTimeout(5 * time.Second)
	select {
	case m := <-replies:
		if !strings.Contains(string(m.Payload()), `"ErrorCode":60003`) {
			t.Fatalf("reply %s", m.Payload())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reply")
	}
}

func TestE2E_RequestReplyV5ResponseTopic(t *testing.T) {
	b := StartBroker(t)
	c5, _ := connect5(t, b, "alice", "alice", b.Sig("alice"))
	got := make(chan *paho5.Publish, 10)
	c5.AddOnPublishReceived(func(pr paho5.PublishReceived) (bool, error) { got <- pr.Packet; return true, nil })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c5.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "im/u/alice/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	_, err := c5.Publish(ctx, &paho5.Publish{Topic: "im/req/sync", QoS: 1, Payload: []byte(`{"Since":0}`),
		Properties: &paho5.PublishProperties{ResponseTopic: "im/u/alice/replies/1", CorrelationData: []byte("corr-7")}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p.Topic != "im/u/alice/replies/1" || p.Properties == nil || string(p.Properties.CorrelationData) != "corr-7" ||
			!strings.Contains(string(p.Payload), `"Complete":true`) {
			t.Fatalf("reply %s %+v %s", p.Topic, p.Properties, p.Payload)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reply")
	}
}
