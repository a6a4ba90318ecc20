// Package wire holds imbroker's wire formats as pure functions: parsing and
// validating a send body (Tencent's MsgBody of TIM elements), the stored and
// delivered forms of messages and events, and the envelope that gives an
// event its stream position. No state, no I/O: MQTT and REST, the store and
// the tests all see the same bytes because they all use these functions.
package wire
