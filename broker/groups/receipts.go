package groups

import (
	"context"
	"encoding/json"
	"fmt"
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

// Per-message read receipts of group messages sent with IsNeedReadReceipt
// 1: the group side of msg.receipt, msg.receipt_info and
// msg.receipt_detail (Tencent get_group_msg_receipt[_detail]). [IM-RECEIPT-1]

// eventReceipt tells a message's sender its read and unread counts.
const eventReceipt = "GroupMsgReadReceipt"

// rr/{gid}/{seq}/{uid}: uid read message seq of gid.
func receiptPrefix(gid string, seq uint64) string {
	return "rr/" + gid + "/" + strconv.FormatUint(seq, 10) + "/"
}

// receipt is a GroupMsgReadReceipt event (fields in name order, as the
// map it replaced encoded them).
type receipt struct {
	GroupId   string
	MsgSeq    uint64
	ReadNum   int
	Reader    string
	UnreadNum int
}

// Receipt records that a.User read the messages seqs of gid and tells each
// sender the message's read and unread counts.
func (s *Service) Receipt(ctx context.Context, a ops.Actor, gid string, seqs []uint64) error {
	g, err := s.lockForReceipts(gid, a)
	if err != nil {
		return err
	}
	defer g.op.Unlock()
	batch := storage.Batch{Sets: map[string][]byte{}}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	for _, seq := range seqs {
		msg, ok := s.storedMsg(gid, seq)
		if !ok {
			return imerr.RecallNone.New("no message %d in %s", seq, gid)
		}
		if msg.IsNeedReadReceipt != 1 {
			return imerr.ReceiptNone.New("message %d asked for no receipt", seq)
		}
		from := msg.From_Account
		if from == a.User {
			continue
		}
		readers, err := s.receiptReaders(gid, seq)
		if err != nil {
			return err
		}
		if !readers[a.User] {
			readers[a.User] = true
			batch.Sets[receiptPrefix(gid, seq)+a.User] = []byte(now)
		}
		read, unread := receiptCounts(g, from, readers)
		ev, err := wire.EncodeEvent(eventReceipt, receipt{GroupId: gid, MsgSeq: seq, ReadNum: read, UnreadNum: unread, Reader: a.User})
		if err != nil {
			return fmt.Errorf("encode %s: %w", eventReceipt, err)
		}
		batch.Appends = append(batch.Appends, storage.Append{Stream: convs.UserStream(from), Payload: ev})
	}
	if len(batch.Sets) == 0 && len(batch.Appends) == 0 {
		return nil
	}
	if _, err = s.store.Commit(ctx, batch); err != nil {
		return fmt.Errorf("commit receipts of %s in %s: %w", a.User, gid, err)
	}
	return nil
}

// ReceiptInfo returns the read and unread counts of the group messages
// seqs, one item per seq in order (convs.Groups).
func (s *Service) ReceiptInfo(_ context.Context, a ops.Actor, gid string, seqs []uint64) ([]convs.ReceiptCount, error) {
	g, err := s.lockForReceipts(gid, a)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	list := []convs.ReceiptCount{}
	for _, seq := range seqs {
		msg, ok := s.storedMsg(gid, seq)
		if !ok {
			list = append(list, convs.ReceiptCount{MsgSeq: seq, ErrorCode: imerr.RecallNone.Code})
			continue
		}
		readers, err := s.receiptReaders(gid, seq)
		if err != nil {
			return nil, err
		}
		read, unread := receiptCounts(g, msg.From_Account, readers)
		list = append(list, convs.ReceiptCount{MsgSeq: seq, ReadNum: read, UnreadNum: unread})
	}
	return list, nil
}

// ReceiptDetail lists who read group message seq and who has not (current
// members but its sender, read sorted); for its sender, managers and the
// app admin (convs.Groups).
func (s *Service) ReceiptDetail(_ context.Context, a ops.Actor, gid string, seq uint64) (read, unread []string, err error) {
	g, err := s.lockForReceipts(gid, a)
	if err != nil {
		return nil, nil, err
	}
	defer g.op.Unlock()
	msg, ok := s.storedMsg(gid, seq)
	if !ok {
		return nil, nil, imerr.RecallNone.New("no message %d", seq)
	}
	if msg.From_Account != a.User && !a.Admin && !g.policy.isManager(g.role(a.User)) {
		return nil, nil, noPermission("only the sender and managers see who read a message")
	}
	readers, err := s.receiptReaders(gid, seq)
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
// unlocks g.op) once receiptAllowed lets a use receipts there.
func (s *Service) lockForReceipts(gid string, a ops.Actor) (*group, error) {
	g, err := s.lock(gid)
	if err != nil {
		return nil, err
	}
	if err := s.receiptAllowed(g, a); err != nil {
		g.op.Unlock()
		return nil, err
	}
	return g, nil
}

// receiptAllowed: members (and the app admin) of stored groups small enough.
func (s *Service) receiptAllowed(g *group, a ops.Actor) error {
	if !g.policy.stored() {
		return imerr.ReceiptLiveRoom.New("%s groups have no read receipts", g.info.Type)
	}
	if len(g.members) > s.conv.ReceiptMaxMembers {
		return imerr.ReceiptTooLarge.New("read receipts need at most %d members", s.conv.ReceiptMaxMembers)
	}
	if !a.Admin && g.role(a.User) == "" {
		return noPermission("not a member of %s", g.info.GroupId)
	}
	return nil
}

// receiptFields are what a read receipt needs of a group message.
type receiptFields struct {
	From_Account      string
	IsNeedReadReceipt int
}

// storedMsg reads message seq of gid's stream: its sender and whether it
// asked for receipts.
func (s *Service) storedMsg(gid string, seq uint64) (receiptFields, bool) {
	var ev struct {
		Event string
		Msg   receiptFields
	}
	if seq == 0 {
		return ev.Msg, false
	}
	_, entries, err := s.store.Read(convs.GroupStream(gid), seq-1, 1)
	if err != nil || len(entries) != 1 || json.Unmarshal(entries[0].Payload, &ev) != nil || ev.Event != wire.EventGroupMsg {
		return ev.Msg, false
	}
	return ev.Msg, true
}

func (s *Service) receiptReaders(gid string, seq uint64) (map[string]bool, error) {
	readers := map[string]bool{}
	kvs, err := s.store.Scan(receiptPrefix(gid, seq), "", s.conv.ReceiptMaxMembers+1)
	if err != nil {
		return nil, fmt.Errorf("list the readers of %d in %s: %w", seq, gid, err)
	}
	for _, kv := range kvs {
		readers[strings.TrimPrefix(kv.Name, receiptPrefix(gid, seq))] = true
	}
	return readers, nil
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
