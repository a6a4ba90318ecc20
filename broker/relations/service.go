// Package relations is the relations domain of the IM core: profiles and
// the account registry, friends and friend lists, the blacklist and the C2C
// relation gate, online status queries and announcements, global mutes
// (nospeaking), friend import and the Sns.* / Profile.* callbacks
// (docs/relations.md). Its records are KV records of the store; its events
// are appends to user streams, delivered live by the store's OnCommit like
// every other stored event.
package relations

import (
	"context"
	"log/slog"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/callbacks"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// Store is the part of the store the relations service uses.
type Store interface {
	storage.Scanner
	Get(name string) ([]byte, bool, error)
	Commit(ctx context.Context, b storage.Batch) (storage.Result, error)
}

// Callbacks sends the app's callbacks (*callbacks.Client).
type Callbacks interface {
	Enabled(command string) bool
	Before(ctx context.Context, command string, fields map[string]any) callbacks.Decision
	Failure(command string, why error) callbacks.Decision
	After(ctx context.Context, command string, fields map[string]any)
}

// Presence tells which devices (ClientIDs) a user is connected with now;
// the MQTT side's device registry implements it.
type Presence interface {
	OnlineDevices(user string) []string
}

// Kicker disconnects every connection of a user (account_delete); the
// MQTT side implements it.
type Kicker interface {
	KickUser(user string) int
}

// Options configure a Service. Store, Callbacks and Presence are required.
type Options struct {
	Store     Store
	Config    config.Relations
	Admin     string // the app admin identifier (app.admin): any user's profile, exempt from the C2C gate and mutes
	Callbacks Callbacks
	Presence  Presence
	Kicker    Kicker       // nil: account_delete disconnects nobody
	Log       *slog.Logger // nil: discard
}

// Service is the relations domain: it owns the relation records and the
// lock stripes that serialise their changes.
type Service struct {
	store    Store
	cfg      config.Relations
	admin    string
	cb       Callbacks
	presence Presence
	kicker   Kicker
	log      *slog.Logger
	locks    stripes
}

// New makes the service.
func New(o Options) *Service {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: o.Store, cfg: o.Config, admin: o.Admin, cb: o.Callbacks, presence: o.Presence,
		kicker: o.Kicker, log: log}
}

// Ops are the service's im/req operations.
func (s *Service) Ops() []ops.Op {
	sns, prof := imerr.SnsBadParams, imerr.ProfileBadParams
	return []ops.Op{
		ops.New("profile.set", prof, s.ProfileSet),
		ops.New("profile.get", prof, s.ProfileGet).ReadOnly(),
		ops.New("friend.add", sns, s.FriendAdd),
		ops.New("friend.response", sns, s.FriendResponse),
		ops.New("friend.pending", sns, s.FriendPending).ReadOnly(),
		ops.New("friend.delete", sns, s.FriendDelete),
		ops.New("friend.get", sns, s.FriendGet).ReadOnly(),
		ops.New("friend.check", sns, s.FriendCheck).ReadOnly(),
		ops.New("friend.update", sns, s.FriendUpdate),
		ops.New("friend.group_add", sns, s.FriendGroupAdd),
		ops.New("friend.group_delete", sns, s.FriendGroupDelete),
		ops.New("friend.group_get", sns, s.FriendGroupGet).ReadOnly(),
		ops.New("black.add", sns, s.BlackAdd),
		ops.New("black.delete", sns, s.BlackDelete),
		ops.New("black.get", sns, s.BlackGet).ReadOnly(),
		ops.New("black.check", sns, s.BlackCheck).ReadOnly(),
		ops.New("status.query", imerr.AccountBadParams, s.StatusQuery).ReadOnly(),
	}
}
