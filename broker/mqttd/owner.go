package mqttd

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/imbroker/imbroker/broker/messages"
	"github.com/imbroker/imbroker/callbacks"
	"github.com/imbroker/imbroker/internal/imerr"
)

// The owner's side of the cluster seam (forward.go): one handler per kind,
// each running the code a local call runs. The cluster registers them
// (cluster.Node.Handle); they run whatever IsOwner says, since a node that
// lost the lead fails the writes itself (storage.ErrNotOwner).

// Handler answers one forwarded request.
type Handler func(ctx context.Context, req []byte) ([]byte, error)

// OwnerHandlers are the handlers of the MQTT side's kinds. Serve must have
// run (they use the services).
func (s *Server) OwnerHandlers() map[string]Handler {
	return map[string]Handler{
		KindC2C:   s.ownC2C,
		KindGroup: s.ownGroup,
		KindOp:    s.ownOp,
		KindLogin: s.ownLogin,
	}
}

// decodeForward decodes a forwarded request; a request that does not
// decode is a transport error (both ends run the same code).
func decodeForward(kind string, req []byte, v any) error {
	if err := json.Unmarshal(req, v); err != nil {
		return fmt.Errorf("decode %s request: %w", kind, err)
	}
	return nil
}

// ownC2C queues every send on the committer in the order received, as the
// sender's node would have (the pipelined path: StartC2C, then each wait),
// so the sends of one connection keep their order and share group commits.
func (s *Server) ownC2C(ctx context.Context, req []byte) ([]byte, error) {
	var q c2cForward
	if err := decodeForward(KindC2C, req, &q); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, s.cfg.Storage.CommitTimeout)
	defer cancel()
	pending := make([]*messages.Pending, len(q.Sends))
	errs := make([]error, len(q.Sends))
	for i, m := range q.Sends {
		pending[i], _, errs[i] = s.Messages.StartC2C(sctx, q.From, m.To, m.Payload)
	}
	ans := c2cAnswer{Results: make([]outcome, len(q.Sends))}
	for i := range q.Sends {
		if errs[i] == nil && pending[i] != nil {
			_, errs[i] = pending[i].Finish()
		}
		s.logInternal("forwarded send failed", q.From, errs[i])
		ans.Results[i] = outcomeOf(errs[i])
	}
	return json.Marshal(ans)
}

func (s *Server) ownGroup(ctx context.Context, req []byte) ([]byte, error) {
	var q groupForward
	if err := decodeForward(KindGroup, req, &q); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Storage.CommitTimeout)
	defer cancel()
	res, err := s.Groups.Send(ctx, q.From, q.GroupID, q.Payload)
	s.logInternal("forwarded group send failed", q.From, err)
	return json.Marshal(groupAnswer{outcome: outcomeOf(err), Result: res})
}

// ownOp runs a registry operation as the caller's Actor, with the caller's
// OptPlatform.
func (s *Server) ownOp(ctx context.Context, req []byte) ([]byte, error) {
	var q opForward
	if err := decodeForward(KindOp, req, &q); err != nil {
		return nil, err
	}
	o, ok := s.Ops.Lookup(q.Op)
	if !ok {
		return json.Marshal(opAnswer{outcome: outcomeOf(imerr.BadCommand.New("unknown request %q", q.Op))})
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Storage.CommitTimeout)
	defer cancel()
	if q.Platform != callbacks.PlatformUnknown {
		ctx = callbacks.WithPlatform(ctx, q.Platform)
	}
	res, err := o.Run(ctx, q.Actor, q.Body)
	if err != nil {
		s.logInternal("forwarded request failed", q.Actor.User, err)
		return json.Marshal(opAnswer{outcome: outcomeOf(err)})
	}
	raw, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("encode %s response: %w", q.Op, err)
	}
	return json.Marshal(opAnswer{Result: raw})
}

func (s *Server) ownLogin(ctx context.Context, req []byte) ([]byte, error) {
	var q loginForward
	if err := decodeForward(KindLogin, req, &q); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Storage.CommitTimeout)
	defer cancel()
	err := s.Accounts.Login(ctx, q.User, time.Unix(0, q.Issued))
	s.logInternal("forwarded login failed", q.User, err)
	return json.Marshal(outcomeOf(err))
}

// logInternal logs an uncoded error on the owner, the only node that
// knows its detail (the caller's node sees Internal).
func (s *Server) logInternal(msg, user string, err error) {
	if err != nil && imerr.As(err).Code == imerr.Internal.Code {
		s.log.Error(msg, "user", user, "error", err)
	}
}
