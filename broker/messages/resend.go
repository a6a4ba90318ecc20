package messages

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"strconv"

	"github.com/imbroker/imbroker/broker/wire"
)

// The resend rule, one for every send [IM-RESEND]. A send repeats one
// accepted within messages.dedup_window when it has the same sender, the
// same target (the recipient; the recipient list of a batchsendmsg; the
// group) and the same MsgRandom and content: MsgBody as validated,
// CloudCustomData and ClientMsgID, as the sender sent them (before any
// before-send callback rewrite, so a resend is recognised whatever the
// callback did to the first). Tencent treats the same Random and content as
// a duplicate. The send passes the key as storage.Batch.DedupKey with TTL
// messages.dedup_window and what it answered as DedupValue; a resend stores
// nothing and is answered that value again (for one-to-one sends: the
// first's wire.SendResult, with Duplicate set).

// C2CResendKey is the dedup key of a one-to-one send from `from` to `to`.
// Its layout (c2c/{from}/{to}/{MsgRandom}/{content hash}) is stored: keep it.
func C2CResendKey(from, to string, req *wire.SendRequest, body []byte) []byte {
	var sum [sha256.Size]byte
	return wire.AppendDedupKey(from, to, *req.MsgRandom, contentHash(&sum, body, req))
}

// GroupResendKey is the dedup key of a group send from `from` to group gid:
// grp/{gid}/{from}/{MsgRandom}/{content hash}.
func GroupResendKey(gid, from string, req *wire.SendRequest, body []byte) []byte {
	var sum [sha256.Size]byte
	h := contentHash(&sum, body, req)
	b := make([]byte, 0, 16+len(gid)+len(from)+2*len(h))
	b = append(b, "grp/"...)
	b = append(b, gid...)
	b = append(b, '/')
	b = append(b, from...)
	b = append(b, '/')
	b = strconv.AppendUint(b, uint64(*req.MsgRandom), 10)
	b = append(b, '/')
	return hex.AppendEncode(b, h)
}

// batchTarget is the target of a batchsendmsg in a C2CResendKey: ':' is no
// UserID character, so it cannot be taken for a recipient.
func batchTarget(tos []string) string {
	h := sha256.New()
	for _, to := range tos {
		h.Write([]byte(to))
		h.Write([]byte{0})
	}
	return "batch:" + hex.EncodeToString(h.Sum(nil)[:16])
}

// contentHash is the first 16 bytes of the SHA-256 of the content, in sum.
func contentHash(sum *[sha256.Size]byte, body []byte, req *wire.SendRequest) []byte {
	h := sha256.New()
	h.Write(body)
	h.Write([]byte{0})
	h.Write([]byte(req.CloudCustomData))
	h.Write([]byte{0})
	h.Write([]byte(req.ClientMsgID))
	return h.Sum(sum[:0])[:16]
}

// dedupResultVersion starts a one-to-one send's dedup value: the first
// send's stamp in 17 bytes. Every send writes one and it stays on disk for
// messages.dedup_window, so it is kept small; values from before it (the
// wire.SendResult as JSON, starting with '{') are still read.
const dedupResultVersion byte = 1

// dedupValue is the stored answer to a resend of the send stamped st.
func dedupValue(st Stamp) []byte {
	v := make([]byte, 0, 17)
	v = append(v, dedupResultVersion)
	v = binary.BigEndian.AppendUint32(v, st.MsgSeq)
	v = binary.BigEndian.AppendUint32(v, st.MsgRandom)
	return binary.BigEndian.AppendUint64(v, uint64(st.MsgTime))
}

// previous is the result a resend is answered: the first send's.
func previous(value []byte) wire.SendResult {
	var prev wire.SendResult
	if len(value) == 17 && value[0] == dedupResultVersion {
		seq, random := binary.BigEndian.Uint32(value[1:5]), binary.BigEndian.Uint32(value[5:9])
		prev = Stamp{MsgSeq: seq, MsgRandom: random, MsgTime: int64(binary.BigEndian.Uint64(value[9:]))}.Result()
		prev.MsgKey = wire.C2CMsgKey(seq, random, prev.MsgTime)
	} else {
		_ = json.Unmarshal(value, &prev) // written by wire.EncodeSendResult before the binary value
	}
	prev.Duplicate = true
	return prev
}
