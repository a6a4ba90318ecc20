package broker

import (
	"context"
	"encoding/json"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

type syncRequest struct {
	Since uint64  `json:"Since"`
	Epoch *uint64 `json:"Epoch"`
}

type syncReply struct {
	replyHeader
	Seq      uint64 `json:"Seq"`      // last event replayed (or Since): ask again from here
	Epoch    uint64 `json:"Epoch"`    // the stream's epoch
	HeadSeq  uint64 `json:"HeadSeq"`  // newest event at the time of the reply
	Complete bool   `json:"Complete"` // Seq == HeadSeq: nothing more to replay
	Reset    bool   `json:"Reset"`    // the client's Epoch was stale: replay restarted from 0
}

// handleSync replays the user's stream after Since to the asking connection,
// in pages, in order, then replies. A client that gave a stale Epoch gets
// the stream from the start. [IM-SYNC-1]
func (b *Broker) handleSync(_ context.Context, cl *mqtt.Client, pk packets.Packet, hdr requestHeader) {
	var req syncRequest
	rep := syncReply{replyHeader: replyHeader{ID: hdr.ID, Op: "sync"}}
	if err := json.Unmarshal(pk.Payload, &req); err != nil {
		e := newError(CodeBadParams, reasonPayloadFormat, "Since must be an unsigned integer")
		rep.ErrorCode, rep.ErrorInfo = e.Code, e.Info
		b.reply(cl, pk, rep)
		return
	}
	stream := userStream(userOf(cl))
	topic := topicUserPrefix + userOf(cl)
	if !subscribed(cl, topic) {
		e := newError(CodeBadParams, reasonTopicInvalid, "subscribe to %s before sync: events are replayed there", topic)
		rep.ErrorCode, rep.ErrorInfo = e.Code, e.Info
		b.reply(cl, pk, rep)
		return
	}
	since := req.Since
	page := b.cfg.Messages.SyncPageSize
	budget := b.cfg.Messages.SyncMaxEvents
	for {
		head, entries, err := b.store.Read(stream, since, min(page, budget))
		if err != nil {
			b.log.Error("sync read", "stream", stream, "error", err)
			e := asError(err)
			rep.ErrorCode, rep.ErrorInfo = e.Code, e.Info
			break
		}
		stale := (req.Epoch != nil && *req.Epoch != head.Epoch) || since > head.Seq
		if stale && !rep.Reset && head.Seq > 0 {
			rep.Reset, since, req.Epoch = true, 0, nil
			continue
		}
		for _, e := range entries {
			if !b.writeDirect(cl, topic, envelope(e.Pos.Epoch, e.Pos.Seq, e.Payload), packets.Properties{}) {
				return // gone, or not subscribed to its stream: nothing to reply to
			}
			since = e.Pos.Seq
			budget--
		}
		rep.Epoch, rep.HeadSeq = head.Epoch, head.Seq
		if since >= head.Seq || budget <= 0 || len(entries) == 0 {
			break
		}
	}
	rep.Seq = since
	rep.Complete = rep.ErrorCode == 0 && since >= rep.HeadSeq
	b.metrics.syncs.Add(1)
	b.reply(cl, pk, rep)
}
