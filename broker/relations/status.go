package relations

import (
	"context"
	"strings"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// Online status [IM-REL-STATUS]: docs/relations.md. A user is Online while
// at least one of their devices is connected (Presence); a takeover of a
// device by its own ClientID keeps them online throughout.

const (
	maxStatusQuery     = 500 // accounts of one status.query (Tencent)
	stateOnline        = "Online"
	stateOffline       = "Offline"
	eventStatusChanged = "StatusChanged" // to those who have the user as a friend (relations.status_events)
)

// StatusQueryRequest is status.query (Tencent query_online_status).
type StatusQueryRequest struct {
	To_Account   []string
	IsNeedDetail int // 1: list each user's devices
}

// StatusResult is one user's state.
type StatusResult struct {
	To_Account string
	State      string          // Online or Offline
	Detail     *[]StatusDetail `json:",omitempty"` // with IsNeedDetail 1 only
}

// StatusDetail is one connected device.
type StatusDetail struct {
	Platform string // the device part of the ClientID; "Unknown" for a bare {UserID}
	Status   string
}

// StatusError is an account that could not be queried.
type StatusError struct {
	To_Account string
	ErrorCode  int
}

// StatusQueryResponse answers status.query.
type StatusQueryResponse struct {
	QueryResult []StatusResult
	ErrorList   []StatusError
}

// StatusQuery reports users' online state (Tencent query_online_status),
// with the devices when IsNeedDetail is 1: Platform is the device part of
// each ClientID ("Unknown" for a bare {UserID}).
func (s *Service) StatusQuery(_ context.Context, _ ops.Actor, q *StatusQueryRequest) (*StatusQueryResponse, error) {
	if len(q.To_Account) == 0 || len(q.To_Account) > maxStatusQuery {
		return nil, imerr.AccountBadParams.New("To_Account must hold 1 to %d accounts", maxStatusQuery)
	}
	res := &StatusQueryResponse{QueryResult: []StatusResult{}, ErrorList: []StatusError{}}
	for _, to := range q.To_Account {
		if ids.CheckUserID(to) != nil {
			res.ErrorList = append(res.ErrorList, StatusError{To_Account: to, ErrorCode: imerr.AccountUnknown.Code})
			continue
		}
		devs := s.presence.OnlineDevices(to)
		r := StatusResult{To_Account: to, State: stateOffline}
		if len(devs) > 0 {
			r.State = stateOnline
		}
		if q.IsNeedDetail == 1 {
			detail := []StatusDetail{}
			for _, id := range devs {
				platform := "Unknown"
				if _, dev, ok := strings.Cut(id, ":"); ok {
					platform = dev
				}
				detail = append(detail, StatusDetail{Platform: platform, Status: stateOnline})
			}
			r.Detail = &detail
		}
		res.QueryResult = append(res.QueryResult, r)
	}
	return res, nil
}

// PresenceChanged is called after a connection of user started or ended.
// With relations.status_events it compares the user's state now with the
// last one announced and, when they differ, appends StatusChanged
// {To_Account, State} to the stream of every user who has them as a
// friend. Evaluations of one user are serialised and each reads the live
// device set, so concurrent logins and logouts announce alternating states
// that end at the true one; a takeover (same ClientID) never empties the
// set and announces nothing. The announced state is kept in ps/{uid}, so a
// restart does not announce it again. Failures are logged.
func (s *Service) PresenceChanged(ctx context.Context, user string) {
	if !s.cfg.StatusEvents || user == "" {
		return
	}
	unlock := s.lockUsers(user) // relation stripe -> conns.mu (Presence, broker/mqttd), the store
	defer unlock()
	state := stateOffline
	if len(s.presence.OnlineDevices(user)) > 0 {
		state = stateOnline
	}
	last, found, err := s.store.Get(presenceKey(user))
	if err != nil {
		s.log.Error("status: read presence", "user", user, "error", err)
		return
	}
	if string(last) == state || (!found && state == stateOffline) {
		return
	}
	ws, err := s.watchers(user)
	if err != nil {
		s.log.Error("status: list watchers", "user", user, "error", err)
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
	first := storage.Batch{Sets: map[string][]byte{presenceKey(user): []byte(state)}}
	if err := s.commitFanout(ctx, first, events); err != nil {
		s.log.Warn("status: announce", "user", user, "state", state, "error", err)
	}
}
