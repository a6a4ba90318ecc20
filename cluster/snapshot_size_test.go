//go:build long

package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/imbroker/imbroker/storage"
)

// How big a snapshot is and how long taking and loading it takes, for a
// store of SNAP_ENTRIES messages (default 200,000) of 200 random bytes in
// 1,000 streams, on three nodes on this machine.
// go test -tags long -run TestCluster_SnapshotSize -v ./cluster
func TestCluster_SnapshotSize(t *testing.T) {
	entries := 200_000
	if v, err := strconv.Atoi(os.Getenv("SNAP_ENTRIES")); err == nil {
		entries = v
	}
	cfgs := clusterConfigs(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	nodes, stores, _ := startWithStores(t, ctx, cfgs)
	o := ownerOf(t, nodes)
	start := time.Now()
	raw := make([]byte, 100)
	for done := 0; done < entries; {
		var b storage.Batch
		for k := 0; k < 500 && done < entries; k, done = k+1, done+1 {
			_, _ = rand.Read(raw)
			b.Appends = append(b.Appends, storage.Append{Stream: "u/user" + strconv.Itoa(done%1000), Payload: []byte(hex.EncodeToString(raw))})
		}
		if _, err := stores[o].Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d entries committed in %s", entries, time.Since(start).Round(time.Millisecond))
	info, err := nodes[o].TakeSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SNAPSHOT taken at %d: %d bytes in %s", info.Pos, info.Bytes, info.Took.Round(time.Millisecond))
	f := (o + 1) % 3
	scratch := t.TempDir()
	loaded, err := nodes[f].LoadSnapshot(ctx, scratch, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SNAPSHOT loaded on %s: %d bytes in %s", nodes[f].name, loaded.Bytes, loaded.Took.Round(time.Millisecond))
	s, err := storage.Open(storage.Options{Dir: scratch, Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Applied() != info.Pos {
		t.Fatalf("the loaded store is at %d, the snapshot at %d", s.Applied(), info.Pos)
	}
}
