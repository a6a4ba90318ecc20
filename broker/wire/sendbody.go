package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/imerr"
)

// SendRequest is the body of a publish to im/send/c2c/{to}: Tencent's sendmsg
// fields that a client may set. Unknown top-level fields are ignored, as
// Tencent does; MsgBody is checked element by element.
type SendRequest struct {
	MsgBody           json.RawMessage `json:"MsgBody"`
	MsgRandom         *uint32         `json:"MsgRandom"`
	MsgSeq            uint32          `json:"MsgSeq"`
	CloudCustomData   string          `json:"CloudCustomData"`
	ClientMsgID       string          `json:"ClientMsgID"`
	IsNeedReadReceipt int             `json:"IsNeedReadReceipt"`
	SendMsgControl    []string        `json:"SendMsgControl"`
	OfflinePushInfo   json.RawMessage `json:"OfflinePushInfo"`
	SyncOtherMachine  int             `json:"SyncOtherMachine"` // 2: no copy to the sender's devices
	// ForbidCallbackControl: ForbidBeforeSendMsgCallback, ForbidAfterSendMsgCallback.
	ForbidCallbackControl []string `json:"ForbidCallbackControl"`
	MsgPriority           string   `json:"MsgPriority"` // group: High, Normal (""), Low or Lowest; stored, not used by the rate limit
}

const MaxClientMsgID = 64

// field kinds for element checks.
type kind int

const (
	str kind = iota
	num
	arr
)

type fieldRule struct {
	name     string
	kind     kind
	required bool
	rng      *numRange // num: the allowed values
}

// elementRules lists each TIM element's fields (tencent-im.md §4). Fields
// not listed are kept as sent; listed ones must have the right JSON type,
// and numbers their range (numbers.go). Every number anywhere in a send,
// listed or not, must be finite (CheckNumbers).
var elementRules = map[string][]fieldRule{
	"TIMTextElem":     {{"Text", str, true, nil}},
	"TIMFaceElem":     {{"Index", num, true, rngIndex}, {"Data", str, false, nil}},
	"TIMLocationElem": {{"Desc", str, false, nil}, {"Latitude", num, true, rngLatitude}, {"Longitude", num, true, rngLongitude}},
	"TIMCustomElem":   {{"Data", str, false, nil}, {"Desc", str, false, nil}, {"Ext", str, false, nil}, {"Sound", str, false, nil}},
	"TIMSoundElem": {{"Url", str, false, nil}, {"UUID", str, false, nil}, {"Size", num, true, rngBytes}, {"Second", num, true, rngCount},
		{"Download_Flag", num, false, rngCount}},
	"TIMImageElem": {{"UUID", str, true, nil}, {"ImageFormat", num, true, rngCount}, {"ImageInfoArray", arr, true, nil}},
	"TIMFileElem": {{"Url", str, false, nil}, {"UUID", str, false, nil}, {"FileSize", num, true, rngBytes}, {"FileName", str, true, nil},
		{"Download_Flag", num, false, rngCount}},
	"TIMVideoFileElem": {{"VideoUrl", str, false, nil}, {"VideoUUID", str, false, nil}, {"VideoSize", num, true, rngBytes},
		{"VideoSecond", num, true, rngCount}, {"VideoFormat", str, true, nil}, {"VideoDownloadFlag", num, false, rngCount},
		{"ThumbUrl", str, false, nil}, {"ThumbUUID", str, false, nil}, {"ThumbSize", num, false, rngBytes}, {"ThumbWidth", num, false, rngCount},
		{"ThumbHeight", num, false, rngCount}, {"ThumbFormat", str, false, nil}, {"ThumbDownloadFlag", num, false, rngCount}},
	"TIMRelayElem": {{"Title", str, false, nil}, {"MsgNum", num, true, rngCount}, {"CompatibleText", str, false, nil},
		{"AbstractList", arr, false, nil}, {"MsgList", arr, false, nil}, {"JsonMsgKey", str, false, nil}},
}

// ParseSend decodes and validates a send body against lim. It returns the compacted
// MsgBody to store.
func ParseSend(payload []byte, lim config.Messages) (*SendRequest, []byte, error) {
	if len(payload) > lim.MaxPayloadBytes {
		return nil, nil, imerr.TooLarge.New("payload of %d bytes is over %d", len(payload), lim.MaxPayloadBytes)
	}
	if !utf8.Valid(payload) { // RFC 8259: JSON is UTF-8; bad bytes would be stored and delivered as is
		return nil, nil, imerr.BadJSON.New("body is not valid UTF-8")
	}
	var req SendRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, nil, imerr.BadJSON.New("body is not valid JSON: %v", err)
	}
	if err := CheckNumbers(payload); err != nil { // fields kept as raw JSON are stored verbatim
		return nil, nil, imerr.BadMsgBody.New("%v", err)
	}
	if req.MsgRandom == nil {
		return nil, nil, imerr.MsgRandom.New("MsgRandom is required")
	}
	if len(req.ClientMsgID) > MaxClientMsgID {
		return nil, nil, imerr.BadParams.New("ClientMsgID longer than %d bytes", MaxClientMsgID)
	}
	body, err := validateValidBody(req.MsgBody, lim.MaxElements) // valid JSON: the whole payload decoded
	if err != nil {
		return nil, nil, err
	}
	if n := len(body) + len(req.CloudCustomData); n > lim.MaxBytes {
		return nil, nil, imerr.TooLong.New("message is %d bytes, limit %d", n, lim.MaxBytes)
	}
	return &req, body, nil
}

// ValidateBody checks a MsgBody and returns the form to store: every
// element re-encoded from what was checked (validateValidBody).
func ValidateBody(raw json.RawMessage, maxElements int) ([]byte, error) {
	if json.Valid(raw) {
		if err := CheckNumbers(raw); err != nil {
			return nil, imerr.BadMsgBody.New("MsgBody: %v", err)
		}
		if body, ok := fastBody(raw, maxElements); ok {
			return body, nil
		}
	}
	return slowValidateBody(raw, maxElements)
}

// validateValidBody is ValidateBody for a MsgBody known to be valid JSON.
func validateValidBody(raw json.RawMessage, maxElements int) ([]byte, error) {
	if body, ok := fastBody(raw, maxElements); ok {
		return body, nil
	}
	return slowValidateBody(raw, maxElements)
}

// slowValidateBody is ValidateBody by encoding/json: it decides every case
// fastBody leaves to it and words every error.
func slowValidateBody(raw json.RawMessage, maxElements int) ([]byte, error) {
	bad := func(format string, args ...any) error {
		return imerr.BadMsgBody.New("MsgBody: "+format, args...)
	}
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, bad("required")
	}
	var elems []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, bad("must be an array of {MsgType, MsgContent}")
	}
	if len(elems) == 0 || len(elems) > maxElements {
		return nil, bad("must have 1 to %d elements, has %d", maxElements, len(elems))
	}
	// The stored body is re-encoded from what was checked, never the
	// client's bytes: encoding/json matches keys case-insensitively and
	// keeps the last duplicate, so raw bytes could say something else than
	// what passed the checks.
	out := make([]canonicalElement, len(elems))
	custom := 0
	for i, e := range elems {
		var msgType string
		if len(e) != 2 || e["MsgContent"] == nil || json.Unmarshal(e["MsgType"], &msgType) != nil {
			return nil, bad("element %d: must be exactly {\"MsgType\": string, \"MsgContent\": object}", i)
		}
		rules, ok := elementRules[msgType]
		if !ok {
			return nil, bad("element %d: unknown MsgType %q", i, msgType)
		}
		if msgType == "TIMCustomElem" {
			if custom++; custom > 1 {
				return nil, bad("at most one TIMCustomElem per message")
			}
		}
		fields, err := checkContent(e["MsgContent"], rules)
		if err != nil {
			return nil, bad("element %d (%s): %v", i, msgType, err)
		}
		out[i] = canonicalElement{MsgType: msgType, MsgContent: fields}
	}
	body, err := json.Marshal(out)
	if err != nil {
		return nil, bad("%v", err)
	}
	return body, nil
}

// canonicalElement is how an element is stored and delivered: MsgType
// first, content keys sorted, each key once.
type canonicalElement struct {
	MsgType    string                     `json:"MsgType"`
	MsgContent map[string]json.RawMessage `json:"MsgContent"`
}

func checkContent(raw json.RawMessage, rules []fieldRule) (map[string]json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, fmt.Errorf("MsgContent must be an object")
	}
	for _, r := range rules {
		v, ok := fields[r.name]
		if !ok || bytes.Equal(v, []byte("null")) {
			if r.required {
				return nil, fmt.Errorf("%s is required", r.name)
			}
			continue
		}
		if err := r.checkValue(v); err != nil {
			return nil, fmt.Errorf("%s: %v", r.name, err)
		}
	}
	return fields, nil
}

// checkValue checks a listed field's value: its JSON type, and a
// number's range.
func (r fieldRule) checkValue(v json.RawMessage) error {
	if err := checkKind(v, r.kind); err != nil {
		return err
	}
	if r.rng != nil {
		return r.rng.check(v)
	}
	return nil
}

// checkKind checks a field's JSON type by its first byte: v comes from a
// document the decoder has already validated, so a value starting with '"'
// is a complete string, '[' an array, '-' or a digit a number (its
// range is numRange's to check). This
// keeps validation free of per-field decoding (BenchmarkParseSend).
func checkKind(v json.RawMessage, k kind) error {
	v = bytes.TrimLeft(v, " \t\r\n")
	if len(v) == 0 {
		return fmt.Errorf("is empty")
	}
	switch c := v[0]; k {
	case str:
		if c != '"' {
			return fmt.Errorf("must be a string")
		}
	case num:
		if c != '-' && (c < '0' || c > '9') {
			return fmt.Errorf("must be a number")
		}
	case arr:
		if c != '[' {
			return fmt.Errorf("must be an array")
		}
	}
	return nil
}
