// Package groups is the groups domain of the IM core: the group registry
// and each group's state and locks, the rules of each group type, every
// group.* operation, group messages (the group send path), tips (live-room
// member tips included), group history reads, read receipts and recall of
// group messages, the group admin and import APIs of the REST side, the
// Group.* callbacks and the offline push of group messages
// (docs/architecture.md, "Groups"). Its records are KV records of the store
// and its stored events appends to group and user streams, delivered live by
// the store's OnCommit; live rooms' events go to live delivery through Conns.
package groups

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/messages"
	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/callbacks"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// Store is the part of the store the groups service uses.
type Store interface {
	storage.Scanner
	Get(name string) ([]byte, bool, error)
	Head(stream string) (storage.Pos, error)
	Bounds(stream string) (head storage.Pos, low uint64, err error)
	Read(stream string, after uint64, limit int) (storage.Pos, []storage.Entry, error)
	Dedup(key []byte) ([]byte, bool, error)
	Commit(ctx context.Context, b storage.Batch) (storage.Result, error)
}

// Callbacks sends the app's callbacks (*callbacks.Client).
type Callbacks interface {
	Enabled(command string) bool
	Before(ctx context.Context, command string, fields map[string]any) callbacks.Decision
	After(ctx context.Context, command string, fields map[string]any)
}

// Conns is the MQTT side as the groups service needs it; the root wires
// the MQTT side's implementation.
type Conns interface {
	// Deliver hands events that are not stored (live rooms) to live
	// delivery, as the store's OnCommit does for stored ones.
	Deliver(entries []storage.Entry)
	// Online lists the connections (ClientIDs) user has now.
	Online(user string) []string
	// Notify writes payload to user's live connections on
	// im/u/{user}{suffix}, QoS 0, not stored; it returns how many got it.
	Notify(user, suffix string, payload []byte) int
	// DropGroupSubscriptions ends users' subscriptions to im/g/{gid} at
	// once; with no users, every subscriber's.
	DropGroupSubscriptions(gid string, users ...string)
}

// Timers schedules the timers of live-room member tips on the broker's
// task owner: a timer that has not fired when the broker shuts down never
// fires. AfterFunc returns nil, scheduling nothing, once shutdown began.
type Timers interface {
	AfterFunc(d time.Duration, fn func()) *time.Timer
}

// Mutes is the global mute check of the relations domain
// (openconfigsvr/setnospeaking): group is true for group messages.
type Mutes interface {
	CheckNoSpeaking(uid string, group bool) error
}

// Options configure a Service.
type Options struct {
	Store         Store
	Groups        config.Groups
	Messages      config.Messages      // send body limits and the dedup window
	Conversations config.Conversations // recall window and read-receipt group size
	Admin         string               // the app admin identifier (app.admin)
	Guests        bool                 // guests.enabled: guests may read the live rooms whose type admits them
	Callbacks     Callbacks
	Conns         Conns
	Timers        Timers
	Mutes         Mutes
	ConvCache     *convs.Cache     // conversation records as this process last encoded them
	OnSent        func(gid string) // told of every accepted group message (broker/stats: active groups); may be nil
	Log           *slog.Logger
}

// Service is the groups domain: it owns the loaded groups and their locks.
type Service struct {
	store     Store
	cfg       config.Groups
	msgs      config.Messages
	conv      config.Conversations
	admin     string
	guests    bool
	cb        Callbacks
	send      messages.SendCallbacks // Group.CallbackBeforeSendMsg / AfterSendMsg
	onSent    func(gid string)
	conns     Conns
	timers    Timers
	mutes     Mutes
	convCache *convs.Cache
	log       *slog.Logger

	policies map[string]*policy
	reg      registry
	live     liveHeads // live rooms' numbering seen on the bus (cluster mode)

	sent, dropped atomic.Int64
}

// New makes the service.
func New(o Options) *Service {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: o.Store, cfg: o.Groups, msgs: o.Messages, conv: o.Conversations, admin: o.Admin,
		guests: o.Guests, cb: o.Callbacks, conns: o.Conns, timers: o.Timers, mutes: o.Mutes, convCache: o.ConvCache,
		onSent: o.OnSent, log: log, policies: policies(o.Groups), reg: registry{loaded: map[string]*group{}},
		send: messages.SendCallbacks{CB: o.Callbacks, Before: messages.CmdGroupBefore, After: messages.CmdGroupAfter,
			Verdicts: callbacks.GroupVerdicts, MaxElements: o.Messages.MaxElements, Log: log}}
}

// Ops are the service's im/req operations. group.sync is not among them:
// it replays to the asking connection, on the MQTT side (Readable). The
// group halves of msg.recall and the read receipts are convs.Groups.
func (s *Service) Ops() []ops.Op {
	bad := imerr.GroupBadParams
	return []ops.Op{
		ops.New("group.create", bad, s.Create),
		ops.New("group.info", bad, s.Info).ReadOnly(),
		ops.New("group.members", bad, s.Members).ReadOnly(),
		ops.New("group.joined", bad, s.Joined).ReadOnly(),
		ops.New("group.modify", bad, s.Modify),
		ops.New("group.mute_all", bad, s.MuteAll),
		ops.New("group.join", bad, s.Join),
		ops.New("group.applications", bad, s.Applications).ReadOnly(),
		ops.New("group.handle_application", bad, s.HandleApplication),
		ops.New("group.invite", bad, s.Invite),
		ops.New("group.kick", bad, s.Kick),
		ops.New("group.quit", bad, s.Quit),
		ops.New("group.set_role", bad, s.SetRole),
		ops.New("group.set_member", bad, s.SetMember),
		ops.New("group.mute", bad, s.Mute),
		ops.New("group.transfer", bad, s.Transfer),
		ops.New("group.destroy", bad, s.Destroy),
		ops.New("group.history", bad, s.History).ReadOnly(),
	}
}

// Stats are the service's counters.
type Stats struct {
	Sent    int64 // group messages accepted
	Dropped int64 // group messages dropped over a group's rate limit
}

// Stats returns a snapshot of the counters.
func (s *Service) Stats() Stats {
	return Stats{Sent: s.sent.Load(), Dropped: s.dropped.Load()}
}

// Empty is the reply of an operation that answers nothing but success.
type Empty struct{}

// done is the reply of an operation whose last step returned err.
func done(err error) (*Empty, error) {
	if err != nil {
		return nil, err
	}
	return &Empty{}, nil
}
