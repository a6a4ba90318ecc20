package mqttd

import (
	"encoding/json"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/imerr"
)

// The connection ops: sync and group.sync replay a stream to the asking
// connection, so they run here rather than in the ops registry.

const (
	opSync      = "sync"
	opGroupSync = "group.sync"
)

// SyncRequest is sync's request. [IM-SYNC-1]
type SyncRequest struct {
	Since uint64  // the last event the client has
	Epoch *uint64 // the stream's epoch the client knows; nil: any
}

// GroupSyncRequest is group.sync's request. [IM-GROUP-SYNC]
type GroupSyncRequest struct {
	GroupId string
	Since   uint64
	Epoch   *uint64
}

// syncReply is where a replay stopped: sync's reply (with its header) and
// the body of group.sync's.
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

// GroupSyncReply is group.sync's reply.
type GroupSyncReply struct {
	GroupId   string
	Seq       uint64
	Epoch     uint64
	HeadSeq   uint64
	OldestSeq uint64
	Complete  bool
	Reset     bool
	Trimmed   bool
}

// runConnOp runs a connection op for cl, reporting false when op is not
// one. Its request decodes as the registry's ops do (an empty body is the
// zero request).
func (s *Server) runConnOp(cl *mqtt.Client, a ops.Actor, op string, body []byte) (any, bool, error) {
	switch op {
	case opSync:
		q := new(SyncRequest)
		if err := decodeRequest(body, q); err != nil {
			return nil, true, imerr.BadParams.New("Since must be an unsigned integer")
		}
		res, err := s.sync(cl, a, q)
		return res, true, err
	case opGroupSync:
		q := new(GroupSyncRequest)
		if err := decodeRequest(body, q); err != nil {
			return nil, true, imerr.GroupBadParams.New("request fields: %v", err)
		}
		res, err := s.groupSync(cl, a, q)
		return res, true, err
	}
	return nil, false, nil
}

func decodeRequest(body []byte, q any) error {
	if len(body) == 0 {
		return nil
	}
	return json.Unmarshal(body, q)
}

// sync replays the user's stream after Since to the asking connection,
// in pages, in order, then replies. A client that gave a stale Epoch gets
// the stream from the start (what retention kept of it); one whose Since is
// before what retention kept is told so (Trimmed) instead. [IM-SYNC-1]
func (s *Server) sync(cl *mqtt.Client, a ops.Actor, q *SyncRequest) (*syncReply, error) {
	topic := topicUserPrefix + a.User
	if !subscribed(cl, topic) {
		return nil, imerr.BadParams.New("subscribe to %s before sync: events are replayed there", topic)
	}
	rep := s.replay(cl, convs.UserStream(a.User), topic, q.Since, q.Epoch, 0)
	s.syncs.Add(1)
	if rep.ErrorCode != 0 {
		return nil, &imerr.Error{Code: rep.ErrorCode, Info: rep.ErrorInfo}
	}
	return &rep, nil
}

// groupSync replays a read-diffusion group's stream after Since to the
// asking connection on im/g/{gid}, then replies (like sync), from the
// member's history floor. [IM-GROUP-SYNC]
func (s *Server) groupSync(cl *mqtt.Client, a ops.Actor, q *GroupSyncRequest) (*GroupSyncReply, error) {
	floor, err := s.Groups.Readable(a, q.GroupId)
	if err != nil {
		return nil, err
	}
	topic := groupTopic(q.GroupId)
	if !subscribed(cl, topic) {
		return nil, imerr.GroupBadParams.New("subscribe to %s before group.sync: events are replayed there", topic)
	}
	rep := s.replay(cl, convs.GroupStream(q.GroupId), topic, q.Since, q.Epoch, floor)
	if rep.ErrorCode != 0 {
		return nil, &imerr.Error{Code: rep.ErrorCode, Info: rep.ErrorInfo}
	}
	return &GroupSyncReply{GroupId: q.GroupId, Seq: rep.Seq, Epoch: rep.Epoch, HeadSeq: rep.HeadSeq, OldestSeq: rep.OldestSeq,
		Complete: rep.Complete, Reset: rep.Reset, Trimmed: rep.Trimmed}, nil
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
func (s *Server) replay(cl *mqtt.Client, stream, topic string, since uint64, epoch *uint64, floor uint64) syncReply {
	var rep syncReply
	page := s.cfg.Messages.SyncPageSize
	budget := s.cfg.Messages.SyncMaxEvents
	for {
		from := max(since, floor)
		pg, err := s.Store.ReadFrom(stream, from, min(page, budget))
		if err != nil {
			s.log.Error("replay read", "stream", stream, "error", err)
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
			if !s.writeDirect(cl, topic, wire.Envelope(e.Pos.Epoch, e.Pos.Seq, e.Payload), packets.Properties{}) {
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
