package broker

import (
	"context"
	"encoding/json"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/imerr"
)

// reqMsgHistory returns roaming history of a C2C conversation (the pair's
// stream) or a stored group (its stream, messages only), newest first, at
// most MaxCnt (≤ 100), below LastSeq (exclusive; 0 = from the newest),
// within [MinTime, MaxTime] when given. Recalled messages stay, marked
// MsgFlagBits 8. Group history starts at the member's visibility floor;
// anyone's history starts after what they cleared with conv.delete. [IM-HISTORY-1]
func (b *Broker) reqMsgHistory(_ context.Context, r *reqCtx) (any, error) {
	var q struct {
		convTarget
		MaxCnt           int
		LastSeq          uint64
		MinTime, MaxTime int64
	}
	if err := r.decode(&q, imerr.BadParams); err != nil {
		return nil, err
	}
	switch {
	case q.MaxCnt <= 0:
		q.MaxCnt = 20
	case q.MaxCnt > 100: // at most 100; before, a larger ask got the default 20
		q.MaxCnt = 100
	}
	kind, conv, err := q.resolve()
	if err != nil {
		return nil, err
	}
	var stream string
	floor := b.clearedFloor(r.user, conv)
	if kind == convs.TypeC2C {
		stream = convs.PairStream(r.user, q.Peer_Account)
	} else {
		_, gfloor, err := b.readableGroup(r, q.GroupId)
		if err != nil {
			return nil, err
		}
		stream, floor = groupStream(q.GroupId), max(floor, gfloor)
	}
	head, err := b.store.Head(stream)
	if err != nil {
		return nil, err
	}
	end := head.Seq // read entries in (floor, end]
	if q.LastSeq > 0 && q.LastSeq-1 < end {
		end = q.LastSeq - 1
	}
	list := []json.RawMessage{}
	complete := true
	lastSeq := uint64(0)
	for end > floor && len(list) < q.MaxCnt {
		start := floor
		if end-floor > 100 {
			start = end - 100
		}
		_, entries, err := b.store.Read(stream, start, int(end-start))
		if err != nil {
			return nil, err
		}
		if len(entries) == 0 {
			break
		}
		for i := len(entries) - 1; i >= 0 && len(list) < q.MaxCnt; i-- {
			e := entries[i]
			var ev struct {
				Event string
				Msg   struct{ MsgTime int64 }
			}
			if json.Unmarshal(e.Payload, &ev) != nil || (ev.Event != wire.EventC2CMsg && ev.Event != eventGroupMsg) {
				continue
			}
			if q.MaxTime > 0 && ev.Msg.MsgTime > q.MaxTime {
				continue
			}
			if q.MinTime > 0 && ev.Msg.MsgTime < q.MinTime {
				end = floor // older than asked: done
				break
			}
			list = append(list, wire.Envelope(e.Pos.Epoch, e.Pos.Seq, e.Payload))
			lastSeq = e.Pos.Seq
		}
		switch {
		case len(list) >= q.MaxCnt:
			end = lastSeq - 1
			complete = !b.anyMessage(stream, floor, end, q.MinTime)
			end = floor // page full
		case end > floor:
			end = entries[0].Pos.Seq - 1
		}
	}
	return map[string]any{"Complete": complete, "MsgCnt": len(list), "MsgList": list, "LastSeq": lastSeq}, nil
}

// anyMessage reports whether (floor, end] of stream holds a message newer
// than minTime: whether a full page leaves more to page through.
func (b *Broker) anyMessage(stream string, floor, end uint64, minTime int64) bool {
	for end > floor {
		start := floor
		if end-floor > 100 {
			start = end - 100
		}
		_, entries, err := b.store.Read(stream, start, int(end-start))
		if err != nil || len(entries) == 0 {
			return false
		}
		for i := len(entries) - 1; i >= 0; i-- {
			var ev struct {
				Event string
				Msg   struct{ MsgTime int64 }
			}
			if json.Unmarshal(entries[i].Payload, &ev) != nil || (ev.Event != wire.EventC2CMsg && ev.Event != eventGroupMsg) {
				continue
			}
			return minTime == 0 || ev.Msg.MsgTime >= minTime
		}
		end = entries[0].Pos.Seq - 1
	}
	return false
}
