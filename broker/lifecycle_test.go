package broker

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/imbroker/imbroker/config"
)

// startTestBroker starts a real broker: in-memory store, MQTT on a free
// loopback port. The test shuts it down itself; Cleanup is a safety net.
func startTestBroker(t *testing.T, mods ...func(*config.Config)) *Broker {
	t.Helper()
	cfg := config.Default()
	cfg.App.SecretKey = "lifecycle-test-secret-key"
	cfg.MQTT.TCP, cfg.MQTT.WS = "127.0.0.1:0", ""
	cfg.Storage.InMemory = true
	for _, m := range mods {
		m(&cfg)
	}
	b, err := Start(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
	return b
}

func shutdown(t *testing.T, b *Broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestShutdownStopsPendingTimer: a timer of the task owner that has not
// fired (a live room's merged member tip, groups.Timers: the groups
// package's TestPendingMemberTipIsDroppedWithItsTimer) is stopped at
// shutdown, so its function can never run against the closed store, and
// nothing is scheduled afterwards.
func TestShutdownStopsPendingTimer(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	b := startTestBroker(t)
	ran := make(chan struct{}, 1)
	timer := b.tasks.AfterFunc(time.Hour, func() { ran <- struct{}{} })
	if timer == nil {
		t.Fatal("nothing scheduled before shutdown")
	}
	shutdown(t, b)
	if timer.Stop() {
		t.Fatal("the timer was still pending after Shutdown")
	}
	if b.tasks.AfterFunc(0, func() { ran <- struct{}{} }) != nil {
		t.Fatal("a timer was scheduled after Shutdown")
	}
	select {
	case <-ran:
		t.Fatal("a stopped timer's function ran")
	default:
	}
	goleak.VerifyNone(t, ignore)
}
