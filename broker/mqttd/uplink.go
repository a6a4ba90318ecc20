package mqttd

import (
	"context"
	"encoding/json"
	"runtime"
	"strconv"
	"strings"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/broker/groups"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/internal/mochifix"
	"github.com/imbroker/imbroker/internal/refusals"
)

const (
	topicSendC2C   = topicSendPrefix + "c2c/"
	topicSendGroup = topicSendPrefix + "group/"
)

// HandlePublish implements intake.Handler: every client publish lands here.
// An IM publish is handled and never published by mochi: it returns false
// and nil when accepted, or a packets.Code refusal; clients that cannot read
// a PUBACK reason (3.1.1, QoS 0) get the refusal on their rpc topic instead,
// so no rejection is ever silent. [IM-SEND-3] A publish outside im/ that
// mqtt.acl allows returns true: mochi retains and delivers it. [MQTT-PLAIN-ACL]
func (s *Server) HandlePublish(cl *mqtt.Client, pk packets.Packet) (bool, error) {
	user := userOf(cl)
	topic := mochifix.OriginalTopic(pk.TopicName) // a $SYS publish, renamed to be refused with an ack
	if pk.FixedHeader.Qos == 1 && user != "" && strings.HasPrefix(topic, topicSendC2C) &&
		s.sendC2CPipelined(cl, pk, user, topic[len(topicSendC2C):], topic) {
		return false, packets.ErrRejectPacket // acked by the pipe once durable [IM-C2C-PIPELINE]
	}
	s.drainAcks(cl) // nothing handled inline overtakes a pipelined send's ack
	if !isIMTopic(topic) && s.plainAllowed(cl, topic, true) {
		if s.cfg.MQTT.YieldBeforeFanOut {
			// Other connections' packets read in the same moment (a
			// SUBSCRIBE just ahead of this publish) get to run first.
			runtime.Gosched()
		}
		return true, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Storage.CommitTimeout)
	defer cancel()
	var err error
	switch {
	case user == "":
		err = imerr.NoPermission.New("publishing to %q is not allowed", topic)
	case strings.HasPrefix(topic, topicSendC2C):
		err = s.sendC2C(ctx, user, topic[len(topicSendC2C):], pk.Payload)
	case strings.HasPrefix(topic, topicSendGroup):
		var res groups.SendResult
		res, err = s.sendGroup(ctx, user, ids.GroupIDFromTopicLevel(topic[len(topicSendGroup):]), pk.Payload)
		if res.Dropped {
			// Tencent drops messages over the group rate and reports success;
			// the sender is told on rpc which one was dropped.
			r := newSendReply(topic, pk.Payload, &imerr.Error{})
			r.MsgDropReason = "MsgFreqLimit"
			s.reply(cl, pk, r)
		}
	case strings.HasPrefix(topic, topicReqPrefix):
		s.handleRequest(ctx, cl, pk, topic[len(topicReqPrefix):])
		return false, nil
	case strings.HasPrefix(topic, topicSendPrefix):
		err = imerr.BadCommand.New("unknown send topic %q", topic)
	default:
		err = imerr.NoPermission.New("publishing to %q is not allowed", topic)
	}
	if err == nil {
		return false, nil
	}
	return false, s.refusal(cl, pk, topic, err)
}

// refusal logs and counts a refused publish and returns its PUBACK reason;
// clients that cannot read a PUBACK reason (3.1.1, QoS 0) are told on their
// rpc topic.
func (s *Server) refusal(cl *mqtt.Client, pk packets.Packet, topic string, err error) packets.Code {
	e := imerr.As(err)
	user := userOf(cl)
	if e.Code == imerr.Internal.Code {
		s.log.Error("publish failed", "user", user, "topic", topic, "error", err)
	}
	s.refused.Add(1)
	s.refuse(cl, refusals.Publish, e.Code, "publish to "+strconv.Quote(topic)+": "+e.Info)
	if user != "" && (cl.Properties.ProtocolVersion < 5 || pk.FixedHeader.Qos == 0) {
		s.reply(cl, pk, newSendReply(topic, pk.Payload, e))
	}
	return packetCode(e)
}

// sendReply tells a client which send failed (or was dropped): the topic
// plus the MsgRandom and ClientMsgID it sent, when they can be read.
type sendReply struct {
	ID            string  `json:"Id"` // always "": a send has no request Id
	Op            string  `json:"Op"` // "send"
	Topic         string  `json:"Topic"`
	ErrorCode     int     `json:"ErrorCode"`
	ErrorInfo     string  `json:"ErrorInfo"`
	MsgRandom     *uint32 `json:"MsgRandom,omitempty"`
	ClientMsgID   string  `json:"ClientMsgID,omitempty"`
	MsgDropReason string  `json:"MsgDropReason,omitempty"` // a group send over the group's rate
}

func newSendReply(topic string, payload []byte, e *imerr.Error) *sendReply {
	r := &sendReply{Op: "send", Topic: topic, ErrorCode: e.Code, ErrorInfo: e.Info}
	var ids struct {
		MsgRandom   *uint32 `json:"MsgRandom"`
		ClientMsgID string  `json:"ClientMsgID"`
	}
	_ = json.Unmarshal(payload, &ids) // what could be read before an error, too
	r.MsgRandom, r.ClientMsgID = ids.MsgRandom, ids.ClientMsgID
	return r
}

// reply writes a JSON reply to the one connection that asked, on
// im/u/{uid}/rpc, or on the request's MQTT 5 ResponseTopic when it lies under
// im/u/{uid}/ (with its CorrelationData). Replies go straight to that
// connection, not through a topic every device of the user subscribes to.
func (s *Server) reply(cl *mqtt.Client, req packets.Packet, body any) {
	payload, err := json.Marshal(body)
	if err != nil {
		s.log.Error("encode reply", "error", err)
		return
	}
	s.replyRaw(cl, req, payload)
}

// replyRaw is reply with the body already encoded.
func (s *Server) replyRaw(cl *mqtt.Client, req packets.Packet, payload []byte) {
	topic := topicUserPrefix + userOf(cl) + rpcSuffix
	var props packets.Properties
	if rt := req.Properties.ResponseTopic; rt != "" && cl.Properties.ProtocolVersion == 5 &&
		ownsUserTopic(userOf(cl), rt) && rt != topicUserPrefix+userOf(cl) && mqtt.IsValidFilter(rt, true) {
		topic = rt
		props.CorrelationData = req.Properties.CorrelationData
	}
	s.writeDirect(cl, topic, payload, props)
}

// writeDirect sends a QoS 0 PUBLISH to one connection if it subscribed to a
// matching filter. QoS 0 is enough: a reply or replayed page lost with the
// connection is asked for again after reconnecting.
func (s *Server) writeDirect(cl *mqtt.Client, topic string, payload []byte, props packets.Properties) bool {
	if cl.Closed() || !subscribed(cl, topic) {
		return false
	}
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish},
		TopicName:   topic, Payload: payload, Properties: props, Created: time.Now().Unix(),
	}
	if err := cl.WritePacket(pk); err != nil {
		s.log.Debug("direct write failed", "client", cl.ID, "error", err)
		return false
	}
	return true
}

// subscribed reports whether any of cl's filters matches topic.
func subscribed(cl *mqtt.Client, topic string) bool {
	for filter := range cl.State.Subscriptions.GetAll() {
		if matchFilter(filter, topic) {
			return true
		}
	}
	return false
}

// matchFilter matches an MQTT topic filter (+, #) against a topic name.
func matchFilter(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false // [MQTT-4.7.2-1] wildcards at the first level never match $ topics
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" {
			return true
		}
		tl, trest, tmore := strings.Cut(topic, "/")
		if fl != "+" && fl != tl {
			return false
		}
		if !fmore || !tmore {
			// "a/#" also matches "a" [MQTT-4.7.1-2]
			return fmore == tmore || (fmore && frest == "#")
		}
		filter, topic = frest, trest
	}
}

// packetCode is a refusal as mochi sends it: the table's reason code plus
// the reason string "{code} {info}".
func packetCode(e *imerr.Error) packets.Code {
	return packets.Code{Code: e.Reason, Reason: e.Error()}
}
