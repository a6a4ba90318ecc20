package broker

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// The group side of the conversation operations (convs.Groups): a user's
// standing in a group, and the group halves of recall and read receipts,
// which run under the group's op lock. The groups service takes them over.

const (
	tipMsgRecalled       = "MsgRecalled"         // group: a GroupTip with a group seq
	eventGroupMsgReceipt = "GroupMsgReadReceipt" // group: to the sender
)

// convGroups is convs.Groups over the group code in broker.
type convGroups struct{ b *Broker }

var _ convs.Groups = convGroups{}

// Conv is uid's standing in gid, read under the group's op lock.
func (cg convGroups) Conv(gid, uid string) (convs.GroupConv, error) {
	b := cg.b
	g, err := b.lockGroup(gid)
	if err != nil {
		return convs.GroupConv{}, err
	}
	defer g.op.Unlock()
	stored := g.policy.stored()
	return convs.GroupConv{GroupID: gid, Type: g.info.Type, Member: g.role(uid) != "", Stored: stored,
		ReadDiffusion: stored && g.policy.readDiffusion(len(g.members), b.cfg.Groups.ReadDiffusionAbove),
		CountsUnread:  g.policy.unread(), Floor: g.historyFloor(uid, false)}, nil
}

// ReadDiffusionConvs lists uid's stored read-diffusion groups (read under
// each group's mu: conv.list must not wait for a group's commits).
func (cg convGroups) ReadDiffusionConvs(uid string) ([]convs.GroupConv, error) {
	b := cg.b
	kvs, err := b.store.Scan(joinedPrefix(uid), "", b.cfg.Groups.MaxJoinedPerUser+1)
	if err != nil {
		return nil, err
	}
	var out []convs.GroupConv
	for _, kv := range kvs {
		gid := strings.TrimPrefix(kv.Name, joinedPrefix(uid))
		g, err := b.loadGroup(gid)
		if err != nil || g == nil || !g.policy.stored() {
			continue
		}
		g.mu.RLock()
		gc := convs.GroupConv{GroupID: gid, Type: g.info.Type, Member: g.role(uid) != "", Stored: true,
			ReadDiffusion: g.policy.readDiffusion(len(g.members), b.cfg.Groups.ReadDiffusionAbove),
			CountsUnread:  g.policy.unread(), Floor: g.historyFloor(uid, false)}
		g.mu.RUnlock()
		if gc.ReadDiffusion {
			out = append(out, gc)
		}
	}
	return out, nil
}

// Recall recalls a stored group message: its sender within the window,
// owner and admins for ordinary members' messages, the app admin always.
// The marker replaces it in the group stream and a MsgRecalled tip (with
// its own group seq) reaches members as other group events do.
func (cg convGroups) Recall(ctx context.Context, a ops.Actor, gid string, seq uint64) error {
	b := cg.b
	g, err := b.lockGroup(gid)
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
		return imerr.RecallNone.New("MsgSeq is required")
	}
	_, entries, err := b.store.Read(groupStream(gid), seq-1, 1)
	if err != nil {
		return err
	}
	if len(entries) != 1 || !isGroupMsg(entries[0].Payload) {
		return imerr.RecallNone.New("no message %d in %s", seq, gid)
	}
	m, err := wire.RecallMarker(entries[0].Payload)
	if err != nil {
		return err
	}
	from := m.From_Account
	switch {
	case a.Admin:
	case from == a.User:
		if time.Since(time.Unix(m.MsgTime, 0)) > b.cfg.Conversations.RecallWindow {
			return imerr.GroupRecallWindow.New("the recall window of %v has passed", b.cfg.Conversations.RecallWindow)
		}
	case role == roleOwner: // the owner recalls anyone's message, at any time
	case g.policy.isManager(role) && (g.role(from) == roleMember || g.role(from) == ""): // admins: ordinary members' and former members'

	default:
		return noPermission("%s may not recall %s's message", a.User, from)
	}
	copies := b.userCopiesFor(g)
	if _, _, err = b.commitGroupChange(ctx, g, groupChange{
		replaces:  []storage.Replace{{Stream: groupStream(gid), Seq: seq, Payload: m.Event}},
		eventName: wire.EventGroupTip, userCopies: copies,
		build: tipBuilder(wire.GroupTip{GroupId: gid, TipType: tipMsgRecalled, Operator_Account: a.User,
			MemberList: []string{from}, RecalledMsgSeq: seq}),
	}); err != nil {
		return err
	}
	// Write-diffusion members' conversation records hold the message as
	// their last one: replace it by the marker, as C2C recalls do. Before,
	// conv.list kept showing a recalled group message's body. groupChange
	// carries no record updates, hence a second commit (still under g.op).
	var upd []storage.Update
	for _, uid := range copies {
		upd = append(upd, convs.LastGroupMsgReplaced(uid, gid, seq, m.Msg))
	}
	if len(upd) > 0 {
		_, err = b.store.Commit(ctx, storage.Batch{Updates: upd})
	}
	b.afterGroupRecall(gid, g.info.Type, a.User, seq) // the recall itself committed above
	return err
}

func isGroupMsg(payload []byte) bool {
	var ev struct{ Event string }
	return json.Unmarshal(payload, &ev) == nil && ev.Event == wire.EventGroupMsg
}

func groupReceiptPrefix(gid string, seq uint64) string {
	return "rr/" + gid + "/" + strconv.FormatUint(seq, 10) + "/"
}

// Receipt records that a.User read group messages and tells each sender
// the message's read and unread counts.
func (cg convGroups) Receipt(ctx context.Context, a ops.Actor, gid string, seqs []uint64) error {
	b := cg.b
	g, err := b.lockForReceipts(gid, a)
	if err != nil {
		return err
	}
	defer g.op.Unlock()
	batch := storage.Batch{Sets: map[string][]byte{}}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	for _, seq := range seqs {
		msg, ok := b.groupMsgFields(gid, seq)
		if !ok {
			return imerr.RecallNone.New("no message %d in %s", seq, gid)
		}
		if msg.IsNeedReadReceipt != 1 {
			return imerr.ReceiptNone.New("message %d asked for no receipt", seq)
		}
		if msg.From_Account == a.User {
			continue
		}
		readers, err := b.receiptReaders(gid, seq)
		if err != nil {
			return err
		}
		if !readers[a.User] {
			readers[a.User] = true
			batch.Sets[groupReceiptPrefix(gid, seq)+a.User] = []byte(now)
		}
		read, unread := receiptCounts(g, msg.From_Account, readers)
		ev, _ := wire.EncodeEvent(eventGroupMsgReceipt, map[string]any{"GroupId": gid, "MsgSeq": seq, "ReadNum": read, "UnreadNum": unread, "Reader": a.User})
		batch.Appends = append(batch.Appends, storage.Append{Stream: userStream(msg.From_Account), Payload: ev})
	}
	if len(batch.Sets) == 0 && len(batch.Appends) == 0 {
		return nil
	}
	_, err = b.store.Commit(ctx, batch)
	return err
}

// ReceiptInfo returns read/unread counts of group messages.
func (cg convGroups) ReceiptInfo(_ context.Context, a ops.Actor, gid string, seqs []uint64) ([]convs.ReceiptCount, error) {
	b := cg.b
	g, err := b.lockForReceipts(gid, a)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	list := []convs.ReceiptCount{}
	for _, seq := range seqs {
		msg, ok := b.groupMsgFields(gid, seq)
		if !ok {
			list = append(list, convs.ReceiptCount{MsgSeq: seq, ErrorCode: imerr.RecallNone.Code})
			continue
		}
		readers, err := b.receiptReaders(gid, seq)
		if err != nil {
			return nil, err
		}
		read, unread := receiptCounts(g, msg.From_Account, readers)
		list = append(list, convs.ReceiptCount{MsgSeq: seq, ReadNum: read, UnreadNum: unread})
	}
	return list, nil
}

// ReceiptDetail lists who read a group message and who has not; for its
// sender, managers and the app admin.
func (cg convGroups) ReceiptDetail(_ context.Context, a ops.Actor, gid string, seq uint64) (read, unread []string, err error) {
	b := cg.b
	g, err := b.lockForReceipts(gid, a)
	if err != nil {
		return nil, nil, err
	}
	defer g.op.Unlock()
	msg, ok := b.groupMsgFields(gid, seq)
	if !ok {
		return nil, nil, imerr.RecallNone.New("no message %d", seq)
	}
	if msg.From_Account != a.User && !a.Admin && !g.policy.isManager(g.role(a.User)) {
		return nil, nil, noPermission("only the sender and managers see who read a message")
	}
	readers, err := b.receiptReaders(gid, seq)
	if err != nil {
		return nil, nil, err
	}
	read, unread = []string{}, []string{}
	for _, uid := range g.memberIDs() {
		switch {
		case uid == msg.From_Account:
		case readers[uid]:
			read = append(read, uid)
		default:
			unread = append(unread, uid)
		}
	}
	sort.Strings(read)
	return read, unread, nil
}

// lockForReceipts locks a group for a read-receipt request (the caller
// unlocks g.op) once receiptAllowed lets the asker use receipts there.
func (b *Broker) lockForReceipts(gid string, a ops.Actor) (*group, error) {
	g, err := b.lockGroup(gid)
	if err != nil {
		return nil, err
	}
	if err := b.receiptAllowed(g, a.User, a.Admin); err != nil {
		g.op.Unlock()
		return nil, err
	}
	return g, nil
}

// receiptAllowed: members (and the app admin) of stored groups small enough.
func (b *Broker) receiptAllowed(g *group, user string, admin bool) error {
	if !g.policy.stored() {
		return imerr.ReceiptLiveRoom.New("%s groups have no read receipts", g.info.Type)
	}
	if len(g.members) > b.cfg.Conversations.ReceiptMaxMembers {
		return imerr.ReceiptTooLarge.New("read receipts need at most %d members", b.cfg.Conversations.ReceiptMaxMembers)
	}
	if !admin && g.role(user) == "" {
		return noPermission("not a member of %s", g.info.GroupId)
	}
	return nil
}

func (b *Broker) receiptReaders(gid string, seq uint64) (map[string]bool, error) {
	readers := map[string]bool{}
	kvs, err := b.store.Scan(groupReceiptPrefix(gid, seq), "", b.cfg.Conversations.ReceiptMaxMembers+1)
	for _, kv := range kvs {
		readers[strings.TrimPrefix(kv.Name, groupReceiptPrefix(gid, seq))] = true
	}
	return readers, err
}

// receiptCounts: read = current members (not the sender) who read; unread = the others.
func receiptCounts(g *group, from string, readers map[string]bool) (read, unread int) {
	for uid := range g.members {
		switch {
		case uid == from:
		case readers[uid]:
			read++
		default:
			unread++
		}
	}
	return read, unread
}

// groupMsgFields reads the group message at seq: its sender and whether it
// asked for receipts.
func (b *Broker) groupMsgFields(gid string, seq uint64) (struct {
	From_Account      string
	IsNeedReadReceipt int
}, bool) {
	var ev struct {
		Event string
		Msg   struct {
			From_Account      string
			IsNeedReadReceipt int
		}
	}
	if seq == 0 {
		return ev.Msg, false
	}
	_, entries, err := b.store.Read(groupStream(gid), seq-1, 1)
	if err != nil || len(entries) != 1 || json.Unmarshal(entries[0].Payload, &ev) != nil || ev.Event != wire.EventGroupMsg {
		return ev.Msg, false
	}
	return ev.Msg, true
}
