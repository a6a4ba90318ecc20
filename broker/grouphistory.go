package broker

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/imerr"
	mqtt "github.com/mochi-mqtt/server/v2"
)

const topicGroupPrefix = "im/g/"

// dropGroupSubscriptions ends users' subscriptions to a group's topic at
// once (kick, quit), server side; with no users (destroy) everyone's,
// guests and BChatRoom listeners included. The delivery ACL refuses them
// too, so nothing slips through while this runs. Callers hold g.op: op ->
// mochi's client map, subscription and topic locks, which mochi never holds
// while it calls our hooks.
func (b *Broker) dropGroupSubscriptions(gid string, users ...string) {
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

// historyFloor is the last group seq a member may not read: their join
// point, unless the type shows history from before joining.
func (g *group) historyFloor(uid string, admin bool) uint64 {
	if admin || g.policy.HistoryBeforeJoin {
		return 0
	}
	if m := g.members[uid]; m != nil {
		return m.JoinSeq
	}
	return 0
}

// readableGroup checks that r may read g's stored history and returns the floor.
func (b *Broker) readableGroup(r *reqCtx, gid string) (*group, uint64, error) {
	g, err := b.lockGroup(gid)
	if err != nil {
		return nil, 0, err
	}
	defer g.op.Unlock()
	if !g.policy.stored() {
		return nil, 0, imerr.GroupNoRoaming.New("%s groups keep no history", g.info.Type)
	}
	if !r.admin && g.role(r.user) == "" {
		return nil, 0, noPermission("only members read a group's history")
	}
	return g, g.historyFloor(r.user, r.admin), nil
}

// reqGroupSync replays a read-diffusion group's stream after Since to the
// asking connection on im/g/{gid}, then replies (like sync). [IM-GROUP-SYNC]
func (b *Broker) reqGroupSync(_ context.Context, r *reqCtx) (any, error) {
	var q struct {
		GroupId string
		Since   uint64
		Epoch   *uint64
	}
	if err := r.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	_, floor, err := b.readableGroup(r, q.GroupId)
	if err != nil {
		return nil, err
	}
	topic := topicGroupPrefix + q.GroupId
	if !subscribed(r.cl, topic) {
		return nil, badParams("subscribe to %s before group.sync: events are replayed there", topic)
	}
	rep := b.replay(r.cl, groupStream(q.GroupId), topic, q.Since, q.Epoch, floor)
	if rep.ErrorCode != 0 {
		return nil, &imerr.Error{Code: rep.ErrorCode, Info: rep.ErrorInfo}
	}
	return rep.groupReply(q.GroupId), nil
}

// reqGroupHistory returns up to ReqMsgNumber (≤ 20) stored events at or
// below ReqMsgSeq (0 = newest), newest first, as they were delivered.
func (b *Broker) reqGroupHistory(_ context.Context, r *reqCtx) (any, error) {
	var q struct {
		GroupId      string
		ReqMsgSeq    uint64
		ReqMsgNumber int
	}
	if err := r.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if q.ReqMsgNumber <= 0 || q.ReqMsgNumber > 20 {
		q.ReqMsgNumber = 20
	}
	_, floor, err := b.readableGroup(r, q.GroupId)
	if err != nil {
		return nil, err
	}
	head, floor, err := b.historyBounds(groupStream(q.GroupId), floor)
	if err != nil {
		return nil, err
	}
	end := head.Seq
	if q.ReqMsgSeq > 0 && q.ReqMsgSeq < end {
		end = q.ReqMsgSeq
	}
	start := floor
	if end > uint64(q.ReqMsgNumber) && end-uint64(q.ReqMsgNumber) > start {
		start = end - uint64(q.ReqMsgNumber)
	}
	list := []json.RawMessage{}
	if end > start {
		_, entries, err := b.store.Read(groupStream(q.GroupId), start, int(end-start))
		if err != nil {
			return nil, err
		}
		for i := len(entries) - 1; i >= 0; i-- {
			list = append(list, wire.Envelope(entries[i].Pos.Epoch, entries[i].Pos.Seq, entries[i].Payload))
		}
	}
	return map[string]any{"GroupId": q.GroupId, "IsFinished": start <= floor, "RspMsgList": list}, nil
}

// groupOfTopic returns the GroupId of an im/g/{gid} topic or filter.
func groupOfTopic(topic string) (string, bool) {
	gid, ok := strings.CutPrefix(topic, topicGroupPrefix)
	return gid, ok && gid != "" && !strings.ContainsAny(gid, "/+#")
}

// canReadGroup: members; every user for a BChatRoom; guests for live rooms
// whose type admits them (guests.enabled); the app admin.
func (b *Broker) canReadGroup(cl *mqtt.Client, gid string) bool {
	g, err := b.loadGroup(gid)
	if err != nil || g == nil {
		return false
	}
	user := userOf(cl)
	if user == "" {
		return b.cfg.Guests.Enabled && g.policy.Guests && !g.isDestroyed()
	}
	if user == b.cfg.App.Admin || (g.policy.openReceive() && !g.isDestroyed()) {
		return true
	}
	return g.isMember(user)
}

func (g *group) isDestroyed() bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.destroyed
}
