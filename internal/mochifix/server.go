package mochifix

import (
	"errors"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// SetCapabilities sets the capabilities imbroker needs from mochi beyond its
// configuration.
//
// mochi v2.7.9, no upstream issue: by default an ack (PUBACK, PUBREC, PUBREL,
// PUBCOMP) echoes the PUBLISH's properties, user properties included
// (buildAck); NoInheritedPropertiesOnAck turns that off.
func SetCapabilities(c *mqtt.Capabilities) {
	c.Compatibilities.NoInheritedPropertiesOnAck = true
}

// Close stops mq: its listeners (ids) stop accepting, every client is sent
// DISCONNECT 0x8B (server shutting down), and mochi's Close waits for their
// goroutines, so no send is in flight afterwards.
//
// mochi v2.7.9, #488 (PR #489, PR #507, both open): mochi's own Close
// disconnects clients through Clients.GetByListener, which takes the map's
// read lock twice and deadlocks when a client connects or leaves in between.
// Closing the listeners first with a no-op closer (mochi's listeners call
// their closer once, so Close does not repeat it) and disconnecting clients
// via GetAll avoids that path.
func Close(mq *mqtt.Server, ids []string) error {
	for _, id := range ids {
		mq.Listeners.Close(id, func(string) {})
	}
	disconnectAll := func() {
		for _, cl := range mq.Clients.GetAll() {
			if !cl.Net.Inline && !cl.Closed() {
				_ = mq.DisconnectClient(cl, packets.ErrServerShuttingDown)
			}
		}
	}
	// This goroutine reads the client map before Close waits for the
	// clients: that orders every attached client's WaitGroup Add before the
	// Wait, as mochi's own Close path does.
	disconnectAll()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		// A connection accepted just before its listener closed may finish
		// attaching after the first pass, and mochi's Close would wait for
		// it (mochi v2.7.9, no upstream issue; its own Close has the same
		// gap): keep disconnecting until Close returns.
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				disconnectAll()
			}
		}
	}()
	err := mq.Close()
	close(stop)
	<-done
	return err
}

// DropInflight deletes the QoS 1/2 messages for which drop is true from the
// session of clientID's previous connection. Called from OnSessionEstablish
// (before mochi inherits the session), they are neither inherited nor
// resent.
//
// mochi v2.7.9, no upstream issue (this is MQTT session semantics, not a
// mochi bug): a resumed session gets every message sent but not acked on the
// previous connection again, all at once and not in order (#439 asks for
// retries while connected). Where the application keeps its own queue, those
// resends are duplicates.
func DropInflight(mq *mqtt.Server, clientID string, drop func(packets.Packet) bool) {
	old, ok := mq.Clients.Get(clientID)
	if !ok {
		return
	}
	for _, pk := range old.State.Inflight.GetAll(false) {
		if drop(pk) {
			old.State.Inflight.Delete(pk.PacketID)
		}
	}
}

// RefuseConnect writes a CONNACK refusing cl with code (from OnConnect,
// which then returns the code to end the connection).
//
// mochi v2.7.9, #404: OnConnectAuthenticate can only refuse with 0x86 and no
// reason string. And mochi's V5CodesToV3 table, used for 3.1.1 clients, maps
// 0x86 to 5 (not authorized) and lacks 0x87, so ours keeps 4 (bad user name
// or password) and 5 apart [MQTT-3.2.2.3].
func RefuseConnect(mq *mqtt.Server, cl *mqtt.Client, code packets.Code) error {
	if cl.Properties.ProtocolVersion < 5 {
		code = v3ReturnCode(code)
	}
	return mq.SendConnack(cl, code, false, nil)
}

func v3ReturnCode(c packets.Code) packets.Code {
	switch c.Code {
	case packets.ErrBadUsernameOrPassword.Code:
		return packets.Code{Code: 4, Reason: c.Reason}
	case packets.ErrNotAuthorized.Code, packets.ErrTopicNameInvalid.Code:
		return packets.Code{Code: 5, Reason: c.Reason}
	case packets.ErrClientIdentifierNotValid.Code:
		return packets.Code{Code: 2, Reason: c.Reason}
	default:
		return packets.Code{Code: 3, Reason: c.Reason}
	}
}

// TakenOver reports whether cl, ending with err (OnDisconnect), was replaced
// by a newer connection with its ClientID.
//
// mochi v2.7.9, #173: the old connection's OnDisconnect can land after the
// new one's OnSessionEstablished. And mochi stops the old connection with
// ErrSessionTakenOver before it sets IsTakenOver, so the flag can still be
// false then: the stop cause tells the truth earlier.
func TakenOver(cl *mqtt.Client, err error) bool {
	return cl.IsTakenOver() || errors.Is(err, packets.ErrSessionTakenOver) || errors.Is(cl.StopCause(), packets.ErrSessionTakenOver)
}
