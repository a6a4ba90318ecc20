package convs

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/imerr"
)

// History limits (Tencent: at most 100 messages a page, 20 by default).
const (
	historyDefault = 20
	historyMax     = 100
)

// HistoryRequest is msg.history's: at most MaxCnt messages with positions
// below LastSeq (0: from the newest), within [MinTime, MaxTime] (Unix
// seconds; 0: open).
type HistoryRequest struct {
	Target
	MaxCnt           int
	LastSeq          uint64
	MinTime, MaxTime int64
}

// HistoryResponse is a page of history, newest first: each item is the
// message event as delivered, with Seq its position in the conversation.
// Ask again with LastSeq until Complete.
type HistoryResponse struct {
	Complete bool              `json:"Complete"`
	LastSeq  uint64            `json:"LastSeq"`
	MsgCnt   int               `json:"MsgCnt"`
	MsgList  []json.RawMessage `json:"MsgList"`
}

// History returns roaming history of a C2C conversation (the pair's
// stream) or a stored group (its stream, messages only), newest first
// (msg.history). Recalled messages stay, marked MsgFlagBits 8. Group
// history starts at the member's visibility floor; anyone's history starts
// after what they cleared with conv.delete. [IM-HISTORY-1]
func (s *Service) History(_ context.Context, a ops.Actor, q *HistoryRequest) (*HistoryResponse, error) {
	maxCnt := q.MaxCnt
	switch {
	case maxCnt <= 0:
		maxCnt = historyDefault
	case maxCnt > historyMax: // before, a larger ask got the default 20
		maxCnt = historyMax
	}
	kind, conv, err := q.resolve()
	if err != nil {
		return nil, err
	}
	stream, floor := PairStream(a.User, q.Peer_Account), s.clearedFloor(a.User, conv)
	if kind == TypeGroup {
		gc, err := s.groups.Conv(q.GroupId, a.User)
		if err != nil {
			return nil, err
		}
		if !gc.Stored {
			return nil, imerr.GroupNoRoaming.New("%s groups keep no history", gc.Type)
		}
		gfloor := gc.Floor
		if a.Admin {
			gfloor = 0
		} else if !gc.Member {
			return nil, imerr.GroupNoPermission.New("only members read a group's history")
		}
		stream, floor = GroupStream(q.GroupId), max(floor, gfloor)
	}
	head, err := s.store.Head(stream)
	if err != nil {
		return nil, err
	}
	end := head.Seq // read entries in (floor, end]
	if q.LastSeq > 0 && q.LastSeq-1 < end {
		end = q.LastSeq - 1
	}
	out := &HistoryResponse{MsgList: []json.RawMessage{}, Complete: true}
	for end > floor && len(out.MsgList) < maxCnt {
		start := floor
		if end-floor > historyMax {
			start = end - historyMax
		}
		_, entries, err := s.store.Read(stream, start, int(end-start))
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", stream, err)
		}
		if len(entries) == 0 {
			break
		}
		for i := len(entries) - 1; i >= 0 && len(out.MsgList) < maxCnt; i-- {
			e := entries[i]
			t, ok := msgTimeOf(e.Payload)
			if !ok {
				continue
			}
			if q.MaxTime > 0 && t > q.MaxTime {
				continue
			}
			if q.MinTime > 0 && t < q.MinTime {
				end = floor // older than asked: done
				break
			}
			out.MsgList = append(out.MsgList, wire.Envelope(e.Pos.Epoch, e.Pos.Seq, e.Payload))
			out.LastSeq = e.Pos.Seq
		}
		switch {
		case len(out.MsgList) >= maxCnt:
			end = out.LastSeq - 1
			out.Complete = !s.anyMessage(stream, floor, end, q.MinTime)
			end = floor // page full
		case end > floor:
			end = entries[0].Pos.Seq - 1
		}
	}
	out.MsgCnt = len(out.MsgList)
	return out, nil
}

// msgTimeOf reads a stored event's MsgTime if it is a message.
func msgTimeOf(payload []byte) (int64, bool) {
	var ev struct {
		Event string
		Msg   struct{ MsgTime int64 }
	}
	if json.Unmarshal(payload, &ev) != nil || (ev.Event != wire.EventC2CMsg && ev.Event != wire.EventGroupMsg) {
		return 0, false
	}
	return ev.Msg.MsgTime, true
}

// anyMessage reports whether (floor, end] of stream holds a message newer
// than minTime: whether a full page leaves more to page through.
func (s *Service) anyMessage(stream string, floor, end uint64, minTime int64) bool {
	for end > floor {
		start := floor
		if end-floor > historyMax {
			start = end - historyMax
		}
		_, entries, err := s.store.Read(stream, start, int(end-start))
		if err != nil || len(entries) == 0 {
			return false
		}
		for i := len(entries) - 1; i >= 0; i-- {
			if t, ok := msgTimeOf(entries[i].Payload); ok {
				return minTime == 0 || t >= minTime
			}
		}
		end = entries[0].Pos.Seq - 1
	}
	return false
}

// RoamRequest is Tencent's openim/admin_getroammsg: msg.history of
// Operator_Account's conversation with Peer_Account, paged by the MsgKey
// of the last message of the previous page.
type RoamRequest struct {
	Operator_Account, Peer_Account string
	MaxCnt                         int
	MinTime, MaxTime               int64
	LastMsgKey                     string
}

// Roam is admin_getroammsg as one operation: LastMsgKey's position (an
// unknown key is imerr.BadMsgKey), then the page of history below it.
func (s *Service) Roam(ctx context.Context, q *RoamRequest) (*HistoryResponse, error) {
	var last uint64
	if q.LastMsgKey != "" {
		pos, ok, err := s.msgPos(q.Operator_Account, q.Peer_Account, q.LastMsgKey)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, imerr.BadMsgKey.New("unknown LastMsgKey")
		}
		last = pos
	}
	return s.History(ctx, ops.Actor{User: q.Operator_Account}, &HistoryRequest{Target: C2CTarget(q.Peer_Account),
		MaxCnt: q.MaxCnt, LastSeq: last, MinTime: q.MinTime, MaxTime: q.MaxTime})
}

// msgPos returns the position of the message msgKey in the a–b conversation
// history (msg.history's Seq).
func (s *Service) msgPos(a, b, msgKey string) (uint64, bool, error) {
	raw, ok, err := s.store.Get(MsgKeyIndex(a, b, msgKey))
	if err != nil || !ok {
		return 0, false, err
	}
	seq, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("position of %s: %w", msgKey, err)
	}
	return seq, true, nil
}
