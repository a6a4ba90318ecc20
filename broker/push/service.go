// Package push is all-member push (Tencent all_member_push): the app's
// attribute names, each user's attributes and tags, and push tasks that
// append one AllMemberPush event to the stream of every user a condition
// selects (all users, or by tags or attributes). A task is stored before it
// is answered and fans out in the background, a page of users per commit,
// with its progress in the same commit; a task a shutdown interrupted
// resumes at the next start, so every selected user gets the event exactly
// once.
package push

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/storage"
)

// Store is what the service needs of storage.
type Store interface {
	Commit(ctx context.Context, b storage.Batch) (storage.Result, error)
	Get(name string) ([]byte, bool, error)
	Scan(prefix, after string, limit int) ([]storage.KV, error)
	Streams(prefix, after string, limit int) ([]storage.StreamInfo, error)
	Dedup(key []byte) ([]byte, bool, error)
}

// Tasks runs the background fan-outs (internal/tasks.Owner): shutdown
// cancels them between pages and waits.
type Tasks interface {
	Spawn(fn func(ctx context.Context)) bool
}

// Online lists the users connected now (broker/mqttd), in UserID order: a
// push to all users reaches them even before they have a stream.
type Online interface {
	OnlineUsers() []string
}

// Options configure a Service.
type Options struct {
	Store    Store
	Tasks    Tasks
	Online   Online // nil: only accounts and streams are listed
	Config   config.Push
	Messages config.Messages // MsgBody limits, as for sends
	Admin    string          // the app admin: the sender when From_Account is omitted
	Log      *slog.Logger
}

// Service is all-member push.
type Service struct {
	store  Store
	tasks  Tasks
	online Online
	cfg    config.Push
	msgs   config.Messages
	admin  string
	log    *slog.Logger

	// mu serialises the read-modify-write of attribute names against the
	// attribute changes that check them.
	mu sync.Mutex
	// running holds the tasks fanning out now, so a resend of a task that
	// is still running does not start it twice.
	running sync.Map // taskID -> struct{}
}

// New returns the service; Resume starts the tasks a restart interrupted.
func New(o Options) *Service {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: o.Store, tasks: o.Tasks, online: o.Online, cfg: o.Config, msgs: o.Messages, admin: o.Admin, log: log}
}

// KV names (docs/architecture.md, storage layout).
const (
	attrNamesKey = "pn"  // the app's attribute names: {"0":"sex",...}
	userPrefix   = "pu/" // pu/{uid}: the user's attributes and tags
	taskPrefix   = "pt/" // pt/{TaskId}: a push task and its progress
)

// Names of what other packages own, read here to list every user: the
// account registry (broker/relations) and user streams.
const (
	accountPrefix = "ac/"
	streamPrefix  = "u/"
)

func userKey(uid string) string { return userPrefix + uid }

// userRec is a user's attributes (by attribute name) and tags.
type userRec struct {
	Attrs map[string]string `json:",omitempty"`
	Tags  []string          `json:",omitempty"`
}

func decodeUser(v []byte, found bool) (userRec, error) {
	var r userRec
	if !found {
		return r, nil
	}
	if err := json.Unmarshal(v, &r); err != nil {
		return r, fmt.Errorf("decode push record: %w", err)
	}
	return r, nil
}

func (r userRec) empty() bool { return len(r.Attrs) == 0 && len(r.Tags) == 0 }

// encode returns nil for an empty record, which deletes it.
func (r userRec) encode() []byte {
	if r.empty() {
		return nil
	}
	b, _ := json.Marshal(r) // strings only: cannot fail
	return b
}

func (r userRec) hasTag(t string) bool {
	for _, x := range r.Tags {
		if x == t {
			return true
		}
	}
	return false
}
