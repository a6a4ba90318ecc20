package groups

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// Recall recalls a stored group message (the group side of msg.recall and
// of Tencent group_msg_recall): its sender within the window, owner and
// admins for ordinary members' messages, the app admin always. In one
// commit, the marker replaces it in the group stream, a MsgRecalled tip
// (with its own group seq) reaches members as other group events do, and
// write-diffusion members' conversation records that show it as their last
// message show the marker instead. [IM-RECALL-1]
func (s *Service) Recall(ctx context.Context, a ops.Actor, gid string, seq uint64) error {
	g, err := s.lock(gid)
	if err != nil {
		return err
	}
	defer g.op.Unlock()
	if !g.policy.stored() {
		return noPermission("%s messages cannot be recalled", g.info.Type)
	}
	role := g.role(a.User)
	if role == "" && !a.Admin {
		return noPermission("not a member of %s", gid)
	}
	if seq == 0 {
		return imerr.GroupRecallNone.New("MsgSeq is required")
	}
	_, entries, err := s.store.Read(convs.GroupStream(gid), seq-1, 1)
	if err != nil {
		return fmt.Errorf("read message %d of %s: %w", seq, gid, err)
	}
	if len(entries) != 1 || !isGroupMsg(entries[0].Payload) {
		return imerr.GroupRecallNone.New("no message %d in %s", seq, gid)
	}
	m, err := wire.RecallMarker(entries[0].Payload)
	if err != nil {
		return err
	}
	from := m.From_Account
	switch {
	case a.Admin:
	case from == a.User:
		if time.Since(time.Unix(m.MsgTime, 0)) > s.conv.RecallWindow {
			return imerr.GroupRecallWindow.New("the recall window of %v has passed", s.conv.RecallWindow)
		}
	case role == roleOwner: // the owner recalls anyone's message, at any time
	case g.policy.isManager(role) && (g.role(from) == roleMember || g.role(from) == ""): // admins: ordinary members' and former members'
	default:
		return noPermission("%s may not recall %s's message", a.User, from)
	}
	copies := s.userCopiesFor(g)
	var upd []storage.Update
	for _, uid := range copies {
		upd = append(upd, convs.LastGroupMsgReplaced(uid, gid, seq, m.Msg))
	}
	if _, _, err = s.commit(ctx, g, change{
		replaces: []storage.Replace{{Stream: convs.GroupStream(gid), Seq: seq, Payload: m.Event}},
		updates:  upd, userCopies: copies,
		events: []event{tipEvent(wire.GroupTip{GroupId: gid, TipType: tipMsgRecalled, Operator_Account: a.User,
			MemberList: []string{from}, RecalledMsgSeq: seq})},
	}); err != nil {
		return err
	}
	s.afterRecall(ctx, gid, g.info.Type, a.User, seq)
	return nil
}

func isGroupMsg(payload []byte) bool {
	var ev struct{ Event string }
	return json.Unmarshal(payload, &ev) == nil && ev.Event == wire.EventGroupMsg
}
