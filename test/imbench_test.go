package test

import (
	"context"
	"testing"
	"time"

	"github.com/imbroker/imbroker/internal/bench"
)

// TestIMBench_C2C runs the load generator's c2c scenario, paced and at full
// speed, against a real broker: every message arrives, none is lost, the
// paced run keeps its pace, and both report imbench's own CPU, half of what
// test/tail.sh's paced/peak ratio is made of (the broker's it reads from /proc).
func TestIMBench_C2C(t *testing.T) {
	br := StartBroker(t)
	for _, rate := range []int{0, 2000} {
		o := bench.Options{
			Brokers: []string{"tcp://" + br.MQTTAddr()}, Scenario: "c2c", Clients: 2, Messages: 200, MsgRate: rate,
			Timeout: time.Minute, AppID: br.Cfg.App.SDKAppID, Key: br.Cfg.App.SecretKey, Admin: br.Cfg.App.Admin,
		}
		res, err := bench.Run(context.Background(), o)
		if err != nil {
			t.Fatalf("rate %d: %v", rate, err)
		}
		if res.Delivered != 400 || res.Lost != 0 || res.Errors != 0 {
			t.Fatalf("rate %d: delivered %d, lost %d, errors %d; want 400, 0, 0", rate, res.Delivered, res.Lost, res.Errors)
		}
		if cpu := res.Extra["bench_cpu_s"]; cpu <= 0 {
			t.Fatalf("rate %d: bench_cpu_s %v, want the load generator's CPU (> 0)", rate, cpu)
		}
		if rate > 0 && res.Seconds < 0.09 {
			t.Fatalf("paced at %d msg/s: 400 messages in %.3f s, want about 0.2 s", rate, res.Seconds)
		}
	}
}
