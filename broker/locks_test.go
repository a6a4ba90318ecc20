package broker

import (
	"testing"
	"time"
)

// TestRelationLocksPerBroker: two brokers in one process (as in the tests)
// have their own relation locks; one holding a user's stripe does not hold
// up the other.
func TestRelationLocksPerBroker(t *testing.T) {
	a, b := &Broker{}, &Broker{}
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
		t.Fatal("a second broker waited for the first one's relation locks")
	}
}
