package test

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/imbroker/imbroker/config"
)

// BenchmarkE2E_GroupFanout measures one group message reaching every online
// member: write diffusion (Public: one stream copy per member, synced, then
// live on im/u/{uid}) and read diffusion (ChatRoom: one group-stream entry,
// live on im/g/{gid}). ns/op is the time for a message to reach all members
// (messages are sent one after another, each waiting for the last member).
func BenchmarkE2E_GroupFanout(b *testing.B) {
	for _, tc := range []struct {
		typ, mode string
	}{{"Public", "write"}, {"ChatRoom", "read"}} {
		for _, n := range []int{100, 1000} {
			b.Run(fmt.Sprintf("%s/members=%d", tc.mode, n), func(b *testing.B) { benchFanout(b, tc.typ, n) })
		}
	}
}

func benchFanout(b *testing.B, typ string, n int) {
	br := StartBroker(b, func(c *config.Config) { c.Groups.ReadDiffusionAbove = 100000 })
	admin := br.Connect("administrator", "administrator")
	r := admin.Req("group.create", map[string]any{"Type": typ, "Name": "bench"})
	gid := r["GroupId"].(string)
	for i := 0; i < n; i += 100 {
		var list []any
		for j := i; j < i+100 && j < n; j++ {
			list = append(list, map[string]any{"Member_Account": fmt.Sprintf("m%04d", j)})
		}
		if r := admin.Req("group.invite", map[string]any{"GroupId": gid, "MemberList": list}); code(r) != 0 {
			b.Fatalf("invite: %v", r)
		}
	}
	var got, target atomic.Int64
	reached := make(chan struct{}, 1)
	clients := make([]paho.Client, n)
	parallel(n, 16, func(i int) {
		u := fmt.Sprintf("m%04d", i)
		o := br.ClientOpts(u, u, br.Sig(u))
		o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			if bytes.Contains(m.Payload(), []byte(`"Event":"GroupMsg"`)) && got.Add(1) == target.Load() {
				reached <- struct{}{}
			}
		})
		c := paho.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			b.Error(tok.Error())
			return
		}
		topic := "im/u/" + u
		if typ == "ChatRoom" {
			topic = "im/g/" + gidLevel(gid)
		}
		c.Subscribe(topic, 0, nil).WaitTimeout(10 * time.Second)
		clients[i] = c
	})
	defer parallel(n, 16, func(i int) {
		if clients[i] != nil {
			clients[i].Disconnect(0)
		}
	})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		target.Store(int64((i + 1) * n))
		admin.Publish1("im/send/group/"+gidLevel(gid), Text("fan-out", Random()))
		select {
		case <-reached:
		case <-time.After(30 * time.Second):
			b.Fatalf("message %d reached %d of %d members", i, got.Load()-int64(i*n), n)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "deliveries/s")
}
