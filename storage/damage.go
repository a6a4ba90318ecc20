package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/cockroachdb/pebble"
)

// Pebble replays its newest write-ahead log up to the first record it
// cannot read and treats the rest as a torn tail, silently: a WAL cut or
// corrupted after a crash loses acknowledged commits, and the streams go on
// with the same Epoch, reusing Seqs clients have already seen. So the store
// counts its group commits in the database itself (the commit-count record,
// written in every group) and, after each fsynced group, in a small file
// beside it (MarkFile, written without an fsync: it survives a killed
// process, and after a power loss it can only be behind, never ahead). At
// open a database that holds fewer commits than the mark has lost
// acknowledged ones. [STORE-DAMAGE]

// MarkFile is the commit-count file in the data dir.
const MarkFile = "IMBROKER-COMMITS"

// commitCountKey holds the number of group commits in the database.
var commitCountKey = []byte{kindCount}

const markMagic = 0x696d62726f6b6572 // "imbroker": the file's second word is the count XOR this

// DamagedError is a store that lost acknowledged commits (Open refuses it
// unless Options.RecoverDamaged).
type DamagedError struct {
	Dir       string
	Held      uint64 // group commits the database holds
	Acked     uint64 // group commits acknowledged (the mark)
	NewestWAL string // the newest write-ahead log file, "" if none is left
}

func (e *DamagedError) Error() string {
	wal := "its write-ahead log"
	if e.NewestWAL != "" {
		wal = "the write-ahead log " + e.NewestWAL
	}
	return fmt.Sprintf("storage: the store in %s is damaged: it holds %d group commits but %d were acknowledged, "+
		"so %s was cut or corrupted and %d acknowledged commits are lost. Restore the data dir from a backup, "+
		"or set storage.recover_damaged: true to start with what is readable (every stream then gets a new Epoch, "+
		"so clients resync)", e.Dir, e.Held, e.Acked, wal, e.Acked-e.Held)
}

// ErrDamaged matches a *DamagedError with errors.Is.
var ErrDamaged = errors.New("storage: damaged")

func (e *DamagedError) Is(target error) bool { return target == ErrDamaged }

// readMark reads the commit count of dir's mark file; ok is false when
// there is none (a new store, or one written before the mark existed).
func readMark(dir string) (n uint64, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, MarkFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read %s: %w", MarkFile, err)
	}
	n, ok = decodeMark(b)
	if !ok {
		return 0, false, fmt.Errorf("%s in %s is corrupt: delete it to start without the check", MarkFile, dir)
	}
	return n, true, nil
}

// decodeMark decodes the mark file: the count and the count XOR markMagic,
// both big-endian.
func decodeMark(b []byte) (uint64, bool) {
	if len(b) != 16 {
		return 0, false
	}
	n := binary.BigEndian.Uint64(b)
	return n, binary.BigEndian.Uint64(b[8:]) == n^markMagic
}

func encodeMark(buf *[16]byte, n uint64) []byte {
	binary.BigEndian.PutUint64(buf[:8], n)
	binary.BigEndian.PutUint64(buf[8:], n^markMagic)
	return buf[:]
}

// marker writes the mark file after each group commit (committer-owned).
type marker struct {
	f   *os.File
	buf [16]byte
}

func openMarker(dir string, n uint64) (*marker, error) {
	f, err := os.OpenFile(filepath.Join(dir, MarkFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", MarkFile, err)
	}
	m := &marker{f: f}
	if err := m.write(n); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil { // the starting count, once
		f.Close()
		return nil, fmt.Errorf("sync %s: %w", MarkFile, err)
	}
	return m, nil
}

// write records n acknowledged group commits: one pwrite of 16 bytes.
func (m *marker) write(n uint64) error {
	if _, err := m.f.WriteAt(encodeMark(&m.buf, n), 0); err != nil {
		return fmt.Errorf("write %s: %w", MarkFile, err)
	}
	return nil
}

func (m *marker) close() error {
	if m == nil {
		return nil
	}
	return m.f.Close()
}

// readCount reads the commit-count record.
func readCount(r getter) (uint64, error) { return readUvarint(r, commitCountKey, "commit count") }

// readUvarint reads a record holding one uvarint (0 when absent).
func readUvarint(r getter, key []byte, what string) (uint64, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	defer closer.Close()
	n, k := binary.Uvarint(v)
	if k <= 0 {
		return 0, fmt.Errorf("%s: %w", what, errCorrupt)
	}
	return n, nil
}

// checkDamage compares the commits a database in dir holds with its mark,
// reading it read-only so a refused store is left exactly as it was.
func checkDamage(dir string, po *pebble.Options) (*DamagedError, error) {
	acked, ok, err := readMark(dir)
	if err != nil || !ok {
		return nil, err
	}
	ro := *po
	ro.ReadOnly = true
	db, err := pebble.Open(dir, &ro)
	if err != nil {
		return nil, openError(dir, err)
	}
	held, err := readCount(db)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if held >= acked {
		return nil, nil
	}
	return &DamagedError{Dir: dir, Held: held, Acked: acked, NewestWAL: newestWAL(dir)}, nil
}

// openError explains a store Pebble cannot open because it is corrupt.
func openError(dir string, err error) error {
	if pebble.IsCorruptionError(err) {
		return fmt.Errorf("storage: the store in %s is damaged and cannot be opened (%w); restore the data dir from a backup", dir, err)
	}
	return fmt.Errorf("open pebble %s: %w", dir, err)
}

// newestWAL names the newest write-ahead log file in dir.
func newestWAL(dir string) string {
	names, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names) // fixed-width file numbers
	return filepath.Base(names[len(names)-1])
}

// newEpochs gives every stream a new Epoch after a damaged store was
// opened with RecoverDamaged: any of them may have lost events, and a
// client that saw a Seq the store no longer holds must not take a later
// event with that Seq for one it has seen. The retained entries keep
// their Seqs under the new Epoch; a client that sees the Epoch change
// syncs from the start.
func newEpochs(db *pebble.DB, now uint64) (int, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindMeta}, UpperBound: []byte{kindMeta + 1}})
	if err != nil {
		return 0, fmt.Errorf("new epochs: %w", err)
	}
	defer it.Close()
	b := db.NewBatch()
	defer func() { b.Close() }()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		m, err := decodeMeta(it.Value())
		if err != nil {
			return n, fmt.Errorf("new epochs: meta %s: %w", it.Key()[1:], err)
		}
		m.Epoch = max(now, m.Epoch+1)
		if err := b.Set(it.Key(), encodeMeta(m), nil); err != nil {
			return n, fmt.Errorf("new epochs: %w", err)
		}
		if n++; b.Count() >= 10000 {
			if err := b.Commit(pebble.Sync); err != nil {
				return n, fmt.Errorf("new epochs: %w", err)
			}
			b.Close()
			b = db.NewBatch()
		}
	}
	if err := it.Error(); err != nil {
		return n, fmt.Errorf("new epochs: %w", err)
	}
	return n, b.Commit(pebble.Sync)
}

// openCount reads the commit count at open, recovers a damaged store
// (Open refused it unless Options.RecoverDamaged) and starts the mark.
func (s *Store) openCount(damage *DamagedError) error {
	n, err := readCount(s.db)
	if err != nil {
		return err
	}
	s.commits = n
	switch {
	case damage != nil:
		if err := s.recoverDamaged(damage); err != nil {
			return err
		}
	case s.opts.NewEpochs:
		started := time.Now()
		n, err := newEpochs(s.db, s.nowEpoch())
		if err != nil {
			return err
		}
		s.log.Warn("every stream has a new Epoch (-new-epochs: the data dir was restored); clients resync",
			"dir", s.opts.Dir, "streams_new_epoch", n, "took", time.Since(started))
	}
	// With a Log, local writes are not fsynced (the log holds them): a torn
	// WAL tail is expected after a crash and re-applied from the log, so
	// the mark, which would take it for damage, is not kept.
	if s.opts.Sync && !s.opts.InMemory && s.opts.Log == nil {
		if s.mark, err = openMarker(s.opts.Dir, n); err != nil {
			return err
		}
	}
	return nil
}

// recoverDamaged is Open's part for a damaged store opened anyway.
func (s *Store) recoverDamaged(d *DamagedError) error {
	started := time.Now()
	n, err := newEpochs(s.db, s.nowEpoch())
	if err != nil {
		return err
	}
	s.log.Error("store was damaged and recovered with storage.recover_damaged: acknowledged commits are lost; every stream has a new Epoch, so clients resync",
		"dir", d.Dir, "commits_held", d.Held, "commits_acknowledged", d.Acked, "commits_lost", d.Acked-d.Held,
		"newest_wal", d.NewestWAL, "streams_new_epoch", n, "took", time.Since(started))
	return nil
}
