package storage

import (
	"encoding/binary"
	"errors"
	"time"
)

// Key layout. Every key starts with a one-byte kind so kinds never interleave
// in range scans; sequence numbers are big-endian so scans run in seq order.
// Stream and dedup names never contain 0x00 (callers check IDs), so 0x00
// terminates them unambiguously.
//
//	0x01 stream 0x00 seq(8)  -> entry:  ver(1)=2 | commit unix-milli(8) | payload
//	                                    (ver 1: payload only, time unknown)
//	                                    ver(1)=3 | commit unix-milli(8) | body id(8):
//	                                    a reference to a body record (bodies.go)
//	0x02 stream              -> meta:   ver(1)=2 | uvarint epoch | uvarint seq | uvarint low
//	                                    (ver 1: no low, everything retained)
//	0x03 dedup-key           -> dedup:  ver(1)=1 | expires unix-nano(8) | value
//	0x04 name                -> value (small KV records owned by callers)
//	0x05                     -> uvarint group commits so far (damage.go)
//	0x06 id(8)               -> body:   ver(1)=1 | uvarint refs | payload (bodies.go)
//	0x07                     -> uvarint log position applied (cluster mode, apply.go)
const (
	kindEntry byte = 0x01
	kindMeta  byte = 0x02
	kindDedup byte = 0x03
	kindKV    byte = 0x04
	kindCount byte = 0x05
	kindBody  byte = 0x06
	kindApply byte = 0x07

	valueVersion byte = 1 // dedup records; version 1 of entries and metas
	entryVersion byte = 2 // entries with their commit time
	refVersion   byte = 3 // entries that refer to a body record
	metaVersion  byte = 2 // metas with the low watermark
)

var errCorrupt = errors.New("storage: corrupt record")

func entryKey(stream string, seq uint64) []byte {
	k := make([]byte, 0, 2+len(stream)+8)
	k = append(k, kindEntry)
	k = append(k, stream...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

func metaKey(stream string) []byte {
	return append([]byte{kindMeta}, stream...)
}

func dedupKey(key []byte) []byte {
	return append([]byte{kindDedup}, key...)
}

func kvKey(name string) []byte {
	return append([]byte{kindKV}, name...)
}

// seqOfEntryKey returns the seq of an entry key.
func seqOfEntryKey(k []byte) uint64 {
	if len(k) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k[len(k)-8:])
}

// meta is a stream's meta record: its head and its low watermark.
type meta struct {
	Pos
	Low uint64 // first retained seq; 0 or 1: nothing trimmed
}

// low is the first retained seq, at least 1.
func (m meta) low() uint64 { return max(m.Low, 1) }

func encodeMeta(m meta) []byte {
	b := make([]byte, 0, 1+3*binary.MaxVarintLen64)
	b = append(b, metaVersion)
	b = binary.AppendUvarint(b, m.Epoch)
	b = binary.AppendUvarint(b, m.Seq)
	return binary.AppendUvarint(b, m.Low)
}

func decodeMeta(b []byte) (meta, error) {
	if len(b) < 1 || (b[0] != valueVersion && b[0] != metaVersion) {
		return meta{}, errCorrupt
	}
	epoch, n := binary.Uvarint(b[1:])
	if n <= 0 {
		return meta{}, errCorrupt
	}
	rest := b[1+n:]
	seq, n := binary.Uvarint(rest)
	if n <= 0 {
		return meta{}, errCorrupt
	}
	m := meta{Pos: Pos{Epoch: epoch, Seq: seq}}
	if b[0] == metaVersion {
		low, k := binary.Uvarint(rest[n:])
		if k <= 0 {
			return meta{}, errCorrupt
		}
		m.Low = low
	} // version 1 has no low: everything is retained
	return m, nil
}

// encodeEntry stores payload with its commit time in unix milliseconds
// (0: unknown).
func encodeEntry(millis int64, payload []byte) []byte {
	v := make([]byte, 0, 9+len(payload))
	v = append(v, entryVersion)
	v = binary.BigEndian.AppendUint64(v, uint64(millis))
	return append(v, payload...)
}

// encodeRef stores a reference to body record id with the commit time.
func encodeRef(millis int64, id uint64) []byte {
	v := make([]byte, 0, 17)
	v = append(v, refVersion)
	v = binary.BigEndian.AppendUint64(v, uint64(millis))
	return binary.BigEndian.AppendUint64(v, id)
}

// decodeEntry returns an entry's payload and commit time in unix
// milliseconds; 0 means unknown (version 1 entries, written before entries
// carried their time). An entry that refers to a body record has no payload
// of its own: ref is true and body its id.
func decodeEntry(v []byte) (payload []byte, millis int64, body uint64, ref bool, err error) {
	switch {
	case len(v) >= 1 && v[0] == valueVersion:
		return v[1:], 0, 0, false, nil
	case len(v) >= 9 && v[0] == entryVersion:
		return v[9:], int64(binary.BigEndian.Uint64(v[1:9])), 0, false, nil
	case len(v) == 17 && v[0] == refVersion:
		return nil, int64(binary.BigEndian.Uint64(v[1:9])), binary.BigEndian.Uint64(v[9:]), true, nil
	}
	return nil, 0, 0, false, errCorrupt
}

// entryTime is the time.Time of an entry's commit millis (zero when unknown).
func entryTime(millis int64) time.Time {
	if millis <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(millis)
}

func encodeDedup(expires int64, value []byte) []byte {
	v := make([]byte, 0, 9+len(value))
	v = append(v, valueVersion)
	v = binary.BigEndian.AppendUint64(v, uint64(expires))
	return append(v, value...)
}

func decodeDedup(v []byte) (expires int64, value []byte, err error) {
	if len(v) < 9 || v[0] != valueVersion {
		return 0, nil, errCorrupt
	}
	return int64(binary.BigEndian.Uint64(v[1:9])), v[9:], nil
}
