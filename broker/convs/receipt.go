package convs

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// Per-message read receipts (messages sent with IsNeedReadReceipt 1).
const (
	eventMsgReceipt = "MsgReadReceipt" // C2C: to the sender
	maxReceiptBatch = 100              // messages of one request
)

// c2cReceiptKey records that a read the message msgKey of the a–b conversation.
func c2cReceiptKey(a, b, msgKey string) string {
	return "rc/" + PairStream(a, b)[2:] + "/" + msgKey
}

// ReceiptRequest is msg.receipt's: C2C messages by MsgKey, group messages
// by MsgSeq.
type ReceiptRequest struct {
	Target
	MsgKeyList []string
	MsgSeqList []uint64
}

// Receipt sends read receipts for specific messages (msg.receipt): the
// sender of each is told. [IM-RECEIPT-1]
func (s *Service) Receipt(ctx context.Context, a ops.Actor, q *ReceiptRequest) (*Empty, error) {
	kind, _, err := q.resolve()
	if err != nil {
		return nil, err
	}
	if len(q.MsgKeyList) > maxReceiptBatch || len(q.MsgSeqList) > maxReceiptBatch {
		return nil, imerr.BadParams.New("at most %d messages per receipt", maxReceiptBatch)
	}
	if kind == TypeC2C {
		return &Empty{}, s.receiptC2C(ctx, a.User, q.Peer_Account, q.MsgKeyList)
	}
	return &Empty{}, s.groups.Receipt(ctx, a, q.GroupId, q.MsgSeqList)
}

// receiptC2C acknowledges peer's messages keys to peer.
func (s *Service) receiptC2C(ctx context.Context, uid, peer string, keys []string) error {
	sets := map[string][]byte{}
	var acked []string
	now := strconv.FormatInt(time.Now().Unix(), 10)
	for _, k := range keys {
		raw, ok, err := s.store.Get(MsgKeyIndex(uid, peer, k))
		if err != nil {
			return err
		}
		seq, _ := strconv.ParseUint(string(raw), 10, 64)
		m, found := s.storedMsg(PairStream(uid, peer), seq)
		if !ok || !found || m.From_Account != peer {
			return imerr.RecallNone.New("no message %q from %s", k, peer)
		}
		if m.IsNeedReadReceipt != 1 {
			return imerr.ReceiptNone.New("message %q asked for no receipt", k)
		}
		sets[c2cReceiptKey(uid, peer, k)] = []byte(now)
		acked = append(acked, k)
	}
	if len(acked) == 0 {
		return nil
	}
	ev, err := wire.EncodeEvent(eventMsgReceipt, struct { // fields in name order, as stored before
		MsgKeyList   []string
		Peer_Account string
		Type         int
	}{acked, uid, TypeC2C})
	if err != nil {
		return err
	}
	if _, err := s.store.Commit(ctx, storage.Batch{Sets: sets, Appends: []storage.Append{{Stream: UserStream(peer), Payload: ev}}}); err != nil {
		return fmt.Errorf("receipt of %s to %s: %w", uid, peer, err)
	}
	return nil
}

// msgFields are the fields of a stored message the receipts look at.
type msgFields struct {
	From_Account      string
	IsNeedReadReceipt int
}

// storedMsg reads the message at seq of a stream (C2C or group message).
func (s *Service) storedMsg(stream string, seq uint64) (msgFields, bool) {
	if seq == 0 {
		return msgFields{}, false
	}
	_, entries, err := s.store.Read(stream, seq-1, 1)
	if err != nil || len(entries) != 1 {
		return msgFields{}, false
	}
	var ev struct {
		Event string
		Msg   msgFields
	}
	if json.Unmarshal(entries[0].Payload, &ev) != nil || (ev.Event != wire.EventC2CMsg && ev.Event != wire.EventGroupMsg) {
		return msgFields{}, false
	}
	return ev.Msg, true
}

// ReceiptInfoRequest is msg.receipt_info's.
type ReceiptInfoRequest struct {
	GroupId    string
	MsgSeqList []uint64
}

// ReceiptInfoResponse holds each message's read and unread counts.
type ReceiptInfoResponse struct {
	GroupId             string         `json:"GroupId"`
	GroupMsgReceiptList []ReceiptCount `json:"GroupMsgReceiptList"`
}

// ReceiptInfo returns read and unread counts of group messages
// (msg.receipt_info; Tencent get_group_msg_receipt). [IM-RECEIPT-1]
func (s *Service) ReceiptInfo(ctx context.Context, a ops.Actor, q *ReceiptInfoRequest) (*ReceiptInfoResponse, error) {
	if len(q.MsgSeqList) == 0 || len(q.MsgSeqList) > maxReceiptBatch {
		return nil, imerr.BadParams.New("MsgSeqList must hold 1 to %d seqs", maxReceiptBatch)
	}
	list, err := s.groups.ReceiptInfo(ctx, a, q.GroupId, q.MsgSeqList)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []ReceiptCount{}
	}
	return &ReceiptInfoResponse{GroupId: q.GroupId, GroupMsgReceiptList: list}, nil
}

// ReceiptDetailRequest is msg.receipt_detail's.
type ReceiptDetailRequest struct {
	GroupId string
	MsgSeq  uint64
}

// ReceiptDetailResponse lists who read a group message and who has not.
type ReceiptDetailResponse struct {
	GroupId    string   `json:"GroupId"`
	MsgSeq     uint64   `json:"MsgSeq"`
	ReadList   []string `json:"ReadList"`
	UnreadList []string `json:"UnreadList"`
}

// ReceiptDetail lists who read a group message and who has not
// (msg.receipt_detail; Tencent get_group_msg_receipt_detail): for its
// sender, the group's managers and the app admin. [IM-RECEIPT-1]
func (s *Service) ReceiptDetail(ctx context.Context, a ops.Actor, q *ReceiptDetailRequest) (*ReceiptDetailResponse, error) {
	read, unread, err := s.groups.ReceiptDetail(ctx, a, q.GroupId, q.MsgSeq)
	if err != nil {
		return nil, err
	}
	if read == nil {
		read = []string{}
	}
	if unread == nil {
		unread = []string{}
	}
	return &ReceiptDetailResponse{GroupId: q.GroupId, MsgSeq: q.MsgSeq, ReadList: read, UnreadList: unread}, nil
}
