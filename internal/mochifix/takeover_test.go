package mochifix

import (
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// TestTakeovers_OldWaitsForItsSuccessor: a taken-over connection's end
// (OnDisconnect) returns only once its successor is established, since
// mochi's cleanup after the hooks would otherwise delete the successor's
// ClientID from the client map; with the bound at an hour, only the
// successor can release it here.
func TestTakeovers_OldWaitsForItsSuccessor(t *testing.T) {
	tk := takeovers{wait: time.Hour}
	old, cl := &mqtt.Client{ID: "bob:phone"}, &mqtt.Client{ID: "bob:phone"}
	tk.begin(old, cl)
	done := make(chan struct{})
	go func() { tk.ended(old); close(done) }()
	tk.established(cl)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the old connection's end was not released by its successor")
	}
	tk.requireEmpty(t)
}

// TestTakeovers_Bounded: a successor that never gets established holds the
// old connection's end for the bound only.
func TestTakeovers_Bounded(t *testing.T) {
	tk := takeovers{wait: 50 * time.Millisecond}
	old, cl := &mqtt.Client{ID: "a"}, &mqtt.Client{ID: "a"}
	tk.begin(old, cl)
	began := time.Now()
	tk.ended(old)
	if d := time.Since(began); d < 50*time.Millisecond {
		t.Fatalf("ended returned after %v, want it to wait for the successor up to the bound", d)
	}
	tk.ended(cl) // the successor ends without being established
	tk.requireEmpty(t)
}

// TestTakeovers_NothingKept: whatever the order of the two connections'
// events, nothing is kept once both are done, and an old connection whose
// successor is already established, or ended, does not wait.
func TestTakeovers_NothingKept(t *testing.T) {
	tk := takeovers{wait: time.Hour}
	for _, order := range []string{"established, then the old ends", "the successor ends first"} {
		old, cl := &mqtt.Client{ID: "x"}, &mqtt.Client{ID: "x"}
		tk.begin(old, cl)
		switch order {
		case "established, then the old ends":
			tk.established(cl)
			tk.ended(old) // would block for an hour if it waited
			tk.ended(cl)
		case "the successor ends first":
			tk.ended(cl)
			tk.ended(old)
		}
		tk.requireEmpty(t)
	}
	tk.ended(&mqtt.Client{ID: "never taken over"}) // no takeover: returns at once
}

func (t *takeovers) requireEmpty(tb testing.TB) {
	tb.Helper()
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.byOld) != 0 || len(t.byNew) != 0 {
		tb.Fatalf("takeovers keep %d old and %d successors, want none", len(t.byOld), len(t.byNew))
	}
}
