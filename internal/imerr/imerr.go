// Package imerr is the one error table of imbroker: every refusal the
// broker reports has a row here (a name, Tencent's error code, the MQTT 5
// reason code it rides on, a default text), and every layer reports it as
// one type, *Error. MQTT renders it as a PUBACK/CONNACK reason code with the
// reason string "{code} {info}" or as {ErrorCode, ErrorInfo} on the rpc
// topic; REST renders it as {ActionStatus, ErrorCode, ErrorInfo}. Inside the
// core errors are wrapped with context; the code is read at the boundary
// with As.
package imerr

import (
	"errors"
	"fmt"
	"strconv"
)

// MQTT 5 reason codes used in the table ([MQTT-3.4.2.1], [MQTT-3.2.2.2]).
const (
	ReasonUnspecified    byte = 0x80
	ReasonImplementation byte = 0x83
	ReasonBadCredentials byte = 0x86
	ReasonNotAuthorized  byte = 0x87
	ReasonTopicInvalid   byte = 0x90
	ReasonQuotaExceeded  byte = 0x97
	ReasonPayloadFormat  byte = 0x99
)

// Kind is one row of the table.
type Kind struct {
	Name   string // stable Go-side name, e.g. "GroupNotFound"
	Code   int    // Tencent error code
	Reason byte   // MQTT 5 reason code for a PUBACK (or DISCONNECT) that carries it
	Text   string // default text
}

// Error is a refusal with a Tencent-style code; it is the only error type
// the broker reports to clients.
type Error struct {
	Code   int    // Tencent error code, e.g. 90002
	Reason byte   // MQTT 5 reason code
	Info   string // human-readable detail, safe to show the client
}

func (e *Error) Error() string { return strconv.Itoa(e.Code) + " " + e.Info }

// New is a refusal of kind k with a formatted detail.
func (k *Kind) New(format string, args ...any) *Error {
	return &Error{Code: k.Code, Reason: k.Reason, Info: fmt.Sprintf(format, args...)}
}

// Err is a refusal of kind k with its default text.
func (k *Kind) Err() *Error { return &Error{Code: k.Code, Reason: k.Reason, Info: k.Text} }

// Is reports whether err is (or wraps) a refusal of kind k.
func (k *Kind) Is(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == k.Code
}

// Custom is a refusal with a code the app chose (a before-callback's own
// code in the range Tencent leaves to apps); it rides on 0x83.
func Custom(code int, info string) *Error {
	return &Error{Code: code, Reason: ReasonImplementation, Info: info}
}

// As returns err's refusal; any other error becomes Internal with a generic
// text (the caller logs the detail, which is never echoed to clients).
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Internal.Err()
}

// CodeOf is err's Tencent code: 0 for nil, Internal's for an uncoded error.
func CodeOf(err error) int {
	if err == nil {
		return 0
	}
	return As(err).Code
}
