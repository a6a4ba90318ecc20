package cluster

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// OnOwner is called on the node that takes the log over, after its store's
// writer is on, and on the node that loses it, after its writer is off:
// the broker starts and stops its background writers there.
func TestCluster_OnOwner(t *testing.T) {
	cfgs := clusterConfigs(t, 3)
	type call struct {
		on, writer bool
	}
	var mu sync.Mutex
	calls := map[string][]call{}
	nodes := make([]*testNode, len(cfgs))
	for i, cfg := range cfgs {
		tn := &testNode{store: &memStore{}, cfg: cfg, dir: t.TempDir()}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		n, err := Start(ctx, cfg, tn.dir, nil, testLogger())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		tn.Node = n
		n.OnOwner(func(on bool) {
			mu.Lock()
			defer mu.Unlock()
			calls[cfg.Name] = append(calls[cfg.Name], call{on, tn.store.isWriter()})
		})
		n.Attach(tn.store)
		nodes[i] = tn
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			n.stop(t)
		}
	})
	got := func(name string) []call {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(calls[name])
	}
	first := owner(t, nodes)
	eventually(t, 5*time.Second, "OnOwner(true) on the owner", func() bool { return len(got(first.name)) == 1 })
	if c := got(first.name); c[0] != (call{true, true}) {
		t.Fatalf("%s: OnOwner calls %+v, want one (on, writer on)", first.name, c)
	}
	var next *testNode
	for _, n := range nodes {
		if n != first {
			next = n
			break
		}
	}
	moveLeader(t, first, next.name, next.IsOwner)
	eventually(t, 5*time.Second, "OnOwner on both", func() bool {
		return len(got(first.name)) == 2 && len(got(next.name)) == 1
	})
	if c := got(first.name); c[1] != (call{false, false}) {
		t.Fatalf("%s lost the log: OnOwner calls %+v, want (off, writer off) last", first.name, c)
	}
	if c := got(next.name); c[0] != (call{true, true}) {
		t.Fatalf("%s took the log over: OnOwner calls %+v, want (on, writer on)", next.name, c)
	}
	for _, n := range nodes {
		if n != first && n != next && len(got(n.name)) != 0 {
			t.Fatalf("%s never owned the log but OnOwner was called: %+v", n.name, got(n.name))
		}
	}
}
