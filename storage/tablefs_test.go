package storage

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
)

// TestTableFSYieldsBetweenTableWrites: with one processor, a goroutine that
// writes a table file lets a runnable goroutine in after a write instead of
// holding the processor until it is preempted; the WAL's writes do not
// yield, and both files get every byte.
func TestTableFSYieldsBetweenTableWrites(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	fs := tableFS{FS: vfs.NewMem()}
	writesBeforeOtherRan := func(name string) int {
		f, err := fs.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = f.Close() }()
		var ran atomic.Bool
		done := make(chan struct{})
		go func() { ran.Store(true); close(done) }()
		block := make([]byte, 4096)
		n := 0
		for ; n < 100 && !ran.Load(); n++ {
			if _, err := f.Write(block); err != nil {
				t.Fatal(err)
			}
		}
		if st, err := f.Stat(); err != nil || st.Size() != int64(n*len(block)) {
			t.Fatalf("%s: %d writes, size %v (%v)", name, n, st, err)
		}
		<-done
		return n
	}
	// Go's scheduler takes from its global queue first on every 61st
	// schedule, and the yielding writer is there: then the other goroutine
	// runs one write later. A writer that yields runs it after 1 write in
	// one of three tries; one that does not, never (the WAL below).
	table := 0
	for try := range 3 {
		if table = writesBeforeOtherRan(fmt.Sprintf("00000%d.sst", try+1)); table == 1 {
			break
		}
	}
	if table != 1 {
		t.Fatalf("table file: the other goroutine ran after %d writes, want 1", table)
	}
	if n := writesBeforeOtherRan("000009.log"); n < 2 {
		t.Fatalf("WAL: the other goroutine ran after %d writes, want the writes not to yield", n)
	}
}

// TestTableFSPacesFlushAndCompactionTables: the tables Pebble reports as a
// flush's or a compaction's output are written at the pace while Pebble
// keeps up, and at full speed once it falls behind; other files (a
// checkpoint's copies, the WAL) are never paced.
func TestTableFSPacesFlushAndCompactionTables(t *testing.T) {
	const rate = 4 << 20
	pace := newTablePace(rate)
	if !pace.lagging() {
		t.Fatal("a pace whose DB is not open yet paces (the WAL replay's flushes)")
	}
	var behind atomic.Bool
	isBehind := func() bool { return behind.Load() }
	pace.behind.Store(&isBehind)
	el := &pebble.EventListener{}
	pace.listen(el)
	fs := tableFS{FS: vfs.NewMem(), pace: pace}
	write := func(name string, reason string, bytes int) time.Duration {
		f, err := fs.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = f.Close() }()
		if reason != "" {
			el.TableCreated(pebble.TableCreateInfo{Reason: reason, Path: name})
		}
		block := make([]byte, 4096)
		began := time.Now()
		for written := 0; written < bytes; written += len(block) {
			if _, err := f.Write(block); err != nil {
				t.Fatal(err)
			}
		}
		if st, err := f.Stat(); err != nil || st.Size() != int64(bytes) {
			t.Fatalf("%s: size %v (%v), want %d", name, st, err, bytes)
		}
		return time.Since(began)
	}
	// tokensTaken reports whether f took from the pace's bucket, which
	// otherwise only refills.
	tokensTaken := func(f func()) bool {
		before := pace.limit.Tokens()
		f()
		return pace.limit.Tokens() < before
	}
	// A burst's worth passes at once, the rest at the pace: 4.5 MB at
	// 4 MB/s after a 512 KB burst takes at least a second.
	d := write("000010.sst", "compacting", 9<<19)
	if d < 900*time.Millisecond {
		t.Fatalf("a compaction's 4.5 MB took %v at 4 MB/s, want the pace (>= ~1s)", d)
	}
	// The bucket refills while the blocks are written, so the waiting
	// counted is that second less the writing, which a loaded machine
	// (-race, a suite beside it) stretches: most of it, never more than
	// the whole write.
	if w := pace.waitedSeconds(); w < 0.25 || w > d.Seconds() {
		t.Fatalf("the pace counted %.2fs of waiting, want most of the %v the compaction's write took", w, d)
	}
	for _, f := range []struct{ name, reason string }{
		{"000011.sst", ""},          // not a flush's or a compaction's (a checkpoint copy)
		{"000012.log", "flushing"},  // the WAL
		{"000013.sst", "ingesting"}, // ingested tables are not Pebble's background work
	} {
		if took := tokensTaken(func() { write(f.name, f.reason, 9<<19) }); took {
			t.Fatalf("%s (%q) waited for the pace, want it unpaced", f.name, f.reason)
		}
	}
	// A table reported and closed unwritten is forgotten.
	f, err := fs.Create("000015.sst")
	if err != nil {
		t.Fatal(err)
	}
	el.TableCreated(pebble.TableCreateInfo{Reason: "compacting", Path: "000015.sst"})
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := pace.tables.Load("000015.sst"); ok {
		t.Fatal("an unwritten table stays in the pace's set after Close")
	}
	behind.Store(true)
	pace.checkedAt.Store(0) // ask again now, not after behindEvery
	if took := tokensTaken(func() { write("000014.sst", "flushing", 9<<19) }); took {
		t.Fatal("a flush while Pebble is behind waited for the pace, want it unpaced")
	}
	behind.Store(false)
	pace.checkedAt.Store(0)
	pace.stop() // the store is closing
	if took := tokensTaken(func() { write("000016.sst", "compacting", 9<<19) }); took {
		t.Fatal("a compaction while the store closes waited for the pace, want it unpaced")
	}
}

// A store's flushes go through the pace on disk and in memory alike: every
// table Pebble reports is claimed by its first write, none is left behind.
func TestTableFSClaimsEveryFlushedTable(t *testing.T) {
	for _, inMemory := range []bool{true, false} {
		opts := Options{InMemory: inMemory, TableWriteBytesPerSec: 1 << 30}
		if !inMemory {
			opts.Dir = t.TempDir()
		}
		s := openStore(t, opts)
		if _, err := s.Commit(context.Background(), Batch{Appends: []Append{{Stream: "u/a", Payload: []byte(`{}`)}}}); err != nil {
			t.Fatal(err)
		}
		if err := s.db.Flush(); err != nil {
			t.Fatal(err)
		}
		if s.LSMStats().Flushes == 0 {
			t.Fatalf("in memory %v: no flush", inMemory)
		}
		left := 0
		s.pace.tables.Range(func(any, any) bool { left++; return true })
		if left != 0 {
			t.Fatalf("in memory %v: %d tables reported and never written through the pace", inMemory, left)
		}
	}
}
