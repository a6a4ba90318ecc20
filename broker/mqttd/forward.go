package mqttd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/imbroker/imbroker/broker/groups"
	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/callbacks"
	"github.com/imbroker/imbroker/internal/imerr"
)

// Cluster seam (docs/architecture.md, "Cluster seams"). In cluster mode one
// node, the owner, is the store's only writer. Store batches carry Go
// closures (storage.Update.Fn), so a write cannot be shipped as a batch: a
// write that arrives on another node is forwarded at the operation level —
// one of the kinds below, its request encoded as JSON — and the owner runs
// it with the same code a local call runs (owner.go), and the answer comes
// back with the same code and reply. With no Forwarder (one node, the
// default) none of this runs: each path checks one nil interface.

// Forwarder hands a write to the owner. cluster.Node implements it.
type Forwarder interface {
	// IsOwner reports whether this node writes itself.
	IsOwner() bool
	// Forward runs the owner's handler for kind with req and returns its
	// answer. It must return only once this node has applied the owner's
	// writes made for req (read-your-writes: a PUBACK, then a sync on this
	// node, sees the message). An error is a transport failure (no owner,
	// timeout), not the operation's refusal, which travels in the answer.
	Forward(ctx context.Context, kind string, req []byte) ([]byte, error)
}

// The kinds the MQTT side forwards; the owner's handler for each is in
// Server.OwnerHandlers.
const (
	KindC2C   = "mqtt.c2c"   // one connection's one-to-one sends, in receive order
	KindGroup = "mqtt.group" // a group send
	KindOp    = "mqtt.op"    // an im/req operation that writes (ops.Op.Writes)
	KindLogin = "mqtt.login" // a login's account side (a kick check, the account made at first login)
)

// c2cForward is KindC2C's request: sends of one connection's user, to be
// queued on the owner's committer in this order.
type c2cForward struct {
	From  string
	Sends []c2cSend
}

type c2cSend struct {
	To      string
	Payload []byte
	from    string // the connection's user, while queued in its ack pipe
}

// c2cAnswer is one outcome per send, in order.
type c2cAnswer struct {
	Results []outcome
}

type groupForward struct {
	From, GroupID string
	Payload       []byte
}

type groupAnswer struct {
	outcome
	Result groups.SendResult
}

// opForward is KindOp's request: the operation, who runs it (the caller's
// identity is the owner's Actor, unchanged) and the request body as the
// client sent it.
type opForward struct {
	Op       string
	Actor    ops.Actor
	Platform string // the caller's OptPlatform (callbacks.Platform)
	Body     []byte
}

type opAnswer struct {
	outcome
	Result json.RawMessage `json:",omitempty"` // the typed response as encoded by the owner
}

type loginForward struct {
	User   string
	Issued int64 // unix nanoseconds
}

// outcome is an operation's refusal across the seam: the imerr.Error the
// owner returned, field for field, or none.
type outcome struct {
	Err *imerr.Error `json:",omitempty"`
}

// outcomeOf is err as an outcome. An uncoded error becomes Internal here,
// as the boundary would map it; the owner logs its detail.
func outcomeOf(err error) outcome {
	if err == nil {
		return outcome{}
	}
	return outcome{Err: imerr.As(err)}
}

// err is the refusal back as the error a local call returns.
func (o outcome) err() error {
	if o.Err == nil {
		return nil
	}
	return o.Err
}

// forward encodes req, forwards it as kind and decodes the answer into ans.
func (s *Server) forward(ctx context.Context, kind string, req, ans any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode %s: %w", kind, err)
	}
	out, err := s.Forward.Forward(ctx, kind, b)
	if err != nil {
		var e *imerr.Error
		if errors.As(err, &e) {
			return err
		}
		return fmt.Errorf("forward %s to the owner: %w", kind, err)
	}
	if err := json.Unmarshal(out, ans); err != nil {
		return fmt.Errorf("decode %s answer: %w", kind, err)
	}
	return nil
}

// forwarding reports whether this node's writes go to the owner. Callers
// check s.Forward != nil first, so a single node pays one nil check.
func (s *Server) forwarding() bool { return !s.Forward.IsOwner() }

// forwardC2C forwards sends of from, in order, and returns each outcome.
func (s *Server) forwardC2C(ctx context.Context, from string, sends []c2cSend) []error {
	var ans c2cAnswer
	errs := make([]error, len(sends))
	err := s.forward(ctx, KindC2C, c2cForward{From: from, Sends: sends}, &ans)
	if err == nil && len(ans.Results) != len(sends) {
		err = fmt.Errorf("forward %s: %d outcomes for %d sends", KindC2C, len(ans.Results), len(sends))
	}
	for i := range errs {
		if err != nil {
			errs[i] = err
		} else {
			errs[i] = ans.Results[i].err()
		}
	}
	return errs
}

// sendC2C is an inline one-to-one send, forwarded when this node does not
// write.
func (s *Server) sendC2C(ctx context.Context, from, to string, payload []byte) error {
	if s.Forward != nil && s.forwarding() {
		return s.forwardC2C(ctx, from, []c2cSend{{To: to, Payload: payload}})[0]
	}
	_, err := s.Messages.SendC2C(ctx, from, to, payload)
	return err
}

// sendGroup is a group send, forwarded when this node does not write.
func (s *Server) sendGroup(ctx context.Context, from, gid string, payload []byte) (groups.SendResult, error) {
	if s.Forward == nil || !s.forwarding() {
		return s.Groups.Send(ctx, from, gid, payload)
	}
	var ans groupAnswer
	if err := s.forward(ctx, KindGroup, groupForward{From: from, GroupID: gid, Payload: payload}, &ans); err != nil {
		return groups.SendResult{}, err
	}
	return ans.Result, ans.err()
}

// runRegistryOp runs a registry operation, forwarded when it writes and
// this node does not. The forwarded result is the owner's encoded response
// (json.RawMessage), which okReply splices like a typed one.
func (s *Server) runRegistryOp(ctx context.Context, o ops.Op, a ops.Actor, body []byte) (any, error) {
	if s.Forward == nil || !o.Writes() || !s.forwarding() {
		return o.Run(ctx, a, body)
	}
	var ans opAnswer
	req := opForward{Op: o.Name, Actor: a, Platform: callbacks.Platform(ctx), Body: body}
	if err := s.forward(ctx, KindOp, req, &ans); err != nil {
		return nil, err
	}
	if err := ans.err(); err != nil {
		return nil, err
	}
	if len(ans.Result) == 0 {
		return nil, nil
	}
	return ans.Result, nil
}

// login runs the account side of a login, forwarded when this node does
// not write (it may make the account).
func (s *Server) login(ctx context.Context, user string, issued time.Time) error {
	if s.Forward == nil || !s.forwarding() {
		return s.Accounts.Login(ctx, user, issued)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Storage.CommitTimeout)
	defer cancel()
	var ans outcome
	if err := s.forward(ctx, KindLogin, loginForward{User: user, Issued: issued.UnixNano()}, &ans); err != nil {
		return err
	}
	return ans.err()
}

// RunOp runs the registry operation name as a for a caller inside the
// process (the console): req is encoded as a client's body would be, the
// response decoded into resp. A write is forwarded when this node does
// not write, as an im/req of a client would be.
func (s *Server) RunOp(ctx context.Context, a ops.Actor, name string, req, resp any) error {
	o, ok := s.Ops.Lookup(name)
	if !ok {
		return imerr.BadCommand.New("unknown request %q", name)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode %s request: %w", name, err)
	}
	res, err := s.runRegistryOp(ctx, o, a, body)
	if err != nil || res == nil || resp == nil {
		return err
	}
	raw, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode %s response: %w", name, err)
	}
	return json.Unmarshal(raw, resp)
}
