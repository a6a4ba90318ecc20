package storage

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// bodies returns the reference count of every body record.
func bodies(t *testing.T, s *Store) map[uint64]uint64 {
	t.Helper()
	it, err := s.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	out := map[uint64]uint64{}
	for ok := it.SeekGE([]byte{kindBody}); ok && it.Key()[0] == kindBody; ok = it.Next() {
		refs, _, err := decodeBody(it.Value())
		if err != nil {
			t.Fatal(err)
		}
		out[uint64(len(out))] = refs
	}
	return out
}

// payloadAt reads one entry's payload ("" when it is gone).
func payloadAt(t *testing.T, s *Store, stream string, seq uint64) string {
	t.Helper()
	_, es, err := s.Read(stream, seq-1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) == 0 {
		return ""
	}
	return string(es[0].Payload)
}

func sharedBatch(p string) Batch {
	return Batch{Appends: []Append{
		{Stream: "u/bob", Payload: []byte(p)},
		{Stream: "u/alice", SameAs: 1},
		{Stream: "c/alice:bob", SameAs: 1},
	}}
}

// A payload shared by three appends is stored once and read back for each,
// after a restart too; replaces, trims and drops give its references back
// and the last takes the body with it.
func TestStore_SharedPayloadStoredOnce(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	var seen []Entry
	s := openStore(t, Options{Dir: dir, Sync: true, OnCommit: func(es []Entry) { seen = append(seen, es...) }})
	if _, err := s.Commit(ctx, sharedBatch("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, sharedBatch("second")); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 6 || string(seen[1].Payload) != "hello" || string(seen[5].Payload) != "second" {
		t.Fatalf("OnCommit saw %+v", seen)
	}
	if b := bodies(t, s); len(b) != 2 || b[0] != 3 || b[1] != 3 {
		t.Fatalf("bodies %v, want two with 3 references", b)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, Options{Dir: dir, Sync: true})
	for _, st := range []string{"u/bob", "u/alice", "c/alice:bob"} {
		if got := payloadAt(t, s, st, 1); got != "hello" {
			t.Fatalf("%s seq 1 = %q after restart", st, got)
		}
	}

	// A replace (recall) and a trim of the same entry in one commit give
	// its reference back once; the others still read the original.
	if _, err := s.Commit(ctx, Batch{
		Replaces: []Replace{{Stream: "c/alice:bob", Seq: 1, Payload: []byte("recalled")}, {Stream: "c/alice:bob", Seq: 1, Payload: []byte("recalled")}},
	}); err != nil {
		t.Fatal(err)
	}
	if got := payloadAt(t, s, "c/alice:bob", 1); got != "recalled" {
		t.Fatalf("replaced entry = %q", got)
	}
	if got := payloadAt(t, s, "u/bob", 1); got != "hello" {
		t.Fatalf("bob's copy after the replace = %q", got)
	}
	if _, err := s.Commit(ctx, Batch{Trims: []Trim{{Stream: "u/bob", Below: 2}, {Stream: "c/alice:bob", Below: 2}}}); err != nil {
		t.Fatal(err)
	}
	if b := bodies(t, s); len(b) != 2 || b[0] != 1 || b[1] != 3 {
		t.Fatalf("bodies %v after replace and trims, want references 1 and 3", b)
	}
	if got := payloadAt(t, s, "u/alice", 1); got != "hello" {
		t.Fatalf("alice's copy after the trims = %q", got)
	}
	if _, err := s.Commit(ctx, Batch{Trims: []Trim{{Stream: "u/alice", Below: 2}}, Drops: []string{"c/alice:bob"}}); err != nil {
		t.Fatal(err)
	}
	if b := bodies(t, s); len(b) != 1 || b[0] != 2 {
		t.Fatalf("bodies %v after the last trim and a drop, want one with 2 references", b)
	}
	if got := payloadAt(t, s, "u/alice", 2); got != "second" {
		t.Fatalf("alice's second = %q", got)
	}
	if _, err := s.Commit(ctx, Batch{Trims: []Trim{{Stream: "u/alice", Below: 3}, {Stream: "u/bob", Below: 3}}}); err != nil {
		t.Fatal(err)
	}
	if b := bodies(t, s); len(b) != 0 {
		t.Fatalf("bodies %v left when no entry refers to them", b)
	}
}

func TestStore_SameAsMustNameAnEarlierAppend(t *testing.T) {
	s := openStore(t, Options{InMemory: true})
	for _, b := range []Batch{
		{Appends: []Append{{Stream: "a", SameAs: 1}}},
		{Appends: []Append{{Stream: "a", Payload: []byte("x")}, {Stream: "b", SameAs: 3}}},
		{Appends: []Append{{Stream: "a", Payload: []byte("x")}, {Stream: "b", SameAs: 1}, {Stream: "c", SameAs: 2}}},
		{Appends: []Append{{Stream: "a", SameAs: -1}}},
	} {
		if _, err := s.Commit(context.Background(), b); !errors.Is(err, ErrBadBatch) {
			t.Fatalf("%+v: err %v, want ErrBadBatch", b.Appends, err)
		}
	}
}

// BenchmarkStore_ReadPage reads a stream in pages of 100 entries, as sync
// and replay do, with the 300-byte payloads in the entries themselves and
// in body records shared by three streams.
func BenchmarkStore_ReadPage(b *testing.B) {
	for _, shared := range []bool{false, true} {
		b.Run(map[bool]string{false: "inline", true: "shared"}[shared], func(b *testing.B) {
			s, err := Open(Options{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			payload := bytes.Repeat([]byte("x"), 300)
			const n = 10000
			for i := 0; i < n; i += 100 {
				var batch Batch
				for range 100 {
					batch.Appends = append(batch.Appends, Append{Stream: "u/bob", Payload: payload})
					if shared {
						at := len(batch.Appends)
						batch.Appends = append(batch.Appends, Append{Stream: "u/alice", SameAs: at}, Append{Stream: "c/alice:bob", SameAs: at})
					} else {
						batch.Appends = append(batch.Appends, Append{Stream: "u/alice", Payload: payload}, Append{Stream: "c/alice:bob", Payload: payload})
					}
				}
				if _, err := s.Commit(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				after := uint64(i*100) % n
				if _, es, err := s.Read("u/alice", after, 100); err != nil || len(es) != 100 {
					b.Fatal(len(es), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/entry")
		})
	}
}

// A stream written before body records (version 2 entries with their own
// payload) reads, replaces and trims as before next to shared entries.
func TestStore_OldEntriesBesideShared(t *testing.T) {
	s := openStore(t, Options{Dir: t.TempDir(), Sync: true})
	ctx := context.Background()
	if _, err := s.Commit(ctx, Batch{Appends: []Append{{Stream: "u/bob", Payload: []byte("old")}, {Stream: "u/alice", Payload: []byte("old")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, sharedBatch("new")); err != nil {
		t.Fatal(err)
	}
	_, es, err := s.Read("u/bob", 0, 10)
	if err != nil || len(es) != 2 || string(es[0].Payload) != "old" || string(es[1].Payload) != "new" {
		t.Fatalf("read %+v, %v", es, err)
	}
	if _, err := s.Commit(ctx, Batch{Replaces: []Replace{{Stream: "u/alice", Seq: 1, Payload: []byte("recalled")}},
		Trims: []Trim{{Stream: "u/bob", Below: 3}}}); err != nil {
		t.Fatal(err)
	}
	if got := payloadAt(t, s, "u/alice", 1); got != "recalled" {
		t.Fatalf("replaced old entry = %q", got)
	}
	if b := bodies(t, s); len(b) != 1 || b[0] != 2 {
		t.Fatalf("bodies %v, want one with 2 references", b)
	}
	if got := payloadAt(t, s, "u/alice", 2); got != "new" {
		t.Fatalf("alice's shared entry = %q", got)
	}
}

// One commit trimming many entries of several streams gives each body back
// one reference per trimmed entry: the bodies are read along the entries
// (one iterator per trim), and a body an earlier trim of the same commit
// already changed is taken from the group, not from the store.
func TestStore_TrimManyBodiesInOneCommit(t *testing.T) {
	backends(t, func(t *testing.T, opts Options) {
		s := openStore(t, opts)
		ctx := context.Background()
		for i := range 20 {
			if _, err := s.Commit(ctx, sharedBatch(string(rune('a'+i)))); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Commit(ctx, Batch{Trims: []Trim{{Stream: "u/bob", Below: 11}, {Stream: "c/alice:bob", Below: 11}, {Stream: "u/alice", Below: 6}}}); err != nil {
			t.Fatal(err)
		}
		b := bodies(t, s)
		if len(b) != 15 {
			t.Fatalf("%d bodies left, want 15 (the first 5 had all their references trimmed)", len(b))
		}
		for i := range uint64(15) {
			want := uint64(3)
			if i < 5 {
				want = 1 // seqs 6-10: alice's copy only
			}
			if b[i] != want {
				t.Fatalf("body %d of the 15 left has %d references, want %d (all: %v)", i, b[i], want, b)
			}
		}
		if got := payloadAt(t, s, "u/alice", 6); got != "f" {
			t.Fatalf("alice's seq 6 = %q", got)
		}
	})
}
