// Package messages is the message pipeline of the IM core: the one-to-one
// send path (checks, validation, the send callbacks, one synced batch per
// send, the offline push), the import of old one-to-one messages, and the
// two rules every send follows, one-to-one or group: the stamp (StampC2C,
// StampGroup: the one place MsgSeq, MsgKey and MsgTime are set, the clock
// read once per send) and the resend rule (C2CResendKey, GroupResendKey).
package messages

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/callbacks"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/storage"
)

// Store is the part of the store the pipeline uses.
type Store interface {
	Submit(ctx context.Context, b storage.Batch) (*storage.Pending, error)
	convs.Getter // the recipient's unread count for an offline push
}

// Callbacks sends the app's callbacks (*callbacks.Client).
type Callbacks interface {
	Enabled(command string) bool
	Before(ctx context.Context, command string, fields map[string]any) callbacks.Decision
	After(ctx context.Context, command string, fields map[string]any)
}

// Relations are the relation checks of a send (the relations service).
type Relations interface {
	// CheckNoSpeaking refuses a globally muted sender (group: group
	// messages, else one-to-one) [IM-NOSPEAKING].
	CheckNoSpeaking(uid string, group bool) error
	// CheckC2C runs the blacklist and friendship checks of a one-to-one
	// send [IM-REL-C2C]: an error refuses it; drop means the recipient
	// blacklisted the sender and the send is to look successful while
	// nothing is stored.
	CheckC2C(from, to string) (drop bool, err error)
}

// Presence tells which devices a user is connected with (the MQTT side).
type Presence interface {
	OnlineDevices(user string) []string
}

// Options configure a Service.
type Options struct {
	Store     Store
	Config    config.Messages
	Callbacks Callbacks
	Relations Relations
	Presence  Presence
	// Convs keeps the conversation records the sends encode (nil: none).
	Convs *convs.Cache
	Log   *slog.Logger
}

// Service is the one-to-one message pipeline.
type Service struct {
	store    Store
	cfg      config.Messages
	cb       Callbacks
	send     SendCallbacks // C2C.CallbackBeforeSendMsg / AfterSendMsg
	rel      Relations
	presence Presence
	convs    *convs.Cache
	log      *slog.Logger
	sent     atomic.Int64 // messages stored since start
}

// New makes the service.
func New(o Options) *Service {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: o.Store, cfg: o.Config, cb: o.Callbacks, rel: o.Relations, presence: o.Presence,
		convs: o.Convs, log: log,
		send: SendCallbacks{CB: o.Callbacks, Before: CmdC2CBefore, After: CmdC2CAfter, Verdicts: callbacks.C2CVerdicts,
			MaxElements: o.Config.MaxElements, Log: log}}
}

// Sent is how many one-to-one messages were stored since start (resends
// and dropped sends not counted).
func (s *Service) Sent() int64 { return s.sent.Load() }
