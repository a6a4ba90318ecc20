package broker

import (
	"context"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// Online status [IM-REL-STATUS]: docs/relations.md. A user is Online while
// at least one of their devices is connected (OnlineDevices); a takeover of
// a device by its own ClientID keeps them online throughout.

const (
	maxStatusQuery     = 500 // accounts of one status.query (Tencent)
	stateOnline        = "Online"
	stateOffline       = "Offline"
	eventStatusChanged = "StatusChanged" // to those who have the user as a friend (relations.status_events)
)

// presenceKey holds the last state announced with StatusChanged.
func presenceKey(uid string) string { return "ps/" + uid }

// reqStatusQuery reports users' online state (Tencent
// query_online_status), with the devices when IsNeedDetail is 1: Platform
// is the device part of each ClientID ("Unknown" for a bare {UserID}).
func (b *Broker) reqStatusQuery(_ context.Context, r *reqCtx) (any, error) {
	var q struct {
		To_Account   []string
		IsNeedDetail int
	}
	if err := r.decode(&q, imerr.AccountBadParams); err != nil {
		return nil, err
	}
	if len(q.To_Account) == 0 || len(q.To_Account) > maxStatusQuery {
		return nil, imerr.AccountBadParams.New("To_Account must hold 1 to %d accounts", maxStatusQuery)
	}
	results := []map[string]any{}
	errs := []map[string]any{}
	for _, to := range q.To_Account {
		if ids.CheckUserID(to) != nil {
			errs = append(errs, map[string]any{"To_Account": to, "ErrorCode": imerr.AccountUnknown.Code})
			continue
		}
		devs := b.OnlineDevices(to)
		res := map[string]any{"To_Account": to, "State": stateOffline}
		if len(devs) > 0 {
			res["State"] = stateOnline
		}
		if q.IsNeedDetail == 1 {
			detail := []map[string]any{}
			for _, id := range devs {
				platform := "Unknown"
				if _, dev, ok := strings.Cut(id, ":"); ok {
					platform = dev
				}
				detail = append(detail, map[string]any{"Platform": platform, "Status": stateOnline})
			}
			res["Detail"] = detail
		}
		results = append(results, res)
	}
	return map[string]any{"QueryResult": results, "ErrorList": errs}, nil
}

// presenceChanged is called after a connection of cl's user started or
// ended (SessionStarting / SessionEnded). With relations.status_events it
// compares the user's state now with the last one announced and, when they
// differ, appends StatusChanged {To_Account, State} to the stream of every
// user who has them as a friend. Evaluations of one user are serialised and
// each reads the live device set, so concurrent logins and logouts announce
// alternating states that end at the true one; a takeover (same ClientID)
// never empties the set and announces nothing. The announced state is kept
// in ps/{uid}, so a restart does not announce it again.
func (b *Broker) presenceChanged(cl *mqtt.Client) {
	if !b.cfg.Relations.StatusEvents || cl.Net.Inline {
		return
	}
	user := userOf(cl)
	if user == "" {
		return // guests have no status
	}
	unlock := b.lockUsers(user) // relation stripe -> devices.mu (OnlineDevices), the store
	defer unlock()
	state := stateOffline
	if len(b.OnlineDevices(user)) > 0 {
		state = stateOnline
	}
	last, found, err := b.store.Get(presenceKey(user))
	if err != nil {
		b.log.Error("status: read presence", "user", user, "error", err)
		return
	}
	if string(last) == state || (!found && state == stateOffline) {
		return
	}
	ws, err := b.relWatchers(user)
	if err != nil {
		b.log.Error("status: list watchers", "user", user, "error", err)
		return
	}
	ev, err := wire.EncodeEvent(eventStatusChanged, map[string]any{"To_Account": user, "State": state})
	if err != nil {
		return
	}
	events := make([]storage.Append, 0, len(ws))
	for _, w := range ws {
		events = append(events, storage.Append{Stream: userStream(w), Payload: ev})
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.Storage.CommitTimeout)
	defer cancel()
	first := storage.Batch{Sets: map[string][]byte{presenceKey(user): []byte(state)}}
	if err := b.commitFanout(ctx, first, events); err != nil {
		b.log.Warn("status: announce", "user", user, "state", state, "error", err)
	}
}
