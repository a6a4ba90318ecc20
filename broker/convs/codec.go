package convs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"github.com/imbroker/imbroker/broker/wire"
)

// Conversation records (cv/{uid}/{conv}) stay JSON on disk: conv.list,
// the REST unread queries and the group admin code read them with
// encoding/json. They are written on every message, twice for C2C, by the
// committer, so they are encoded here by hand (a few hundred ns, against
// several µs for encoding/json with its reflection and the compaction of
// LastMsg), and Cache keeps the records the broker last encoded
// decoded, so a hot record is not decoded again.

// CacheRecords bounds Cache: the conversations active at once.
const CacheRecords = 16384

// Cache keeps the conversation records convUpdates encoded, with their
// decoded form, so the next update of a record starts from that form instead
// of decoding JSON. A form is used only when the record's current bytes are
// exactly the bytes it was encoded to: a write by anything else (a read
// report, a recall), an update whose commit failed or an eviction only
// means decoding again. Past max records it forgets arbitrary ones (map
// order), an eighth more at a time.
type Cache struct {
	mu  sync.Mutex // updates run on the store's committer, tests anywhere
	m   map[string]cached
	max int
}

type cached struct {
	raw []byte // never changed: the store holds it too
	st  State
}

func NewCache(max int) *Cache {
	return &Cache{m: make(map[string]cached), max: max}
}

// get returns the decoded form of record name's current bytes, if they are
// the bytes put last stored for it.
func (c *Cache) get(name string, cur []byte, found bool) (State, bool) {
	if c == nil || !found {
		return State{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[name]
	if !ok || !bytes.Equal(e.raw, cur) {
		return State{}, false
	}
	return e.st, true
}

// put remembers that raw, which must not be changed afterwards, encodes st.
func (c *Cache) put(name string, raw []byte, st State) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[name] = cached{raw: raw, st: st}
	if over := len(c.m) - c.max; over > 0 {
		over += c.max / 8 // evict in steps, not one record per update
		for n := range c.m {
			if over <= 0 {
				break
			}
			delete(c.m, n)
			over--
		}
	}
}

// Encode is json.Marshal(st), by hand: the same fields in the same
// order with the same omitempty rules, byte for byte the same output for
// records whose LastMsg is compact JSON (what encoding/json produced).
func Encode(st *State) []byte {
	b := make([]byte, 0, 200+len(st.LastMsg))
	b = append(b, `{"Type":`...)
	b = strconv.AppendInt(b, int64(st.Type), 10)
	if st.Peer_Account != "" {
		b = append(b, `,"Peer_Account":`...)
		b = wire.AppendJSONString(b, st.Peer_Account)
	}
	if st.GroupId != "" {
		b = append(b, `,"GroupId":`...)
		b = wire.AppendJSONString(b, st.GroupId)
	}
	if len(st.LastMsg) > 0 {
		b = append(b, `,"LastMsg":`...)
		b = appendRawJSON(b, st.LastMsg)
	}
	if st.LastMsgRef != 0 {
		b = append(b, `,"LastMsgRef":`...)
		b = strconv.AppendUint(b, st.LastMsgRef, 10)
	}
	b = append(b, `,"LastMsgTime":`...)
	b = strconv.AppendInt(b, st.LastMsgTime, 10)
	b = append(b, `,"LastSeq":`...)
	b = strconv.AppendUint(b, st.LastSeq, 10)
	b = append(b, `,"LastUserSeq":`...)
	b = strconv.AppendUint(b, st.LastUserSeq, 10)
	b = append(b, `,"UnreadMsgNum":`...)
	b = strconv.AppendInt(b, int64(st.UnreadMsgNum), 10)
	b = append(b, `,"RecvTotal":`...)
	b = strconv.AppendUint(b, st.RecvTotal, 10)
	b = append(b, `,"ReadUserSeq":`...)
	b = strconv.AppendUint(b, st.ReadUserSeq, 10)
	b = append(b, `,"ReadSeq":`...)
	b = strconv.AppendUint(b, st.ReadSeq, 10)
	if st.DeletedSeq != 0 {
		b = append(b, `,"DeletedSeq":`...)
		b = strconv.AppendUint(b, st.DeletedSeq, 10)
	}
	return append(b, '}')
}

// Decode reads a stored conversation record (every record ever
// written is JSON) over st, which holds the defaults for absent fields.
func Decode(raw []byte, st *State) error {
	if err := json.Unmarshal(raw, st); err != nil {
		return fmt.Errorf("conversation record: %w", err)
	}
	return nil
}

// appendRawJSON appends a JSON value that encoding/json produced (compact,
// HTML characters escaped) as is. A value that contains an HTML character
// or a line/paragraph separator goes through encoding/json, which escapes
// them as it would have.
func appendRawJSON(b []byte, v json.RawMessage) []byte {
	if bytes.IndexAny(v, "<>&\u2028\u2029") >= 0 {
		if q, err := json.Marshal(v); err == nil {
			return append(b, q...)
		}
	}
	return append(b, v...)
}
