package usersig

import (
	"testing"
	"time"
)

// TestIssuedAt: the issue time of v2 and v1 sigs; garbage has none.
func TestIssuedAt(t *testing.T) {
	at := time.Unix(1700000000, 0)
	v2, err := New(1400000000, keyB).GenAt("alice", at, 3600, nil)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := GenV1(mustPrivate(t, tencentP256Private), 1400000000, "alice", at.Add(time.Second), 3600)
	if err != nil {
		t.Fatal(err)
	}
	for sig, want := range map[string]time.Time{v2: at, v1: at.Add(time.Second)} {
		if got, ok := IssuedAt(sig); !ok || !got.Equal(want) {
			t.Errorf("IssuedAt = %v %v, want %v", got, ok, want)
		}
	}
	if _, ok := IssuedAt("not a sig"); ok {
		t.Error("IssuedAt of garbage succeeded")
	}
}
