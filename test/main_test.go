package test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: every
// broker is shut down and every client disconnected by then.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
