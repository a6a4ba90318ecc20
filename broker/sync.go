package broker

import (
	"context"

	"github.com/mochi-mqtt/server/v2/packets"

	mqtt "github.com/mochi-mqtt/server/v2"
)

type syncReply struct {
	replyHeader
	Seq      uint64 `json:"Seq"`      // last event replayed (or Since): ask again from here
	Epoch    uint64 `json:"Epoch"`    // the stream's epoch
	HeadSeq  uint64 `json:"HeadSeq"`  // newest event at the time of the reply
	Complete bool   `json:"Complete"` // Seq == HeadSeq: nothing more to replay
	Reset    bool   `json:"Reset"`    // the client's Epoch was stale: replay restarted from 0
}

// reqSync replays the user's stream after Since to the asking connection,
// in pages, in order, then replies. A client that gave a stale Epoch gets
// the stream from the start. [IM-SYNC-1]
func (b *Broker) reqSync(_ context.Context, r *reqCtx) (any, error) {
	var q struct {
		Since uint64
		Epoch *uint64
	}
	if err := r.decode(&q, CodeBadParams); err != nil {
		return nil, newError(CodeBadParams, reasonPayloadFormat, "Since must be an unsigned integer")
	}
	topic := topicUserPrefix + r.user
	if !subscribed(r.cl, topic) {
		return nil, newError(CodeBadParams, reasonTopicInvalid, "subscribe to %s before sync: events are replayed there", topic)
	}
	rep := b.replay(r.cl, userStream(r.user), topic, q.Since, q.Epoch, 0)
	b.metrics.syncs.Add(1)
	if rep.ErrorCode != 0 {
		return nil, &Error{Code: rep.ErrorCode, Info: rep.ErrorInfo}
	}
	return rep, nil
}

// replay writes the events of stream after since (and after floor, the
// first seq the reader may not see) to one connection on topic, then
// returns where it stopped. Pages of messages.sync_page_size, at most
// messages.sync_max_events per call.
func (b *Broker) replay(cl *mqtt.Client, stream, topic string, since uint64, epoch *uint64, floor uint64) syncReply {
	var rep syncReply
	page := b.cfg.Messages.SyncPageSize
	budget := b.cfg.Messages.SyncMaxEvents
	for {
		from := max(since, floor)
		head, entries, err := b.store.Read(stream, from, min(page, budget))
		if err != nil {
			b.log.Error("replay read", "stream", stream, "error", err)
			rep.ErrorCode, rep.ErrorInfo = CodeInternal, "internal error"
			break
		}
		stale := (epoch != nil && *epoch != head.Epoch) || since > head.Seq
		if stale && !rep.Reset && head.Seq > 0 {
			rep.Reset, since, epoch = true, 0, nil
			continue
		}
		for _, e := range entries {
			if !b.writeDirect(cl, topic, envelope(e.Pos.Epoch, e.Pos.Seq, e.Payload), packets.Properties{}) {
				rep.ErrorCode, rep.ErrorInfo = CodeBadParams, "connection closed or unsubscribed during replay"
				return rep
			}
			since = e.Pos.Seq
			budget--
		}
		rep.Epoch, rep.HeadSeq = head.Epoch, head.Seq
		if since < from {
			since = from // nothing visible before the floor
		}
		if since >= head.Seq || budget <= 0 || len(entries) == 0 {
			break
		}
	}
	rep.Seq = since
	rep.Complete = rep.ErrorCode == 0 && since >= rep.HeadSeq
	return rep
}
