package broker

import (
	"encoding/json"
	"slices"

	"github.com/imbroker/imbroker/storage"
)

// Conversation types (Tencent recentcontact: 1 C2C, 2 group).
const (
	convC2C   = 1
	convGroup = 2
)

// convState is one user's view of one conversation, stored under
// cv/{uid}/{conv}. It is only changed through storage Updates, which run on
// the committer, so concurrent messages never lose a count.
type convState struct {
	Type         int             `json:"Type"`
	Peer_Account string          `json:"Peer_Account,omitempty"`
	GroupId      string          `json:"GroupId,omitempty"`
	LastMsg      json.RawMessage `json:"LastMsg,omitempty"`
	LastMsgTime  int64           `json:"LastMsgTime"`
	LastSeq      uint64          `json:"LastSeq"`      // the newest message's position (NoLastMsg ones too): C2C conversation seq, group MsgSeq
	LastUserSeq  uint64          `json:"LastUserSeq"`  // the newest message's Seq in this user's stream (NoLastMsg ones too)
	UnreadMsgNum int             `json:"UnreadMsgNum"` // messages from others after ReadUserSeq
	RecvTotal    uint64          `json:"RecvTotal"`    // every counted incoming message, ever (exact partial reads)
	ReadUserSeq  uint64          `json:"ReadUserSeq"`  // read up to this Seq of the user's stream
	ReadSeq      uint64          `json:"ReadSeq"`      // read up to this conversation position
	// DeletedSeq: a read-diffusion group conversation deleted at this group
	// position is listed again only for a later message (its record is kept
	// as a tombstone: the list is built from the group stream).
	DeletedSeq uint64 `json:"DeletedSeq,omitempty"`
}

func c2cConvID(peer string) string  { return "c2c/" + peer }
func groupConvID(gid string) string { return "group/" + gid }
func convKey(uid, conv string) string {
	return "cv/" + uid + "/" + conv
}
func convPrefix(uid string) string { return "cv/" + uid + "/" }

// pairStream is the C2C conversation history shared by two users. ':' can
// not appear in a UserID, so the pair name is unambiguous.
func pairStream(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return "c/" + a + ":" + b
}

// msgKeyIndex maps a C2C MsgKey to its position in the pair stream (recall).
func msgKeyIndex(a, b, msgKey string) string {
	return "mk/" + pairStream(a, b)[2:] + "/" + msgKey
}

// convUpdate describes how a new message changes one user's conversation.
type convUpdate struct {
	uid, conv    string
	state        convState // Type, Peer_Account/GroupId set
	msg          json.RawMessage
	msgTime      int64
	seq          uint64 // conversation position, when known before commit (groups)
	seqFrom      int    // else: index of the append whose Seq is the position (C2C pair stream), -1 none
	userSeqFrom  int    // index of this user's stream append, -1 none
	incoming     bool   // counts as unread
	noUnread     bool   // SendMsgControl NoUnread
	noLastMsg    bool   // SendMsgControl NoLastMsg
	countsUnread bool   // the conversation type counts unread
}

// storageUpdate turns a convUpdate into an atomic record update. It runs
// on the committer; decoded (nil: none) spares decoding a record this
// broker wrote last.
func (u convUpdate) storageUpdate(decoded *convCache) storage.Update {
	name := convKey(u.uid, u.conv)
	return storage.Update{Name: name, Fn: func(cur []byte, found bool, pos []storage.Pos) ([]byte, error) {
		st, ok := decoded.get(name, cur, found)
		if !ok {
			st = u.state
			if found {
				_ = decodeConv(cur, &st) // as ever: a record that does not decode is rebuilt from this message
			}
		}
		u.apply(&st, pos)
		nv := encodeConv(&st)
		decoded.put(name, nv, st)
		return nv, nil
	}}
}

// apply changes st for the message.
func (u convUpdate) apply(st *convState, pos []storage.Pos) {
	seq := u.seq
	if u.seqFrom >= 0 && u.seqFrom < len(pos) {
		seq = pos[u.seqFrom].Seq
	}
	if !u.noLastMsg {
		st.LastMsg, st.LastMsgTime = u.msg, u.msgTime
	}
	// The positions advance even with NoLastMsg: reads are counted up
	// to them. Before, a NoLastMsg message after the last shown one was
	// outside every partial read's count, and a read up to the shown
	// one passed for a read of everything.
	st.LastSeq = seq
	if u.userSeqFrom >= 0 && u.userSeqFrom < len(pos) {
		st.LastUserSeq = pos[u.userSeqFrom].Seq
	}
	if u.incoming && u.countsUnread && !u.noUnread {
		st.UnreadMsgNum++
		st.RecvTotal++
	}
	if !u.incoming { // your own message: everything before it is read
		st.UnreadMsgNum, st.ReadSeq = 0, max(st.ReadSeq, seq)
		if u.userSeqFrom >= 0 && u.userSeqFrom < len(pos) {
			st.ReadUserSeq = pos[u.userSeqFrom].Seq
		}
	}
}

// msgControl reads SendMsgControl flags.
func msgControl(ctl []string) (noUnread, noLastMsg bool) {
	return slices.Contains(ctl, "NoUnread"), slices.Contains(ctl, "NoLastMsg")
}
