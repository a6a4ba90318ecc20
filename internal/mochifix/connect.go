package mochifix

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// checkConnect answers a CONNECT as the client's protocol version requires,
// before mochi validates it (OnPacketRead): it returns
// packets.ErrRejectPacket to close the connection, after writing a CONNACK
// where the version wants one.
//
// mochi v2.7.9, no upstream issue: ConnectValidate answers every problem
// with an MQTT 5 code (0x82 protocol error, 0x80), which mochi writes as the
// return code of a 3.1.1 CONNACK too, although 3.1.1 has only 0 to 5 and
// closes the connection without CONNACK on a protocol violation; and it
// refuses a zero-length password with 0x82 although both versions allow it.
func checkConnect(cl *mqtt.Client, pk *packets.Packet) error {
	name, v := string(pk.Connect.ProtocolName), pk.ProtocolVersion
	switch {
	case name == "MQTT" && (v == 4 || v == 5), name == "MQIsdp" && v == 3:
	case name == "MQTT" || name == "MQIsdp":
		// A level not spoken: 0x01, unacceptable protocol level
		// [MQTT-3.1.2-2], in the 3.1.1 form, the only one every version
		// can read (the client's own form is unknown).
		writeV3Connack(cl, packets.Err3UnsupportedProtocolVersion.Code)
		return packets.ErrRejectPacket
	default:
		return packets.ErrRejectPacket // not MQTT at all: close [MQTT-3.1.2-1]
	}
	c := &pk.Connect
	if v < 5 {
		switch {
		case pk.ReservedBit != 0, // [MQTT-3.1.2-3]
			c.WillQos == 3, // [MQTT-3.1.2-14]
			!c.WillFlag && (c.WillQos != 0 || c.WillRetain), // [MQTT-3.1.2-13] [MQTT-3.1.2-15]
			c.PasswordFlag && !c.UsernameFlag:               // [MQTT-3.1.2-22]
			return packets.ErrRejectPacket // protocol violations close, no CONNACK [MQTT-4.8.0-1]
		case !c.Clean && c.ClientIdentifier == "":
			writeV3Connack(cl, packets.Err3ClientIdentifierNotValid.Code) // [MQTT-3.1.3-8]
			return packets.ErrRejectPacket
		}
	}
	if c.PasswordFlag && len(c.Password) == 0 {
		// A present, empty password [MQTT-3.1.2-19] (3.1.1: 3.1.3.5): the
		// credentials are then judged as if there were none.
		c.PasswordFlag = false
	}
	return nil
}

// writeV3Connack writes a refusing CONNACK before mochi knows the client's
// version (3.1.1 form: no properties).
func writeV3Connack(cl *mqtt.Client, code byte) {
	_ = cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ReasonCode: code})
}

// v3ConnackCode maps a CONNACK reason code that only MQTT 5 has to the
// nearest MQTT 3.1.1 return code (3.2.2.3), for refusals mochi itself
// writes to a 3.1.1 client (OnPacketEncode); 3, server unavailable, is the
// generic refusal. Codes below 0x80 are 3.1.1 codes already.
func v3ConnackCode(code byte) byte {
	switch {
	case code < packets.ErrUnspecifiedError.Code:
		return code
	case code == packets.ErrUnsupportedProtocolVersion.Code:
		return packets.Err3UnsupportedProtocolVersion.Code
	case code == packets.ErrClientIdentifierNotValid.Code:
		return packets.Err3ClientIdentifierNotValid.Code
	case code == packets.ErrBadUsernameOrPassword.Code, code == packets.ErrBadAuthenticationMethod.Code:
		return packets.ErrMalformedUsernameOrPassword.Code // 4, bad user name or password
	case code == packets.ErrNotAuthorized.Code:
		return packets.Err3NotAuthorized.Code
	default:
		return packets.Err3ServerUnavailable.Code
	}
}
