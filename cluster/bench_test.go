package cluster

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkAppend: the owner's fenced appends, one after another (as the
// committer does), 1 KiB effects, on a three-node R3 cluster on loopback;
// reports the latency percentiles of one append (quorum, fsynced).
func BenchmarkAppend(b *testing.B) {
	nodes := startCluster(b, 3)
	o := owner(b, nodes)
	ctx := context.Background()
	effect := make([]byte, 1024)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := commit(ctx, o.Node, o.store, effect); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// BenchmarkForward: a follower's request/reply to the owner's handler and
// back, one after another.
func BenchmarkForward(b *testing.B) {
	nodes := startCluster(b, 3)
	for _, n := range nodes {
		n.Handle("echo", func(_ context.Context, req []byte) ([]byte, error) { return req, nil })
	}
	o := owner(b, nodes)
	f := nodes[0]
	if f == o {
		f = nodes[1]
	}
	ctx := context.Background()
	req := make([]byte, 512)
	b.ResetTimer()
	for range b.N {
		if _, err := f.Forward(ctx, "echo", req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBarrier: a follower's read barrier on an idle log (one stream
// info request to the leader).
func BenchmarkBarrier(b *testing.B) {
	nodes := startCluster(b, 3)
	o := owner(b, nodes)
	f := nodes[0]
	if f == o {
		f = nodes[1]
	}
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if err := f.Barrier(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
