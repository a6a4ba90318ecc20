package broker

import (
	"time"

	"github.com/imbroker/imbroker/callbacks"
)

// What the web console (console/) needs of the broker itself, besides the
// counters and statistics REST uses.

// UserSig signs a UserSig for user valid for ttl: the console's admin
// identity on the REST API and the test chat's logins.
func (b *Broker) UserSig(user string, ttl time.Duration) (string, error) {
	return b.signer.Gen(user, int64(ttl/time.Second))
}

// CallbackFailures are the latest failed callbacks, newest first.
func (b *Broker) CallbackFailures() []callbacks.Failure { return b.callbacks.RecentFailures() }

// CallbackEnabled reports whether command is sent to the app's callback URL.
func (b *Broker) CallbackEnabled(command string) bool { return b.callbacks.Enabled(command) }

// Accounts lists imported accounts by id prefix, a page at a time.
func (b *Broker) Accounts(prefix, after string, limit int) ([]string, error) {
	return b.relations.Accounts(prefix, after, limit)
}
