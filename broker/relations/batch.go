package relations

import (
	"context"
	"fmt"
	"sort"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/storage"
)

// fanoutChunk is how many events one commit carries when notifying many
// users.
const fanoutChunk = 1000

// relBatch builds one atomic relation change: KV sets and deletes, the
// events that report it and the after-callbacks sent once it is durable.
type relBatch struct {
	sets    map[string][]byte
	dels    map[string]bool
	appends []storage.Append
	after   map[string][]map[string]any // after-callback pairs by command (callbacks.go)
	forced  bool                        // an admin force-add (ForceAddFlags 1): the callbacks' ForceFlag
}

func newRelBatch() *relBatch {
	return &relBatch{sets: map[string][]byte{}, dels: map[string]bool{}}
}

func (rb *relBatch) set(k string, v []byte) { delete(rb.dels, k); rb.sets[k] = v }
func (rb *relBatch) del(k string)           { delete(rb.sets, k); rb.dels[k] = true }

// event appends the event name with body to uid's stream.
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
	rb.friendAddedEvents(owner, peer, initiator, f)
	rb.callback(cbSnsFriendAdd, owner, peer, initiator)
}

// friendAddedEvents are friendAdded's events, without its callback
// (friend import fires none).
func (rb *relBatch) friendAddedEvents(owner, peer, initiator string, f friendRec) {
	pair := map[string]any{"From_Account": owner, "To_Account": peer, "Initiator_Account": initiator}
	full := map[string]any{"From_Account": owner, "To_Account": peer, "Initiator_Account": initiator,
		"Remark": f.Remark, "GroupName": nonNilStrs(f.GroupName), "AddSource": f.AddSource, "AddWording": f.AddWording, "AddTime": f.AddTime}
	rb.event(owner, eventFriendAdded, full)
	rb.event(peer, eventFriendAdded, pair)
}

// friendDeleted reports that owner's list lost peer, to both.
func (rb *relBatch) friendDeleted(owner, peer, initiator string) {
	pair := map[string]any{"From_Account": owner, "To_Account": peer, "Initiator_Account": initiator}
	rb.event(owner, eventFriendDeleted, pair)
	rb.event(peer, eventFriendDeleted, pair)
	rb.callback(cbSnsFriendDelete, owner, peer, initiator)
}

// commit writes rb in one batch and, once it is durable, queues its
// after-callbacks.
func (s *Service) commit(ctx context.Context, rb *relBatch) error {
	if len(rb.sets) == 0 && len(rb.dels) == 0 && len(rb.appends) == 0 {
		return nil
	}
	batch := storage.Batch{Appends: rb.appends, Sets: rb.sets}
	for k := range rb.dels {
		batch.Deletes = append(batch.Deletes, k)
	}
	sort.Strings(batch.Deletes)
	if _, err := s.store.Commit(ctx, batch); err != nil {
		return fmt.Errorf("commit relation change: %w", err)
	}
	s.sendAfter(ctx, rb)
	return nil
}

// commitFanout commits first (the change itself) together with the first
// events, then the rest of the events in chunks: notifications to an
// unbounded number of watchers must not make one unbounded batch.
func (s *Service) commitFanout(ctx context.Context, first storage.Batch, events []storage.Append) error {
	for {
		n := min(len(events), fanoutChunk)
		first.Appends = append(first.Appends, events[:n]...)
		events = events[n:]
		if _, err := s.store.Commit(ctx, first); err != nil {
			return fmt.Errorf("commit with notifications: %w", err)
		}
		if len(events) == 0 {
			return nil
		}
		first = storage.Batch{}
	}
}
