package broker

import (
	"context"

	"github.com/mochi-mqtt/server/v2/packets"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/imerr"
)

// userStream names a user's event stream in the store.
func userStream(uid string) string { return convs.UserStream(uid) }

type syncReply struct {
	replyHeader
	Seq       uint64 `json:"Seq"`       // last event replayed (or Since): ask again from here
	Epoch     uint64 `json:"Epoch"`     // the stream's epoch
	HeadSeq   uint64 `json:"HeadSeq"`   // newest event at the time of the reply
	OldestSeq uint64 `json:"OldestSeq"` // oldest event the reader can get (retention deleted older ones); HeadSeq+1 if none
	Complete  bool   `json:"Complete"`  // Seq == HeadSeq: nothing more to replay
	Reset     bool   `json:"Reset"`     // the client's Epoch was stale: replay restarted from the oldest event kept
	Trimmed   bool   `json:"Trimmed"`   // events after Since were deleted by retention: nothing replayed; sync again from OldestSeq-1
}

// reqSync replays the user's stream after Since to the asking connection,
// in pages, in order, then replies. A client that gave a stale Epoch gets
// the stream from the start (what retention kept of it); one whose Since is
// before what retention kept is told so (Trimmed) instead. [IM-SYNC-1]
func (b *Broker) reqSync(_ context.Context, r *reqCtx) (any, error) {
	var q struct {
		Since uint64
		Epoch *uint64
	}
	if err := r.decode(&q, imerr.BadParams); err != nil {
		return nil, imerr.BadParams.New("Since must be an unsigned integer")
	}
	topic := topicUserPrefix + r.user
	if !subscribed(r.cl, topic) {
		return nil, imerr.BadParams.New("subscribe to %s before sync: events are replayed there", topic)
	}
	rep := b.replay(r.cl, userStream(r.user), topic, q.Since, q.Epoch, 0)
	b.metrics.syncs.Add(1)
	if rep.ErrorCode != 0 {
		return nil, &imerr.Error{Code: rep.ErrorCode, Info: rep.ErrorInfo}
	}
	return rep, nil
}

// replay writes the events of stream after since (and after floor, the
// first seq the reader may not see) to one connection on topic, then
// returns where it stopped. Pages of messages.sync_page_size, at most
// messages.sync_max_events per call.
//
// Retention deletes a stream's oldest events (broker/retention.go). When
// events the reader has not seen were deleted (since, or the floor, is
// below the stream's low watermark minus one), replay does not skip them
// silently: it stops there, without writing what follows, and replies
// Trimmed with OldestSeq, Seq unchanged and Complete false; the client
// decides, then syncs from OldestSeq-1. A stale Epoch (or Since beyond the
// head) still answers Reset, replaying from the oldest event kept.
func (b *Broker) replay(cl *mqtt.Client, stream, topic string, since uint64, epoch *uint64, floor uint64) syncReply {
	var rep syncReply
	page := b.cfg.Messages.SyncPageSize
	budget := b.cfg.Messages.SyncMaxEvents
	for {
		from := max(since, floor)
		pg, err := b.store.ReadFrom(stream, from, min(page, budget))
		if err != nil {
			b.log.Error("replay read", "stream", stream, "error", err)
			rep.ErrorCode, rep.ErrorInfo = imerr.Internal.Code, "internal error"
			break
		}
		head := pg.Head
		stale := (epoch != nil && *epoch != head.Epoch) || since > head.Seq
		if stale && !rep.Reset && head.Seq > 0 {
			// The client's history is not this one: start again from the
			// oldest event kept (a reset client reloads anyway).
			rep.Reset, since, epoch = true, pg.Low-1, nil
			continue
		}
		rep.Epoch, rep.HeadSeq, rep.OldestSeq = head.Epoch, head.Seq, max(pg.Low, floor+1)
		if from+1 < pg.Low {
			rep.Trimmed = true // from+1 .. Low-1 are gone: say so, replay nothing more
			break
		}
		for _, e := range pg.Entries {
			if !b.writeDirect(cl, topic, wire.Envelope(e.Pos.Epoch, e.Pos.Seq, e.Payload), packets.Properties{}) {
				rep.ErrorCode, rep.ErrorInfo = imerr.BadParams.Code, "connection closed or unsubscribed during replay"
				return rep
			}
			since = e.Pos.Seq
			budget--
		}
		if since < from {
			since = from // nothing visible before the floor
		}
		if since >= head.Seq || budget <= 0 || len(pg.Entries) == 0 {
			break
		}
	}
	rep.Seq = since
	rep.Complete = rep.ErrorCode == 0 && !rep.Trimmed && since >= rep.HeadSeq
	return rep
}

// groupReply is rep as the group.sync reply fields.
func (rep syncReply) groupReply(gid string) map[string]any {
	return map[string]any{"GroupId": gid, "Seq": rep.Seq, "Epoch": rep.Epoch, "HeadSeq": rep.HeadSeq, "OldestSeq": rep.OldestSeq,
		"Complete": rep.Complete, "Reset": rep.Reset, "Trimmed": rep.Trimmed}
}
