package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/imbroker/imbroker/storage"
)

// Three real stores (Pebble on disk) on three nodes: the node starts first,
// the store opens with its Log, then is attached. The owner's commits reach
// every store in order with the same positions; after a stepdown the new
// owner commits and the old one refuses (ErrNotOwner).
func TestCluster_RealStores(t *testing.T) {
	cfgs := clusterConfigs(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	nodes := make([]*Node, 3)
	stores := make([]*storage.Store, 3)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()} // before the Cleanup below, which must run first
	t.Cleanup(func() {                                      // nodes first: their tails apply to the stores
		for _, n := range nodes {
			if n != nil {
				_ = n.Shutdown(context.Background())
			}
		}
		for _, s := range stores {
			if s != nil {
				_ = s.Close()
			}
		}
	})
	for i, cfg := range cfgs {
		dir := dirs[i]
		n, err := Start(ctx, cfg, dir, nil, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = n
		s, err := storage.Open(storage.Options{Dir: dir + "/store", Sync: true, Log: n.Log()})
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
		n.Attach(s)
	}
	ownerIndex := func() int {
		i := -1
		eventually(t, 30*time.Second, "one owner", func() bool {
			i = -1
			for k, n := range nodes {
				if n.IsOwner() {
					if i >= 0 {
						return false
					}
					i = k
				}
			}
			return i >= 0
		})
		return i
	}
	send := func(s *storage.Store, k int) error {
		for j := range k {
			if _, err := s.Commit(ctx, storage.Batch{Appends: []storage.Append{{Stream: "u/alice", Payload: fmt.Appendf(nil, "m%d", j)}}}); err != nil {
				return err
			}
		}
		return nil
	}
	same := func(want int) {
		t.Helper()
		var first []storage.Entry
		for i, s := range stores {
			n := nodes[i]
			eventually(t, 10*time.Second, n.name+" applies the log", func() bool { return n.Barrier(ctx) == nil })
			_, es, err := s.Read("u/alice", 0, 1000)
			if err != nil || len(es) != want {
				t.Fatalf("%s: %d entries (%v), want %d", n.name, len(es), err, want)
			}
			for k, e := range es {
				if e.Pos.Seq != uint64(k+1) || (first != nil && (e.Pos != first[k].Pos || string(e.Payload) != string(first[k].Payload))) {
					t.Fatalf("%s entry %d: %+v, first store has %+v", n.name, k, e, first[k])
				}
			}
			first = es
		}
	}

	o := ownerIndex()
	if err := send(stores[o], 20); err != nil {
		t.Fatal(err)
	}
	same(20)
	// A follower's store does not write.
	f := (o + 1) % 3
	if err := send(stores[f], 1); !errors.Is(err, storage.ErrNotOwner) {
		t.Fatalf("a follower's commit: %v, want ErrNotOwner", err)
	}

	moveLeader(t, &testNode{Node: nodes[o]}, nodes[f].name, func() bool { return nodes[f].IsOwner() })
	if err := send(stores[f], 5); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the old owner stops writing", func() bool { return !nodes[o].IsOwner() })
	if err := send(stores[o], 1); !errors.Is(err, storage.ErrNotOwner) {
		t.Fatalf("the old owner's commit: %v, want ErrNotOwner", err)
	}
	same(25)
}
