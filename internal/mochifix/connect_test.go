package mochifix_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// rawConnect builds a CONNECT packet by hand: protocol name and level,
// connect flags, keep alive 60, then (level 5) an empty property list and
// the payload fields given, each a length-prefixed string.
func rawConnect(name string, level, flags byte, fields ...string) []byte {
	body := []byte{0, byte(len(name))}
	body = append(body, name...)
	body = append(body, level, flags, 0, 60)
	if level == 5 {
		body = append(body, 0)
	}
	for _, f := range fields {
		body = append(body, byte(len(f)>>8), byte(len(f)))
		body = append(body, f...)
	}
	return append([]byte{0x10, byte(len(body))}, body...)
}

// exchange writes b on a new connection to addr and returns everything the
// server writes until it closes the connection.
func exchange(t *testing.T, addr string, b []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	must(t, err)
	defer c.Close()
	must(t, c.SetDeadline(time.Now().Add(wait)))
	_, err = c.Write(b)
	must(t, err)
	got, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		t.Fatalf("read: %v (got % x)", err, got)
	}
	return got
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

// Each faulty CONNECT gets the answer of the client's protocol version:
// MQTT 3.1.1 has return codes 0 to 5 only, and closes the connection
// without CONNACK on a protocol violation [MQTT-4.8.0-1]; mochi answers
// each of these with an MQTT 5 code (0x82, 0x80) in a 3.1.1 CONNACK.
func TestMochifix_ConnectAnswersFitTheVersion(t *testing.T) {
	ts := startServer(t, serverOpts{})
	unsupported := []byte{0x20, 2, 0, 1} // CONNACK, return code 1: unacceptable protocol level
	for _, tc := range []struct {
		name    string
		connect []byte
		want    []byte // the server's bytes before it closes; nil: none
	}{
		{"3.1.1 body at level 3 under MQTT", rawConnect("MQTT", 3, 0x02, "c1"), unsupported},
		{"level 6", rawConnect("MQTT", 6, 0x02, "c2"), unsupported},
		{"MQIsdp at level 4", rawConnect("MQIsdp", 4, 0x02, "c3"), unsupported},
		{"unknown protocol name", rawConnect("MQTX", 4, 0x02, "c4"), nil},
		{"reserved flag", rawConnect("MQTT", 4, 0x03, "c5"), nil},
		{"will QoS 3", rawConnect("MQTT", 4, 0x02|0x04|0x18, "c6", "w", "x"), nil},
		{"will retain without will", rawConnect("MQTT", 4, 0x02|0x20, "c7"), nil},
		{"will QoS without will", rawConnect("MQTT", 4, 0x02|0x08, "c8"), nil},
		{"password without user name", rawConnect("MQTT", 4, 0x02|0x40, "c9", "pw"), nil},
		{"no ClientID, persistent session", rawConnect("MQTT", 4, 0x00, ""), []byte{0x20, 2, 0, 2}},
		{"accepted", rawConnect("MQTT", 4, 0x02, "ok"), []byte{0x20, 2, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.connect
			if tc.want != nil && tc.want[3] == 0 {
				b = append(b, 0xE0, 0) // and DISCONNECT, so the server closes
			}
			if got := exchange(t, ts.addr, b); !bytes.Equal(got, tc.want) {
				t.Fatalf("got % x, want % x", got, tc.want)
			}
		})
	}
}

// A 3.1.1 connection taken over is closed without a DISCONNECT, which
// MQTT 3.1.1 has only from client to server; mochi writes one (e0 00).
func TestMochifix_NoDisconnectFor311(t *testing.T) {
	ts := startServer(t, serverOpts{})
	dial311 := func() net.Conn {
		c, err := net.DialTimeout("tcp", ts.addr, wait)
		must(t, err)
		must(t, c.SetDeadline(time.Now().Add(wait)))
		_, err = c.Write(rawConnect("MQTT", 4, 0x02, "same"))
		must(t, err)
		ack := make([]byte, 4)
		if _, err := io.ReadFull(c, ack); err != nil || !bytes.Equal(ack, []byte{0x20, 2, 0, 0}) {
			t.Fatalf("CONNACK % x %v", ack, err)
		}
		return c
	}
	old := dial311()
	defer old.Close()
	c := dial311()
	defer c.Close()
	if got, _ := io.ReadAll(old); len(got) != 0 {
		t.Fatalf("the replaced 3.1.1 connection got % x, want nothing before the close", got)
	}
}
