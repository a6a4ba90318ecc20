package broker

import (
	"context"
	"strings"
	"sync/atomic"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// The MQTT side of groups: what the groups service reaches through
// groups.Conns (live delivery of live-room events, presence, direct
// notices, dropping subscriptions), group.sync (a replay to the asking
// connection) and the im/g/{gid} topic names.

const topicGroupPrefix = "im/g/"

// groupConns implements groups.Conns on the broker's MQTT side.
type groupConns struct{ b *Broker }

// Deliver hands a live room's events to the delivery workers.
func (c groupConns) Deliver(entries []storage.Entry) { c.b.deliver.enqueue(entries) }

// Online lists user's live connections.
func (c groupConns) Online(user string) []string { return c.b.OnlineDevices(user) }

// Notify writes payload to user's live connections on im/u/{user}{suffix}.
func (c groupConns) Notify(user, suffix string, payload []byte) int {
	b := c.b
	n := 0
	for _, id := range b.devices.list(user) {
		cl, ok := b.mq.Clients.Get(id)
		if !ok || userOf(cl) != user {
			continue
		}
		if b.writeDirect(cl, topicUserPrefix+user+suffix, payload, packets.Properties{}) {
			n++
		}
	}
	return n
}

// DropGroupSubscriptions ends users' subscriptions to a group's topic at
// once (kick, quit), server side; with no users (destroy) everyone's,
// guests and BChatRoom listeners included. The delivery ACL refuses them
// too, so nothing slips through while this runs. The groups service calls
// it holding the group's op lock: op -> mochi's client map, subscription
// and topic locks, which mochi never holds while it calls our hooks.
func (c groupConns) DropGroupSubscriptions(gid string, users ...string) {
	b := c.b
	topic := topicGroupPrefix + gid
	set := make(map[string]bool, len(users))
	for _, u := range users {
		set[u] = true
	}
	for _, cl := range b.mq.Clients.GetAll() {
		if len(users) > 0 && !set[userOf(cl)] {
			continue
		}
		for filter := range cl.State.Subscriptions.GetAll() {
			if matchFilter(filter, topic) {
				cl.State.Subscriptions.Delete(filter)
				// Keep mochi's subscription count ($SYS) right, as its own
				// unsubscribe does: once the filter is gone from the client's
				// state, nothing else would ever decrement it.
				if b.mq.Topics.Unsubscribe(filter, cl.ID) {
					atomic.AddInt64(&b.mq.Info.Subscriptions, -1)
				}
			}
		}
	}
}

// reqGroupSync replays a read-diffusion group's stream after Since to the
// asking connection on im/g/{gid}, then replies (like sync), from the
// member's history floor. [IM-GROUP-SYNC]
func (b *Broker) reqGroupSync(_ context.Context, r *reqCtx) (any, error) {
	var q struct {
		GroupId string
		Since   uint64
		Epoch   *uint64
	}
	if err := r.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	floor, err := b.groups.Readable(ops.Actor{User: r.user, Admin: r.admin}, q.GroupId)
	if err != nil {
		return nil, err
	}
	topic := topicGroupPrefix + q.GroupId
	if !subscribed(r.cl, topic) {
		return nil, imerr.GroupBadParams.New("subscribe to %s before group.sync: events are replayed there", topic)
	}
	rep := b.replay(r.cl, convs.GroupStream(q.GroupId), topic, q.Since, q.Epoch, floor)
	if rep.ErrorCode != 0 {
		return nil, &imerr.Error{Code: rep.ErrorCode, Info: rep.ErrorInfo}
	}
	return rep.groupReply(q.GroupId), nil
}

// groupOfTopic returns the GroupId of an im/g/{gid} topic or filter.
func groupOfTopic(topic string) (string, bool) {
	gid, ok := strings.CutPrefix(topic, topicGroupPrefix)
	return gid, ok && gid != "" && !strings.ContainsAny(gid, "/+#")
}
