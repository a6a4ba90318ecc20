package convs

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// Store is the part of the store the conversation operations use.
type Store interface {
	storage.Scanner
	Getter
	Commit(ctx context.Context, b storage.Batch) (storage.Result, error)
	Head(stream string) (storage.Pos, error)
	Bounds(stream string) (head storage.Pos, low uint64, err error)
	Read(stream string, after uint64, limit int) (storage.Pos, []storage.Entry, error)
}

// Callbacks queues the app's after-callbacks (*callbacks.Client).
type Callbacks interface {
	Enabled(command string) bool
	After(ctx context.Context, command string, fields map[string]any)
}

// Options configure a Service.
type Options struct {
	Store     Store
	Config    config.Conversations
	Messages  config.Messages // the limits a modified message is checked against
	Callbacks Callbacks
	Groups    Groups
	Log       *slog.Logger
}

// Service is the conversations domain: the list, read reports, roaming
// history, recall, per-message receipts and modification of one-to-one
// messages (docs/conversations.md).
type Service struct {
	store  Store
	cfg    config.Conversations
	msgs   config.Messages
	cb     Callbacks
	groups Groups
	log    *slog.Logger
}

// New makes the service.
func New(o Options) *Service {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: o.Store, cfg: o.Config, msgs: o.Messages, cb: o.Callbacks, groups: o.Groups, log: log}
}

// Ops are the service's im/req operations.
func (s *Service) Ops() []ops.Op {
	bad := imerr.BadParams
	return []ops.Op{
		ops.New("conv.list", bad, s.List).ReadOnly(),
		ops.New("conv.delete", bad, s.Delete),
		ops.New("msg.read", bad, s.Read),
		ops.New("msg.history", bad, s.History).ReadOnly(),
		ops.New("msg.recall", bad, s.Recall),
		ops.New("msg.receipt", bad, s.Receipt),
		ops.New("msg.receipt_info", bad, s.ReceiptInfo).ReadOnly(),
		ops.New("msg.receipt_detail", bad, s.ReceiptDetail).ReadOnly(),
	}
}

// Empty is the response of an operation that answers nothing but success.
type Empty struct{}

// Target names a conversation in a request: Type 1 (or "C2C") with
// Peer_Account, or 2 (or "Group") with GroupId.
type Target struct {
	Type         json.RawMessage
	Peer_Account string
	GroupId      string
}

// C2CTarget is the one-to-one conversation with peer.
func C2CTarget(peer string) Target {
	return Target{Type: json.RawMessage("1"), Peer_Account: peer}
}

// resolve checks the target and returns its type and conversation id.
func (t Target) resolve() (int, string, error) {
	typ := strings.Trim(string(t.Type), `"`)
	switch typ {
	case "1", "C2C":
		if ids.CheckUserID(t.Peer_Account) != nil {
			return 0, "", imerr.BadAccount.New("invalid Peer_Account")
		}
		return TypeC2C, C2CID(t.Peer_Account), nil
	case "2", "Group":
		if ids.CheckGroupID(t.GroupId, false) != nil {
			return 0, "", imerr.GroupInvalid.New("invalid GroupId")
		}
		return TypeGroup, GroupID(t.GroupId), nil
	}
	return 0, "", imerr.BadParams.New("Type must be 1 (C2C) or 2 (Group)")
}

// notMember refuses a group operation to a non-member.
func notMember(gid string) error {
	return imerr.GroupNoPermission.New("not a member of %s", gid)
}
