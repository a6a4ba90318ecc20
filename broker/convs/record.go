// Package convs is the conversations domain: each user's conversation
// records (the list with unread counts and last messages), how a new message
// changes them (Update, applied atomically on the store's committer), the
// records' compact encoding, and the conversation operations (Service:
// conv.list, conv.delete, msg.read, msg.history, msg.recall, the read
// receipts, modify_c2c_msg; docs/conversations.md). The group side of these
// operations is reached through the Groups interface.
package convs

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/imbroker/imbroker/storage"
)

// Conversation types (Tencent recentcontact: 1 C2C, 2 group).
const (
	TypeC2C   = 1
	TypeGroup = 2
)

// State is one user's view of one conversation, stored under
// cv/{uid}/{conv}. It is only changed through storage Updates, which run on
// the committer, so concurrent messages never lose a count.
type State struct {
	Type         int             `json:"Type"`
	Peer_Account string          `json:"Peer_Account,omitempty"`
	GroupId      string          `json:"GroupId,omitempty"`
	LastMsg      json.RawMessage `json:"LastMsg,omitempty"`
	// LastMsgRef, when set, is the pair-stream seq of a C2C conversation's
	// last message, stored by reference instead of a copy in LastMsg
	// (empty then): the pair-stream entry holds the message as recall and
	// modify left it (LastMsgOf reads it). Retention inlines the message
	// before it trims the entry (InlineLastMsgs).
	LastMsgRef   uint64 `json:"LastMsgRef,omitempty"`
	LastMsgTime  int64  `json:"LastMsgTime"`
	LastSeq      uint64 `json:"LastSeq"`      // the newest message's position (NoLastMsg ones too): C2C conversation seq, group MsgSeq
	LastUserSeq  uint64 `json:"LastUserSeq"`  // the newest message's Seq in this user's stream (NoLastMsg ones too)
	UnreadMsgNum int    `json:"UnreadMsgNum"` // messages from others after ReadUserSeq
	RecvTotal    uint64 `json:"RecvTotal"`    // every counted incoming message, ever (exact partial reads)
	ReadUserSeq  uint64 `json:"ReadUserSeq"`  // read up to this Seq of the user's stream
	ReadSeq      uint64 `json:"ReadSeq"`      // read up to this conversation position
	// DeletedSeq: a read-diffusion group conversation deleted at this group
	// position is listed again only for a later message (its record is kept
	// as a tombstone: the list is built from the group stream).
	DeletedSeq uint64 `json:"DeletedSeq,omitempty"`
}

// Record and stream names. A user's stream (u/{uid}) carries every event
// their devices get; a group's (g/{gid}) the events of a stored group.
func C2CID(peer string) string  { return "c2c/" + peer }
func GroupID(gid string) string { return "group/" + gid }
func Key(uid, conv string) string {
	return "cv/" + uid + "/" + conv
}
func Prefix(uid string) string { return "cv/" + uid + "/" }

func UserStream(uid string) string  { return "u/" + uid }
func GroupStream(gid string) string { return "g/" + gid }

// PairStream is the C2C conversation history shared by two users. ':' can
// not appear in a UserID, so the pair name is unambiguous.
func PairStream(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return "c/" + a + ":" + b
}

// MsgKeyIndex maps a C2C MsgKey to its position in the pair stream (recall).
func MsgKeyIndex(a, b, msgKey string) string {
	return "mk/" + PairStream(a, b)[2:] + "/" + msgKey
}

// Getter reads a KV record (*storage.Store).
type Getter interface {
	Get(name string) ([]byte, bool, error)
}

// Load reads uid's record of conversation conv.
func Load(g Getter, uid, conv string) (State, bool, error) {
	raw, ok, err := g.Get(Key(uid, conv))
	if err != nil || !ok {
		return State{}, ok, err
	}
	var st State
	if err := Decode(raw, &st); err != nil {
		return State{}, false, fmt.Errorf("decode conversation %s of %s: %w", conv, uid, err)
	}
	return st, true, nil
}

// Update describes how a new message changes one user's conversation.
type Update struct {
	UID, Conv    string
	State        State // Type, Peer_Account/GroupId set
	Msg          json.RawMessage
	MsgTime      int64
	Seq          uint64 // conversation position, when known before commit (groups)
	SeqFrom      int    // else: index of the append whose Seq is the position (C2C pair stream), -1 none
	UserSeqFrom  int    // index of this user's stream append, -1 none
	Incoming     bool   // counts as unread
	NoUnread     bool   // SendMsgControl NoUnread
	NoLastMsg    bool   // SendMsgControl NoLastMsg
	CountsUnread bool   // the conversation type counts unread
	NotRead      bool   // outgoing, but not typed by the user (REST, import): their read position and unread count stay
	NoEarlier    bool   // an import: older than the conversation's last message, it does not become the last one
	// MsgRef: the last message is the append at SeqFrom (the C2C pair
	// stream's entry), referred to by LastMsgRef instead of copied: the
	// record stays ~170 bytes instead of ~430 with every message.
	MsgRef bool
}

// StorageUpdate turns an Update into an atomic record update. It runs
// on the committer; decoded (nil: none) spares decoding a record this
// broker wrote last.
func (u Update) StorageUpdate(decoded *Cache) storage.Update {
	name := Key(u.UID, u.Conv)
	return storage.Update{Name: name, Fn: func(cur []byte, found bool, pos []storage.Pos) ([]byte, error) {
		st, ok := decoded.get(name, cur, found)
		if !ok {
			st = u.State
			if found {
				_ = Decode(cur, &st) // as ever: a record that does not decode is rebuilt from this message
			}
		}
		u.apply(&st, pos)
		nv := Encode(&st)
		decoded.put(name, nv, st)
		return nv, nil
	}}
}

// apply changes st for the message.
func (u Update) apply(st *State, pos []storage.Pos) {
	seq := u.Seq
	if u.SeqFrom >= 0 && u.SeqFrom < len(pos) {
		seq = pos[u.SeqFrom].Seq
	}
	if !u.NoLastMsg && !(u.NoEarlier && u.MsgTime < st.LastMsgTime) {
		st.LastMsg, st.LastMsgRef, st.LastMsgTime = u.Msg, 0, u.MsgTime
		if u.MsgRef && u.SeqFrom >= 0 && u.SeqFrom < len(pos) {
			st.LastMsg, st.LastMsgRef = nil, seq
		}
	}
	// The positions advance even with NoLastMsg: reads are counted up
	// to them. Before, a NoLastMsg message after the last shown one was
	// outside every partial read's count, and a read up to the shown
	// one passed for a read of everything.
	st.LastSeq = seq
	if u.UserSeqFrom >= 0 && u.UserSeqFrom < len(pos) {
		st.LastUserSeq = pos[u.UserSeqFrom].Seq
	}
	if u.Incoming && u.CountsUnread && !u.NoUnread {
		st.UnreadMsgNum++
		st.RecvTotal++
	}
	if !u.Incoming && !u.NotRead { // your own message: everything before it is read
		st.UnreadMsgNum, st.ReadSeq = 0, max(st.ReadSeq, seq)
		if u.UserSeqFrom >= 0 && u.UserSeqFrom < len(pos) {
			st.ReadUserSeq = pos[u.UserSeqFrom].Seq
		}
	}
}

// MsgControl reads SendMsgControl flags.
func MsgControl(ctl []string) (noUnread, noLastMsg bool) {
	return slices.Contains(ctl, "NoUnread"), slices.Contains(ctl, "NoLastMsg")
}
