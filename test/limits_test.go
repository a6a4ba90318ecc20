package test

import (
	"fmt"
	"testing"
	"time"

	"github.com/imbroker/imbroker/config"
)

// im/req requests over mqtt.req_rate (after mqtt.req_burst) get error
// 60007 in their reply, with their Id, and are counted and logged as
// req_rate refusals; other connections keep their own budget.
func TestE2E_RequestRateLimit(t *testing.T) {
	b, buf := startCapturing(t, func(c *config.Config) { c.MQTT.ReqRate, c.MQTT.ReqBurst = 1, 3 })
	alice := b.Connect("alice", "alice")
	const n = 10
	for i := range n {
		alice.Publish1("im/req/sync", map[string]any{"Id": fmt.Sprint("r", i), "Since": 0})
	}
	limited := 0
	for range n {
		r := alice.NextReply()
		switch r["ErrorCode"] {
		case 0.0:
		case 60007.0:
			limited++
			if r["Id"] == "" || r["Op"] != "sync" {
				t.Errorf("rate-limited reply without Id or Op: %v", r)
			}
		default:
			t.Errorf("unexpected reply %v", r)
		}
	}
	// 3 at once, then at most a few more at 1/s while the 10 are read.
	if limited < n-3-2 {
		t.Errorf("%d of %d requests rate-limited, want at least %d", limited, n, n-3-2)
	}
	if got := scrape(t, b, `imbroker_refusals_total{reason="req_rate"}`); got != fmt.Sprint(limited) {
		t.Errorf("req_rate refusals counted %s, want %d", got, limited)
	}
	if len(refusedLines(t, buf, "req_rate")) == 0 {
		t.Error("no req_rate refusal logged")
	}
	bob := b.Connect("bob", "bob")
	if _, r := bob.Sync("b1", 0); r["ErrorCode"] != 0.0 {
		t.Errorf("another connection's request: %v", r)
	}
}

// By default a user holds at most 10 connections: the 11th device logs in
// and the oldest is kicked (Tencent's multi-device behaviour).
func TestE2E_DefaultDeviceLimit(t *testing.T) {
	b := StartBroker(t)
	if b.Cfg.Devices.MaxPerUser != 10 || b.Cfg.Devices.OnExceed != config.DevicesKickOldest {
		t.Fatalf("defaults: %+v", b.Cfg.Devices)
	}
	_, lost := devConnect3(t, b, "alice:d0", "alice")
	for i := 1; i <= 10; i++ {
		devConnect3(t, b, fmt.Sprint("alice:d", i), "alice")
	}
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("the oldest device was not kicked by the 11th")
	}
	var want []string
	for i := 1; i <= 10; i++ {
		want = append(want, fmt.Sprint("alice:d", i))
	}
	devOnline(t, b, "alice", want...)
}
