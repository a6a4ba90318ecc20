package convs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/storage"
)

// A C2C conversation record refers to its last message (State.LastMsgRef,
// the pair-stream seq) instead of holding a copy: the two records a message
// rewrites were most of the bytes a send wrote once the event itself was
// stored once. Records written before hold LastMsg inline and are read as
// ever; a record goes over to a reference with its next message.

// Reader reads stream entries (*storage.Store).
type Reader interface {
	Read(stream string, after uint64, limit int) (storage.Pos, []storage.Entry, error)
}

// LastMsgOf fills st.LastMsg of uid's C2C conversation from the pair-stream
// entry it refers to, if it refers to one. An entry that is gone (it cannot
// be while the record refers to it: retention inlines it first) leaves
// LastMsg empty, as a record without a last message.
func LastMsgOf(r Reader, uid string, st *State) error {
	if st.LastMsgRef == 0 || len(st.LastMsg) > 0 || st.Type != TypeC2C {
		return nil
	}
	_, entries, err := r.Read(PairStream(uid, st.Peer_Account), st.LastMsgRef-1, 1)
	if err != nil {
		return fmt.Errorf("last message of %s with %s: %w", uid, st.Peer_Account, err)
	}
	if len(entries) == 1 {
		st.LastMsg = eventMsg(entries[0].Payload)
	}
	return nil
}

// eventMsg returns the Msg of a stored event ({"Event":…,"Msg":…}); a C2C
// message's event (wire.C2CEvent) without decoding it.
func eventMsg(ev []byte) json.RawMessage {
	const head = `{"Event":"` + wire.EventC2CMsg + `","Msg":`
	if bytes.HasPrefix(ev, []byte(head)) && bytes.HasSuffix(ev, []byte("}")) && json.Valid(ev[len(head):len(ev)-1]) {
		return ev[len(head) : len(ev)-1]
	}
	var e struct{ Msg json.RawMessage }
	if json.Unmarshal(ev, &e) != nil {
		return nil
	}
	return e.Msg
}

// InlineLastMsgs returns the updates that copy the last message into the
// records of the conversation whose pair stream is about to be trimmed below
// seq `below` (retention), when they refer to an entry the trim deletes; nil
// for other streams. Each update inlines the message only if the record
// still refers to the entry that was read: a newer message in between has
// a newer (kept) entry. They go in the trim's batch.
func InlineLastMsgs(r interface {
	Getter
	Reader
}, stream string, below uint64) ([]storage.Update, error) {
	pair, ok := strings.CutPrefix(stream, "c/")
	if !ok {
		return nil, nil
	}
	a, b, ok := strings.Cut(pair, ":")
	if !ok {
		return nil, nil
	}
	users := [][2]string{{a, b}}
	if a != b {
		users = append(users, [2]string{b, a})
	}
	var out []storage.Update
	for _, u := range users {
		uid, peer := u[0], u[1]
		st, found, err := Load(r, uid, C2CID(peer))
		if err != nil {
			return nil, err
		}
		if !found || st.LastMsgRef == 0 || st.LastMsgRef >= below {
			continue
		}
		ref := st.LastMsgRef
		if err := LastMsgOf(r, uid, &st); err != nil {
			return nil, err
		}
		msg := st.LastMsg
		out = append(out, storage.Update{Name: Key(uid, C2CID(peer)), Fn: func(cur []byte, found bool, _ []storage.Pos) ([]byte, error) {
			if !found {
				return nil, nil // deleted meanwhile (conv.delete): stays deleted
			}
			var st State
			if Decode(cur, &st) != nil || st.LastMsgRef != ref {
				return cur, nil
			}
			st.LastMsg, st.LastMsgRef = msg, 0
			return Encode(&st), nil
		}})
	}
	return out, nil
}
