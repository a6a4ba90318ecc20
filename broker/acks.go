package broker

import (
	"context"
	"sync"
	"time"

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

// ackPipe holds one connection's unwritten PUBACKs in receive order.
type ackPipe struct {
	mu      sync.Mutex
	queue   []*pendingAck
	writing bool          // a goroutine is writing ready acks from the head
	empty   chan struct{} // closed when the queue drains; nil while empty
}

// pendingAck is a PUBACK waiting for its send's outcome.
type pendingAck struct {
	ready bool
	write func() // writes the PUBACK (and, for 3.1.1 refusals, the rpc notice)
}

// maxPipelined bounds a connection's unwritten acks. A client past the
// Receive Maximum we announced is not refused, just no longer pipelined.
func (b *Broker) maxPipelined() int {
	return max(int(b.cfg.MQTT.ReceiveMaximum), 1)
}

// pipeOf returns cl's ack pipe, creating it on first use.
func (b *Broker) pipeOf(cl *mqtt.Client) *ackPipe {
	if p, ok := b.acks.Load(cl); ok {
		return p.(*ackPipe)
	}
	p, _ := b.acks.LoadOrStore(cl, &ackPipe{})
	return p.(*ackPipe)
}

// drainAcks blocks until every ack queued on cl before now is written (or the
// connection closed), so a publish handled inline cannot overtake them.
func (b *Broker) drainAcks(cl *mqtt.Client) {
	p, ok := b.acks.Load(cl)
	if !ok {
		return
	}
	pipe := p.(*ackPipe)
	pipe.mu.Lock()
	ch := pipe.empty
	pipe.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// add appends a pending ack; nil when the pipe is full.
func (p *ackPipe) add(limit int) *pendingAck {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) >= limit {
		return nil
	}
	a := &pendingAck{}
	if len(p.queue) == 0 {
		p.empty = make(chan struct{})
	}
	p.queue = append(p.queue, a)
	return a
}

// resolve marks a ready and writes every ready ack at the head of the queue.
// One goroutine writes at a time, so acks leave in queue order.
func (p *ackPipe) resolve(a *pendingAck, write func()) {
	p.mu.Lock()
	a.ready, a.write = true, write
	if p.writing {
		p.mu.Unlock()
		return // the writer will reach it
	}
	p.writing = true
	for len(p.queue) > 0 && p.queue[0].ready {
		head := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		p.mu.Unlock()
		head.write()
		p.mu.Lock()
	}
	p.writing = false
	if len(p.queue) == 0 && p.empty != nil {
		close(p.empty)
		p.empty = nil
		p.queue = nil
	}
	p.mu.Unlock()
}

// sendC2CPipelined starts a QoS 1 one-to-one send and acks it when its commit
// is done. It reports false when the send must be handled inline instead
// (the pipe is full); then nothing was started.
func (b *Broker) sendC2CPipelined(cl *mqtt.Client, pk packets.Packet, user, to, topic string) bool {
	pipe := b.pipeOf(cl)
	slot := pipe.add(b.maxPipelined())
	if slot == nil {
		return false
	}
	// The context bounds only the wait for a commit slot (store.Submit).
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.Storage.CommitTimeout)
	finish, _, err := b.startC2C(ctx, user, to, pk.Payload)
	cancel()
	if err != nil || finish == nil {
		pipe.resolve(slot, func() { b.writeSendAck(cl, pk, topic, err) })
		return true
	}
	b.pipelined.Add(1)
	go func() {
		defer b.pipelined.Done()
		_, err := finish()
		pipe.resolve(slot, func() { b.writeSendAck(cl, pk, topic, err) })
	}()
	return true
}

// writeSendAck writes the PUBACK for a pipelined send: success, or for MQTT 5
// the refusal's reason code and string; a 3.1.1 client learns of a refusal on
// its rpc topic first, as for inline sends.
func (b *Broker) writeSendAck(cl *mqtt.Client, pk packets.Packet, topic string, err error) {
	ack := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Puback},
		PacketID:    pk.PacketID,
		ReasonCode:  packets.CodeSuccess.Code,
		Created:     time.Now().Unix(),
	}
	if err != nil {
		code := b.refusal(cl, pk, topic, err)
		if cl.Properties.ProtocolVersion == 5 {
			ack.ReasonCode = code.Code
			ack.Properties.ReasonString = code.Reason
		}
	}
	if cl.Closed() {
		return
	}
	if werr := cl.WritePacket(ack); werr != nil {
		b.log.Debug("puback write failed", "client", cl.ID, "error", werr)
	}
}

// forgetAcks drops cl's pipe when its session ends.
func (b *Broker) forgetAcks(cl *mqtt.Client) { b.acks.Delete(cl) }
