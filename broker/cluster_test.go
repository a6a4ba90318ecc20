package broker

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/imbroker/imbroker/config"
)

// A node that is not the owner runs no background writer (retention and
// dedup sweep, statistics); SetOwner starts them and stops them again, and
// shutdown after a lost lead leaks nothing.
func TestSetOwnerStartsAndStopsBackgroundWriters(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	cfg := config.Default()
	cfg.App.SecretKey = "lifecycle-test-secret-key"
	cfg.MQTT.TCP, cfg.MQTT.WS = "127.0.0.1:0", ""
	cfg.Storage.InMemory = true
	b, err := Start(context.Background(), cfg, nil, WithCluster(NewLoopback()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
	running := func() bool {
		b.ownerMu.Lock()
		defer b.ownerMu.Unlock()
		return b.retention != nil && b.stats.Load() != nil
	}
	if running() || b.stats.Load() != nil {
		t.Fatal("background writers started on a node that is not the owner")
	}
	if _, err := b.Days(context.Background(), 1); err == nil {
		t.Fatal("statistics answered on a node that collects none")
	}
	if err := b.SetOwner(true); err != nil {
		t.Fatal(err)
	}
	if !running() {
		t.Fatal("SetOwner(true) left the background writers stopped")
	}
	if days, err := b.Days(context.Background(), 1); err != nil || len(days) != 1 {
		t.Fatalf("statistics of the owner: %v, %v", days, err)
	}
	if err := b.SetOwner(true); err != nil || !running() { // idempotent
		t.Fatalf("second SetOwner(true): %v", err)
	}
	if err := b.SetOwner(false); err != nil {
		t.Fatal(err)
	}
	if b.retention != nil || b.stats.Load() != nil {
		t.Fatal("SetOwner(false) left a background writer running")
	}
	shutdown(t, b)
	if err := b.SetOwner(true); err == nil {
		t.Fatal("SetOwner after Shutdown started writers")
	}
	goleak.VerifyNone(t, ignore)
}
