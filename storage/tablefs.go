package storage

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
	"golang.org/x/time/rate"
)

// tableFS is the file system Pebble writes through. Its flushes and
// compactions write table files, 4 KB at a time, on goroutines that
// otherwise hold a processor for up to Go's 10 ms time slice: on 2 cores a
// send waiting behind one was the c2c tail. So each table write yields the
// processor, and while Pebble keeps up, flushes and compactions together
// write at most pace bytes per second: a flush and the compactions it sets
// off then spread over seconds instead of taking a core for one
// (docs/benchmarks.md, Round 9). The WAL's writes (the commit path) neither
// yield nor wait.
type tableFS struct {
	vfs.FS
	pace *tablePace // nil: table writes only yield
}

func (fs tableFS) Create(name string) (vfs.File, error) {
	f, err := fs.FS.Create(name)
	if err != nil || !strings.HasSuffix(name, ".sst") {
		return f, err
	}
	return &tableFile{File: f, name: name, pace: fs.pace}, nil
}

type tableFile struct {
	vfs.File
	name    string
	pace    *tablePace
	checked bool // whether paced was looked up (at the first write, after Pebble's TableCreated)
	paced   bool // a flush's or a compaction's output
	pending int  // bytes written since the last wait
}

func (f *tableFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	if f.pace != nil && !f.checked {
		f.checked, f.paced = true, f.pace.claim(f.name)
	}
	if f.paced {
		if f.pending += n; f.pending >= paceChunk {
			f.pace.wait(f.pending)
			f.pending = 0
			return n, err
		}
	}
	runtime.Gosched()
	return n, err
}

// Close forgets a table Pebble reported but never wrote (a compaction
// that failed before its first write), so the pace's set stays small.
func (f *tableFile) Close() error {
	if f.pace != nil && !f.checked {
		f.checked = true
		f.pace.claim(f.name)
	}
	return f.File.Close()
}

// paceChunk is how many bytes a table file writes between two waits: at
// 32 MB/s an 8 ms sleep, not one timer per 4 KB write.
const paceChunk = 256 << 10

// tablePace paces the table writes of flushes and compactions.
type tablePace struct {
	limit  *rate.Limiter
	tables sync.Map // path -> struct{}: tables a flush or compaction created, not yet written

	// behind reports whether Pebble is falling behind (memtables queued
	// for flushing, L0 filling up, compaction debt): then nothing waits.
	// It is set once the DB is open (nothing waits before) and asked at
	// most every behindEvery.
	behind    atomic.Pointer[func() bool]
	checkedAt atomic.Int64 // unix nanos
	isBehind  atomic.Bool
	waited    atomic.Int64 // nanoseconds table writes waited for the pace, summed
}

const behindEvery = 100 * time.Millisecond

func newTablePace(bytesPerSec int) *tablePace {
	if bytesPerSec <= 0 {
		return nil
	}
	return &tablePace{limit: rate.NewLimiter(rate.Limit(bytesPerSec), max(bytesPerSec/8, 2*paceChunk))}
}

// listen has Pebble report the tables its flushes and compactions create.
func (p *tablePace) listen(el *pebble.EventListener) {
	if p == nil {
		return
	}
	el.TableCreated = func(info pebble.TableCreateInfo) {
		if info.Reason == "flushing" || info.Reason == "compacting" {
			p.tables.Store(info.Path, struct{}{})
		}
	}
}

// watch gives the pace the DB whose debt lifts it.
func (p *tablePace) watch(db *pebble.DB, o *pebble.Options) {
	if p == nil {
		return
	}
	behind := func() bool {
		m := db.Metrics()
		return m.MemTable.Count > 2 || // the mutable one, one flushing, one more waiting
			int(m.Levels[0].Sublevels) > o.L0CompactionThreshold ||
			m.Compact.EstimatedDebt > paceDebtBytes
	}
	p.behind.Store(&behind)
}

// stop lifts the pace for good (the store is closing).
func (p *tablePace) stop() {
	if p != nil {
		p.behind.Store(nil)
	}
}

// paceDebtBytes is the compaction debt above which compactions run unpaced.
const paceDebtBytes = 256 << 20

func (p *tablePace) claim(path string) bool {
	_, ok := p.tables.LoadAndDelete(path)
	return ok
}

func (p *tablePace) wait(n int) {
	if p.lagging() {
		return
	}
	began := time.Now()
	_ = p.limit.WaitN(context.Background(), min(n, p.limit.Burst()))
	p.waited.Add(int64(time.Since(began)))
}

// waitedSeconds is the time table writes spent waiting for the pace.
func (p *tablePace) waitedSeconds() float64 {
	if p == nil {
		return 0
	}
	return time.Duration(p.waited.Load()).Seconds()
}

// lagging reports whether table writes go unpaced now: Pebble is behind,
// the DB is still opening (the flushes of its WAL replay have no sends to
// share the cores with), or closing.
func (p *tablePace) lagging() bool {
	f := p.behind.Load()
	if f == nil {
		return true
	}
	now := time.Now().UnixNano()
	if last := p.checkedAt.Load(); now-last >= int64(behindEvery) && p.checkedAt.CompareAndSwap(last, now) {
		p.isBehind.Store((*f)())
	}
	return p.isBehind.Load()
}
