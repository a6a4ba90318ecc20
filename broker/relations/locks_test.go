package relations

import (
	"testing"
	"time"
)

// TestLocksPerService: two services in one process (as in the tests) have
// their own relation locks; one holding a user's stripe does not hold up
// the other.
func TestLocksPerService(t *testing.T) {
	a, b := &Service{}, &Service{}
	unlock := a.lockUsers("kim", "lee")
	defer unlock()
	done := make(chan struct{})
	go func() {
		b.lockUsers("kim", "lee")()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a second service waited for the first one's relation locks")
	}
}
