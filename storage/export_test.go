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

// crash stops the store as a killed process would leave it: the committer
// stops and Pebble closes without the flush Close does, so the commits live
// only in the write-ahead log.
func (s *Store) crash() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	_ = s.mark.close()
	return s.db.Close()
}
