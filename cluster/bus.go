package cluster

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/nats-io/nats.go"
)

// The node-to-node bus: core NATS publish/subscribe and request/reply
// between the nodes' embedded servers, for what is not stored and so does
// not travel through the log (presence, kicks, live rooms). Subjects live
// under imb.bus.; delivery is at most once, no order between publishers,
// nothing kept for a node that is down. A message a node publishes reaches
// its own subscriptions too (callers that must skip their own node say so
// in the payload).

// BusPrefix starts every bus subject.
const BusPrefix = "imb.bus."

// A bus subject is NATS tokens of letters, digits, '-' and '_' joined by '.'
// after BusPrefix; Subscribe also takes the wildcards '*' (one token) and a
// trailing '>'.
var (
	busRE    = regexp.MustCompile(`^imb\.bus\.[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
	busSubRE = regexp.MustCompile(`^imb\.bus\.([A-Za-z0-9_-]+|\*)(\.([A-Za-z0-9_-]+|\*))*(\.>)?$`)
)

// ErrBusSubject: a subject outside imb.bus. or not valid NATS tokens.
var ErrBusSubject = errors.New("cluster: bus subject must be imb.bus. followed by tokens of letters, digits, '-' or '_'")

// Publish sends data to every subscription of subject on every node
// (this one included). It returns once the message is handed to the
// embedded server, not when it was received.
func (n *Node) Publish(subject string, data []byte) error {
	if !busRE.MatchString(subject) {
		return fmt.Errorf("cluster: publish %q: %w", subject, ErrBusSubject)
	}
	if err := n.nc.Publish(subject, data); err != nil {
		return fmt.Errorf("cluster: publish %s: %w", subject, err)
	}
	return nil
}

// Subscribe runs fn for each message on subject (wildcards allowed), one
// at a time in arrival order on a goroutine of the NATS client: fn should
// be quick (hand slow work off). stop ends the subscription; messages
// already queued for it are dropped. The node's Shutdown ends it too.
func (n *Node) Subscribe(subject string, fn func(data []byte)) (stop func(), err error) {
	if !busSubRE.MatchString(subject) {
		return nil, fmt.Errorf("cluster: subscribe %q: %w", subject, ErrBusSubject)
	}
	sub, err := n.nc.Subscribe(subject, func(m *nats.Msg) { fn(m.Data) })
	if err != nil {
		return nil, fmt.Errorf("cluster: subscribe %s: %w", subject, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// Request sends data on subject and returns the first reply, waiting until
// ctx ends. A subscriber answers with Reply (HandleRequest). With no
// subscriber anywhere it fails at once (nats.ErrNoResponders).
func (n *Node) Request(ctx context.Context, subject string, data []byte) ([]byte, error) {
	if !busRE.MatchString(subject) {
		return nil, fmt.Errorf("cluster: request %q: %w", subject, ErrBusSubject)
	}
	m, err := n.nc.RequestWithContext(ctx, subject, data)
	if err != nil {
		return nil, fmt.Errorf("cluster: request %s: %w", subject, err)
	}
	return m.Data, nil
}

// HandleRequest answers requests on subject (wildcards allowed) with fn's
// reply, one at a time on a NATS client goroutine. Every node serving the
// subject answers; Request keeps the first answer.
func (n *Node) HandleRequest(subject string, fn func(data []byte) []byte) (stop func(), err error) {
	if !busSubRE.MatchString(subject) {
		return nil, fmt.Errorf("cluster: handle %q: %w", subject, ErrBusSubject)
	}
	sub, err := n.nc.Subscribe(subject, func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		if err := m.Respond(fn(m.Data)); err != nil {
			n.log.Warn("cluster: bus reply", "subject", subject, "err", err)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: handle %s: %w", subject, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}
