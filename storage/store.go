// Package storage is imbroker's embedded Pebble store: ordered event streams
// with gap-free (epoch, seq) positions allocated in the same batch that writes
// the events, group commit, dedup records and small KV records. It knows
// nothing of MQTT or HTTP.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
)

// Errors returned by the store.
var (
	ErrClosed    = errors.New("storage: closed")
	ErrBadStream = errors.New("storage: invalid stream name")
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
	// a missing entry is skipped.
	Replaces []Replace
}

// Update changes one KV record. Fn gets the current value (found=false when
// absent) and the positions of this batch's appends; it returns the new
// value, or nil to delete the record. Fn runs on the committer goroutine:
// it must be quick and must not call the store.
type Update struct {
	Name string
	Fn   func(old []byte, found bool, pos []Pos) []byte
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
}

// Options configure Open.
type Options struct {
	Dir      string
	InMemory bool // a memory filesystem: fast tests, nothing survives Close
	Sync     bool // fsync each group commit before acknowledging it
	MaxBatch int  // batches per group commit
	MaxQueue int  // batches waiting for the committer
	Logger   *slog.Logger
	// OnCommit is called on the committer goroutine after each group commit
	// with its entries in commit order, so a consumer sees every stream in
	// seq order. It must not block for long: it holds up every commit.
	OnCommit func([]Entry)
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
	heads    map[string]Pos // committer-owned cache of stream heads
	nowEpoch func() uint64
}

type request struct {
	ctx   context.Context
	batch Batch
	res   Result
	err   error
	done  chan struct{}
}

// Open opens (or creates) the store.
func Open(opts Options) (*Store, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1024
	}
	if opts.MaxQueue <= 0 {
		opts.MaxQueue = 8192
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	po := &pebble.Options{Logger: pebbleLogger{opts.Logger}}
	dir := opts.Dir
	if opts.InMemory {
		po.FS = vfs.NewMem()
		dir = "mem"
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("open pebble %s: %w", dir, err)
	}
	s := &Store{
		db: db, opts: opts, log: opts.Logger,
		queue: make(chan *request, opts.MaxQueue),
		stop:  make(chan struct{}), done: make(chan struct{}),
		heads:    make(map[string]Pos),
		nowEpoch: func() uint64 { return uint64(time.Now().UnixMilli()) },
	}
	go s.commitLoop()
	return s, nil
}

// Commit submits a batch to the group committer and waits until it is
// durable (per Options.Sync) or failed. The context only bounds the wait for
// a queue slot; once queued, a batch is committed or failed as a whole.
func (s *Store) Commit(ctx context.Context, b Batch) (Result, error) {
	for _, a := range b.Appends {
		if a.Stream == "" || strings.IndexByte(a.Stream, 0) >= 0 {
			return Result{}, ErrBadStream
		}
	}
	r := &request{ctx: ctx, batch: b, done: make(chan struct{})}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return Result{}, ErrClosed
	}
	select {
	case s.queue <- r:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return Result{}, ctx.Err()
	}
	<-r.done
	return r.res, r.err
}

// Head returns the committed head of a stream ({0,0} if it never had events).
func (s *Store) Head(stream string) (Pos, error) {
	return s.getMeta(s.db, stream)
}

// Read returns up to limit entries of stream with seq > after, in order,
// and the stream head, both from one consistent snapshot.
func (s *Store) Read(stream string, after uint64, limit int) (Pos, []Entry, error) {
	snap := s.db.NewSnapshot()
	defer snap.Close()
	head, err := s.getMeta(snap, stream)
	if err != nil || after >= head.Seq || limit <= 0 {
		return head, nil, err
	}
	it, err := snap.NewIter(&pebble.IterOptions{
		LowerBound: entryKey(stream, after+1),
		UpperBound: entryKey(stream, head.Seq+1),
	})
	if err != nil {
		return head, nil, fmt.Errorf("read %s: %w", stream, err)
	}
	defer it.Close()
	var out []Entry
	next := after + 1
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		payload, err := decodeEntry(it.Value())
		if err != nil {
			return head, nil, fmt.Errorf("read %s seq %d: %w", stream, next, err)
		}
		out = append(out, Entry{Stream: stream, Pos: Pos{Epoch: head.Epoch, Seq: next}, Payload: append([]byte(nil), payload...)})
		next++
	}
	if err := it.Error(); err != nil {
		return head, nil, fmt.Errorf("read %s: %w", stream, err)
	}
	return head, out, nil
}

// Get reads a KV record written through Batch.Sets or Set.
func (s *Store) Get(name string) ([]byte, bool, error) {
	v, closer, err := s.db.Get(kvKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("get %s: %w", name, err)
	}
	defer closer.Close()
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
	if err := s.db.Flush(); err != nil {
		s.log.Warn("flush before close", "error", err)
	}
	return s.db.Close()
}

// getter is what *pebble.DB and *pebble.Snapshot share for point reads.
type getter interface {
	Get(key []byte) ([]byte, io.Closer, error)
}

func (s *Store) getMeta(r getter, stream string) (Pos, error) {
	v, closer, err := r.Get(metaKey(stream))
	if errors.Is(err, pebble.ErrNotFound) {
		return Pos{}, nil
	}
	if err != nil {
		return Pos{}, fmt.Errorf("meta %s: %w", stream, err)
	}
	defer closer.Close()
	p, err := decodeMeta(v)
	if err != nil {
		return Pos{}, fmt.Errorf("meta %s: %w", stream, err)
	}
	return p, nil
}
