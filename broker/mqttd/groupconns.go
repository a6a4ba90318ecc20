package mqttd

import (
	"strings"
	"sync/atomic"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/storage"
)

// The MQTT side of groups: what the groups service reaches through
// groups.Conns (live delivery of live-room events, presence, direct
// notices, dropping subscriptions) and the im/g/{gid} topic names.
// group.sync is in sync.go.

const topicGroupPrefix = "im/g/"

// Deliver hands events to the delivery workers: the store's OnCommit
// (committed events) and the groups service (live rooms' events).
func (s *Server) Deliver(entries []storage.Entry) { s.deliver.enqueue(entries) }

// Online lists user's live connections.
func (s *Server) Online(user string) []string { return s.OnlineDevices(user) }

// Notify writes payload to user's live connections on im/u/{user}{suffix}.
func (s *Server) Notify(user, suffix string, payload []byte) int {
	n := 0
	for _, id := range s.conns.list(user) {
		cl, ok := s.mq.Clients.Get(id)
		if !ok || userOf(cl) != user {
			continue
		}
		if s.writeDirect(cl, topicUserPrefix+user+suffix, payload, packets.Properties{}) {
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
func (s *Server) DropGroupSubscriptions(gid string, users ...string) {
	topic := groupTopic(gid)
	set := make(map[string]bool, len(users))
	for _, u := range users {
		set[u] = true
	}
	for _, cl := range s.mq.Clients.GetAll() {
		if len(users) > 0 && !set[userOf(cl)] {
			continue
		}
		for filter := range cl.State.Subscriptions.GetAll() {
			if matchFilter(filter, topic) {
				cl.State.Subscriptions.Delete(filter)
				// Keep mochi's subscription count ($SYS) right, as its own
				// unsubscribe does: once the filter is gone from the client's
				// state, nothing else would ever decrement it.
				if s.mq.Topics.Unsubscribe(filter, cl.ID) {
					atomic.AddInt64(&s.mq.Info.Subscriptions, -1)
				}
				s.rooms.changed([]packets.Subscription{{Filter: filter}})
				s.users.changed([]packets.Subscription{{Filter: filter}}, true) // a wildcard may match user topics too
			}
		}
	}
	if len(users) == 0 {
		s.rooms.forget(topic)
	}
}

// groupTopic is gid's topic im/g/{gid}, the GroupId escaped as a topic
// level ('#' as %23, '%' as %25: ids.GroupTopicLevel).
func groupTopic(gid string) string { return topicGroupPrefix + ids.GroupTopicLevel(gid) }

// groupOfTopic returns the GroupId of an im/g/{gid} topic or filter (its
// level unescaped); a wildcard or a deeper level is no group.
func groupOfTopic(topic string) (string, bool) {
	level, ok := strings.CutPrefix(topic, topicGroupPrefix)
	if !ok || level == "" || strings.ContainsAny(level, "/+#") {
		return "", false
	}
	return ids.GroupIDFromTopicLevel(level), true
}
