package storage

import "sync"

// holdCommitter makes the committer wait, once it has taken the next
// request, until release is called before it takes the requests queued
// behind it: everything submitted before release is committed in one group
// (up to MaxBatch). Call it before submitting anything, so the committer
// sees the hook through the queue.
func (s *Store) holdCommitter() (release func()) {
	ch := make(chan struct{})
	s.gathering = func() { <-ch }
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}
