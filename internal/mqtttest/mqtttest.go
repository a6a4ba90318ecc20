// Package mqtttest is a raw MQTT 5 client for tests, built on mochi's packet
// codec and driven packet by packet, for what MQTT libraries hide or refuse
// to do (several subscription identifiers on one PUBLISH, exceeding the
// server's Receive Maximum, oversize packets, bad aliases, unacked messages).
//
// Only tests import it: the tests of test/ (through imbroker) and of
// internal/mochifix (against mochi itself).
package mqtttest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Wait bounds each wait of a Conn: dialling, a write, Expect, ClosedByServer.
const Wait = 5 * time.Second

// Conn is an MQTT 5 connection driven packet by packet. With ack set at
// Dial it acknowledges what it receives (PUBACK, PUBREC, PUBCOMP), without
// it nothing.
type Conn struct {
	t    testing.TB
	conn net.Conn
	wmu  sync.Mutex
	in   chan packets.Packet
	done chan struct{} // closed when the connection closed
	ack  bool
	run  chan struct{} // closed when the connection starts reading (Resume)
	once sync.Once
}

// Dial connects to addr and sends nothing: the test sends the CONNECT and
// expects the CONNACK itself. The connection is closed when the test ends.
func Dial(t testing.TB, addr string, ack bool) *Conn {
	t.Helper()
	c := DialPaused(t, addr, ack)
	c.Resume()
	return c
}

// DialPaused is Dial for a connection that reads nothing from the socket
// until Resume: what the server writes stays in the socket, unread, as with
// a client busy writing.
func DialPaused(t testing.TB, addr string, ack bool) *Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, Wait)
	if err != nil {
		t.Fatal(err)
	}
	return Wrap(t, conn, ack)
}

// Wrap is DialPaused over a connection already made (TLS, for example).
func Wrap(t testing.TB, conn net.Conn, ack bool) *Conn {
	c := &Conn{t: t, conn: conn, in: make(chan packets.Packet, 1000), done: make(chan struct{}), ack: ack, run: make(chan struct{})}
	go c.read()
	t.Cleanup(func() {
		conn.Close()
		c.Resume()
		<-c.done
	})
	return c
}

// Resume starts reading a DialPaused connection.
func (c *Conn) Resume() { c.once.Do(func() { close(c.run) }) }

// Close closes the network connection without DISCONNECT.
func (c *Conn) Close() {
	c.conn.Close()
}

// Discard closes the network connection and throws away what it had read
// and not yet been expected, for a test that stopped reading it (the
// reader would otherwise wait on its full buffer for ever).
func (c *Conn) Discard() {
	c.conn.Close()
	c.Resume()
	go func() {
		for {
			select {
			case <-c.in:
			case <-c.done:
				return
			}
		}
	}()
}

func (c *Conn) read() {
	defer close(c.done)
	<-c.run
	br := bufio.NewReader(c.conn)
	for {
		b0, err := br.ReadByte()
		if err != nil {
			return
		}
		var pk packets.Packet
		pk.ProtocolVersion = 5
		if err := pk.FixedHeader.Decode(b0); err != nil {
			c.t.Errorf("raw: bad fixed header: %v", err)
			return
		}
		n, _, err := packets.DecodeLength(br)
		if err != nil {
			return
		}
		pk.FixedHeader.Remaining = n
		body := make([]byte, n)
		if _, err := io.ReadFull(br, body); err != nil {
			return
		}
		if err := decode(&pk, body); err != nil {
			c.t.Errorf("raw: decode %v: %v", pk.FixedHeader.Type, err)
			return
		}
		if c.ack {
			c.acknowledge(pk)
		}
		c.in <- pk
	}
}

func decode(pk *packets.Packet, b []byte) error {
	switch pk.FixedHeader.Type {
	case packets.Connack:
		return pk.ConnackDecode(b)
	case packets.Publish:
		return pk.PublishDecode(b)
	case packets.Puback:
		return pk.PubackDecode(b)
	case packets.Pubrec:
		return pk.PubrecDecode(b)
	case packets.Pubrel:
		return pk.PubrelDecode(b)
	case packets.Pubcomp:
		return pk.PubcompDecode(b)
	case packets.Suback:
		return pk.SubackDecode(b)
	case packets.Unsuback:
		return pk.UnsubackDecode(b)
	case packets.Disconnect:
		return pk.DisconnectDecode(b)
	case packets.Pingresp:
		return nil
	}
	return errors.New("unexpected packet type")
}

func (c *Conn) acknowledge(pk packets.Packet) {
	switch {
	case pk.FixedHeader.Type == packets.Publish && pk.FixedHeader.Qos == 1:
		c.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
	case pk.FixedHeader.Type == packets.Publish && pk.FixedHeader.Qos == 2:
		c.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrec}, PacketID: pk.PacketID})
	case pk.FixedHeader.Type == packets.Pubrel:
		c.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubcomp}, PacketID: pk.PacketID})
	}
}

// Send encodes and writes one packet. Write errors are ignored: a test that
// cares waits for the server's answer or for the connection to close, or
// calls Write.
func (c *Conn) Send(pk packets.Packet) {
	c.t.Helper()
	_ = c.Write(pk)
}

// Write is Send returning the write error.
func (c *Conn) Write(pk packets.Packet) error {
	c.t.Helper()
	pk.ProtocolVersion = 5
	pk.Mods.AllowResponseInfo = true
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	case packets.Puback:
		err = pk.PubackEncode(&buf)
	case packets.Pubrec:
		err = pk.PubrecEncode(&buf)
	case packets.Pubrel:
		pk.FixedHeader.Qos = 1
		err = pk.PubrelEncode(&buf)
	case packets.Pubcomp:
		err = pk.PubcompEncode(&buf)
	case packets.Subscribe:
		pk.FixedHeader.Qos = 1
		err = pk.SubscribeEncode(&buf)
	case packets.Unsubscribe:
		pk.FixedHeader.Qos = 1
		err = pk.UnsubscribeEncode(&buf)
	case packets.Disconnect:
		err = pk.DisconnectEncode(&buf)
	default:
		err = errors.New("unsupported")
	}
	if err != nil {
		c.t.Fatalf("raw: encode %v: %v", pk.FixedHeader.Type, err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(Wait))
	_, err = c.conn.Write(buf.Bytes())
	return err
}

// Expect returns the next packet of one of types, skipping others.
func (c *Conn) Expect(types ...byte) packets.Packet {
	c.t.Helper()
	deadline := time.After(Wait)
	for {
		select {
		case pk := <-c.in:
			if slices.Contains(types, pk.FixedHeader.Type) {
				return pk
			}
		case <-c.done:
			select {
			case pk := <-c.in:
				if slices.Contains(types, pk.FixedHeader.Type) {
					return pk
				}
				continue
			default:
			}
			c.t.Fatalf("raw: connection closed while waiting for packet type %v", types)
			return packets.Packet{}
		case <-deadline:
			c.t.Fatalf("raw: no packet of type %v within %v", types, Wait)
			return packets.Packet{}
		}
	}
}

// ClosedByServer waits until the server has closed the connection.
func (c *Conn) ClosedByServer() {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(Wait):
		c.t.Fatal("raw: the server did not close the connection")
	}
}

// Subscribe sends one SUBSCRIBE (with subscription identifier subID unless
// it is 0) and returns the SUBACK reason codes.
func (c *Conn) Subscribe(id uint16, subID int, filters ...packets.Subscription) []byte {
	c.t.Helper()
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe}, PacketID: id, Filters: filters}
	if subID > 0 {
		pk.Properties.SubscriptionIdentifier = []int{subID}
	}
	c.Send(pk)
	return c.Expect(packets.Suback).ReasonCodes
}
