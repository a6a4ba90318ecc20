// Package storage is imbroker's embedded Pebble store: ordered event streams
// with gap-free (epoch, seq) positions allocated in the same batch that writes
// the events, group commit, dedup records and small KV records. Appends of
// one batch can share one payload, stored once (bodies.go). Retention
// trims streams from their oldest end (Batch.Trims); each stream's low
// watermark says where its retained history starts. It knows nothing of
// MQTT or HTTP.
package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/vfs"
)

// Errors returned by the store.
var (
	ErrClosed    = errors.New("storage: closed")
	ErrBadStream = errors.New("storage: invalid stream name")
	ErrBadBatch  = errors.New("storage: Append.SameAs must name an earlier append without SameAs")
)

// Pos is a position in a stream. Seq is gap-free from 1; Epoch identifies
// the stream's history and changes only if that history is lost.
type Pos struct {
	Epoch uint64
	Seq   uint64
}

// Append adds one event to a stream.
type Append struct {
	Stream  string
	Payload []byte
	// Index, when set, names a KV record set to this append's seq (in
	// decimal) in the same commit, without reading it: an index from a
	// caller's key to the entry. The batch's Sets, Deletes and Updates
	// come after it.
	Index string
	// SameAs, when > 0, says this append's payload is that of
	// Appends[SameAs-1], an earlier append of the batch that has no SameAs
	// itself; Payload is then ignored. The store writes the shared bytes
	// once (bodies.go); reads return them for every entry as for any other.
	SameAs int
}

// Batch is one atomic commit: all appends land, or none do. With a DedupKey
// that is already stored and unexpired, nothing is written and the result
// reports Duplicate with the stored DedupValue.
type Batch struct {
	Appends    []Append
	DedupKey   []byte
	DedupValue []byte
	DedupTTL   time.Duration
	Sets       map[string][]byte // KV records written atomically with the appends
	Deletes    []string          // KV records deleted atomically with the appends
	Drops      []string          // streams whose entries and head are deleted (history lost: a later append starts a new epoch)
	// Updates are read-modify-writes of KV records, run on the committer
	// (the single writer), so they are atomic with respect to every other
	// commit: counters and "latest" records never lose an update.
	Updates []Update
	// Replaces overwrite the payload of existing stream entries (recall);
	// a missing entry is skipped. The entry keeps its commit time.
	Replaces []Replace
	// Trims delete the oldest entries of streams (retention); each stream's
	// low watermark records where its retained history starts.
	Trims []Trim
	// ExpireDedups deletes these dedup records if they are expired when the
	// batch commits (the background dedup sweep, dedupsweep.go).
	ExpireDedups [][]byte
}

// Trim deletes a stream's entries with seq < Below and raises the stream's
// low watermark (the first retained seq) to Below. The watermark never goes
// down and never beyond head+1 (the head itself is kept: seqs go on gap-free
// after a trim of everything). With Epoch set, the trim applies only while
// the stream still has that epoch, so a trim computed before a Drop never
// touches the history that replaced it.
type Trim struct {
	Stream string
	Below  uint64
	Epoch  uint64 // 0: any epoch
}

// Update changes one KV record. Fn gets the current value (found=false when
// absent) and the positions of this batch's appends; it returns the new
// value, or nil to delete the record. An error fails the whole batch, which
// then writes nothing. Fn runs on the committer goroutine: it must be quick
// and must not call the store. It must not change cur, and must not change
// the value it returns afterwards: the store keeps both (a recent update's
// value is handed to the record's next update without a read).
type Update struct {
	Name string
	Fn   func(cur []byte, found bool, pos []Pos) ([]byte, error)
}

// Replace overwrites one stream entry's payload.
type Replace struct {
	Stream  string
	Seq     uint64
	Payload []byte
}

// Result reports where each append landed.
type Result struct {
	Pos        []Pos // one per Append, in order
	Duplicate  bool
	DedupValue []byte // the stored value when Duplicate
}

// Entry is a stored event.
type Entry struct {
	Stream  string
	Pos     Pos
	Payload []byte
	Time    time.Time // commit time, millisecond precision; zero if unknown (entries written before times were stored)
}

// Page is the result of ReadFrom: the stream's head and low watermark and
// the entries read, all from one snapshot.
type Page struct {
	Head    Pos
	Low     uint64 // first retained seq (≥ 1); Head.Seq+1 when everything was trimmed
	Entries []Entry
}

// StreamInfo describes one stream (Streams).
type StreamInfo struct {
	Name string
	Head Pos
	Low  uint64 // first retained seq (≥ 1)
}

// Options configure Open.
type Options struct {
	Dir      string
	InMemory bool // a memory filesystem: fast tests, nothing survives Close
	// CacheBytes sizes Pebble's block cache; 0 = 64 MiB.
	CacheBytes int64
	Sync       bool // fsync each group commit before acknowledging it
	MaxBatch   int  // batches per group commit
	MaxQueue   int  // batches waiting for the committer
	// CommitInterval spaces group commits while writers are busy (the
	// previous group carried more than one batch): a group does not start
	// sooner than CommitInterval after the previous one started, and the
	// batches that arrive meanwhile join it (up to MaxBatch). Under a steady
	// load each fsync then carries more sends and costs less CPU per send;
	// a lone writer, one batch at a time, never waits. 0: off.
	CommitInterval time.Duration
	Logger         *slog.Logger
	// MemTableBytes is the size Pebble's memtables grow to (0: 32 MiB;
	// they start at 256 KiB). Conversation records and stream metas are
	// rewritten by almost every message: the bigger the memtable, the more
	// of those versions die in memory instead of being flushed and
	// compacted.
	MemTableBytes int
	// ReadCacheBytes bounds the memory of the cache of KV records read by
	// Get (0: 16 MiB; negative: no cache).
	ReadCacheBytes int
	// TableWriteBytesPerSec paces the table files Pebble's flushes and
	// compactions write while it keeps up with the writes (tablefs.go);
	// 0: unpaced.
	TableWriteBytesPerSec int
	// DedupMemoryKeys bounds how many recent dedup keys the committer
	// remembers (in Bloom filters, 2.5 bytes each) to answer "not a resend" without a
	// disk read (0: 16,777,216; negative: always read the disk).
	DedupMemoryKeys int
	// UpdateCacheBytes bounds the memory of the committer's cache of the
	// KV records recent Updates wrote, which the next Update of a record
	// reads instead of Pebble: conversation records change with almost
	// every message (0: 32 MiB; negative: no cache).
	UpdateCacheBytes int
	// StallTimeout is how long one group commit (a Pebble write and its
	// fsync) may take. The committer does not start a batch with less than
	// this left before its deadline, so a healthy write always finishes in
	// time; a waiter whose batch is still being written at its deadline
	// declares the disk stalled and the store failed (ErrFailed), because
	// the batch may still land after the caller was told it failed
	// (0: no deadline is enforced on a started batch).
	StallTimeout time.Duration
	// RecoverDamaged opens a store that lost acknowledged commits (a cut
	// or corrupted WAL: DamagedError) with what is readable, giving every
	// stream a new Epoch; without it Open refuses such a store.
	RecoverDamaged bool
	// NewEpochs gives every stream a new Epoch at open: its history was
	// lost in a way the store cannot see (the data dir was restored from
	// a backup), and clients must resync.
	NewEpochs bool
	// MinFreeBytes is the free space the data dir's filesystem must keep:
	// below it every commit is refused with ErrNoSpace before Pebble
	// writes anything, so Pebble (whose WAL writes, memtable flushes and
	// compactions need room) never runs into a full disk (0: no check).
	MinFreeBytes int64
	// OnCommit is called on the committer goroutine after each group commit
	// with its entries in commit order, so a consumer sees every stream in
	// seq order. It must not block for long: it holds up every commit.
	// In cluster mode (Log) it is also called by Apply, with the entries the
	// writer's OnCommit got, never concurrently with itself.
	OnCommit func([]Entry)
	// OnApply is called by Apply (cluster mode), on an effect another
	// node's store committed, after Pebble has it and before OnCommit: the
	// KV records it set or deleted and its entries, so that what a service
	// keeps in memory from the store (the group registry) follows the log,
	// and is up to date before the entries are delivered. Never for this store's
	// own commits, whose writer updated its memory itself. Like OnCommit it
	// holds up every write; it must not call Commit or Submit.
	OnApply func(Applied)
	// Log replicates every group commit (cluster mode, effect.go): nil
	// commits locally, as a single node. With a Log the store starts as a
	// follower (SetWriter) and its local writes are not fsynced: the log
	// holds each group durably before it is applied anywhere.
	Log Log
	// MaxEffectBytes closes a logged group once its effect reaches this
	// size (0: DefaultMaxEffectBytes); the requests queued behind it form
	// the next group. The log must take messages of this size plus the
	// largest single request (one request is never split).
	MaxEffectBytes int
}

// Store is the Pebble-backed store.
type Store struct {
	db    *pebble.DB
	opts  Options
	log   *slog.Logger
	queue chan *request

	mu       sync.RWMutex // guards closed; held for reading while enqueuing
	closed   bool
	stop     chan struct{}
	done     chan struct{}
	heads    map[string]meta // committer-owned cache of stream metas (head and low)
	staged   *groupStage     // committer-owned: the group being staged (commit.go)
	sort     sorter          // committer-owned: a group's writes in key order (sortbatch.go)
	pace     *tablePace      // paces flushes' and compactions' table writes (tablefs.go); nil: unpaced
	updated  *updateCache    // committer-owned: KV records recent Updates wrote (updatecache.go)
	reads    *readCache      // KV records read by Get
	dedupMem *recentDedups   // committer-owned: recent dedup keys (dedupmem.go)

	sweepCursor []byte // SweepDedups' own: the last dedup key examined

	commits uint64  // committer-owned: group commits in the database (damage.go)
	mark    *marker // committer-owned: the mark file; nil without Options.Sync, or with a Log

	// writeMu is held by the committer for each group and by Apply: the
	// "committer-owned" state above (heads, caches, commits) has one user
	// at a time, and an effect is applied exactly once whichever of the
	// two gets to it first (apply.go).
	writeMu sync.Mutex
	applied atomic.Uint64 // the last log position applied (kindApply); 0 without a Log
	writer  atomic.Bool   // this store may commit (always with a nil Log; SetWriter)

	stats    commitStats // stats.go
	health   health      // health.go
	nowEpoch func() uint64
	clock    func() time.Time // commit times (a test hook, like nowEpoch)
	// gathering, a test hook, runs on the committer after it took a group's
	// first request and before it takes the rest (export_test.go).
	gathering func()
	// spacing, a test hook, runs on the committer when a group starts
	// waiting for Options.CommitInterval.
	spacing func()
	// writing, a test hook, runs on the committer just before a group's
	// Pebble write: a write that blocks, as on a stalled disk.
	writing func()
}

type request struct {
	ctx      context.Context
	batch    Batch
	res      Result
	err      error
	done     chan struct{}
	deadline time.Time    // from Submit's context; zero: none
	state    atomic.Int32 // reqQueued, then reqTaken (by the committer) or reqAbandoned (by a waiter past its deadline)
}

// Request states: a request is taken by the committer or abandoned by its
// waiter, never both, so a waiter that gives up knows the batch was not
// written.
const (
	reqQueued int32 = iota
	reqTaken
	reqAbandoned
)

// Open opens (or creates) the store.
func Open(opts Options) (*Store, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1024
	}
	if opts.MaxQueue <= 0 {
		opts.MaxQueue = 8192
	}
	if opts.UpdateCacheBytes == 0 {
		opts.UpdateCacheBytes = 32 << 20
	}
	if opts.ReadCacheBytes == 0 {
		opts.ReadCacheBytes = 16 << 20
	}
	if opts.DedupMemoryKeys == 0 {
		opts.DedupMemoryKeys = 1 << 24
	}
	if opts.MaxEffectBytes <= 0 {
		opts.MaxEffectBytes = DefaultMaxEffectBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// The committer does point reads on every message (dedup records,
	// conversation records, stream heads): bloom filters answer the common
	// "not there" without reading blocks, and a block cache bigger than
	// Pebble's 8 MB default keeps hot records decompressed.
	cacheSize := opts.CacheBytes
	if cacheSize <= 0 {
		cacheSize = 64 << 20
	}
	cache := pebble.NewCache(cacheSize)
	defer cache.Unref() // the DB holds its own reference
	if opts.MemTableBytes <= 0 {
		opts.MemTableBytes = 32 << 20
	}
	po := &pebble.Options{Logger: pebbleLogger{opts.Logger}, Cache: cache, MemTableSize: uint64(opts.MemTableBytes)}
	po.EnsureDefaults()
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		po.Levels[i].FilterType = pebble.TableFilter
	}
	dir := opts.Dir
	if opts.InMemory {
		po.FS = vfs.NewMem()
		dir = "mem"
	}
	pace := newTablePace(opts.TableWriteBytesPerSec)
	po.FS = tableFS{FS: po.FS, pace: pace}
	pace.listen(po.EventListener)
	if !opts.InMemory {
		if err := finishInstall(dir); err != nil { // a snapshot's install cut short
			return nil, err
		}
	}
	var damage *DamagedError
	if !opts.InMemory && opts.Sync { // without fsyncs a crash may lose acknowledged commits by design
		var err error
		if damage, err = checkDamage(dir, po); err != nil {
			return nil, err
		}
		if damage != nil && !opts.RecoverDamaged {
			return nil, damage
		}
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, openError(dir, err)
	}
	pace.watch(db, po)
	s := &Store{
		db: db, opts: opts, log: opts.Logger, pace: pace,
		queue: make(chan *request, opts.MaxQueue),
		stop:  make(chan struct{}), done: make(chan struct{}),
		heads:    make(map[string]meta),
		updated:  newUpdateCache(opts.UpdateCacheBytes),
		reads:    newReadCache(opts.ReadCacheBytes),
		nowEpoch: func() uint64 { return uint64(time.Now().UnixMilli()) },
		clock:    time.Now,
	}
	// Memory covers every dedup record from the start when there is none on
	// disk yet, else from now on.
	complete := time.Now()
	if _, n, _, err := s.expiredDedups(nil, complete, 1); err != nil {
		_ = db.Close()
		return nil, err
	} else if n == 0 {
		complete = time.Time{}
	}
	s.dedupMem = newRecentDedups(opts.DedupMemoryKeys, complete)
	if err := s.openCount(damage); err != nil {
		_ = db.Close()
		return nil, err
	}
	applied, err := readApplied(db)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.applied.Store(applied)
	s.writer.Store(opts.Log == nil) // a cluster node writes once it is told it owns the log
	s.staged = newGroupStage(s)
	go s.commitLoop()
	return s, nil
}

// Commit submits a batch to the group committer and waits until it is
// durable (per Options.Sync) or failed. The context's deadline bounds the
// whole wait (Pending.Wait); once queued, a batch is committed or failed
// as a whole, even when the caller stopped waiting.
func (s *Store) Commit(ctx context.Context, b Batch) (Result, error) {
	p, err := s.Submit(ctx, b)
	if err != nil {
		return Result{}, err
	}
	return p.Wait()
}

// Pending is a batch queued for the committer whose outcome is not known yet.
type Pending struct {
	s *Store
	r *request
}

// Submit queues a batch for the group committer and returns without waiting
// for the commit. Batches are committed in the order Submit returned for
// them, so a caller that submits in order gets gap-free, ordered seqs without
// holding anything while the fsync runs. The context bounds the wait for a
// queue slot, and its deadline the wait for the outcome (Wait).
func (s *Store) Submit(ctx context.Context, b Batch) (*Pending, error) {
	for i, a := range b.Appends {
		if a.Stream == "" || strings.IndexByte(a.Stream, 0) >= 0 {
			return nil, ErrBadStream
		}
		if a.SameAs < 0 || a.SameAs > i || (a.SameAs > 0 && b.Appends[a.SameAs-1].SameAs != 0) {
			return nil, ErrBadBatch
		}
	}
	if !s.writer.Load() {
		return nil, ErrNotOwner
	}
	r := &request{ctx: ctx, batch: b, done: make(chan struct{})}
	r.deadline, _ = ctx.Deadline()
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	select {
	case s.queue <- r:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return nil, ctx.Err()
	}
	return &Pending{s: s, r: r}, nil
}

// Done reports whether the batch's outcome is known, so that Wait returns
// at once. Batches finish in submission order, so a caller with several
// pending can write out every outcome already known before it waits again.
func (p *Pending) Done() bool {
	select {
	case <-p.r.done:
		return true
	default:
		return false
	}
}

// Wait blocks until the batch is durable (per Options.Sync) or failed, or
// until the deadline of the context it was submitted with: then it returns
// ErrCommitTimeout. A batch the committer had not started by then is never
// written; one it had started is stuck in a write (the committer starts
// none it could not finish in time), so the store is declared failed
// (ErrFailed): the batch may still land, and nothing may be written after
// an outcome the callers were not told. A disk that stops answering thus
// ends in an error, never a hang.
func (p *Pending) Wait() (Result, error) {
	r := p.r
	if r.deadline.IsZero() {
		<-r.done
		return r.res, r.err
	}
	select {
	case <-r.done:
		return r.res, r.err
	default:
	}
	t := time.NewTimer(time.Until(r.deadline))
	defer t.Stop()
	select {
	case <-r.done:
		return r.res, r.err
	case <-t.C:
	}
	if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
		return Result{}, ErrCommitTimeout // never written
	}
	select {
	case <-r.done: // finished meanwhile
		return r.res, r.err
	default:
	}
	if p.s.opts.StallTimeout > 0 {
		p.s.fail(errors.New("a write did not finish within storage.commit_timeout: the disk stalled"))
	}
	return Result{}, ErrCommitTimeout
}

// Head returns the committed head of a stream ({0,0} if it never had events).
func (s *Store) Head(stream string) (Pos, error) {
	m, err := s.getMeta(s.db, stream)
	return m.Pos, err
}

// Bounds returns a stream's committed head and its low watermark: the first
// retained seq (≥ 1; head.Seq+1 when retention trimmed everything). Entries
// below low are gone; Read and ReadFrom never return them.
func (s *Store) Bounds(stream string) (head Pos, low uint64, err error) {
	m, err := s.getMeta(s.db, stream)
	return m.Pos, m.low(), err
}

// ReadFrom returns up to limit retained entries of stream with seq > after,
// in order (starting at the low watermark when after is below it), with the
// stream's head and low watermark, all from one consistent snapshot. A caller
// that asked for entries below Low (after+1 < Low) learns from Low that
// retention deleted them.
func (s *Store) ReadFrom(stream string, after uint64, limit int) (Page, error) {
	return s.read(stream, after, limit, false)
}

// Read returns the retained entries of stream with seq in after+1 ..
// after+limit, in order, and the stream head, both from one consistent
// snapshot. Seqs are gap-free, so on a stream retention has not trimmed
// below after+1 this is simply the next limit entries; entries below the
// low watermark (Bounds) are gone and skipped, and Read never returns an
// entry beyond after+limit. To scan forward past a trimmed range, use ReadFrom.
func (s *Store) Read(stream string, after uint64, limit int) (Pos, []Entry, error) {
	p, err := s.read(stream, after, limit, true)
	return p.Head, p.Entries, err
}

// read reads entries after `after`: up to limit of them from the first
// retained one, or (window) only those with seq ≤ after+limit.
func (s *Store) read(stream string, after uint64, limit int, window bool) (Page, error) {
	snap := s.db.NewSnapshot()
	defer snap.Close()
	m, err := s.getMeta(snap, stream)
	pg := Page{Head: m.Pos, Low: m.low()}
	if err != nil || after >= m.Seq || limit <= 0 {
		return pg, err
	}
	from := max(after+1, pg.Low)
	to := m.Seq // inclusive
	if window && after+uint64(limit) < to {
		to = after + uint64(limit)
	}
	if from > to {
		return pg, nil
	}
	it, err := snap.NewIter(&pebble.IterOptions{
		LowerBound: entryKey(stream, from),
		UpperBound: entryKey(stream, to+1),
	})
	if err != nil {
		return pg, fmt.Errorf("read %s: %w", stream, err)
	}
	defer it.Close()
	bodies := bodyReader{r: snap}
	defer bodies.close()
	for ok := it.First(); ok && len(pg.Entries) < limit; ok = it.Next() {
		seq := seqOfEntryKey(it.Key())
		payload, millis, id, ref, err := decodeEntry(it.Value())
		if err == nil && ref {
			payload, err = bodies.read(id)
		} else {
			payload = bytes.Clone(payload)
		}
		if err != nil {
			return Page{Head: pg.Head, Low: pg.Low}, fmt.Errorf("read %s seq %d: %w", stream, seq, err)
		}
		pg.Entries = append(pg.Entries, Entry{Stream: stream, Pos: Pos{Epoch: m.Epoch, Seq: seq}, Payload: payload, Time: entryTime(millis)})
	}
	if err := it.Error(); err != nil {
		return Page{Head: pg.Head, Low: pg.Low}, fmt.Errorf("read %s: %w", stream, err)
	}
	return pg, nil
}

// Streams returns up to limit streams whose names start with prefix and sort
// after `after` ("" to start at the beginning), in name order, with their
// head and low watermark. Every stream that ever had an event is listed
// until it is dropped, even when retention trimmed all its entries.
func (s *Store) Streams(prefix, after string, limit int) ([]StreamInfo, error) {
	lower := metaKey(prefix)
	if after != "" {
		lower = append(metaKey(after), 0)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(metaKey(prefix))})
	if err != nil {
		return nil, fmt.Errorf("streams %s: %w", prefix, err)
	}
	defer it.Close()
	var out []StreamInfo
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		name := string(it.Key()[1:])
		m, err := decodeMeta(it.Value())
		if err != nil {
			return nil, fmt.Errorf("streams: meta %s: %w", name, err)
		}
		out = append(out, StreamInfo{Name: name, Head: m.Pos, Low: m.low()})
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("streams %s: %w", prefix, err)
	}
	return out, nil
}

// ExpiredBelow finds how far retention by age may trim a stream: it scans
// the retained entries from seq from (or the low watermark, if higher)
// forward, at most limit of them, and returns the seq just above the newest
// entry committed before t, or the scan's start when there is none. Seq
// order is commit order, so every retained entry below the result is older
// than t. An entry of unknown time (written before entries carried their
// time) counts as old only when a later entry is known to be.
func (s *Store) ExpiredBelow(stream string, from uint64, t time.Time, limit int) (uint64, error) {
	snap := s.db.NewSnapshot()
	defer snap.Close()
	m, err := s.getMeta(snap, stream)
	if err != nil {
		return 0, err
	}
	start := max(from, m.low())
	if start > m.Seq || limit <= 0 {
		return start, nil
	}
	it, err := snap.NewIter(&pebble.IterOptions{
		LowerBound: entryKey(stream, start),
		UpperBound: entryKey(stream, m.Seq+1),
	})
	if err != nil {
		return 0, fmt.Errorf("expired %s: %w", stream, err)
	}
	defer it.Close()
	below, cut := start, t.UnixMilli()
	n := 0
	for ok := it.First(); ok && n < limit; ok = it.Next() {
		n++
		_, millis, _, _, err := decodeEntry(it.Value())
		if err != nil {
			return 0, fmt.Errorf("expired %s seq %d: %w", stream, seqOfEntryKey(it.Key()), err)
		}
		if millis == 0 {
			continue // unknown: old only if a later entry is
		}
		if millis >= cut {
			break
		}
		below = seqOfEntryKey(it.Key()) + 1
	}
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("expired %s: %w", stream, err)
	}
	return below, nil
}

// Get reads a KV record written through Batch.Sets or Set. It returns
// what the last commit that has returned left (or a later one's).
func (s *Store) Get(name string) ([]byte, bool, error) {
	cv, found, ok, gen := s.reads.get(name)
	if ok {
		if !found {
			return nil, false, nil
		}
		return append([]byte(nil), cv...), true, nil
	}
	v, closer, err := s.db.Get(kvKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		s.reads.fill(name, gen, nil, false)
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("get %s: %w", name, err)
	}
	defer closer.Close()
	if len(v) <= maxCachedValue {
		s.reads.fill(name, gen, bytes.Clone(v), true)
	}
	return append([]byte(nil), v...), true, nil
}

// Dedup reports whether an unexpired dedup record exists for key, and its value.
func (s *Store) Dedup(key []byte) ([]byte, bool, error) {
	return s.lookupDedup(key, time.Now())
}

// KV is one record returned by Scan.
type KV struct {
	Name  string
	Value []byte
}

// Scan returns up to limit KV records whose names start with prefix and sort
// after `after` (use "" to start at the beginning), in name order.
func (s *Store) Scan(prefix, after string, limit int) ([]KV, error) {
	lower := kvKey(prefix)
	if after != "" {
		lower = append(kvKey(after), 0)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(kvKey(prefix))})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", prefix, err)
	}
	defer it.Close()
	var out []KV
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		out = append(out, KV{Name: string(it.Key()[1:]), Value: append([]byte(nil), it.Value()...)})
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("scan %s: %w", prefix, err)
	}
	return out, nil
}

// prefixEnd is the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Set writes one KV record through the committer.
func (s *Store) Set(ctx context.Context, name string, value []byte) error {
	_, err := s.Commit(ctx, Batch{Sets: map[string][]byte{name: value}})
	return err
}

// Close stops the committer after it has finished every queued batch, then
// closes Pebble. It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	s.pace.stop() // the flush below and a compaction in progress run at full speed: Close waits for them
	if err := s.Health(); err != nil {
		// A flush needs disk space (it could wait for it for ever) and a
		// failed store's pipeline is broken: the synced WAL is replayed at
		// the next open instead.
		s.log.Warn("closing without a flush: the store cannot write", "reason", err)
	} else if err := s.db.Flush(); err != nil {
		s.log.Warn("flush before close", "error", err)
	}
	if err := s.mark.close(); err != nil {
		s.log.Warn("close the commit mark", "error", err)
	}
	return s.db.Close()
}

// getter is what *pebble.DB and *pebble.Snapshot share for point reads.
type getter interface {
	Get(key []byte) ([]byte, io.Closer, error)
}

func (s *Store) getMeta(r getter, stream string) (meta, error) {
	v, closer, err := r.Get(metaKey(stream))
	if errors.Is(err, pebble.ErrNotFound) {
		return meta{}, nil
	}
	if err != nil {
		return meta{}, fmt.Errorf("meta %s: %w", stream, err)
	}
	defer closer.Close()
	m, err := decodeMeta(v)
	if err != nil {
		return meta{}, fmt.Errorf("meta %s: %w", stream, err)
	}
	return m, nil
}
