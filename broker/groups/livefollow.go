package groups

import (
	"encoding/json"
	"strings"
	"sync"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/storage"
)

// Live rooms are not stored, so their numbering is not in the log: the
// owner numbers each event in memory and the bus relays it to every other
// node (broker/peers). FollowLive is how the other nodes keep the same
// numbering, so get_group_info's NextMsgSeq and LastMsgTime answer the
// same on every node, and a node that becomes the owner goes on from the
// last number instead of starting again.

// liveHeads is the last live event seen of each live room, loaded or not
// (a room loaded later starts from it). Its own lock: never held while
// taking another.
type liveHeads struct {
	mu    sync.Mutex
	heads map[string]liveHead
}

type liveHead struct {
	epoch, seq  uint64
	lastMsgTime int64
}

// after reports whether h is past o: a later epoch (a new owner's) or a
// later seq in the same one.
func (h liveHead) after(o liveHead) bool {
	return h.epoch > o.epoch || (h.epoch == o.epoch && h.seq > o.seq)
}

// FollowLive brings live rooms' numbering up to events another node (the
// owner) published on the bus, before they are delivered here.
func (s *Service) FollowLive(entries []storage.Entry) {
	for _, e := range entries {
		gid, ok := strings.CutPrefix(e.Stream, groupStreamPrefix)
		if !ok {
			continue
		}
		h := LiveHead{GroupID: gid, Epoch: e.Pos.Epoch, Seq: e.Pos.Seq}
		var ev struct {
			Event string
			Msg   struct{ MsgTime int64 }
		}
		if json.Unmarshal(e.Payload, &ev) == nil && ev.Event == wire.EventGroupMsg {
			h.LastMsgTime = ev.Msg.MsgTime
		}
		s.FollowHeads([]LiveHead{h})
	}
}

// LiveHead is where a live room's numbering is: what a node that starts
// late learns from the others (broker/peers).
type LiveHead struct {
	GroupID     string
	Epoch, Seq  uint64
	LastMsgTime int64 `json:",omitempty"`
}

// FollowHeads brings live rooms' numbering up to heads (from FollowLive,
// or another node's LiveHeads).
func (s *Service) FollowHeads(heads []LiveHead) {
	for _, x := range heads {
		h := liveHead{epoch: x.Epoch, seq: x.Seq, lastMsgTime: x.LastMsgTime}
		s.live.mu.Lock()
		if s.live.heads == nil {
			s.live.heads = map[string]liveHead{}
		}
		cur := s.live.heads[x.GroupID]
		if h.seq > 0 && (cur.seq == 0 || h.after(cur)) {
			cur.epoch, cur.seq = h.epoch, h.seq
		}
		cur.lastMsgTime = max(cur.lastMsgTime, h.lastMsgTime)
		s.live.heads[x.GroupID] = cur
		s.live.mu.Unlock()

		s.reg.mu.RLock()
		g := s.reg.loaded[x.GroupID]
		s.reg.mu.RUnlock()
		if g != nil && !g.policy.stored() {
			g.apply(func() { g.followLive(h) })
		}
	}
}

// LiveHeads lists the numbering of the live rooms this node knows of
// (loaded, or seen on the bus) that have one.
func (s *Service) LiveHeads() []LiveHead {
	var out []LiveHead
	s.live.mu.Lock()
	for gid, h := range s.live.heads {
		out = append(out, LiveHead{GroupID: gid, Epoch: h.epoch, Seq: h.seq, LastMsgTime: h.lastMsgTime})
	}
	s.live.mu.Unlock()
	s.reg.mu.RLock()
	defer s.reg.mu.RUnlock()
	for gid, g := range s.reg.loaded {
		if g.policy.stored() {
			continue
		}
		g.mu.RLock()
		if g.memSeq > 0 {
			out = append(out, LiveHead{GroupID: gid, Epoch: g.memEpoch, Seq: g.memSeq, LastMsgTime: g.info.LastMsgTime})
		}
		g.mu.RUnlock()
	}
	return out
}

// followLive moves the room's numbering to h if h is past it (a room not
// numbered yet takes any). Under g.mu.
func (g *group) followLive(h liveHead) {
	if h.seq > 0 && (g.memSeq == 0 || h.after(liveHead{epoch: g.memEpoch, seq: g.memSeq})) {
		g.memEpoch, g.memSeq = h.epoch, h.seq
	}
	g.info.LastMsgTime = max(g.info.LastMsgTime, h.lastMsgTime)
}

// liveHead is what FollowLive saw last of gid (zero: nothing).
func (s *Service) liveHead(gid string) liveHead {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	return s.live.heads[gid]
}

// forgetLive drops a destroyed room's head.
func (s *Service) forgetLive(gid string) {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	delete(s.live.heads, gid)
}
