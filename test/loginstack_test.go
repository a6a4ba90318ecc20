package test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// TestLoginsLeaveNoGoroutinesBehind: a login runs on one of the broker's
// login workers (mqtt.login_workers), so a run of logins creates only each
// connection's own two goroutines, mochi's read loop and WriteLoop. A
// goroutine per login would end after each, and the runtime hands a dead
// goroutine to the next `go` statement with the adaptive starting stack
// (8 KB in a broker holding many connections) where a new one starts at
// 2 KB: every WriteLoop that got one kept 8 KB instead of the 4 KB it needs
// (docs/benchmarks.md, "Round 6: login stacks and login garbage"). [MEM-STACK]
func TestLoginsLeaveNoGoroutinesBehind(t *testing.T) {
	b := StartBroker(t)
	const n = 200
	before := goroutinesCreated()
	for i := range n {
		user := fmt.Sprintf("stack%d", i)
		conn, err := net.DialTimeout("tcp", b.MQTTAddr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 5,
			Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: user, Clean: true, Keepalive: 60,
				UsernameFlag: true, Username: []byte(user), PasswordFlag: true, Password: []byte(b.Sig(user))}}
		var w bytes.Buffer
		if err := pk.ConnectEncode(&w); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(w.Bytes()); err != nil {
			t.Fatal(err)
		}
		ack := make([]byte, 4)
		if _, err := io.ReadFull(conn, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
			t.Fatalf("login %d: CONNACK % x, %v", i, ack, err)
		}
	}
	got := goroutinesCreated() - before
	// Two per connection, plus a few: the pool's first worker, a timer.
	if got > 2*n+n/10 {
		t.Fatalf("%d logins created %d goroutines (%.2f each); want about 2 each", n, got, float64(got)/n)
	}
	t.Logf("%d logins created %d goroutines", n, got)
}

// goroutinesCreated counts the goroutines this process ever started.
func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
