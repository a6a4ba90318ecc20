package storage

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// appendN appends n events ("<stream>#i") to stream and returns the last position.
func appendN(t *testing.T, s *Store, stream string, n int) Pos {
	t.Helper()
	var last Pos
	for i := 0; i < n; i++ {
		r, err := s.Commit(context.Background(), Batch{Appends: []Append{{Stream: stream, Payload: fmt.Appendf(nil, "%s#%d", stream, i)}}})
		if err != nil {
			t.Fatal(err)
		}
		last = r.Pos[0]
	}
	return last
}

func seqs(es []Entry) []uint64 {
	out := []uint64{}
	for _, e := range es {
		out = append(out, e.Pos.Seq)
	}
	return out
}

func wantSeqs(t *testing.T, what string, es []Entry, from, to uint64) {
	t.Helper()
	got := seqs(es)
	if to < from {
		if len(got) != 0 {
			t.Fatalf("%s: seqs %v, want none", what, got)
		}
		return
	}
	if len(got) != int(to-from+1) {
		t.Fatalf("%s: seqs %v, want %d..%d", what, got, from, to)
	}
	for i, s := range got {
		if s != from+uint64(i) {
			t.Fatalf("%s: seqs %v, want %d..%d", what, got, from, to)
		}
	}
}

func trim(t *testing.T, s *Store, trims ...Trim) {
	t.Helper()
	if _, err := s.Commit(context.Background(), Batch{Trims: trims}); err != nil {
		t.Fatal(err)
	}
}

func bounds(t *testing.T, s *Store, stream string) (Pos, uint64) {
	t.Helper()
	head, low, err := s.Bounds(stream)
	if err != nil {
		t.Fatal(err)
	}
	return head, low
}

func TestStore_TrimsAndBounds(t *testing.T) {
	backends(t, func(t *testing.T, opts Options) {
		s := openStore(t, opts)
		if head, low := bounds(t, s, "u/a"); head != (Pos{}) || low != 1 {
			t.Fatalf("unknown stream: head %+v low %d", head, low)
		}
		last := appendN(t, s, "u/a", 10)
		appendN(t, s, "u/b", 3)
		if head, low := bounds(t, s, "u/a"); head != last || low != 1 {
			t.Fatalf("untrimmed: head %+v low %d", head, low)
		}

		trim(t, s, Trim{Stream: "u/a", Below: 4})
		if head, low := bounds(t, s, "u/a"); head != last || low != 4 {
			t.Fatalf("after trim: head %+v low %d", head, low)
		}
		// Read is a seq window: the trimmed part of it is skipped, nothing beyond it is returned.
		_, es, _ := s.Read("u/a", 0, 10)
		wantSeqs(t, "Read(0,10)", es, 4, 10)
		_, es, _ = s.Read("u/a", 0, 3)
		wantSeqs(t, "Read(0,3)", es, 1, 0)
		_, es, _ = s.Read("u/a", 1, 4)
		wantSeqs(t, "Read(1,4)", es, 4, 5)
		// ReadFrom starts at the first retained entry and reports Low.
		pg, err := s.ReadFrom("u/a", 0, 3)
		if err != nil || pg.Low != 4 || pg.Head != last {
			t.Fatalf("ReadFrom: %+v %v", pg, err)
		}
		wantSeqs(t, "ReadFrom(0,3)", pg.Entries, 4, 6)
		pg, _ = s.ReadFrom("u/a", 6, 100)
		wantSeqs(t, "ReadFrom(6)", pg.Entries, 7, 10)

		// Never lowered; another stream untouched; unknown streams not created.
		trim(t, s, Trim{Stream: "u/a", Below: 2}, Trim{Stream: "u/nobody", Below: 5})
		if _, low := bounds(t, s, "u/a"); low != 4 {
			t.Fatalf("trim lowered low to %d", low)
		}
		if head, low := bounds(t, s, "u/b"); head.Seq != 3 || low != 1 {
			t.Fatalf("u/b: head %+v low %d", head, low)
		}
		if head, _ := bounds(t, s, "u/nobody"); head != (Pos{}) {
			t.Fatalf("trim created a stream: %+v", head)
		}
		// A trim for another epoch is ignored.
		trim(t, s, Trim{Stream: "u/a", Below: 8, Epoch: last.Epoch + 1})
		if _, low := bounds(t, s, "u/a"); low != 4 {
			t.Fatalf("foreign-epoch trim applied: low %d", low)
		}

		// Trimming everything keeps the head: seqs go on gap-free.
		trim(t, s, Trim{Stream: "u/a", Below: 1000, Epoch: last.Epoch})
		if head, low := bounds(t, s, "u/a"); head != last || low != 11 {
			t.Fatalf("trim all: head %+v low %d", head, low)
		}
		pg, _ = s.ReadFrom("u/a", 0, 100)
		if len(pg.Entries) != 0 || pg.Low != 11 {
			t.Fatalf("trim all: %+v", pg)
		}
		if next := appendN(t, s, "u/a", 1); next.Seq != 11 || next.Epoch != last.Epoch {
			t.Fatalf("append after trim all: %+v", next)
		}
		pg, _ = s.ReadFrom("u/a", 0, 100)
		wantSeqs(t, "after trim all", pg.Entries, 11, 11)

		// A drop clears the watermark with the history.
		if _, err := s.Commit(context.Background(), Batch{Drops: []string{"u/a"}}); err != nil {
			t.Fatal(err)
		}
		s.nowEpoch = func() uint64 { return last.Epoch + 7 }
		appendN(t, s, "u/a", 2)
		if head, low := bounds(t, s, "u/a"); head.Seq != 2 || low != 1 {
			t.Fatalf("after drop: head %+v low %d", head, low)
		}
	})
}

func TestStore_TrimInSameGroupAsAppends(t *testing.T) {
	s := openStore(t, Options{InMemory: true})
	appendN(t, s, "u/a", 3)
	// Appends and a trim in one batch: the trim sees the appends.
	r, err := s.Commit(context.Background(), Batch{
		Appends: []Append{{Stream: "u/a", Payload: []byte("4")}, {Stream: "u/a", Payload: []byte("5")}},
		Trims:   []Trim{{Stream: "u/a", Below: 5}},
	})
	if err != nil || r.Pos[1].Seq != 5 {
		t.Fatalf("%+v %v", r, err)
	}
	pg, _ := s.ReadFrom("u/a", 0, 10)
	if pg.Low != 5 {
		t.Fatalf("low %d", pg.Low)
	}
	wantSeqs(t, "kept", pg.Entries, 5, 5)
	// A recall of a trimmed entry does not bring it back; of a kept one keeps its time.
	before := pg.Entries[0].Time
	if _, err := s.Commit(context.Background(), Batch{Replaces: []Replace{{Stream: "u/a", Seq: 2, Payload: []byte("x")}, {Stream: "u/a", Seq: 5, Payload: []byte("r")}}}); err != nil {
		t.Fatal(err)
	}
	_, es, _ := s.Read("u/a", 0, 10)
	wantSeqs(t, "after replace", es, 5, 5)
	if string(es[0].Payload) != "r" || !es[0].Time.Equal(before) {
		t.Fatalf("replaced entry %q at %v, was at %v", es[0].Payload, es[0].Time, before)
	}
}

func TestStore_LowSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	last := appendN(t, s, "g/g1", 6)
	trim(t, s, Trim{Stream: "g/g1", Below: 4})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, Options{Dir: dir, Sync: true})
	if head, low := bounds(t, s2, "g/g1"); head != last || low != 4 {
		t.Fatalf("after reopen: head %+v low %d", head, low)
	}
	if next := appendN(t, s2, "g/g1", 1); next.Seq != 7 || next.Epoch != last.Epoch {
		t.Fatalf("append after reopen: %+v", next)
	}
	// The committer's cache kept the watermark: a lower trim is still refused.
	trim(t, s2, Trim{Stream: "g/g1", Below: 3})
	pg, _ := s2.ReadFrom("g/g1", 0, 10)
	if pg.Low != 4 {
		t.Fatalf("low %d", pg.Low)
	}
	wantSeqs(t, "after reopen", pg.Entries, 4, 7)
}

func TestStore_Version1RecordsStillDecode(t *testing.T) {
	backends(t, func(t *testing.T, opts Options) {
		s := openStore(t, opts)
		// What an earlier build wrote: version-1 entries and meta.
		const epoch = 1700000000000
		meta1 := []byte{1}
		meta1 = append(meta1, encodeUvarints(epoch, 2)...)
		for seq, p := range []string{"old1", "old2"} {
			if err := s.db.Set(entryKey("u/old", uint64(seq+1)), append([]byte{1}, p...), nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.db.Set(metaKey("u/old"), meta1, nil); err != nil {
			t.Fatal(err)
		}
		if head, low := bounds(t, s, "u/old"); head != (Pos{Epoch: epoch, Seq: 2}) || low != 1 {
			t.Fatalf("v1 meta: head %+v low %d", head, low)
		}
		next := appendN(t, s, "u/old", 1)
		if next != (Pos{Epoch: epoch, Seq: 3}) {
			t.Fatalf("append after v1: %+v", next)
		}
		_, es, err := s.Read("u/old", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		wantSeqs(t, "v1+v2", es, 1, 3)
		if string(es[0].Payload) != "old1" || string(es[1].Payload) != "old2" || string(es[2].Payload) != "u/old#0" {
			t.Fatalf("payloads %q %q %q", es[0].Payload, es[1].Payload, es[2].Payload)
		}
		if !es[0].Time.IsZero() || !es[1].Time.IsZero() || es[2].Time.IsZero() {
			t.Fatalf("times %v %v %v", es[0].Time, es[1].Time, es[2].Time)
		}
		// The meta is now version 2 and the v1 entries can be trimmed.
		trim(t, s, Trim{Stream: "u/old", Below: 2})
		if head, low := bounds(t, s, "u/old"); head.Seq != 3 || low != 2 {
			t.Fatalf("after trim: head %+v low %d", head, low)
		}
	})
}

func encodeUvarints(vs ...uint64) []byte {
	var b []byte
	for _, v := range vs {
		for v >= 0x80 {
			b = append(b, byte(v)|0x80)
			v >>= 7
		}
		b = append(b, byte(v))
	}
	return b
}

func TestStore_CorruptRecords(t *testing.T) {
	for _, v := range [][]byte{nil, {3}, {2, 1, 2, 3}} {
		if _, _, _, _, err := decodeEntry(v); err == nil {
			t.Errorf("entry %v decoded", v)
		}
	}
	for _, v := range [][]byte{nil, {3, 1, 1}, {1, 1}, {2, 1, 1}, {2, 0x80}} {
		if _, err := decodeMeta(v); err == nil {
			t.Errorf("meta %v decoded", v)
		}
	}
	m := meta{Pos: Pos{Epoch: 1 << 40, Seq: 300}, Low: 200}
	if got, err := decodeMeta(encodeMeta(m)); err != nil || got != m {
		t.Fatalf("meta round trip: %+v %v", got, err)
	}
}

func TestStore_EntryTimesAndExpiredBelow(t *testing.T) {
	backends(t, func(t *testing.T, opts Options) {
		var committed []Entry
		opts.OnCommit = func(es []Entry) { committed = append(committed, es...) }
		s := openStore(t, opts)
		t0 := time.UnixMilli(1_800_000_000_000)
		// Two entries of unknown time first (written by an earlier build).
		for seq := uint64(1); seq <= 2; seq++ {
			if err := s.db.Set(entryKey("u/a", seq), []byte{1, 'x'}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.db.Set(metaKey("u/a"), append([]byte{1}, encodeUvarints(5, 2)...), nil); err != nil {
			t.Fatal(err)
		}
		// Then seqs 3..6 at t0, t0+1m, t0+2m, t0+3m.
		for i := 0; i < 4; i++ {
			at := t0.Add(time.Duration(i) * time.Minute)
			s.clock = func() time.Time { return at }
			appendN(t, s, "u/a", 1)
		}
		if len(committed) != 4 || !committed[0].Time.Equal(t0) {
			t.Fatalf("OnCommit entries %+v", committed)
		}
		_, es, _ := s.Read("u/a", 2, 10)
		for i, e := range es {
			if want := t0.Add(time.Duration(i) * time.Minute); !e.Time.Equal(want) {
				t.Fatalf("seq %d at %v, want %v", e.Pos.Seq, e.Time, want)
			}
		}
		cases := []struct {
			from  uint64
			t     time.Time
			limit int
			want  uint64
		}{
			{0, t0, 100, 1},                        // nothing known older than t0: the unknown ones stay
			{0, t0.Add(time.Millisecond), 100, 4},  // seq 3 is old, so are the unknown 1, 2
			{0, t0.Add(150 * time.Second), 100, 6}, // 3, 4, 5
			{0, t0.Add(time.Hour), 100, 7},         // everything
			{0, t0.Add(time.Hour), 3, 4},           // the scan stops after 3 entries (1, 2, 3)
			{5, t0.Add(150 * time.Second), 100, 6}, // from 5
			{6, t0, 100, 6},                        // nothing from 6 is old: the start
		}
		for _, c := range cases {
			got, err := s.ExpiredBelow("u/a", c.from, c.t, c.limit)
			if err != nil || got != c.want {
				t.Errorf("ExpiredBelow(from %d, %v, limit %d) = %d %v, want %d", c.from, c.t.Sub(t0), c.limit, got, err, c.want)
			}
		}
		trim(t, s, Trim{Stream: "u/a", Below: 4})
		if got, _ := s.ExpiredBelow("u/a", 0, t0, 100); got != 4 {
			t.Fatalf("after trim, start is low: %d", got)
		}
		if got, _ := s.ExpiredBelow("u/none", 0, t0, 100); got != 1 {
			t.Fatalf("unknown stream: %d", got)
		}
	})
}

func TestStore_Streams(t *testing.T) {
	s := openStore(t, Options{InMemory: true})
	for _, st := range []string{"u/b", "u/a", "g/x", "u/c"} {
		appendN(t, s, st, 2)
	}
	trim(t, s, Trim{Stream: "u/b", Below: 2})
	// KV records and dedup keys are not streams.
	if _, err := s.Commit(context.Background(), Batch{Sets: map[string][]byte{"u/zz": []byte("kv")}, DedupKey: []byte("u/zzz"), DedupTTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Streams("", "", 100)
	if err != nil || len(all) != 4 || all[0].Name != "g/x" || all[3].Name != "u/c" {
		t.Fatalf("all streams: %+v %v", all, err)
	}
	us, _ := s.Streams("u/", "", 2)
	if len(us) != 2 || us[0].Name != "u/a" || us[1].Name != "u/b" || us[1].Low != 2 || us[1].Head.Seq != 2 || us[0].Low != 1 {
		t.Fatalf("page 1: %+v", us)
	}
	us, _ = s.Streams("u/", us[1].Name, 2)
	if len(us) != 1 || us[0].Name != "u/c" {
		t.Fatalf("page 2: %+v", us)
	}
}
