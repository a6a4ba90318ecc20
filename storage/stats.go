package storage

import (
	"sync/atomic"
	"time"
)

// CommitBuckets are the upper bounds, in seconds, of the commit-latency
// histogram: the time of one group's Pebble write, including its fsync
// (in cluster mode: its append to the log, then the local write).
var CommitBuckets = [...]float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}

// Stats is a snapshot of the committer's counters.
type Stats struct {
	Groups        uint64   // group commits: the histogram's count
	Batches       uint64   // batches they carried (Batches/Groups: the average group)
	CommitSeconds float64  // total time in Pebble writes and fsyncs
	CommitCounts  []uint64 // group commits per bucket of CommitBuckets, cumulative, as Prometheus wants
	Queued        int      // batches waiting for the committer now
	Failed        uint64   // batches failed by the store: disk full, failed writes
}

type commitStats struct {
	batches, nanos atomic.Uint64
	failed         atomic.Uint64
	buckets        [len(CommitBuckets) + 1]atomic.Uint64 // the last is +Inf; their sum counts the group commits
}

func (c *commitStats) observe(batches int, d time.Duration) {
	c.batches.Add(uint64(batches))
	c.nanos.Add(uint64(d))
	i := 0
	for i < len(CommitBuckets) && d.Seconds() > CommitBuckets[i] {
		i++
	}
	c.buckets[i].Add(1)
}

// Stats returns the committer's counters.
func (s *Store) Stats() Stats {
	st := Stats{
		Batches:       s.stats.batches.Load(),
		CommitSeconds: time.Duration(s.stats.nanos.Load()).Seconds(),
		CommitCounts:  make([]uint64, len(CommitBuckets)),
		Queued:        len(s.queue),
		Failed:        s.stats.failed.Load(),
	}
	var sum uint64
	for i := range CommitBuckets {
		sum += s.stats.buckets[i].Load()
		st.CommitCounts[i] = sum
	}
	st.Groups = sum + s.stats.buckets[len(CommitBuckets)].Load()
	return st
}
