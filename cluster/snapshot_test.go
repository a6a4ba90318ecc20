package cluster

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/storage"
)

// A node down while the log drops its next position finds at start that it
// needs a snapshot, asks the owner for one, loads it and follows the log
// from there: its store ends up with every entry, at the same positions.
// A store with history the log did not start from is refused (ErrForeign).
func TestCluster_SnapshotBehind(t *testing.T) {
	cfgs := clusterConfigs(t, 3, func(c *config.Cluster) {
		c.MaxEffectBytes, c.LogMaxBytes = 64<<10, 64<<10 // the log keeps ~30 of the effects below
		c.SnapshotInterval, c.SnapshotTimeout = 0, 30*time.Second
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes, stores, dirs := startWithStores(t, ctx, cfgs)
	open := func(i int) {
		s, err := storage.Open(storage.Options{Dir: dirs[i], Sync: true, Log: nodes[i].Log()})
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	o := ownerOf(t, nodes)
	payload := bytes.Repeat([]byte("x"), 2000)
	send := func(k int) {
		t.Helper()
		for range k {
			if _, err := stores[o].Commit(ctx, storage.Batch{Appends: []storage.Append{{Stream: "u/alice", Payload: payload}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(5)
	f := (o + 1) % 3
	if err := nodes[f].Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if err := nodes[f].Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := stores[f].Close(); err != nil {
		t.Fatal(err)
	}
	// The third node keeps up (it applies each effect before the next is
	// sent): with a log this small, a tail slowed down by a loaded machine
	// would fall behind it too.
	third := 3 - o - f
	for range 100 {
		send(1)
		if err := nodes[third].Barrier(ctx); err != nil {
			t.Fatal(err)
		}
	}
	first, _, _, err := nodes[o].logState(ctx)
	if err != nil || first <= 7 {
		t.Fatalf("the log's first position %d (%v): it should have dropped what %s needs", first, err, nodes[f].name)
	}

	n, err := Start(ctx, cfgs[f], dirs[f], nil, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	nodes[f] = n
	open(f)
	need, err := n.NeedsSnapshot(ctx, stores[f])
	if err != nil || !need {
		t.Fatalf("NeedsSnapshot of a node behind: %v %v", need, err)
	}
	applied := stores[f].Applied()
	if err := stores[f].Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	info, err := n.LoadSnapshot(ctx, dirs[f], applied)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded a snapshot at %d (%d bytes) in %s", info.Pos, info.Bytes, time.Since(start).Round(time.Millisecond))
	open(f)
	if stores[f].Applied() != info.Pos {
		t.Fatalf("applied %d after loading a snapshot at %d", stores[f].Applied(), info.Pos)
	}
	n.Attach(stores[f])
	send(3)
	for i, s := range stores {
		if err := nodes[i].Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		_, es, err := s.Read("u/alice", 0, 1000)
		if err != nil || len(es) != 108 || es[107].Pos.Seq != 108 {
			t.Fatalf("%s: %d entries (%v)", nodes[i].name, len(es), err)
		}
	}

	// A store with history from before the cluster cannot join this log.
	foreign := t.TempDir()
	s, err := storage.Open(storage.Options{Dir: foreign, Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, storage.Batch{Appends: []storage.Append{{Stream: "u/bob", Payload: payload}}}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s, err = storage.Open(storage.Options{Dir: foreign, Sync: true, Log: n.Log()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := n.NeedsSnapshot(ctx, s); !errors.Is(err, ErrForeign) {
		t.Fatalf("NeedsSnapshot of a store with its own history: %v, want ErrForeign", err)
	}
	if _, err := os.Stat(filepath.Join(dirs[f], snapTmp)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s left behind: %v", snapTmp, err)
	}
}

// startWithStores starts a node per config, each with a real store (Pebble
// in the node's data dir, opened on the node's log and attached); Cleanup
// shuts the nodes down, then closes the stores (the slices' contents at
// that time: a test may replace them).
func startWithStores(t *testing.T, ctx context.Context, cfgs []config.Cluster) ([]*Node, []*storage.Store, []string) {
	t.Helper()
	nodes := make([]*Node, len(cfgs))
	stores := make([]*storage.Store, len(cfgs))
	dirs := make([]string, len(cfgs))
	for i := range dirs {
		dirs[i] = t.TempDir() // before the Cleanup below, which must run first
	}
	t.Cleanup(func() {
		for i := range nodes {
			if nodes[i] != nil {
				_ = nodes[i].Shutdown(context.Background())
			}
			if stores[i] != nil {
				_ = stores[i].Close()
			}
		}
	})
	for i, cfg := range cfgs {
		n, err := Start(ctx, cfg, dirs[i], nil, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = n
		if stores[i], err = storage.Open(storage.Options{Dir: dirs[i], Sync: true, Log: n.Log()}); err != nil {
			t.Fatal(err)
		}
		n.Attach(stores[i])
	}
	return nodes, stores, dirs
}

// ownerOf waits until one of nodes owns the log and returns its index.
func ownerOf(t *testing.T, nodes []*Node) int {
	t.Helper()
	o := -1
	eventually(t, 30*time.Second, "an owner", func() bool {
		for k, n := range nodes {
			if n.IsOwner() {
				o = k
				return true
			}
		}
		return false
	})
	return o
}
