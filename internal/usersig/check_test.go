package usersig

import (
	"errors"
	"testing"
	"time"
)

// TestCheck: one decoding gives both the issue and the expiry time of v2
// and v1 sigs; garbage gives neither.
func TestCheck(t *testing.T) {
	at := time.Unix(1700000000, 0)
	s := New(1400000000, keyB)
	s.PublicKey = mustPublic(t, tencentP256Public)
	v2, err := s.GenAt("alice", at, 3600, nil)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := GenV1(mustPrivate(t, tencentP256Private), 1400000000, "alice", at.Add(time.Second), 3600)
	if err != nil {
		t.Fatal(err)
	}
	for sig, want := range map[string]time.Time{v2: at, v1: at.Add(time.Second)} {
		c, err := s.Check("alice", sig, at.Add(time.Minute))
		if err != nil || !c.Issued.Equal(want) || !c.Expires.Equal(want.Add(time.Hour)) {
			t.Errorf("Check = %+v %v, want issued %v, expires an hour later", c, err, want)
		}
		if cb, err := s.CheckBytes("alice", []byte(sig), at.Add(time.Minute)); err != nil || cb != c {
			t.Errorf("CheckBytes = %+v %v, Check %+v", cb, err, c)
		}
		if _, err := s.CheckBytes("bob", []byte(sig), at.Add(time.Minute)); !errors.Is(err, ErrUserMismatch) {
			t.Errorf("CheckBytes for bob = %v", err)
		}
	}
	if c, err := s.Check("alice", "not a sig", at); err == nil || !c.Issued.IsZero() {
		t.Errorf("Check of garbage = %+v %v", c, err)
	}
	if _, err := s.CheckBytes("alice", nil, at); !errors.Is(err, ErrEmpty) {
		t.Errorf("CheckBytes of nothing = %v", err)
	}
}

// BenchmarkCheck is the UserSig side of a login (docs/benchmarks.md):
// CheckBytes, as the broker calls it with the CONNECT's password.
func BenchmarkCheck(b *testing.B) {
	s := New(1400000000, keyB)
	now := time.Now()
	sig, err := s.GenAt("alice", now, 86400, nil)
	if err != nil {
		b.Fatal(err)
	}
	pw := []byte(sig)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.CheckBytes("alice", pw, now); err != nil {
			b.Fatal(err)
		}
	}
}
