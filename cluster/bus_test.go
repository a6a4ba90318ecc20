package cluster

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// The bus carries publishes to every node's subscriptions (the publisher's
// own included) and request/reply between nodes; subjects outside imb.bus.
// are refused.
func TestCluster_Bus(t *testing.T) {
	nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	var gotA, gotB atomic.Int64
	stopA, err := a.Subscribe("imb.bus.test.*", func(d []byte) {
		if string(d) == "hi" {
			gotA.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stopA()
	stopB, err := b.Subscribe("imb.bus.test.>", func(d []byte) {
		if string(d) == "hi" {
			gotB.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// Interest crosses the route asynchronously: publish until b hears.
	eventually(t, 10*time.Second, "a publish on a reaches b's subscription", func() bool {
		if err := a.Publish("imb.bus.test.x", []byte("hi")); err != nil {
			t.Fatal(err)
		}
		return gotB.Load() > 0
	})
	eventually(t, 5*time.Second, "a publish reaches the publisher's own node", func() bool { return gotA.Load() > 0 })
	stopB()

	stopH, err := b.HandleRequest("imb.bus.echo", func(d []byte) []byte { return append([]byte("b:"), d...) })
	if err != nil {
		t.Fatal(err)
	}
	defer stopH()
	var reply []byte
	eventually(t, 10*time.Second, "a request from a answered by b", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		reply, err = a.Request(ctx, "imb.bus.echo", []byte("q"))
		return err == nil
	})
	if string(reply) != "b:q" {
		t.Fatalf("reply %q, want b:q", reply)
	}

	for _, bad := range []string{"imb.log", "imb.bus.", "imb.bus.a b", "imb.fwd.n0.x", "imb.bus.*"} {
		if err := a.Publish(bad, nil); !errors.Is(err, ErrBusSubject) {
			t.Errorf("Publish(%q) = %v, want ErrBusSubject", bad, err)
		}
	}
	for _, bad := range []string{"imb.>", "imb.bus.>.x", "x.bus.a"} {
		if _, err := a.Subscribe(bad, func([]byte) {}); !errors.Is(err, ErrBusSubject) {
			t.Errorf("Subscribe(%q) = %v, want ErrBusSubject", bad, err)
		}
	}
}
