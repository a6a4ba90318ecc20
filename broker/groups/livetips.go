package groups

import (
	"context"
	"time"

	"github.com/imbroker/imbroker/broker/wire"
)

// Member tips in live rooms. A live room (AVChatRoom, BChatRoom) may hold a
// million members, and every MemberJoin / MemberQuit tip on im/g/{gid}
// reaches every subscriber: N members joining while the earlier ones listen
// would be N²/2 deliveries. Tencent pushes these notifications without
// roaming them; here a room publishes at most groups.member_tips_per_second
// of them, and the changes that come faster are merged into the next one
// (net effect per member, MemberList capped at groups.member_tips_max_list
// with MemberCount giving the full number). A change in a quiet room is
// announced at once, exactly as before. The users concerned (the joiner, the
// leaver) always get their own copy on their user stream at once.
// Stored groups (Private, Public, ChatRoom) are not limited: their tips are
// roamed events. [IM-GROUP-LIVETIPS]
//
// Shutdown drops a merged tip still waiting for its timer instead of
// flushing it: a live room keeps no history and starts a new epoch after a
// restart, its subscribers are about to be disconnected, and the members
// concerned already have their own copy. A flush already running finishes
// before the store closes (the broker's task owner, Timers).

// memberTips is a live room's limiter state. Guarded by g.op.
type memberTips struct {
	next    time.Time      // earliest time the next room tip may be published
	pending []memberChange // changes not yet announced, in order
	index   map[string]int // uid -> position in pending
	timer   *time.Timer    // the scheduled flush (owned by s.timers), nil when none
	flushFn func()         // the timer's function (bound to the group once)
}

// memberChange is one member's unannounced change: what it was first and
// last in the current window (tipMemberJoin or tipMemberQuit).
type memberChange struct {
	uid, first, last, operator string
}

// memberTipInterval is the time one room tip "costs".
func (s *Service) memberTipInterval() time.Duration {
	return time.Second / time.Duration(s.cfg.MemberTipsPerSecond)
}

// memberTipNow reports whether a member change of kind tipType in g is
// announced on the room topic at once, in its own tip with a group seq, as
// for every change of a stored group. When it returns false the caller
// gives the users concerned a private copy and calls queueMemberTip after
// its commit. Callers hold g.op.
func (s *Service) memberTipNow(g *group, tipType string, now time.Time) bool {
	if g.policy.stored() || (tipType != tipMemberJoin && tipType != tipMemberQuit) {
		return true
	}
	if s.cfg.MemberTipsPerSecond == 0 {
		return false
	}
	t := &g.tips
	if len(t.pending) == 0 && !now.Before(t.next) {
		t.next = now.Add(s.memberTipInterval())
		return true
	}
	return false
}

// queueMemberTip records committed changes for the room's next merged tip
// and schedules it. Callers hold g.op.
func (s *Service) queueMemberTip(g *group, tipType, operator string, uids []string) {
	if s.cfg.MemberTipsPerSecond == 0 {
		return // member tips are off in live rooms
	}
	t := &g.tips
	if t.index == nil {
		t.index = map[string]int{}
	}
	for _, uid := range uids {
		if i, ok := t.index[uid]; ok {
			t.pending[i].last, t.pending[i].operator = tipType, operator
			continue
		}
		t.index[uid] = len(t.pending)
		t.pending = append(t.pending, memberChange{uid: uid, first: tipType, last: tipType, operator: operator})
	}
	if t.timer != nil {
		return
	}
	if t.flushFn == nil {
		t.flushFn = func() { s.flushMemberTips(g) }
	}
	// op -> the task owner's lock; the timer's callback takes that lock alone, then op.
	t.timer = s.timers.AfterFunc(max(time.Until(t.next), 0), t.flushFn) // nil at shutdown: dropped
}

// flushMemberTips publishes a live room's merged member tips: one MemberJoin
// for the members whose net change is a join, one MemberQuit for those who
// left (a member who joined and left again inside the window, or left and
// came back, changed nothing the room had been told).
func (s *Service) flushMemberTips(g *group) {
	g.op.Lock()
	defer g.op.Unlock()
	t := &g.tips
	t.timer = nil
	if g.destroyed {
		t.pending, t.index = nil, nil
		return
	}
	now := time.Now()
	if now.Before(t.next) { // the timer fired early: wait for the budget
		t.timer = s.timers.AfterFunc(t.next.Sub(now), t.flushFn)
		return
	}
	var joins, quits []memberChange
	for _, c := range t.pending {
		switch {
		case c.first == tipMemberJoin && c.last == tipMemberJoin:
			joins = append(joins, c)
		case c.first == tipMemberQuit && c.last == tipMemberQuit:
			quits = append(quits, c)
		}
	}
	t.pending, t.index = nil, nil
	sent := 0
	for _, list := range []struct {
		tipType string
		changes []memberChange
	}{{tipMemberJoin, joins}, {tipMemberQuit, quits}} {
		if len(list.changes) == 0 {
			continue
		}
		tip := mergedMemberTip(g.info.GroupId, list.tipType, list.changes, s.cfg.MemberTipsMaxList)
		if _, _, err := s.commit(context.Background(), g, change{events: []event{tipEvent(tip)}}); err != nil {
			s.log.Warn("live room member tip not published", "group", g.info.GroupId, "tip", list.tipType, "error", err)
			continue
		}
		sent++
	}
	// Each tip costs one interval: a flush with both kinds waits twice as
	// long before the next, so the rate holds on average.
	t.next = now.Add(time.Duration(max(sent, 1)) * s.memberTipInterval())
}

// mergedMemberTip builds one tip for several changes: MemberList holds the
// first max members, MemberCount the full number when the list was cut;
// Operator_Account is set only when one operator made every change.
func mergedMemberTip(gid, tipType string, changes []memberChange, max int) wire.GroupTip {
	tip := wire.GroupTip{GroupId: gid, TipType: tipType, Operator_Account: changes[0].operator}
	for i, c := range changes {
		if c.operator != tip.Operator_Account {
			tip.Operator_Account = ""
		}
		if i < max {
			tip.MemberList = append(tip.MemberList, c.uid)
		}
	}
	if len(changes) > max {
		tip.MemberCount = len(changes)
	}
	return tip
}

// commitMemberChange commits a membership change (c: its record writes)
// with its join or quit tip: as a group event now, or, in a busy live room,
// as a private notice to the members concerned now and a merged tip later.
func (s *Service) commitMemberChange(ctx context.Context, g *group, tipType, operator string, uids []string, c change) error {
	tip := wire.GroupTip{GroupId: g.info.GroupId, TipType: tipType, Operator_Account: operator, MemberList: uids}
	atOnce := s.memberTipNow(g, tipType, time.Now())
	if atOnce {
		c.events, c.userCopies = []event{tipEvent(tip)}, s.userCopiesFor(g, uids...)
	} else {
		c.notice, c.noticeTo = &tip, uids
	}
	if _, _, err := s.commit(ctx, g, c); err != nil {
		return err
	}
	if !atOnce {
		s.queueMemberTip(g, tipType, operator, uids)
	}
	return nil
}
