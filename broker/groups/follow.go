package groups

import (
	"encoding/json"
	"strings"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/storage"
)

// Following the log (cluster mode). A node that does not own the store
// runs no group change itself: the owner does, and this node applies its
// effects (storage.Apply). Applied is told the KV records of each effect,
// after Pebble has them and before their entries are delivered, and brings
// the loaded groups up to them, so the delivery ACL, the subscribe ACL,
// the history floors and every read answer as on the owner.

// Applied updates the loaded groups with the group records an effect
// applied from the log set or deleted (storage.Options.OnApply). A group
// not loaded is left alone: it loads from the store, which has the effect.
// It runs on the store's apply path holding its write lock, so it never
// waits for a group's op lock (whose holder may wait for a commit): a group
// whose op is held is dropped from the registry instead, and the next
// lookup loads it again. Members removed lose their subscriptions to the
// group topic on this node, as the owner drops them on its own.
func (s *Service) Applied(a storage.Applied) {
	if a.All {
		s.forgetAll()
		return
	}
	changes := map[string]*followed{}
	of := func(gid string) *followed {
		f := changes[gid]
		if f == nil {
			f = &followed{}
			changes[gid] = f
		}
		return f
	}
	for _, kv := range a.KVs {
		if gid, ok := groupOfRecord(kv.Name); ok {
			f := of(gid)
			f.kvs = append(f.kvs, kv)
		}
	}
	for _, e := range a.Entries {
		gid, ok := strings.CutPrefix(e.Stream, groupStreamPrefix)
		if !ok || !s.isLoaded(gid) {
			continue
		}
		var ev struct {
			Event string
			Msg   struct{ MsgTime int64 }
		}
		if json.Unmarshal(e.Payload, &ev) == nil && ev.Event == wire.EventGroupMsg {
			f := of(gid)
			f.lastMsgTime = max(f.lastMsgTime, ev.Msg.MsgTime)
		}
	}
	for gid, f := range changes {
		s.follow(gid, f)
	}
}

// followed is what an applied effect changed of one group: its records,
// and the time of its last message (LastMsgTime, which the owner keeps in
// memory and stores only with the next profile write).
type followed struct {
	kvs         []storage.KVChange
	lastMsgTime int64
}

// groupStreamPrefix starts a stored group's stream (convs.GroupStream).
const groupStreamPrefix = "g/"

func (s *Service) isLoaded(gid string) bool {
	s.reg.mu.RLock()
	defer s.reg.mu.RUnlock()
	return s.reg.loaded[gid] != nil
}

// groupOfRecord returns the group a record belongs to, for the records a
// loaded group holds: its profile, members and applications.
func groupOfRecord(name string) (string, bool) {
	for _, p := range []string{"gm/", "ga/"} {
		if rest, ok := strings.CutPrefix(name, p); ok {
			gid, _, ok := strings.Cut(rest, "/")
			return gid, ok
		}
	}
	gid, ok := strings.CutPrefix(name, groupPrefix)
	return gid, ok && gid != ""
}

// follow applies one group's changed records to its loaded state.
func (s *Service) follow(gid string, f *followed) {
	s.reg.mu.RLock()
	g := s.reg.loaded[gid]
	s.reg.mu.RUnlock()
	if g == nil {
		for _, kv := range f.kvs {
			if kv.Deleted && kv.Name == groupKey(gid) {
				s.forgetLive(gid) // a live room destroyed while not loaded here
			}
		}
		return
	}
	if !g.op.TryLock() {
		// A reader holds it (group.info, group.members, ...) or, on a node
		// that just lost the log, a change waiting for a commit that
		// cannot run before this apply ends: never wait for it. The
		// holder keeps the state it started with.
		s.evict(gid, g, f)
		return
	}
	defer g.op.Unlock()
	var removed []string
	destroyed, bad := false, false
	g.apply(func() {
		g.info.LastMsgTime = max(g.info.LastMsgTime, f.lastMsgTime)
		for _, kv := range f.kvs {
			switch {
			case kv.Name == groupKey(gid):
				if kv.Deleted {
					destroyed = true
					continue
				}
				info := groupInfo{}
				if json.Unmarshal(kv.Value, &info) != nil || info.Type != g.info.Type {
					bad = true // a type change is a new group: load it again
					continue
				}
				info.LastMsgTime = max(info.LastMsgTime, g.info.LastMsgTime) // kept in memory between profile writes
				g.info = info
			case strings.HasPrefix(kv.Name, memberPrefix(gid)):
				uid := kv.Name[len(memberPrefix(gid)):]
				gone, undecoded := followRecord(g.members, uid, kv)
				if gone {
					removed = append(removed, uid)
				}
				bad = bad || undecoded
			case strings.HasPrefix(kv.Name, applicationPrefix(gid)):
				_, undecoded := followRecord(g.apps, kv.Name[len(applicationPrefix(gid)):], kv)
				bad = bad || undecoded
			}
		}
	})
	switch {
	case destroyed:
		s.reg.forget(gid, g) // op -> reg.mu -> g.mu, as Destroy
		s.forgetLive(gid)
		s.dropLocal(gid)
		return
	case bad:
		s.log.Error("group record from the log does not decode: the group is loaded again", "group", gid)
		s.reg.forgetLoaded(gid, g)
	}
	if len(removed) > 0 {
		s.dropLocal(gid, removed...)
	}
}

// followRecord sets or deletes m[key] as an applied record says; it
// reports whether it removed an entry and whether the record did not
// decode (then m is left as it was).
func followRecord[T any](m map[string]*T, key string, kv storage.KVChange) (removed, bad bool) {
	if kv.Deleted {
		_, removed = m[key]
		delete(m, key)
		return removed, false
	}
	v := new(T)
	if json.Unmarshal(kv.Value, v) != nil {
		return false, true
	}
	m[key] = v
	return false, false
}

// evict drops a loaded group whose op lock is held, so that the next
// lookup loads it from the store (which has the effect). A removal or a
// destruction still ends subscriptions here at once, read from the change
// itself: loading a large group now, under the registry's lock, would hold
// up every group lookup of this node.
func (s *Service) evict(gid string, g *group, f *followed) {
	s.reg.forgetLoaded(gid, g)
	var removed []string
	for _, kv := range f.kvs {
		switch {
		case !kv.Deleted:
		case kv.Name == groupKey(gid):
			s.forgetLive(gid)
			s.dropLocal(gid)
			return
		case strings.HasPrefix(kv.Name, memberPrefix(gid)):
			removed = append(removed, kv.Name[len(memberPrefix(gid)):])
		}
	}
	if len(removed) > 0 {
		s.dropLocal(gid, removed...)
	}
}

// localDropper is a Conns that tells the other nodes too (cluster mode,
// the bus) and can act on this node alone.
type localDropper interface {
	DropLocal(gid string, users ...string)
}

// dropLocal ends subscriptions to the group topic on this node only: every
// node drops its own as it applies the change, so telling the others (as
// the owner's own Conns.DropGroupSubscriptions does) would only repeat it.
func (s *Service) dropLocal(gid string, users ...string) {
	if l, ok := s.conns.(localDropper); ok {
		l.DropLocal(gid, users...)
		return
	}
	s.conns.DropGroupSubscriptions(gid, users...)
}

// forgetAll drops every loaded group (an effect that deleted a range of
// records: anything may have changed).
func (s *Service) forgetAll() {
	// Subscriptions stay: the read ACL checks every copy against the
	// state loaded again.
	s.reg.mu.Lock()
	s.reg.loaded = map[string]*group{}
	s.reg.mu.Unlock()
}

// forgetLoaded removes g from the registry without marking it destroyed:
// whoever holds it finishes with the state it had.
func (r *registry) forgetLoaded(gid string, g *group) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.loaded[gid] == g {
		delete(r.loaded, gid)
	}
}
