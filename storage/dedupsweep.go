package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"
)

// Expired dedup records are deleted by SweepDedups, which the broker's
// maintenance loop calls every retention.sweep_interval: each record
// outlives its window by at most a few intervals instead of forever (every
// send leaves one). A pass reads from a cursor that wraps around, at most a
// given number of records, and hands the expired keys to the committer
// (Batch.ExpireDedups), which deletes a key only if it is still expired
// then: a resend that wrote the key again after the scan keeps its record.

const dedupSweepPage = 1024 // records examined per read; expired ones go in one commit

// SweepDedups examines up to max dedup records from where the last call
// stopped (wrapping around) and has the committer delete those expired as
// of now. It returns how many it found expired (the committer keeps any
// written again since, by its own clock). Between two pages it calls rest
// (nil: none), which paces the pass; an error from rest ends it. One caller
// at a time.
func (s *Store) SweepDedups(ctx context.Context, now time.Time, max int, rest func(context.Context) error) (int, error) {
	deleted := 0
	wrapped := s.sweepCursor == nil // a pass from the start ends at the end
	for examined := 0; examined < max; {
		if err := ctx.Err(); err != nil {
			return deleted, err
		}
		if rest != nil && examined > 0 {
			if err := rest(ctx); err != nil {
				return deleted, err
			}
		}
		expired, n, next, err := s.expiredDedups(s.sweepCursor, now, min(dedupSweepPage, max-examined))
		if err != nil {
			return deleted, err
		}
		examined += n
		if len(expired) > 0 {
			if _, err := s.Commit(ctx, Batch{ExpireDedups: expired}); err != nil {
				return deleted, err
			}
			deleted += len(expired)
		}
		s.sweepCursor = next
		if next == nil {
			if wrapped {
				return deleted, nil // every record examined once
			}
			wrapped = true // reached the end: go on from the start
		}
	}
	return deleted, nil
}

// expiredDedups reads up to limit dedup records after the key `after` (nil:
// from the first) and returns the expired ones' keys, how many it read, and
// where to go on (nil at the end).
func (s *Store) expiredDedups(after []byte, now time.Time, limit int) (expired [][]byte, n int, next []byte, err error) {
	lower := []byte{kindDedup}
	if after != nil {
		lower = append(dedupKey(after), 0) // the first key after `after`
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: []byte{kindDedup + 1}})
	if err != nil {
		return nil, 0, nil, fmt.Errorf("scan dedup records: %w", err)
	}
	defer it.Close()
	var last []byte
	for ok := it.First(); ok && n < limit; ok = it.Next() {
		n++
		key := it.Key()[1:]
		last = append(last[:0], key...)
		exp, _, derr := decodeDedup(it.Value())
		if derr != nil || now.UnixNano() > exp { // a corrupt record is no use either
			expired = append(expired, append([]byte(nil), key...))
		}
	}
	if err := it.Error(); err != nil {
		return nil, 0, nil, fmt.Errorf("scan dedup records: %w", err)
	}
	if n == limit && last != nil {
		next = append([]byte(nil), last...)
	}
	return expired, n, next, nil
}
