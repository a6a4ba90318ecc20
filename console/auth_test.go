package console

import (
	"net/http"
	"testing"
	"time"

	"github.com/imbroker/imbroker/config"
)

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func request(tok string) *http.Request {
	r, _ := http.NewRequest("GET", "/console/api/session", nil)
	r.AddCookie(&http.Cookie{Name: cookieName, Value: tok})
	return r
}

// TestSessionExpires: a session is refused once console.session_ttl has
// passed, and forgotten.
func TestSessionExpires(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	a := newAuth(config.Console{Password: "a-long-password", SessionTTL: time.Hour, SignInFailures: 5}, clk.now)
	tok, s, _, msg := a.check("10.0.0.1", "a-long-password")
	if tok == "" || s.csrf == "" || s.csrf == tok {
		t.Fatalf("sign-in: %q", msg)
	}
	clk.t = clk.t.Add(time.Hour - time.Second)
	if _, _, ok := a.lookup(request(tok)); !ok {
		t.Fatal("session refused before it expired")
	}
	clk.t = clk.t.Add(time.Second)
	if _, _, ok := a.lookup(request(tok)); ok {
		t.Fatal("session accepted after it expired")
	}
	if len(a.sessions) != 0 {
		t.Fatal("expired session kept")
	}
}

// TestSignInFailuresRefill: after the allowed failures an address is
// refused, even with the right password, until the budget refills; other
// addresses are not held back.
func TestSignInFailuresRefill(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	a := newAuth(config.Console{Password: "a-long-password", SessionTTL: time.Hour, SignInFailures: 2}, clk.now)
	for i := 0; i < 2; i++ {
		if _, _, st, _ := a.check("10.0.0.1", "wrong"); st != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, st)
		}
	}
	if tok, _, st, _ := a.check("10.0.0.1", "a-long-password"); tok != "" || st != http.StatusTooManyRequests {
		t.Fatalf("after the budget: %q %d", tok, st)
	}
	if tok, _, _, _ := a.check("10.0.0.2", "a-long-password"); tok == "" {
		t.Fatal("another address was refused")
	}
	clk.t = clk.t.Add(30 * time.Second) // one failure's worth refills
	if tok, _, _, msg := a.check("10.0.0.1", "a-long-password"); tok == "" {
		t.Fatalf("after the refill: %s", msg)
	}
}

// TestSessionsBounded: past maxSessions the oldest session goes.
func TestSessionsBounded(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	a := newAuth(config.Console{Password: "a-long-password", SessionTTL: time.Hour, SignInFailures: 5}, clk.now)
	first, _, _, _ := a.check("10.0.0.1", "a-long-password")
	for i := 0; i < maxSessions; i++ {
		clk.t = clk.t.Add(time.Second)
		a.check("10.0.0.1", "a-long-password")
	}
	if _, _, ok := a.lookup(request(first)); ok || len(a.sessions) != maxSessions {
		t.Fatalf("oldest kept (%v) or %d sessions", ok, len(a.sessions))
	}
}
