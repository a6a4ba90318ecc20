package messages

import (
	"math/rand/v2"
	"time"

	"github.com/imbroker/imbroker/broker/wire"
)

// Stamp is a message's identity, fixed once per send by StampC2C or
// StampGroup. Everything the send stores, answers, and passes to callbacks,
// conversation records and pushes carries these values, so they cannot
// disagree (before, a group message's MsgTime, its conversations' and its
// callback's came from separate readings of the clock, and the result of a
// blacklisted one-to-one send was made by code of its own).
type Stamp struct {
	// MsgSeq of a one-to-one message: the sender's, or a random one when it
	// set none (Tencent). 0 for a group message: its MsgSeq is the group seq
	// its commit takes.
	MsgSeq    uint32
	MsgRandom uint32 // the sender's
	MsgTime   int64  // Unix seconds: the one reading of the clock of the send, or an imported message's own time
	MsgKey    string // one-to-one: MsgSeq_MsgRandom_MsgTime; "" for a group message
}

// StampC2C stamps a one-to-one message. msgTime > 0 is an imported
// message's own time; otherwise the clock is read, here, once.
func StampC2C(msgSeq, msgRandom uint32, msgTime int64) Stamp {
	if msgTime <= 0 {
		msgTime = time.Now().Unix()
	}
	if msgSeq == 0 {
		msgSeq = rand.Uint32N(1<<31-1) + 1 // Tencent: random when the sender sets none
	}
	return Stamp{MsgSeq: msgSeq, MsgRandom: msgRandom, MsgTime: msgTime, MsgKey: wire.C2CMsgKey(msgSeq, msgRandom, msgTime)}
}

// StampGroup stamps a group message: its MsgTime for the stored message, the
// members' conversation records, the group's LastMsgTime and the callbacks.
// msgTime > 0 is an imported message's own time; otherwise the clock is
// read, here, once.
func StampGroup(msgRandom uint32, msgTime int64) Stamp {
	if msgTime <= 0 {
		msgTime = time.Now().Unix()
	}
	return Stamp{MsgRandom: msgRandom, MsgTime: msgTime}
}

// Result is what the sender of a one-to-one message is answered.
func (s Stamp) Result() wire.SendResult {
	return wire.SendResult{MsgKey: s.MsgKey, MsgTime: s.MsgTime, MsgSeq: s.MsgSeq}
}
