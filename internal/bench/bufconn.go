package bench

import (
	"bufio"
	"net"
	"net/url"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// bufConn reads a connection through a bufio.Reader. paho.mqtt.golang
// v1.5.1 reads packets straight from the net.Conn it is given
// (packets.ReadPacket: the first byte, then the remaining length a byte at
// a time, then the rest), so every PUBLISH it receives costs at least four
// read syscalls; through this reader it costs one. MQTT client libraries
// commonly buffer their reads; the client still reads, decodes and
// dispatches every packet itself.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// bufConnSize holds a live-room event or a one-to-one message (a few
// hundred bytes) whole; a larger packet is read past the buffer, straight
// into paho's.
const bufConnSize = 1024

// dialBuffered is a paho OpenConnectionFunc for tcp:// brokers that reads
// through a bufConn; every imbench client uses it, so the load generator's
// read syscalls do not take the cores the broker under test shares.
func dialBuffered(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	d := net.Dialer{Timeout: o.ConnectTimeout}
	c, err := d.Dial("tcp", uri.Host)
	if err != nil {
		return nil, err
	}
	return &bufConn{Conn: c, r: bufio.NewReaderSize(c, bufConnSize)}, nil
}

// readBuffered has the client o reads through a bufConn when broker is a
// tcp:// (or mqtt://) URL; other schemes keep paho's own dialer.
func readBuffered(o *paho.ClientOptions, broker string) {
	if u, err := url.Parse(broker); err == nil && (u.Scheme == "tcp" || u.Scheme == "mqtt") {
		o.SetCustomOpenConnectionFn(dialBuffered)
	}
}
