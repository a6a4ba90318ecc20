package storage

import (
	"encoding/binary"
	"errors"
)

// Key layout. Every key starts with a one-byte kind so kinds never interleave
// in range scans; sequence numbers are big-endian so scans run in seq order.
// Stream and dedup names never contain 0x00 (callers check IDs), so 0x00
// terminates them unambiguously.
//
//	0x01 stream 0x00 seq(8)  -> entry:  ver(1)=1 | payload
//	0x02 stream              -> meta:   ver(1)=1 | uvarint epoch | uvarint seq
//	0x03 dedup-key           -> dedup:  ver(1)=1 | expires unix-nano(8) | value
//	0x04 name                -> value (small KV records owned by callers)
const (
	kindEntry byte = 0x01
	kindMeta  byte = 0x02
	kindDedup byte = 0x03
	kindKV    byte = 0x04

	valueVersion byte = 1
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

func encodeMeta(p Pos) []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64)
	b = append(b, valueVersion)
	b = binary.AppendUvarint(b, p.Epoch)
	return binary.AppendUvarint(b, p.Seq)
}

func decodeMeta(b []byte) (Pos, error) {
	if len(b) < 1 || b[0] != valueVersion {
		return Pos{}, errCorrupt
	}
	epoch, n := binary.Uvarint(b[1:])
	if n <= 0 {
		return Pos{}, errCorrupt
	}
	seq, m := binary.Uvarint(b[1+n:])
	if m <= 0 {
		return Pos{}, errCorrupt
	}
	return Pos{Epoch: epoch, Seq: seq}, nil
}

func encodeEntry(payload []byte) []byte {
	v := make([]byte, 0, 1+len(payload))
	v = append(v, valueVersion)
	return append(v, payload...)
}

func decodeEntry(v []byte) ([]byte, error) {
	if len(v) < 1 || v[0] != valueVersion {
		return nil, errCorrupt
	}
	return v[1:], nil
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
