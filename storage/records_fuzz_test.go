package storage

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"
)

// FuzzRecordDecoders: the decoders of every on-disk record (stream meta,
// entry, dedup record, commit count, the mark file) never panic on any
// bytes, and whatever they accept re-encodes to a record that decodes to
// the same value.
func FuzzRecordDecoders(f *testing.F) {
	var mark [16]byte
	for _, seed := range [][]byte{
		encodeMeta(meta{Pos: Pos{Epoch: 1796427388789, Seq: 42}, Low: 7}),
		{valueVersion, 0x01, 0x02}, // a version-1 meta
		encodeEntry(1796427388789, []byte(`{"Event":"C2CMsg"}`)),
		{valueVersion, 'x'}, // a version-1 entry
		encodeRef(1796427388789, 42<<24|3),
		encodeBody(3, []byte(`{"Event":"C2CMsg"}`)),
		encodeDedup(1<<62, []byte("1_2_3")),
		binary.AppendUvarint(nil, 123456),
		encodeMark(&mark, 99),
		{}, {0xff}, {metaVersion, 0x80, 0x80},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := decodeMeta(b); err == nil {
			if again, err := decodeMeta(encodeMeta(m)); err != nil || again != m {
				t.Fatalf("meta %x: %+v re-decodes to %+v, %v", b, m, again, err)
			}
		}
		if p, millis, _, ref, err := decodeEntry(b); err == nil && !ref {
			if !bytes.HasSuffix(b, p) {
				t.Fatalf("entry %x: payload %x is not its tail", b, p)
			}
			p2, m2, _, _, err := decodeEntry(encodeEntry(millis, p))
			if err != nil || m2 != millis || !bytes.Equal(p2, p) {
				t.Fatalf("entry %x: (%d, %x) re-decodes to (%d, %x), %v", b, millis, p, m2, p2, err)
			}
		}
		if _, millis, id, ref, err := decodeEntry(b); err == nil && ref {
			if _, m2, id2, ref2, err := decodeEntry(encodeRef(millis, id)); err != nil || !ref2 || m2 != millis || id2 != id {
				t.Fatalf("ref %x: (%d, %d) re-decodes to (%d, %d), %v", b, millis, id, m2, id2, err)
			}
		}
		if refs, p, err := decodeBody(b); err == nil {
			if r2, p2, err := decodeBody(encodeBody(refs, p)); err != nil || r2 != refs || !bytes.Equal(p2, p) {
				t.Fatalf("body %x: (%d, %x) re-decodes to (%d, %x), %v", b, refs, p, r2, p2, err)
			}
		}
		if exp, v, err := decodeDedup(b); err == nil {
			e2, v2, err := decodeDedup(encodeDedup(exp, v))
			if err != nil || e2 != exp || !bytes.Equal(v2, v) {
				t.Fatalf("dedup %x: (%d, %x) re-decodes to (%d, %x), %v", b, exp, v, e2, v2, err)
			}
		}
		if n, ok := decodeMark(b); ok {
			var buf [16]byte
			if !bytes.Equal(encodeMark(&buf, n), b) {
				t.Fatalf("mark %x decodes to %d, which encodes differently", b, n)
			}
		}
		_, _ = readCount(fixedGetter(b))
	})
}

// FuzzRecordRoundTrip: encoding any value and decoding it gives it back;
// entry keys give back their seq.
func FuzzRecordRoundTrip(f *testing.F) {
	f.Add(uint64(1796427388789), uint64(42), uint64(7), int64(1796427388789), []byte("payload"), "u/alice")
	f.Add(uint64(0), uint64(0), uint64(0), int64(-1), []byte{}, "g/@TGS_1")
	f.Fuzz(func(t *testing.T, epoch, seq, low uint64, millis int64, payload []byte, stream string) {
		m := meta{Pos: Pos{Epoch: epoch, Seq: seq}, Low: low}
		if got, err := decodeMeta(encodeMeta(m)); err != nil || got != m {
			t.Fatalf("meta %+v -> %+v, %v", m, got, err)
		}
		if p, ms, _, _, err := decodeEntry(encodeEntry(millis, payload)); err != nil || ms != millis || !bytes.Equal(p, payload) {
			t.Fatalf("entry (%d, %x) -> (%d, %x), %v", millis, payload, ms, p, err)
		}
		if e, v, err := decodeDedup(encodeDedup(millis, payload)); err != nil || e != millis || !bytes.Equal(v, payload) {
			t.Fatalf("dedup (%d, %x) -> (%d, %x), %v", millis, payload, e, v, err)
		}
		var buf [16]byte
		if n, ok := decodeMark(encodeMark(&buf, seq)); !ok || n != seq {
			t.Fatalf("mark %d -> %d, %v", seq, n, ok)
		}
		if n, err := readCount(fixedGetter(binary.AppendUvarint(nil, seq))); err != nil || n != seq {
			t.Fatalf("commit count %d -> %d, %v", seq, n, err)
		}
		if stream != "" && !strings.ContainsRune(stream, 0) {
			if got := seqOfEntryKey(entryKey(stream, seq)); got != seq {
				t.Fatalf("entry key of %q seq %d gives seq %d", stream, seq, got)
			}
		}
	})
}

// fixedGetter answers every Get with one value.
type fixedGetter []byte

func (g fixedGetter) Get([]byte) ([]byte, io.Closer, error) { return g, io.NopCloser(nil), nil }
