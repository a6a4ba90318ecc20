package convs

import (
	"context"
	"encoding/json"

	"github.com/imbroker/imbroker/broker/ops"
)

// Groups is what the conversation operations need from the groups domain:
// how a user stands in a group (for conv.list, msg.read and msg.history of
// group conversations), and the group halves of msg.recall and the read
// receipts, which run under the group's lock and so belong to the groups
// domain. convs never takes a group lock itself. The groups service
// implements it (wired in broker with a compile-time check).
type Groups interface {
	// Conv is uid's standing in group gid. An invalid GroupId is
	// imerr.GroupInvalid, a group that does not exist imerr.GroupNotFound.
	Conv(gid, uid string) (GroupConv, error)
	// ReadDiffusionConvs lists uid's standing in each of their groups whose
	// conversation is built from the group stream (GroupConv.ReadDiffusion).
	ReadDiffusionConvs(uid string) ([]GroupConv, error)

	// Recall replaces group message seq by its recall marker and announces
	// it with a MsgRecalled tip, if a may recall it (docs/conversations.md,
	// [IM-RECALL-1]). seq 0 is imerr.RecallNone.
	Recall(ctx context.Context, a ops.Actor, gid string, seq uint64) error
	// Receipt records that a.User read the messages seqs (1 to 100, checked
	// by convs) and tells each one's sender its counts [IM-RECEIPT-1].
	Receipt(ctx context.Context, a ops.Actor, gid string, seqs []uint64) error
	// ReceiptInfo returns the read and unread counts of the messages seqs
	// (1 to 100, checked by convs), one item per seq in order; a seq that is
	// no stored message has ErrorCode imerr.RecallNone.Code.
	ReceiptInfo(ctx context.Context, a ops.Actor, gid string, seqs []uint64) ([]ReceiptCount, error)
	// ReceiptDetail returns who read message seq and who has not (current
	// members but its sender, ReadList sorted).
	ReceiptDetail(ctx context.Context, a ops.Actor, gid string, seq uint64) (read, unread []string, err error)
}

// GroupConv is one user's standing in one group, as the conversation
// operations need it.
type GroupConv struct {
	GroupID string
	Type    string // the group's type name (Public, AVChatRoom, ...)
	Member  bool   // the user is a member now
	Stored  bool   // the group keeps history (not a live room)
	// ReadDiffusion: stored, and no per-member record follows each message;
	// the conversation is built from the group stream.
	ReadDiffusion bool
	CountsUnread  bool   // the type counts unread (Private, Public)
	Floor         uint64 // the last group seq the user may not read (their join point; 0: history before joining is shown)
}

// ReceiptCount is one message's read receipt counts (msg.receipt_info).
type ReceiptCount struct {
	MsgSeq    uint64
	ReadNum   int
	UnreadNum int
	ErrorCode int // non-zero: no counts (the message is not there)
}

// MarshalJSON writes the counts only for a message that was found, in name
// order, as the reply always had them.
func (c ReceiptCount) MarshalJSON() ([]byte, error) {
	if c.ErrorCode != 0 {
		return json.Marshal(struct {
			ErrorCode int    `json:"ErrorCode"`
			MsgSeq    uint64 `json:"MsgSeq"`
		}{c.ErrorCode, c.MsgSeq})
	}
	return json.Marshal(struct {
		ErrorCode int    `json:"ErrorCode"`
		MsgSeq    uint64 `json:"MsgSeq"`
		ReadNum   int    `json:"ReadNum"`
		UnreadNum int    `json:"UnreadNum"`
	}{0, c.MsgSeq, c.ReadNum, c.UnreadNum})
}
