// Package ops is the registry of IM operations. Each operation has a name
// (the {op} of im/req/{op}), a request type, a response type and a typed
// handler. The MQTT side looks an operation up by name, decodes the request
// body into its request type and encodes the typed response once; REST calls
// the typed handlers directly. The registry holds no business rules: each
// domain service lists its own operations.
package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/imbroker/imbroker/internal/imerr"
)

// Actor is who runs an operation.
type Actor struct {
	User     string // the authenticated UserID (the admin identifier for the app admin)
	Admin    bool   // the app admin: it may act for any user
	ViaAdmin bool   // the app admin acts as User (a REST call): admin-only flags such as ForceAddFlags apply
}

// Handler is an operation's typed implementation.
type Handler[Req, Resp any] func(ctx context.Context, a Actor, req *Req) (*Resp, error)

// Op is one registered operation.
type Op struct {
	Name     string
	readOnly bool // changes nothing: a cluster node that does not write runs it itself
	run      func(ctx context.Context, a Actor, body []byte) (any, error)
}

// ReadOnly marks o as changing nothing in the store. An operation not so
// marked is a write: in cluster mode a node that does not write forwards it
// to the owner, so forgetting the mark costs a round trip, never a lost write.
func (o Op) ReadOnly() Op {
	o.readOnly = true
	return o
}

// Writes reports whether o may change the store (it is not ReadOnly).
func (o Op) Writes() bool { return !o.readOnly }

// New makes the operation name from h. A body that does not decode into Req
// is refused with bad (the kind of the service's "invalid parameters").
func New[Req, Resp any](name string, bad *imerr.Kind, h Handler[Req, Resp]) Op {
	return Op{Name: name, run: func(ctx context.Context, a Actor, body []byte) (any, error) {
		req := new(Req)
		if len(body) > 0 {
			if err := json.Unmarshal(body, req); err != nil {
				return nil, bad.New("request fields: %v", err)
			}
		}
		resp, err := h(ctx, a, req)
		if err != nil {
			return nil, err
		}
		return resp, nil
	}}
}

// Run decodes body, runs the handler and returns its response (a pointer to
// the response type, for the caller to encode) or its error.
func (o Op) Run(ctx context.Context, a Actor, body []byte) (any, error) {
	return o.run(ctx, a, body)
}

// Registry finds operations by name.
type Registry struct {
	byName map[string]Op
}

// NewRegistry builds a registry from each service's list; a name registered
// twice is a programming error.
func NewRegistry(lists ...[]Op) (*Registry, error) {
	r := &Registry{byName: map[string]Op{}}
	for _, l := range lists {
		for _, o := range l {
			if _, dup := r.byName[o.Name]; dup {
				return nil, fmt.Errorf("operation %q registered twice", o.Name)
			}
			r.byName[o.Name] = o
		}
	}
	return r, nil
}

// Lookup returns the operation called name.
func (r *Registry) Lookup(name string) (Op, bool) {
	o, ok := r.byName[name]
	return o, ok
}

// Names lists the registered operations, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.byName))
	for n := range r.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
