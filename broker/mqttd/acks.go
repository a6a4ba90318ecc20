package mqttd

import (
	"context"
	"sync"
	"time"

	"github.com/imbroker/imbroker/broker/messages"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Pipelined PUBACKs for QoS 1 one-to-one sends [IM-C2C-PIPELINE]. mochi
// reads a connection's packets on one goroutine and writes the PUBACK as
// soon as the publish hook returns, so a hook that waits for the fsync lets
// each connection have one message committing at a time, however many its
// client keeps in flight. Instead the hook queues the commit in receive order
// (store.Submit), tells mochi not to ack (packets.ErrRejectPacket), and the
// PUBACK is written here once the message is durable: never earlier, and in
// the order the PUBLISHes arrived [MQTT-4.6.0-2]. Every other publish of the
// connection first waits until the acks before it are written, so a request
// or a plain publish never overtakes a send.

// ackPipe holds one connection's unwritten PUBACKs in receive order (its
// conn's: it goes with the conn when the connection ends). One
// goroutine per busy pipe waits for each send's commit in turn and writes
// its PUBACK: commits finish in submission order, so waiting in order costs
// nothing, and acks leave in order by construction. It exits when the pipe
// is empty; an idle connection has none.
type ackPipe struct {
	mu    sync.Mutex
	queue []pendingAck
	empty chan struct{} // non-nil while the writer runs; closed when it has written everything
	fwd   int           // queued sends forwarded to the cluster's owner (forward.go)
}

// pendingAck is a send whose PUBACK is not written yet.
type pendingAck struct {
	commit *messages.Pending // waits for the commit; nil: outcome known
	err    error             // the outcome when commit is nil
	write  func(error)       // writes the PUBACK for an outcome
	fwd    *c2cSend          // cluster mode: the send, for the owner to run (writeAcks forwards it)
	conn   holder            // the connection's socket, when its writes can be held
}

// holder is the part of lazyconn.Conn the ack writer uses: it holds the
// connection's writes while it writes the PUBACKs of every send already
// durable, so they leave in one write syscall instead of one each.
type holder interface {
	Hold()
	Release()
}

// ready reports whether a's PUBACK can be written without waiting.
func (a *pendingAck) ready() bool { return a.commit == nil || a.commit.Done() }

// maxPipelined bounds a connection's unwritten acks. A client past the
// Receive Maximum we announced is not refused, just no longer pipelined.
func (s *Server) maxPipelined() int {
	return max(int(s.cfg.MQTT.ReceiveMaximum), 1)
}

// drainAcks blocks until every ack queued on cl before now is written (or the
// connection closed), so a publish handled inline cannot overtake them.
func (s *Server) drainAcks(cl *mqtt.Client) {
	c := s.conns.of(cl)
	if c == nil {
		return // not a user: it has no pipelined sends
	}
	c.acks.mu.Lock()
	ch := c.acks.empty
	c.acks.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// hasRoom reports whether another send may be pipelined. Only the
// connection's read goroutine adds, and the writer only removes, so the
// answer holds until that goroutine's next add.
func (p *ackPipe) hasRoom(limit int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue) < limit
}

// add queues a pending ack and starts the writer if it is not running.
func (s *Server) addAck(p *ackPipe, a pendingAck) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.queue = append(p.queue, a)
	if a.fwd != nil {
		p.fwd++
	}
	if p.empty == nil {
		p.empty = make(chan struct{})
		s.pipelined.Add(1)
		go s.writeAcks(p)
	}
}

// writeAcks writes the pipe's acks in order until it is empty. The acks
// of sends already durable are written under one Hold of the connection:
// a group commit makes a busy connection's sends durable together, and
// their PUBACKs then leave in one write. The Hold is released before any
// wait for a commit and before the pipe reports itself empty, so no ack
// waits behind another send's fsync and drainAcks' callers find them all
// on their way.
func (s *Server) writeAcks(p *ackPipe) {
	defer s.pipelined.Done()
	var held holder
	release := func() {
		if held != nil {
			held.Release()
			held = nil
		}
	}
	for {
		p.mu.Lock()
		if len(p.queue) == 0 {
			release()
			close(p.empty)
			p.empty, p.queue = nil, nil
			p.mu.Unlock()
			return
		}
		head := p.queue[0]
		p.mu.Unlock()
		if head.fwd != nil {
			release()
			s.forwardAcks(p)
			continue
		}
		if !head.ready() {
			release()
		}
		err := head.err
		if head.commit != nil {
			_, err = head.commit.Finish()
		}
		if held == nil && head.conn != nil {
			held = head.conn
			held.Hold()
		}
		head.write(err)
		p.mu.Lock()
		p.queue[0] = pendingAck{}
		p.queue = p.queue[1:]
		p.mu.Unlock()
	}
}

// sendC2CPipelined starts a QoS 1 one-to-one send and acks it when its commit
// is done. It reports false when the send must be handled inline instead
// (the pipe is full); then nothing was started.
func (s *Server) sendC2CPipelined(cl *mqtt.Client, pk packets.Packet, user, to, topic string) bool {
	c := s.conns.of(cl)
	if c == nil || !c.acks.hasRoom(s.maxPipelined()) {
		return false
	}
	if s.Forward != nil && c.acks.forwards(s.forwarding()) {
		sent := sentOf(pk)
		s.addAck(&c.acks, pendingAck{fwd: &c2cSend{To: to, Payload: pk.Payload, from: user}, write: func(err error) { s.writeSendAck(cl, sent, topic, err) }})
		return true
	}
	// The context bounds only the wait for a commit slot (store.Submit).
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Storage.CommitTimeout)
	commit, _, err := s.Messages.StartC2C(ctx, user, to, pk.Payload)
	cancel()
	conn, _ := cl.Net.Conn.(holder)
	sent := sentOf(pk)
	s.addAck(&c.acks, pendingAck{commit: commit, err: err, conn: conn, write: func(err error) { s.writeSendAck(cl, sent, topic, err) }})
	return true
}

// writeSendAck writes the PUBACK for a pipelined send: success, or for MQTT 5
// the refusal's reason code and string; a 3.1.1 client learns of a refusal on
// its rpc topic first, as for inline sends.
func (s *Server) writeSendAck(cl *mqtt.Client, sent *sentPublish, topic string, err error) {
	ack := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Puback},
		PacketID:    sent.id,
		ReasonCode:  packets.CodeSuccess.Code,
		Created:     time.Now().Unix(),
	}
	if err != nil {
		code := s.refusal(cl, sent.packet(), topic, err)
		if cl.Properties.ProtocolVersion == 5 {
			ack.ReasonCode = code.Code
			ack.Properties.ReasonString = code.Reason
		}
	}
	if cl.Closed() {
		return
	}
	if werr := cl.WritePacket(ack); werr != nil {
		s.log.Debug("puback write failed", "client", cl.ID, "error", werr)
	}
}

// forwards reports whether the next send goes to the owner: when this node
// does not write, and while earlier sends of the connection are still being
// forwarded (a send queued locally now would commit before them).
func (p *ackPipe) forwards(notOwner bool) bool {
	if notOwner {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fwd > 0
}

// forwardAcks forwards the forwarded sends at the head of p, all in one
// request, and writes their PUBACKs in order once the owner answered. The
// owner queues them in the same order, so they share its group commits as
// a pipelined connection's sends do on one node.
func (s *Server) forwardAcks(p *ackPipe) {
	p.mu.Lock()
	n := 0
	for n < len(p.queue) && p.queue[n].fwd != nil {
		n++
	}
	batch := make([]pendingAck, n)
	copy(batch, p.queue[:n])
	p.mu.Unlock()
	sends := make([]c2cSend, n)
	for i, a := range batch {
		sends[i] = *a.fwd
	}
	// Not storage.commit_timeout from now: a batch cut short by the
	// owner's death is sent again to the next owner (cluster.Resendable),
	// and the election must not eat the time the owner needs to commit it
	// (it starts no write with less than half of commit_timeout left).
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Cluster.OwnerWait+s.cfg.Cluster.ForwardTimeout)
	errs := s.forwardC2C(ctx, batch[0].fwd.from, sends)
	cancel()
	for i, a := range batch {
		a.write(errs[i])
	}
	p.mu.Lock()
	clear(p.queue[:n])
	p.queue = p.queue[n:]
	p.fwd -= n
	p.mu.Unlock()
}

// sentPublish is what a pipelined send's PUBACK, and the reply to a refused
// send, need of its PUBLISH. The ack waits for the commit in a closure: one
// that captured the whole packet moved it to the heap for every send (~850
// bytes, most of them properties a send does not use).
type sentPublish struct {
	id            uint16
	qos           byte
	payload       []byte
	responseTopic string
	correlation   []byte
}

func sentOf(pk packets.Packet) *sentPublish {
	return &sentPublish{id: pk.PacketID, qos: pk.FixedHeader.Qos, payload: pk.Payload,
		responseTopic: pk.Properties.ResponseTopic, correlation: pk.Properties.CorrelationData}
}

// packet rebuilds the fields of the PUBLISH that refusal reads.
func (p *sentPublish) packet() packets.Packet {
	return packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: p.qos},
		PacketID:    p.id,
		Payload:     p.payload,
		Properties:  packets.Properties{ResponseTopic: p.responseTopic, CorrelationData: p.correlation},
	}
}
