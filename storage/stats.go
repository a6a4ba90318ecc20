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

// LSMStats is what Pebble's background work has done since the store
// opened: its flushes and compactions take CPU beside the committer, which
// is where the c2c tail goes looking (docs/benchmarks.md).
type LSMStats struct {
	Flushes           int64   // memtables flushed to L0
	FlushedBytes      uint64  // bytes they wrote
	Compactions       int64   // compactions finished
	CompactionSeconds float64 // their summed duration (wall time, not CPU)
	CompactedBytes    uint64  // bytes compactions wrote
	L0Files           int64   // tables in L0 now
	L0Sublevels       int32   // L0's read amplification now
	PacedSeconds      float64 // time flushes and compactions waited for storage.table_write_mb (tablefs.go), summed
}

// LSMStats returns Pebble's flush and compaction counters; zero once the
// store is closed.
func (s *Store) LSMStats() LSMStats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return LSMStats{}
	}
	m := s.db.Metrics()
	st := LSMStats{Flushes: m.Flush.Count, Compactions: m.Compact.Count, CompactionSeconds: m.Compact.Duration.Seconds(),
		L0Files: m.Levels[0].NumFiles, L0Sublevels: m.Levels[0].Sublevels, PacedSeconds: s.pace.waitedSeconds()}
	for _, l := range m.Levels {
		st.FlushedBytes += l.BytesFlushed
		st.CompactedBytes += l.BytesCompacted
	}
	return st
}
