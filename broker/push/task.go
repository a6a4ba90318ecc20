package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// EventAllMemberPush is the event a push appends to each recipient's
// stream (docs/protocol.md).
const EventAllMemberPush = "AllMemberPush"

// maxLifeTime is Tencent's MsgLifeTime limit, 7 days.
const maxLifeTime = 604800

// dedupTTL: Tencent treats a MsgRandom repeated within 7 days as the same
// task (a retry after a failed call).
const dedupTTL = 7 * 24 * time.Hour

// Condition selects recipients (Tencent Condition). Tags and attributes
// may not be combined; Or and And of one kind may, and then both hold.
// Without a condition (or an empty one) every user is a recipient.
type Condition struct {
	TagsOr   []string          `json:",omitempty"`
	TagsAnd  []string          `json:",omitempty"`
	AttrsOr  map[string]string `json:",omitempty"`
	AttrsAnd map[string]string `json:",omitempty"`
}

func (c *Condition) none() bool {
	return c == nil || len(c.TagsOr)+len(c.TagsAnd)+len(c.AttrsOr)+len(c.AttrsAnd) == 0
}

// match reports whether a user's record satisfies c.
func (c *Condition) match(r userRec) bool {
	if c.none() {
		return true
	}
	anyOf := func(n int, f func(i int) bool) bool {
		for i := 0; i < n; i++ {
			if f(i) {
				return true
			}
		}
		return false
	}
	tagsOr := len(c.TagsOr) == 0 || anyOf(len(c.TagsOr), func(i int) bool { return r.hasTag(c.TagsOr[i]) })
	tagsAnd := !anyOf(len(c.TagsAnd), func(i int) bool { return !r.hasTag(c.TagsAnd[i]) })
	attrsOr := len(c.AttrsOr) == 0
	for k, v := range c.AttrsOr {
		attrsOr = attrsOr || r.Attrs[k] == v
	}
	attrsAnd := true
	for k, v := range c.AttrsAnd {
		attrsAnd = attrsAnd && r.Attrs[k] == v
	}
	return tagsOr && tagsAnd && attrsOr && attrsAnd
}

// Request is an im_push.
type Request struct {
	From_Account    string          // the sender; "" = the app admin
	MsgRandom       *uint32         // required: the task's dedup value
	MsgBody         json.RawMessage // required, checked as a send's
	MsgLifeTime     int64           // 0..604800, kept in the event
	Condition       *Condition
	OfflinePushInfo json.RawMessage
}

// Event is the AllMemberPush event's Msg.
type Event struct {
	TaskId          string
	From_Account    string
	To_Account      string
	MsgRandom       uint32
	MsgTime         int64
	MsgBody         json.RawMessage
	MsgLifeTime     int64           `json:",omitempty"`
	OfflinePushInfo json.RawMessage `json:",omitempty"`
}

// task is a stored push and its progress.
type task struct {
	Event     Event      // To_Account is filled per recipient
	Condition *Condition `json:",omitempty"`
	Cursor    string     // the last UserID examined
	Sent      int        // recipients so far
	Done      bool
}

// Push stores a push task and starts its fan-out; it returns the TaskId. A
// MsgRandom already used within 7 days answers the first task's TaskId and
// stores nothing new (Tencent's retry rule).
func (s *Service) Push(ctx context.Context, q *Request) (string, error) {
	ev, cond, err := s.check(q)
	if err != nil {
		return "", err
	}
	dedup := []byte("push/" + strconv.FormatUint(uint64(ev.MsgRandom), 10))
	ev.TaskId = fmt.Sprintf("%d_%08x", time.Now().UnixMilli(), ev.MsgRandom)
	t := task{Event: ev, Condition: cond}
	rec, _ := json.Marshal(t) // cannot fail: plain fields and checked JSON
	res, err := s.store.Commit(ctx, storage.Batch{Sets: map[string][]byte{taskPrefix + ev.TaskId: rec},
		DedupKey: dedup, DedupValue: []byte(ev.TaskId), DedupTTL: dedupTTL})
	if err != nil {
		return "", fmt.Errorf("store push task: %w", err)
	}
	if res.Duplicate {
		id := string(res.DedupValue)
		s.resume(id) // a retry also restarts a task a failure left unfinished
		return id, nil
	}
	s.start(ev.TaskId)
	return ev.TaskId, nil
}

// check validates q and returns the event (without TaskId and recipient).
func (s *Service) check(q *Request) (Event, *Condition, error) {
	from := q.From_Account
	if from == "" {
		from = s.admin
	} else if ids.CheckUserID(from) != nil {
		return Event{}, nil, imerr.FromMissing.New("invalid From_Account %q", from)
	}
	if q.MsgRandom == nil {
		return Event{}, nil, imerr.MsgRandom.New("MsgRandom is required")
	}
	if q.MsgLifeTime < 0 || q.MsgLifeTime > maxLifeTime {
		return Event{}, nil, imerr.PushLifeTime.New("MsgLifeTime %d is not 0 to %d", q.MsgLifeTime, maxLifeTime)
	}
	if len(q.MsgBody) == 0 {
		return Event{}, nil, imerr.BadMsgBody.New("MsgBody is required")
	}
	body, err := wire.ValidateBody(q.MsgBody, s.msgs.MaxElements)
	if err != nil {
		return Event{}, nil, err
	}
	if len(body) > s.msgs.MaxBytes {
		return Event{}, nil, imerr.TooLong.New("message is %d bytes, limit %d", len(body), s.msgs.MaxBytes)
	}
	if len(q.OfflinePushInfo) > 0 && (q.OfflinePushInfo[0] != '{' || !json.Valid(q.OfflinePushInfo)) {
		return Event{}, nil, imerr.BadJSON.New("OfflinePushInfo must be an object")
	}
	cond, err := s.checkCondition(q.Condition)
	if err != nil {
		return Event{}, nil, err
	}
	return Event{From_Account: from, MsgRandom: *q.MsgRandom, MsgTime: time.Now().Unix(), MsgBody: body,
		MsgLifeTime: q.MsgLifeTime, OfflinePushInfo: q.OfflinePushInfo}, cond, nil
}

func (s *Service) checkCondition(c *Condition) (*Condition, error) {
	if c.none() {
		return nil, nil
	}
	if len(c.TagsOr)+len(c.TagsAnd) > 0 && len(c.AttrsOr)+len(c.AttrsAnd) > 0 {
		return nil, imerr.PushBadAttr.New("Condition cannot combine tags and attributes")
	}
	for _, tags := range [][]string{c.TagsOr, c.TagsAnd} {
		if len(tags) > s.cfg.MaxConditionTags {
			return nil, imerr.PushBadAttr.New("%d tags in a condition, at most %d", len(tags), s.cfg.MaxConditionTags)
		}
		for _, t := range tags {
			if err := s.checkText("tag", t, s.cfg.MaxTagBytes); err != nil {
				return nil, err
			}
		}
	}
	if len(c.AttrsOr)+len(c.AttrsAnd) > 0 {
		known, err := s.knownAttrs()
		if err != nil {
			return nil, err
		}
		for _, m := range []map[string]string{c.AttrsOr, c.AttrsAnd} {
			for name := range m {
				if !known[name] {
					return nil, imerr.PushBadAttr.New("%q is not an attribute name (im_set_attr_name)", name)
				}
			}
		}
	}
	return c, nil
}

// Resume starts every stored task that has not finished (after a restart).
// An unreadable task is logged and skipped: it must not stop the broker.
func (s *Service) Resume() {
	err := storage.ScanAll(s.store, taskPrefix, func(name string, v []byte) error {
		var t task
		if err := json.Unmarshal(v, &t); err != nil {
			s.log.Error("push task unreadable", "record", name, "error", err)
			return nil
		}
		if !t.Done {
			s.start(t.Event.TaskId)
		}
		return nil
	})
	if err != nil {
		s.log.Error("listing push tasks failed", "error", err)
	}
}

// resume restarts id unless it is done or running.
func (s *Service) resume(id string) {
	t, err := s.load(id)
	if err != nil {
		s.log.Error("push task unreadable", "task", id, "error", err)
		return
	}
	if !t.Done {
		s.start(id)
	}
}

// start fans task id out in the background, once at a time.
func (s *Service) start(id string) {
	if _, running := s.running.LoadOrStore(id, struct{}{}); running {
		return
	}
	if !s.tasks.Spawn(func(ctx context.Context) {
		defer s.running.Delete(id)
		if err := s.run(ctx, id); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("push task stopped; it resumes at the next start or retry", "task", id, "error", err)
		}
	}) {
		s.running.Delete(id) // shutting down: the next start resumes it
	}
}

func (s *Service) load(id string) (task, error) {
	var t task
	v, found, err := s.store.Get(taskPrefix + id)
	if err != nil || !found {
		return t, fmt.Errorf("read push task %s: found %v: %w", id, found, err)
	}
	return t, json.Unmarshal(v, &t)
}

// run appends the event to each recipient's stream, a page per commit; the
// page's appends and the task's new cursor are one commit, so a stop at any
// point neither skips nor repeats a user.
func (s *Service) run(ctx context.Context, id string) error {
	t, err := s.load(id)
	if err != nil {
		return err
	}
	var online []string // a run's snapshot: who is connected when it starts
	if s.online != nil && t.Condition.none() {
		online = s.online.OnlineUsers()
	}
	for !t.Done {
		if err := ctx.Err(); err != nil {
			return err
		}
		users, last, more, err := s.page(t.Condition, t.Cursor, online)
		if err != nil {
			return err
		}
		b := storage.Batch{}
		for _, uid := range users {
			if uid == t.Event.From_Account {
				continue // the sender gets no copy of its own push
			}
			ev := t.Event
			ev.To_Account = uid
			payload, err := wire.EncodeEvent(EventAllMemberPush, ev)
			if err != nil {
				return fmt.Errorf("encode push event: %w", err)
			}
			b.Appends = append(b.Appends, storage.Append{Stream: streamPrefix + uid, Payload: payload})
		}
		t.Cursor, t.Sent, t.Done = last, t.Sent+len(b.Appends), !more
		rec, _ := json.Marshal(t)
		b.Sets = map[string][]byte{taskPrefix + id: rec}
		if _, err := s.store.Commit(ctx, b); err != nil {
			return fmt.Errorf("push task %s: %w", id, err)
		}
	}
	s.log.Info("push task done", "task", id, "recipients", t.Sent)
	return nil
}

// page returns the next recipients after cursor (at most push.batch_users
// examined), the last UserID examined, and whether more may follow.
// Without a condition the users are every imported account, every user
// with a stream and every user online (the sorted snapshot online), merged
// in UserID order; with one, the users holding attributes or tags.
func (s *Service) page(c *Condition, cursor string, online []string) (users []string, last string, more bool, err error) {
	n := s.cfg.BatchUsers
	after := func(prefix string) string {
		if cursor == "" {
			return ""
		}
		return prefix + cursor
	}
	if !c.none() {
		kvs, err := s.store.Scan(userPrefix, after(userPrefix), n)
		if err != nil {
			return nil, "", false, fmt.Errorf("scan push records: %w", err)
		}
		for _, kv := range kvs {
			last = kv.Name[len(userPrefix):]
			r, err := decodeUser(kv.Value, true)
			if err != nil {
				return nil, "", false, err
			}
			if c.match(r) {
				users = append(users, last)
			}
		}
		return users, last, len(kvs) == n, nil
	}
	accts, err := s.store.Scan(accountPrefix, after(accountPrefix), n)
	if err != nil {
		return nil, "", false, fmt.Errorf("scan accounts: %w", err)
	}
	streams, err := s.store.Streams(streamPrefix, after(streamPrefix), n)
	if err != nil {
		return nil, "", false, fmt.Errorf("list user streams: %w", err)
	}
	all := make([]string, 0, len(accts)+len(streams))
	for _, kv := range accts {
		all = append(all, kv.Name[len(accountPrefix):])
	}
	for _, st := range streams {
		all = append(all, st.Name[len(streamPrefix):])
	}
	i, _ := slices.BinarySearch(online, cursor)
	for taken := 0; i < len(online) && taken < n; i++ {
		if online[i] > cursor {
			all, taken = append(all, online[i]), taken+1
		}
	}
	slices.Sort(all)
	all = slices.Compact(all)
	// Every id up to the n-th of the merge was in one of the three pages
	// (each page holds its list's first n after the cursor).
	if len(all) > n {
		all = all[:n]
	}
	if len(all) == 0 {
		return nil, cursor, false, nil
	}
	return all, all[len(all)-1], len(all) == n, nil
}
