package lazyconn

import (
	"net"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// Listener hands mochi every connection of the listener it wraps as a
// Conn. ID, Address, Protocol, Init and Close are the wrapped listener's.
type Listener struct {
	listeners.Listener
	o Options
}

var _ listeners.Listener = (*Listener)(nil)

// Wrap returns l with its connections wrapped.
func Wrap(l listeners.Listener, o Options) *Listener { return &Listener{Listener: l, o: o} }

// Serve runs the wrapped listener's Serve with each connection wrapped.
func (l *Listener) Serve(establish listeners.EstablishFn) {
	l.Listener.Serve(func(id string, c net.Conn) error {
		return establish(id, New(c, l.o))
	})
}
