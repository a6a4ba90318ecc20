package broker

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// Per-message read receipts (messages sent with IsNeedReadReceipt 1).
const (
	eventMsgReceipt      = "MsgReadReceipt"      // C2C: to the sender
	eventGroupMsgReceipt = "GroupMsgReadReceipt" // group: to the sender
	maxReceiptBatch      = 100
)

func c2cReceiptKey(a, b, msgKey string) string {
	return "rc/" + convs.PairStream(a, b)[2:] + "/" + msgKey
}
func groupReceiptPrefix(gid string, seq uint64) string {
	return "rr/" + gid + "/" + strconv.FormatUint(seq, 10) + "/"
}

// reqMsgReceipt sends read receipts for specific messages: C2C by MsgKey,
// group by MsgSeq. The sender of each message is told. [IM-RECEIPT-1]
func (b *Broker) reqMsgReceipt(ctx context.Context, r *reqCtx) (any, error) {
	var q struct {
		convTarget
		MsgKeyList []string
		MsgSeqList []uint64
	}
	if err := r.decode(&q, imerr.BadParams); err != nil {
		return nil, err
	}
	kind, _, err := q.resolve()
	if err != nil {
		return nil, err
	}
	if len(q.MsgKeyList) > maxReceiptBatch || len(q.MsgSeqList) > maxReceiptBatch {
		return nil, imerr.BadParams.New("at most %d messages per receipt", maxReceiptBatch)
	}
	if kind == convs.TypeC2C {
		return nil, b.receiptC2C(ctx, r, q.Peer_Account, q.MsgKeyList)
	}
	return nil, b.receiptGroup(ctx, r, q.GroupId, q.MsgSeqList)
}

// storedMsg reads one message event's Msg from a stream.
func (b *Broker) storedMsg(stream string, seq uint64) (map[string]any, bool) {
	if seq == 0 {
		return nil, false
	}
	_, entries, err := b.store.Read(stream, seq-1, 1)
	if err != nil || len(entries) != 1 {
		return nil, false
	}
	var ev struct {
		Event string
		Msg   map[string]any
	}
	if json.Unmarshal(entries[0].Payload, &ev) != nil || (ev.Event != wire.EventC2CMsg && ev.Event != eventGroupMsg) {
		return nil, false
	}
	return ev.Msg, true
}

func (b *Broker) receiptC2C(ctx context.Context, r *reqCtx, peer string, keys []string) error {
	sets := map[string][]byte{}
	var acked []string
	now := strconv.FormatInt(time.Now().Unix(), 10)
	for _, k := range keys {
		raw, ok, err := b.store.Get(convs.MsgKeyIndex(r.user, peer, k))
		if err != nil {
			return err
		}
		seq, _ := strconv.ParseUint(string(raw), 10, 64)
		msg, found := b.storedMsg(convs.PairStream(r.user, peer), seq)
		if !ok || !found || msg["From_Account"] != peer {
			return imerr.RecallNone.New("no message %q from %s", k, peer)
		}
		if f, _ := msg["IsNeedReadReceipt"].(float64); f != 1 {
			return imerr.ReceiptNone.New("message %q asked for no receipt", k)
		}
		sets[c2cReceiptKey(r.user, peer, k)] = []byte(now)
		acked = append(acked, k)
	}
	if len(acked) == 0 {
		return nil
	}
	ev, _ := wire.EncodeEvent(eventMsgReceipt, map[string]any{"Type": convs.TypeC2C, "Peer_Account": r.user, "MsgKeyList": acked})
	_, err := b.store.Commit(ctx, storage.Batch{Sets: sets, Appends: []storage.Append{{Stream: userStream(peer), Payload: ev}}})
	return err
}

// receiptGroup records that the reader read group messages and tells each
// sender the message's read and unread counts.
func (b *Broker) receiptGroup(ctx context.Context, r *reqCtx, gid string, seqs []uint64) error {
	g, err := b.lockForReceipts(gid, r)
	if err != nil {
		return err
	}
	defer g.op.Unlock()
	batch := storage.Batch{Sets: map[string][]byte{}}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	for _, seq := range seqs {
		msg, ok := b.storedMsg(groupStream(gid), seq)
		if !ok {
			return imerr.RecallNone.New("no message %d in %s", seq, gid)
		}
		if f, _ := msg["IsNeedReadReceipt"].(float64); f != 1 {
			return imerr.ReceiptNone.New("message %d asked for no receipt", seq)
		}
		from, _ := msg["From_Account"].(string)
		if from == r.user {
			continue
		}
		readers, err := b.receiptReaders(gid, seq)
		if err != nil {
			return err
		}
		if !readers[r.user] {
			readers[r.user] = true
			batch.Sets[groupReceiptPrefix(gid, seq)+r.user] = []byte(now)
		}
		read, unread := receiptCounts(g, from, readers)
		ev, _ := wire.EncodeEvent(eventGroupMsgReceipt, map[string]any{"GroupId": gid, "MsgSeq": seq, "ReadNum": read, "UnreadNum": unread, "Reader": r.user})
		batch.Appends = append(batch.Appends, storage.Append{Stream: userStream(from), Payload: ev})
	}
	if len(batch.Sets) == 0 && len(batch.Appends) == 0 {
		return nil
	}
	_, err = b.store.Commit(ctx, batch)
	return err
}

// lockForReceipts locks a group for a read-receipt request (the caller
// unlocks g.op) once receiptAllowed lets the asker use receipts there.
func (b *Broker) lockForReceipts(gid string, r *reqCtx) (*group, error) {
	g, err := b.lockGroup(gid)
	if err != nil {
		return nil, err
	}
	if err := b.receiptAllowed(g, r.user, r.admin); err != nil {
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

// reqMsgReceiptInfo returns read/unread counts for group messages (Tencent
// get_group_msg_receipt).
func (b *Broker) reqMsgReceiptInfo(_ context.Context, r *reqCtx) (any, error) {
	var q struct {
		GroupId    string
		MsgSeqList []uint64
	}
	if err := r.decode(&q, imerr.BadParams); err != nil {
		return nil, err
	}
	if len(q.MsgSeqList) == 0 || len(q.MsgSeqList) > maxReceiptBatch {
		return nil, imerr.BadParams.New("MsgSeqList must hold 1 to %d seqs", maxReceiptBatch)
	}
	g, err := b.lockForReceipts(q.GroupId, r)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	list := []map[string]any{}
	for _, seq := range q.MsgSeqList {
		msg, ok := b.storedMsg(groupStream(q.GroupId), seq)
		if !ok {
			list = append(list, map[string]any{"MsgSeq": seq, "ErrorCode": imerr.RecallNone.Code})
			continue
		}
		from, _ := msg["From_Account"].(string)
		readers, err := b.receiptReaders(q.GroupId, seq)
		if err != nil {
			return nil, err
		}
		read, unread := receiptCounts(g, from, readers)
		list = append(list, map[string]any{"MsgSeq": seq, "ReadNum": read, "UnreadNum": unread, "ErrorCode": 0})
	}
	return map[string]any{"GroupId": q.GroupId, "GroupMsgReceiptList": list}, nil
}

// reqMsgReceiptDetail lists who read a group message and who has not
// (Tencent get_group_msg_receipt_detail); for its sender, managers and the app admin.
func (b *Broker) reqMsgReceiptDetail(_ context.Context, r *reqCtx) (any, error) {
	var q struct {
		GroupId string
		MsgSeq  uint64
	}
	if err := r.decode(&q, imerr.BadParams); err != nil {
		return nil, err
	}
	g, err := b.lockForReceipts(q.GroupId, r)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	msg, ok := b.storedMsg(groupStream(q.GroupId), q.MsgSeq)
	if !ok {
		return nil, imerr.RecallNone.New("no message %d", q.MsgSeq)
	}
	from, _ := msg["From_Account"].(string)
	if from != r.user && !r.admin && !g.policy.isManager(g.role(r.user)) {
		return nil, noPermission("only the sender and managers see who read a message")
	}
	readers, err := b.receiptReaders(q.GroupId, q.MsgSeq)
	if err != nil {
		return nil, err
	}
	readList, unreadList := []string{}, []string{}
	for _, uid := range g.memberIDs() {
		switch {
		case uid == from:
		case readers[uid]:
			readList = append(readList, uid)
		default:
			unreadList = append(unreadList, uid)
		}
	}
	sort.Strings(readList)
	return map[string]any{"GroupId": q.GroupId, "MsgSeq": q.MsgSeq, "ReadList": readList, "UnreadList": unreadList}, nil
}
