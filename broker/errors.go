package broker

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Error is a refusal with a Tencent-style code. Reason is the MQTT 5 reason
// code used when the refusal can ride on a PUBACK.
type Error struct {
	Code   int    // Tencent error code, e.g. 90002
	Info   string // human-readable detail
	Reason byte   // MQTT 5 PUBACK reason code
}

func (e *Error) Error() string { return strconv.Itoa(e.Code) + " " + e.Info }

// packetCode is the error as mochi sends it: reason code plus reason string.
func (e *Error) packetCode() packets.Code {
	return packets.Code{Code: e.Reason, Reason: e.Error()}
}

// MQTT 5 PUBACK reason codes we use ([MQTT-3.4.2.1]).
const (
	reasonUnspecified    byte = 0x80
	reasonImplementation byte = 0x83
	reasonNotAuthorized  byte = 0x87
	reasonTopicInvalid   byte = 0x90
	reasonQuotaExceeded  byte = 0x97
	reasonPayloadFormat  byte = 0x99
)

func newError(code int, reason byte, format string, args ...any) *Error {
	return &Error{Code: code, Reason: reason, Info: fmt.Sprintf(format, args...)}
}

// Tencent codes used by the MQTT surface (see docs/protocol.md).
const (
	CodeOK              = 0
	CodeBadJSON         = 90001 // body JSON parse
	CodeBadMsgBody      = 90002 // MsgBody invalid
	CodeMsgRandom       = 90005 // MsgRandom missing
	CodeBadAccount      = 20003 // sender/receiver UserID invalid
	CodeTooLong         = 80002 // message too long
	CodeJSONTooLarge    = 93000 // packet too large
	CodeNoPermission    = 20001 // request refused (topic not allowed)
	CodeBadCommand      = 60009 // unknown request op
	CodeBadParams       = 60003 // request fields invalid
	CodeInternal        = 20005 // internal server error; details are logged, not echoed
	CodeUserSigExpired  = 70001
	CodeUserSigEmpty    = 70002
	CodeUserSigInvalid  = 70003
	CodeUserSigVerify   = 70009
	CodeUserSigUser     = 70013
	CodeUserSigApp      = 70014
	CodeClientIDInvalid = 70402 // ClientID not bound to the UserID

	// Groups (tencent-im.md §2, 10xxx).
	CodeGroupInternal      = 10002
	CodeGroupBadParams     = 10004
	CodeGroupNoPermission  = 10007
	CodeGroupOwnerQuit     = 10009
	CodeGroupNotFound      = 10010
	CodeGroupAlreadyMember = 10013
	CodeGroupFull          = 10014
	CodeGroupInvalid       = 10015
	CodeGroupMuted         = 10017
	CodeGroupIDTaken       = 10021
	CodeGroupTooManyJoined = 10037
	CodeGroupNoRoaming     = 10044
)

// asError converts any error into an *Error; unknown errors become internal
// ones (the detail is logged by the caller, never echoed to clients).
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Reason: reasonUnspecified, Info: "internal error"}
}
