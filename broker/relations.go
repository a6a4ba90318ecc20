package broker

import (
	"context"
	"encoding/json"
	"hash/maphash"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// Friends and friend lists (Tencent sns/*) [IM-REL-FRIENDS]: docs/relations.md.
//
// Storage (KV records; a relation change is one storage batch, so it never
// half-applies):
//
//	fr/{uid}/{peer}   peer is in uid's friend list: friendRec
//	fw/{peer}/{uid}   the reverse index ("uid watches peer"): who gets peer's ProfileChanged / StatusChanged
//	fq/{uid}/{from}   a friend request from `from` waiting for uid's answer: pendingRec
//	fs/{from}/{uid}   the same request, under its sender (friend.pending SendOut)
//	fg/{uid}/{name}   one of uid's friend lists: friendGroupRec (membership is in friendRec.GroupName)
//
// Every change of a user's relation records runs under that user's relation
// lock (and the peer's, for changes that touch both), so limits are checked
// and records read-modify-written without racing another change.

// Relation chain codes (tencent-im.md §2, 3xxxx). 30011-30013 and 30540 come
// Friend (SNS) tags and enum values (Tencent names).
const (
	tagSnsGroup      = "Tag_SNS_IM_Group"
	tagSnsRemark     = "Tag_SNS_IM_Remark"
	tagSnsAddSource  = "Tag_SNS_IM_AddSource"
	tagSnsAddWording = "Tag_SNS_IM_AddWording"
	tagSnsAddTime    = "Tag_SNS_IM_AddTime"

	addTypeSingle    = "Add_Type_Single"
	addTypeBoth      = "Add_Type_Both"
	deleteTypeSingle = "Delete_Type_Single"
	deleteTypeBoth   = "Delete_Type_Both"
	checkSingle      = "CheckResult_Type_Single"
	checkBoth        = "CheckResult_Type_Both"
	respAgree        = "Response_Action_Agree"
	respAgreeAndAdd  = "Response_Action_AgreeAndAdd"
	respReject       = "Response_Action_Reject"
	pendComeIn       = "Pendency_Type_ComeIn"
	pendSendOut      = "Pendency_Type_SendOut"
	needFriendYes    = "Need_Friend_Type_Yes"
	addSourcePrefix  = "AddSource_Type_"
)

// Relation events (user streams).
const (
	eventFriendAdded        = "FriendAdded"        // to both users of the pair: From_Account's list gained To_Account
	eventFriendDeleted      = "FriendDeleted"      // to both users of the pair
	eventFriendRequest      = "FriendRequest"      // to the target and the requester's devices
	eventFriendResponse     = "FriendResponse"     // to the requester and the responder's devices
	eventFriendUpdated      = "FriendUpdated"      // remark / lists of one friend changed: the owner's devices
	eventFriendGroupUpdated = "FriendGroupUpdated" // friend lists created, filled or deleted: the owner's devices
)

const (
	maxRelItems         = 100  // items of one changing request (friend.add, black.add, ...)
	maxRelCheck         = 1000 // accounts of one friend.check / black.check
	friendPageSize      = 100  // friend.get page
	maxFriendGroupName  = 30   // friend list name bytes (Tencent)
	maxAddSourceKeyword = 8    // AddSource_Type_{keyword}
	fanoutChunk         = 1000 // events per commit when notifying many users
)

func friendKey(uid, peer string) string     { return "fr/" + uid + "/" + peer }
func friendPrefix(uid string) string        { return "fr/" + uid + "/" }
func watcherKey(uid, watcher string) string { return "fw/" + uid + "/" + watcher }
func watcherPrefix(uid string) string       { return "fw/" + uid + "/" }
func pendingKey(to, from string) string     { return "fq/" + to + "/" + from }
func pendingPrefix(to string) string        { return "fq/" + to + "/" }
func sentKey(from, to string) string        { return "fs/" + from + "/" + to }
func sentPrefix(from string) string         { return "fs/" + from + "/" }
func friendGroupKey(uid, name string) string {
	return "fg/" + uid + "/" + name
}
func friendGroupPrefix(uid string) string { return "fg/" + uid + "/" }

// friendRec is one entry of a friend list.
type friendRec struct {
	Remark     string   `json:"Remark,omitempty"`
	GroupName  []string `json:"GroupName,omitempty"`
	AddTime    int64    `json:"AddTime"`
	AddSource  string   `json:"AddSource,omitempty"`
	AddWording string   `json:"AddWording,omitempty"`
}

// valueItems is the record as friend.get shows it.
func (f friendRec) valueItems() []tagValue {
	groups := f.GroupName
	if groups == nil {
		groups = []string{}
	}
	return []tagValue{{tagSnsGroup, groups}, {tagSnsRemark, f.Remark}, {tagSnsAddSource, f.AddSource},
		{tagSnsAddWording, f.AddWording}, {tagSnsAddTime, f.AddTime}}
}

// pendingRec is a friend request waiting for an answer.
type pendingRec struct {
	From_Account string
	To_Account   string
	AddTime      int64
	AddType      string
	AddSource    string   `json:",omitempty"`
	AddWording   string   `json:",omitempty"`
	Remark       string   `json:",omitempty"` // the requester's, applied when the request is accepted
	GroupName    []string `json:",omitempty"` // likewise
}

// public is the request as its target sees it (no requester remark or lists).
func (p pendingRec) public() map[string]any {
	return map[string]any{"From_Account": p.From_Account, "To_Account": p.To_Account, "AddTime": p.AddTime,
		"AddType": p.AddType, "AddSource": p.AddSource, "AddWording": p.AddWording}
}

type friendGroupRec struct {
	CreateTime int64
}

// tagValue is one {Tag, Value} item (profiles, friend records).
type tagValue struct {
	Tag   string `json:"Tag"`
	Value any    `json:"Value"`
}

// relResultItem is one per-account result of a batch request.
type relResultItem struct {
	To_Account string
	ResultCode int
	ResultInfo string
}

// relResults collects per-item results: an *imerr.Error is the item's result; any
// other error aborts the request (internal).
type relResults struct {
	items []relResultItem
	fail  []string
}

func (rs *relResults) add(to string, err error) error {
	it := relResultItem{To_Account: to}
	if err != nil {
		var e *imerr.Error
		if e = imerr.As(err); e.Code == imerr.Internal.Code {
			return err
		}
		it.ResultCode, it.ResultInfo = e.Code, e.Info
		if e.Code != imerr.SnsPending.Code { // a recorded request is not a failure
			rs.fail = append(rs.fail, to)
		}
	}
	rs.items = append(rs.items, it)
	return nil
}

func (rs *relResults) reply() map[string]any {
	if rs.items == nil {
		rs.items = []relResultItem{}
	}
	if rs.fail == nil {
		rs.fail = []string{}
	}
	return map[string]any{"ResultItem": rs.items, "Fail_Account": rs.fail}
}

// relLocks serialise changes of relation records per user (striped). Each
// Broker has its own, so brokers sharing a process (tests) never wait on
// each other's users.
type relLocks [256]sync.Mutex

var relSeed = maphash.MakeSeed() // picks a user's stripe; never changes

// lockUsers takes the relation locks of users and returns the unlock. Lock
// order: stripes in ascending index (sorted here), so two changes never
// deadlock; a caller holding stripes takes no other stripe.
func (b *Broker) lockUsers(users ...string) (unlock func()) {
	locks := &b.relLocks
	idx := make([]int, 0, len(users))
	for _, u := range users {
		idx = append(idx, int(maphash.String(relSeed, u)%uint64(len(locks))))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		locks[i].Lock()
	}
	return func() {
		for i := len(idx) - 1; i >= 0; i-- {
			locks[idx[i]].Unlock()
		}
	}
}

// relBatch builds one atomic relation change: KV sets and deletes and the
// events that report it.
type relBatch struct {
	sets    map[string][]byte
	dels    map[string]bool
	appends []storage.Append
	after   map[string][]map[string]any // after-callback pairs, sent once committed (callbackevents.go)
}

func newRelBatch() *relBatch {
	return &relBatch{sets: map[string][]byte{}, dels: map[string]bool{}}
}

func (rb *relBatch) set(k string, v []byte) { delete(rb.dels, k); rb.sets[k] = v }
func (rb *relBatch) del(k string)           { delete(rb.sets, k); rb.dels[k] = true }

func (rb *relBatch) event(uid, name string, body any) {
	ev, err := wire.EncodeEvent(name, body)
	if err != nil {
		panic("encode " + name + ": " + err.Error()) // only our own maps and structs
	}
	rb.appends = append(rb.appends, storage.Append{Stream: userStream(uid), Payload: ev})
}

// setFriend puts peer in owner's list (and the reverse index).
func (rb *relBatch) setFriend(owner, peer string, f friendRec) {
	rb.set(friendKey(owner, peer), mustJSON(f))
	rb.set(watcherKey(peer, owner), []byte{'1'})
}

func (rb *relBatch) delFriend(owner, peer string) {
	rb.del(friendKey(owner, peer))
	rb.del(watcherKey(peer, owner))
}

func (rb *relBatch) setPending(p pendingRec) {
	v := mustJSON(p)
	rb.set(pendingKey(p.To_Account, p.From_Account), v)
	rb.set(sentKey(p.From_Account, p.To_Account), v)
}

func (rb *relBatch) delPending(from, to string) {
	rb.del(pendingKey(to, from))
	rb.del(sentKey(from, to))
}

// friendAdded reports that owner's list gained peer: the owner's devices
// get the record, the peer only the pair.
func (rb *relBatch) friendAdded(owner, peer, initiator string, f friendRec) {
	pair := map[string]any{"From_Account": owner, "To_Account": peer, "Initiator_Account": initiator}
	full := map[string]any{"From_Account": owner, "To_Account": peer, "Initiator_Account": initiator,
		"Remark": f.Remark, "GroupName": nonNilStrs(f.GroupName), "AddSource": f.AddSource, "AddWording": f.AddWording, "AddTime": f.AddTime}
	rb.event(owner, eventFriendAdded, full)
	rb.event(peer, eventFriendAdded, pair)
	rb.callback(cbSnsFriendAdd, owner, peer, initiator)
}

// friendDeleted reports that owner's list lost peer, to both.
func (rb *relBatch) friendDeleted(owner, peer, initiator string) {
	pair := map[string]any{"From_Account": owner, "To_Account": peer, "Initiator_Account": initiator}
	rb.event(owner, eventFriendDeleted, pair)
	rb.event(peer, eventFriendDeleted, pair)
	rb.callback(cbSnsFriendDelete, owner, peer, initiator)
}

func (b *Broker) commitRel(ctx context.Context, rb *relBatch) error {
	if len(rb.sets) == 0 && len(rb.dels) == 0 && len(rb.appends) == 0 {
		return nil
	}
	batch := storage.Batch{Appends: rb.appends, Sets: rb.sets}
	for k := range rb.dels {
		batch.Deletes = append(batch.Deletes, k)
	}
	sort.Strings(batch.Deletes)
	_, err := b.store.Commit(ctx, batch)
	if err == nil {
		b.relAfter(rb)
	}
	return err
}

// commitFanout commits first (the change itself) together with the first
// events, then the rest of the events in chunks: notifications to an
// unbounded number of watchers must not make one unbounded batch.
func (b *Broker) commitFanout(ctx context.Context, first storage.Batch, events []storage.Append) error {
	for {
		n := min(len(events), fanoutChunk)
		first.Appends = append(first.Appends, events[:n]...)
		events = events[n:]
		if _, err := b.store.Commit(ctx, first); err != nil {
			return err
		}
		if len(events) == 0 {
			return nil
		}
		first = storage.Batch{}
	}
}

func nonNilStrs(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// relHas reports whether a KV record exists.
func (b *Broker) relHas(key string) (bool, error) {
	_, ok, err := b.store.Get(key)
	return ok, err
}

// relGetJSON reads a KV record into v.
func (b *Broker) relGetJSON(key string, v any) (bool, error) {
	raw, ok, err := b.store.Get(key)
	if err != nil || !ok {
		return false, err
	}
	return true, json.Unmarshal(raw, v)
}

// relCount counts the records under prefix, up to limit.
func (b *Broker) relCount(prefix string, limit int) (int, error) {
	kvs, err := b.store.Scan(prefix, "", limit)
	return len(kvs), err
}

// relScan visits every record under prefix with the rest of its name, in order.
func (b *Broker) relScan(prefix string, fn func(rest string, v []byte) error) error {
	after := ""
	for {
		kvs, err := b.store.Scan(prefix, after, 1000)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			if err := fn(strings.TrimPrefix(kv.Name, prefix), kv.Value); err != nil {
				return err
			}
		}
		if len(kvs) < 1000 {
			return nil
		}
		after = kvs[len(kvs)-1].Name
	}
}

// relWatchers lists the users who have uid in their friend list.
func (b *Broker) relWatchers(uid string) ([]string, error) {
	var out []string
	err := b.relScan(watcherPrefix(uid), func(w string, _ []byte) error {
		out = append(out, w)
		return nil
	})
	return out, err
}

// loadFriends returns uid's friend list in UserID order.
func (b *Broker) loadFriends(uid string) ([]string, []friendRec, error) {
	var peers []string
	var recs []friendRec
	err := b.relScan(friendPrefix(uid), func(peer string, v []byte) error {
		var f friendRec
		if err := json.Unmarshal(v, &f); err != nil {
			return err
		}
		peers, recs = append(peers, peer), append(recs, f)
		return nil
	})
	return peers, recs, err
}

// friendGroups lists uid's friend lists.
func (b *Broker) friendGroups(uid string) ([]string, error) {
	var out []string
	err := b.relScan(friendGroupPrefix(uid), func(name string, _ []byte) error {
		out = append(out, name)
		return nil
	})
	return out, err
}

// checkPeer validates a To_Account of a relation request.
func checkPeer(self, to string) error {
	if ids.CheckUserID(to) != nil {
		return imerr.SnsBadParams.New("invalid To_Account %q", to)
	}
	if to == self {
		return imerr.SnsBadParams.New("To_Account is yourself")
	}
	return nil
}

// checkRelText bounds a remark or wording.
func checkRelText(field, v string, max int) error {
	if len(v) > max || !utf8.ValidString(v) {
		return imerr.SnsBadParams.New("%s must be valid UTF-8 of at most %d bytes", field, max)
	}
	return nil
}

func checkAddSource(s string) error {
	if s == "" {
		return nil
	}
	kw, ok := strings.CutPrefix(s, addSourcePrefix)
	good := ok && kw != "" && len(kw) <= maxAddSourceKeyword
	for _, c := range kw {
		good = good && (c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z')
	}
	if !good {
		return imerr.SnsBadParams.New("AddSource must be %s{keyword of 1 to %d letters or digits}", addSourcePrefix, maxAddSourceKeyword)
	}
	return nil
}

// checkGroupNames validates friend list names (deduplicated, in order).
func checkGroupNames(names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		ok := n != "" && len(n) <= maxFriendGroupName && utf8.ValidString(n)
		for _, c := range n {
			ok = ok && c >= 0x20 && c != 0x7f
		}
		if !ok {
			return nil, imerr.SnsBadParams.New("friend list name %q must be 1 to %d bytes of printable UTF-8", n, maxFriendGroupName)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// groupNames reads a GroupName field: a string (Tencent's friend_add) or an
// array of strings.
func groupNames(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one == "" {
			return nil, nil
		}
		return checkGroupNames([]string{one})
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, imerr.SnsBadParams.New("GroupName must be a string or an array of strings")
	}
	return checkGroupNames(many)
}

// ensureGroups adds to rb the friend lists of names that uid lacks, if the
// limit allows them all: it returns 30011 otherwise. Call with uid's lock held.
func (b *Broker) ensureGroups(rb *relBatch, uid string, names []string, now int64) error {
	if len(names) == 0 {
		return nil
	}
	have, err := b.friendGroups(uid)
	if err != nil {
		return err
	}
	n := len(have)
	for k := range rb.sets { // lists this batch already creates
		if strings.HasPrefix(k, friendGroupPrefix(uid)) && !slices.Contains(have, strings.TrimPrefix(k, friendGroupPrefix(uid))) {
			n++
		}
	}
	var create []string // all or none: a refusal leaves rb as it was
	for _, name := range names {
		if !slices.Contains(have, name) && rb.sets[friendGroupKey(uid, name)] == nil && !slices.Contains(create, name) {
			create = append(create, name)
		}
	}
	if n+len(create) > b.cfg.Relations.MaxFriendGroups {
		return imerr.SnsGroupsFull.New("at most %d friend lists", b.cfg.Relations.MaxFriendGroups)
	}
	for _, name := range create {
		rb.set(friendGroupKey(uid, name), mustJSON(friendGroupRec{CreateTime: now}))
	}
	return nil
}

// friendsFull checks uid's list against relations.max_friends.
func (b *Broker) friendsFull(uid string, kind *imerr.Kind) error {
	max := b.cfg.Relations.MaxFriends
	n, err := b.relCount(friendPrefix(uid), max)
	if err != nil {
		return err
	}
	if n >= max {
		if kind == imerr.SnsFriendsFull {
			return kind.New("your friend list is full (%d)", max)
		}
		return kind.New("%s's friend list is full (%d)", uid, max)
	}
	return nil
}

type addFriendItem struct {
	To_Account string
	Remark     string
	GroupName  json.RawMessage
	AddSource  string
	AddWording string
}

// reqFriendAdd adds friends (Tencent sns/friend_add), per the target's
// AllowType: AllowAny adds at once (Add_Type_Both: both lists), NeedConfirm
// records a request the target answers with friend.response (item result
// 30539), DenyAny refuses (30516). [IM-REL-FRIENDS]
func (b *Broker) reqFriendAdd(ctx context.Context, r *reqCtx) (any, error) {
	var q struct {
		AddFriendItem []addFriendItem
		AddType       string
	}
	if err := r.decode(&q, imerr.SnsBadParams); err != nil {
		return nil, err
	}
	if len(q.AddFriendItem) == 0 || len(q.AddFriendItem) > maxRelItems {
		return nil, imerr.SnsBadParams.New("AddFriendItem must hold 1 to %d items", maxRelItems)
	}
	switch q.AddType {
	case "":
		q.AddType = addTypeBoth
	case addTypeSingle, addTypeBoth:
	default:
		return nil, imerr.SnsBadParams.New("AddType must be %s or %s", addTypeSingle, addTypeBoth)
	}
	prof, err := b.loadProfile(r.user)
	if err != nil {
		return nil, err
	}
	if profileString(prof, tagAdminForbidType) == adminForbidSendOut {
		return nil, imerr.SnsForbidden.New("the app admin forbade your friend requests (AdminForbidType)")
	}
	refused := b.prevFriendAdd(ctx, r.user, q.AddFriendItem, q.AddType) // Sns.CallbackPrevFriendAdd, before any lock
	var rs relResults
	for _, it := range q.AddFriendItem {
		if e, ok := refused[it.To_Account]; ok {
			if err := rs.add(it.To_Account, e); err != nil {
				return nil, err
			}
			continue
		}
		if err := rs.add(it.To_Account, b.addFriend(ctx, r.user, it, q.AddType)); err != nil {
			return nil, err
		}
	}
	return rs.reply(), nil
}

// checkFriendAdd checks the fields friend_add and friend_import share: the
// peer, the Remark and AddWording lengths, the AddSource form.
func (b *Broker) checkFriendAdd(a, to, remark, wording, source string) error {
	rc := b.cfg.Relations
	if err := checkPeer(a, to); err != nil {
		return err
	}
	if err := checkRelText("Remark", remark, rc.MaxRemarkBytes); err != nil {
		return err
	}
	if err := checkRelText("AddWording", wording, rc.MaxAddWordingBytes); err != nil {
		return err
	}
	return checkAddSource(source)
}

func (b *Broker) addFriend(ctx context.Context, a string, it addFriendItem, addType string) error {
	rc := b.cfg.Relations
	to := it.To_Account
	if err := b.checkFriendAdd(a, to, it.Remark, it.AddWording, it.AddSource); err != nil {
		return err
	}
	groups, err := groupNames(it.GroupName)
	if err != nil {
		return err
	}
	unlock := b.lockUsers(a, to)
	defer unlock()
	now := time.Now().Unix()
	rb, err := b.friendAddable(a, to, groups, now)
	if err != nil {
		return err
	}
	prof, err := b.loadProfile(to)
	if err != nil {
		return err
	}
	switch profileString(prof, tagAllowType) {
	case allowDenyAny:
		return imerr.SnsPeerDeniesAll.New("%s accepts no friend requests", to)
	case allowAllowAny:
	default: // NeedConfirm
		again, err := b.relHas(pendingKey(to, a))
		if err != nil {
			return err
		}
		if !again {
			for _, prefix := range []string{pendingPrefix(to), sentPrefix(a)} {
				n, err := b.relCount(prefix, rc.MaxPending)
				if err != nil {
					return err
				}
				if n >= rc.MaxPending {
					return imerr.SnsPendingFull.New("too many pending friend requests (%d)", rc.MaxPending)
				}
			}
		}
		p := pendingRec{From_Account: a, To_Account: to, AddTime: now, AddType: addType, AddSource: it.AddSource,
			AddWording: it.AddWording, Remark: it.Remark, GroupName: groups}
		rb = newRelBatch() // lists are created when the request is accepted
		rb.setPending(p)
		rb.event(to, eventFriendRequest, p.public())
		rb.event(a, eventFriendRequest, p.public())
		if err := b.commitRel(ctx, rb); err != nil {
			return err
		}
		return imerr.SnsPending.New("waiting for %s to accept", to)
	}
	rec := friendRec{Remark: it.Remark, GroupName: groups, AddTime: now, AddSource: it.AddSource, AddWording: it.AddWording}
	rb.setFriend(a, to, rec)
	rb.friendAdded(a, to, a, rec)
	rb.delPending(a, to)
	if addType == addTypeBoth {
		back, err := b.relHas(friendKey(to, a))
		if err != nil {
			return err
		}
		if !back {
			if err := b.friendsFull(to, imerr.SnsPeerFriendsFull); err != nil {
				return err
			}
			peer := friendRec{AddTime: now, AddSource: it.AddSource, AddWording: it.AddWording}
			rb.setFriend(to, a, peer)
			rb.friendAdded(to, a, a, peer)
		}
		rb.delPending(to, a)
	}
	return b.commitRel(ctx, rb)
}

// orErr returns err if set, else e.
func orErr(err error, e *imerr.Error) error {
	if err != nil {
		return err
	}
	return e
}

type responseItem struct {
	To_Account     string
	ResponseAction string
	Remark         string
	GroupName      json.RawMessage
}

// reqFriendResponse answers friend requests (Tencent's friend response):
// Agree puts the responder in the requester's list, AgreeAndAdd makes the
// friendship two-way, Reject drops the request.
func (b *Broker) reqFriendResponse(ctx context.Context, r *reqCtx) (any, error) {
	var q struct{ ResponseFriendItem []responseItem }
	if err := r.decode(&q, imerr.SnsBadParams); err != nil {
		return nil, err
	}
	if len(q.ResponseFriendItem) == 0 || len(q.ResponseFriendItem) > maxRelItems {
		return nil, imerr.SnsBadParams.New("ResponseFriendItem must hold 1 to %d items", maxRelItems)
	}
	refused := b.prevFriendResponse(ctx, r.user, q.ResponseFriendItem) // Sns.CallbackPrevFriendResponse, before any lock
	var rs relResults
	for _, it := range q.ResponseFriendItem {
		if e, ok := refused[it.To_Account]; ok {
			if err := rs.add(it.To_Account, e); err != nil {
				return nil, err
			}
			continue
		}
		if err := rs.add(it.To_Account, b.respondFriend(ctx, r.user, it)); err != nil {
			return nil, err
		}
	}
	return rs.reply(), nil
}

func (b *Broker) respondFriend(ctx context.Context, self string, it responseItem) error {
	from := it.To_Account // the requester
	if err := checkPeer(self, from); err != nil {
		return err
	}
	switch it.ResponseAction {
	case respAgree, respAgreeAndAdd, respReject:
	default:
		return imerr.SnsBadParams.New("ResponseAction must be %s, %s or %s", respAgreeAndAdd, respAgree, respReject)
	}
	if err := checkRelText("Remark", it.Remark, b.cfg.Relations.MaxRemarkBytes); err != nil {
		return err
	}
	groups, err := groupNames(it.GroupName)
	if err != nil {
		return err
	}
	unlock := b.lockUsers(self, from)
	defer unlock()
	var p pendingRec
	if ok, err := b.relGetJSON(pendingKey(self, from), &p); err != nil || !ok {
		return orErr(err, imerr.SnsBadParams.New("no friend request from %s", from))
	}
	now := time.Now().Unix()
	rb := newRelBatch()
	rb.delPending(from, self)
	resp := map[string]any{"From_Account": self, "To_Account": from, "ResponseAction": it.ResponseAction}
	rb.event(from, eventFriendResponse, resp)
	rb.event(self, eventFriendResponse, resp)
	if it.ResponseAction == respReject {
		return b.commitRel(ctx, rb)
	}
	if ok, err := b.relHas(friendKey(from, self)); err != nil {
		return err
	} else if !ok {
		if err := b.friendsFull(from, imerr.SnsPeerFriendsFull); err != nil {
			return err
		}
		// The requester's lists are created if their limit still allows;
		// otherwise the friend is added without them.
		reqGroups := p.GroupName
		if err := b.ensureGroups(rb, from, reqGroups, now); err != nil {
			if imerr.As(err).Code == imerr.Internal.Code {
				return err
			}
			reqGroups = nil
		}
		rec := friendRec{Remark: p.Remark, GroupName: reqGroups, AddTime: now, AddSource: p.AddSource, AddWording: p.AddWording}
		rb.setFriend(from, self, rec)
		rb.friendAdded(from, self, from, rec)
	}
	if it.ResponseAction == respAgreeAndAdd {
		if ok, err := b.relHas(friendKey(self, from)); err != nil {
			return err
		} else if !ok {
			if err := b.friendsFull(self, imerr.SnsFriendsFull); err != nil {
				return err
			}
			if err := b.ensureGroups(rb, self, groups, now); err != nil {
				return err
			}
			rec := friendRec{Remark: it.Remark, GroupName: groups, AddTime: now, AddSource: p.AddSource, AddWording: p.AddWording}
			rb.setFriend(self, from, rec)
			rb.friendAdded(self, from, self, rec)
		}
		rb.delPending(self, from) // a request of ours to them is answered too
	}
	return b.commitRel(ctx, rb)
}

// reqFriendPending lists friend requests: received (Pendency_Type_ComeIn,
// default) or sent (Pendency_Type_SendOut).
func (b *Broker) reqFriendPending(_ context.Context, r *reqCtx) (any, error) {
	var q struct{ PendencyType string }
	if err := r.decode(&q, imerr.SnsBadParams); err != nil {
		return nil, err
	}
	prefix, out := pendingPrefix(r.user), true
	switch q.PendencyType {
	case "", pendComeIn:
		out = false
	case pendSendOut:
		prefix = sentPrefix(r.user)
	default:
		return nil, imerr.SnsBadParams.New("PendencyType must be %s or %s", pendComeIn, pendSendOut)
	}
	items := []map[string]any{}
	if err := b.relScan(prefix, func(peer string, v []byte) error {
		var p pendingRec
		if err := json.Unmarshal(v, &p); err != nil {
			return err
		}
		it := p.public()
		it["To_Account"] = peer // the other user
		delete(it, "From_Account")
		if out {
			it["Remark"], it["GroupName"] = p.Remark, nonNilStrs(p.GroupName)
		}
		items = append(items, it)
		return nil
	}); err != nil {
		return nil, err
	}
	return map[string]any{"PendencyItem": items, "TotalCount": len(items)}, nil
}

// reqFriendDelete removes friends: Delete_Type_Single (default) from your
// list, Delete_Type_Both from both lists.
func (b *Broker) reqFriendDelete(ctx context.Context, r *reqCtx) (any, error) {
	var q struct {
		To_Account []string
		DeleteType string
	}
	if err := r.decode(&q, imerr.SnsBadParams); err != nil {
		return nil, err
	}
	if len(q.To_Account) == 0 || len(q.To_Account) > maxRelItems {
		return nil, imerr.SnsBadParams.New("To_Account must hold 1 to %d accounts", maxRelItems)
	}
	switch q.DeleteType {
	case "":
		q.DeleteType = deleteTypeSingle
	case deleteTypeSingle, deleteTypeBoth:
	default:
		return nil, imerr.SnsBadParams.New("DeleteType must be %s or %s", deleteTypeSingle, deleteTypeBoth)
	}
	var rs relResults
	for _, to := range q.To_Account {
		if err := rs.add(to, b.deleteFriend(ctx, r.user, to, q.DeleteType == deleteTypeBoth)); err != nil {
			return nil, err
		}
	}
	return rs.reply(), nil
}

func (b *Broker) deleteFriend(ctx context.Context, a, to string, both bool) error {
	if err := checkPeer(a, to); err != nil {
		return err
	}
	unlock := b.lockUsers(a, to)
	defer unlock()
	if ok, err := b.relHas(friendKey(a, to)); err != nil || !ok {
		return orErr(err, imerr.SnsBadParams.New("%s is not your friend", to))
	}
	rb := newRelBatch()
	rb.delFriend(a, to)
	rb.friendDeleted(a, to, a)
	if both {
		if ok, err := b.relHas(friendKey(to, a)); err != nil {
			return err
		} else if ok {
			rb.delFriend(to, a)
			rb.friendDeleted(to, a, a)
		}
	}
	return b.commitRel(ctx, rb)
}

// reqFriendGet pages through the friend list (Tencent sns/friend_get).
func (b *Broker) reqFriendGet(_ context.Context, r *reqCtx) (any, error) {
	var q struct{ StartIndex int }
	if err := r.decode(&q, imerr.SnsBadParams); err != nil {
		return nil, err
	}
	if q.StartIndex < 0 {
		return nil, imerr.SnsBadParams.New("StartIndex must not be negative")
	}
	peers, recs, err := b.loadFriends(r.user)
	if err != nil {
		return nil, err
	}
	items := []map[string]any{}
	i := q.StartIndex
	for ; i < len(peers) && len(items) < friendPageSize; i++ {
		items = append(items, map[string]any{"To_Account": peers[i], "ValueItem": recs[i].valueItems()})
	}
	complete := 0
	if i >= len(peers) {
		complete, i = 1, len(peers)
	}
	return map[string]any{"UserDataItem": items, "FriendNum": len(peers), "CompleteFlag": complete, "NextStartIndex": i,
		"StandardSequence": 0, "CustomSequence": 0}, nil
}

// reqFriendCheck reports relations (Tencent sns/friend_check).
func (b *Broker) reqFriendCheck(_ context.Context, r *reqCtx) (any, error) {
	return b.checkRelations(r, relationCheck{key: friendKey, single: checkSingle, both: checkBoth,
		prefix: "CheckResult_Type_", none: "NoRelation", field: "InfoItem"})
}

// relationCheck describes one kind of relation check (friends, blacklist).
type relationCheck struct {
	key          func(from, to string) string // the record that means "from relates to to"
	single, both string                       // CheckType values
	prefix, none string                       // Relation value spelling
	field        string                       // reply list name
}

// checkRelations answers friend_check and black_list_check: for each
// account, whether the relation holds one way, the other, both or neither.
func (b *Broker) checkRelations(r *reqCtx, c relationCheck) (any, error) {
	var q struct {
		To_Account []string
		CheckType  string
	}
	if err := r.decode(&q, imerr.SnsBadParams); err != nil {
		return nil, err
	}
	if len(q.To_Account) == 0 || len(q.To_Account) > maxRelCheck {
		return nil, imerr.SnsBadParams.New("To_Account must hold 1 to %d accounts", maxRelCheck)
	}
	switch q.CheckType {
	case "":
		q.CheckType = c.both
	case c.single, c.both:
	default:
		return nil, imerr.SnsBadParams.New("CheckType must be %s or %s", c.single, c.both)
	}
	items := []map[string]any{}
	fail := []string{}
	for _, to := range q.To_Account {
		if ids.CheckUserID(to) != nil {
			items = append(items, map[string]any{"To_Account": to, "Relation": "", "ResultCode": imerr.SnsBadParams.Code, "ResultInfo": "invalid To_Account"})
			fail = append(fail, to)
			continue
		}
		ab, err := b.relHas(c.key(r.user, to))
		if err != nil {
			return nil, err
		}
		ba := false
		if q.CheckType == c.both {
			if ba, err = b.relHas(c.key(to, r.user)); err != nil {
				return nil, err
			}
		}
		items = append(items, map[string]any{"To_Account": to, "Relation": relation(c.prefix, c.none, ab, ba),
			"ResultCode": 0, "ResultInfo": ""})
	}
	return map[string]any{c.field: items, "Fail_Account": fail}, nil
}

// relation names a check result: BothWay, AWithB (you -> them), BWithA or none.
func relation(prefix, none string, ab, ba bool) string {
	switch {
	case ab && ba:
		return prefix + "BothWay"
	case ab:
		return prefix + "AWithB"
	case ba:
		return prefix + "BWithA"
	}
	return prefix + none
}

// reqFriendUpdate changes friend records (Tencent sns/friend_update):
// Tag_SNS_IM_Remark and Tag_SNS_IM_Group (the lists the friend is in).
func (b *Broker) reqFriendUpdate(ctx context.Context, r *reqCtx) (any, error) {
	var q struct {
		UpdateItem []struct {
			To_Account string
			SnsItem    []struct {
				Tag   string
				Value json.RawMessage
			}
		}
	}
	if err := r.decode(&q, imerr.SnsBadParams); err != nil {
		return nil, err
	}
	if len(q.UpdateItem) == 0 || len(q.UpdateItem) > maxRelItems {
		return nil, imerr.SnsBadParams.New("UpdateItem must hold 1 to %d items", maxRelItems)
	}
	var rs relResults
	for _, it := range q.UpdateItem {
		err := func() error {
			if err := checkPeer(r.user, it.To_Account); err != nil {
				return err
			}
			if len(it.SnsItem) == 0 {
				return imerr.SnsBadParams.New("SnsItem is empty")
			}
			unlock := b.lockUsers(r.user)
			defer unlock()
			var rec friendRec
			if ok, err := b.relGetJSON(friendKey(r.user, it.To_Account), &rec); err != nil || !ok {
				return orErr(err, imerr.SnsBadParams.New("%s is not your friend", it.To_Account))
			}
			rb := newRelBatch()
			for _, s := range it.SnsItem {
				switch s.Tag {
				case tagSnsRemark:
					if json.Unmarshal(s.Value, &rec.Remark) != nil {
						return imerr.SnsBadParams.New("%s takes a string", s.Tag)
					}
					if err := checkRelText("Remark", rec.Remark, b.cfg.Relations.MaxRemarkBytes); err != nil {
						return err
					}
				case tagSnsGroup:
					groups, err := groupNames(s.Value)
					if err != nil {
						return err
					}
					if err := b.ensureGroups(rb, r.user, groups, time.Now().Unix()); err != nil {
						return err
					}
					rec.GroupName = groups
				default:
					return imerr.SnsBadParams.New("%s cannot be updated (only %s and %s)", s.Tag, tagSnsRemark, tagSnsGroup)
				}
			}
			rb.set(friendKey(r.user, it.To_Account), mustJSON(rec))
			rb.event(r.user, eventFriendUpdated, map[string]any{"To_Account": it.To_Account, "Remark": rec.Remark, "GroupName": nonNilStrs(rec.GroupName)})
			return b.commitRel(ctx, rb)
		}()
		if err := rs.add(it.To_Account, err); err != nil {
			return nil, err
		}
	}
	return rs.reply(), nil
}

// reqFriendGroupAdd creates friend lists (those that do not exist yet) and
// puts the given friends in all of them (Tencent sns/group_add).
func (b *Broker) reqFriendGroupAdd(ctx context.Context, r *reqCtx) (any, error) {
	var q struct {
		GroupName  []string
		To_Account []string
	}
	if err := r.decode(&q, imerr.SnsBadParams); err != nil {
		return nil, err
	}
	names, err := checkGroupNames(q.GroupName)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 || len(q.To_Account) > maxRelItems {
		return nil, imerr.SnsBadParams.New("GroupName must name at least one list and To_Account hold at most %d accounts", maxRelItems)
	}
	unlock := b.lockUsers(r.user)
	defer unlock()
	rb := newRelBatch()
	if err := b.ensureGroups(rb, r.user, names, time.Now().Unix()); err != nil {
		return nil, err
	}
	var rs relResults
	added := []string{}
	for _, to := range q.To_Account {
		err := checkPeer(r.user, to)
		var rec friendRec
		if err == nil {
			if ok, gerr := b.relGetJSON(friendKey(r.user, to), &rec); gerr != nil {
				return nil, gerr
			} else if !ok {
				err = imerr.SnsBadParams.New("%s is not your friend", to)
			}
		}
		if err == nil {
			for _, n := range names {
				if !slices.Contains(rec.GroupName, n) {
					rec.GroupName = append(rec.GroupName, n)
				}
			}
			rb.set(friendKey(r.user, to), mustJSON(rec))
			added = append(added, to)
		}
		if err := rs.add(to, err); err != nil {
			return nil, err
		}
	}
	rb.event(r.user, eventFriendGroupUpdated, map[string]any{"Action": "Add", "GroupName": names, "Friend_Account": added})
	if err := b.commitRel(ctx, rb); err != nil {
		return nil, err
	}
	return rs.reply(), nil
}

// reqFriendGroupDelete deletes friend lists; their friends stay friends.
func (b *Broker) reqFriendGroupDelete(ctx context.Context, r *reqCtx) (any, error) {
	var q struct{ GroupName []string }
	if err := r.decode(&q, imerr.SnsBadParams); err != nil {
		return nil, err
	}
	names, err := checkGroupNames(q.GroupName)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, imerr.SnsBadParams.New("GroupName must name at least one list")
	}
	unlock := b.lockUsers(r.user)
	defer unlock()
	have, err := b.friendGroups(r.user)
	if err != nil {
		return nil, err
	}
	rb := newRelBatch()
	for _, n := range names {
		if !slices.Contains(have, n) {
			return nil, imerr.SnsBadParams.New("no friend list %q", n)
		}
		rb.del(friendGroupKey(r.user, n))
	}
	peers, recs, err := b.loadFriends(r.user)
	if err != nil {
		return nil, err
	}
	for i, rec := range recs {
		kept := slices.DeleteFunc(slices.Clone(rec.GroupName), func(g string) bool { return slices.Contains(names, g) })
		if len(kept) != len(rec.GroupName) {
			rec.GroupName = kept
			rb.set(friendKey(r.user, peers[i]), mustJSON(rec))
		}
	}
	rb.event(r.user, eventFriendGroupUpdated, map[string]any{"Action": "Delete", "GroupName": names, "Friend_Account": []string{}})
	if err := b.commitRel(ctx, rb); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

// reqFriendGroupGet lists friend lists (all, or those named) with their
// sizes and, with NeedFriend Need_Friend_Type_Yes, their friends.
func (b *Broker) reqFriendGroupGet(_ context.Context, r *reqCtx) (any, error) {
	var q struct {
		GroupName  []string
		NeedFriend string
	}
	if err := r.decode(&q, imerr.SnsBadParams); err != nil {
		return nil, err
	}
	have, err := b.friendGroups(r.user)
	if err != nil {
		return nil, err
	}
	names := have
	if len(q.GroupName) > 0 {
		if names, err = checkGroupNames(q.GroupName); err != nil {
			return nil, err
		}
		for _, n := range names {
			if !slices.Contains(have, n) {
				return nil, imerr.SnsBadParams.New("no friend list %q", n)
			}
		}
	}
	peers, recs, err := b.loadFriends(r.user)
	if err != nil {
		return nil, err
	}
	members := map[string][]string{}
	for i, rec := range recs {
		for _, g := range rec.GroupName {
			members[g] = append(members[g], peers[i])
		}
	}
	items := []map[string]any{}
	for _, n := range names {
		it := map[string]any{"GroupName": n, "FriendNumber": len(members[n])}
		if q.NeedFriend == needFriendYes {
			it["To_Account"] = nonNilStrs(members[n])
		}
		items = append(items, it)
	}
	return map[string]any{"ResultItem": items}, nil
}

// friendAddable checks that a may add to as a friend (not yet friends, no
// blacklist either way, a's list not full) and starts the batch with any
// friend lists to create. Callers hold b.lockUsers(a, to). Shared by
// friend_add and friend_import.
func (b *Broker) friendAddable(a, to string, groups []string, now int64) (*relBatch, error) {
	if ok, err := b.relHas(friendKey(a, to)); err != nil || ok {
		return nil, orErr(err, imerr.SnsBadParams.New("%s is already your friend", to))
	}
	if ok, err := b.relHas(blackKey(a, to)); err != nil || ok {
		return nil, orErr(err, imerr.SnsPeerBlacklisted.New("%s is on your blacklist", to))
	}
	if ok, err := b.relHas(blackKey(to, a)); err != nil || ok {
		return nil, orErr(err, imerr.SnsYouBlacklisted.New("you are on %s's blacklist", to))
	}
	if err := b.friendsFull(a, imerr.SnsFriendsFull); err != nil {
		return nil, err
	}
	rb := newRelBatch()
	if err := b.ensureGroups(rb, a, groups, now); err != nil {
		return nil, err
	}
	return rb, nil
}
