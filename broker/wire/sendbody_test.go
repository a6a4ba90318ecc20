package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/imerr"
)

// allElementsBody is a MsgBody with one element of every TIM type, each with
// every field elementRules lists, spread over several lines so that
// ValidateBody has something to compact.
const allElementsBody = `[
  {"MsgType": "TIMTextElem", "MsgContent": {"Text": "hello 张三"}},
  {"MsgType": "TIMFaceElem", "MsgContent": {"Index": 1, "Data": "content"}},
  {"MsgType": "TIMLocationElem", "MsgContent": {"Desc": "somewhere", "Latitude": 22.5, "Longitude": -113.9}},
  {"MsgType": "TIMImageElem", "MsgContent": {"UUID": "1853095_D61040894AC3DE44CDFFFB3EC7EB720F", "ImageFormat": 1,
    "ImageInfoArray": [{"Type": 1, "Size": 1553, "Width": 640, "Height": 480, "URL": "https://example.com/a.jpg"}]}},
  {"MsgType": "TIMSoundElem", "MsgContent": {"Url": "https://example.com/a.silk", "UUID": "u1", "Size": 62351,
    "Second": 1, "Download_Flag": 2}},
  {"MsgType": "TIMVideoFileElem", "MsgContent": {"VideoUrl": "https://example.com/v.mp4", "VideoUUID": "v1",
    "VideoSize": 1194603, "VideoSecond": 5, "VideoFormat": "mp4", "VideoDownloadFlag": 2,
    "ThumbUrl": "https://example.com/t.jpg", "ThumbUUID": "t1", "ThumbSize": 13907, "ThumbWidth": 720,
    "ThumbHeight": 1280, "ThumbFormat": "JPG", "ThumbDownloadFlag": 2}},
  {"MsgType": "TIMFileElem", "MsgContent": {"Url": "https://example.com/f.txt", "UUID": "f1", "FileSize": 1773552,
    "FileName": "file:a.txt", "Download_Flag": 2}},
  {"MsgType": "TIMCustomElem", "MsgContent": {"Data": "message", "Desc": "notification", "Ext": "url", "Sound": "dingdong.aiff"}},
  {"MsgType": "TIMRelayElem", "MsgContent": {"Title": "chat history", "MsgNum": 2, "CompatibleText": "upgrade",
    "AbstractList": ["a: hi", "b: hello"], "MsgList": [{"From_Account": "a"}], "JsonMsgKey": "k"}}
]`

const textBody = `[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]`

var testLimits = config.Default().Messages

func parseSend(payload []byte) (*SendRequest, []byte, error) { return ParseSend(payload, testLimits) }

// wantCode fails unless err is an *imerr.Error with the given code.
func wantCode(t *testing.T, err error, code int) {
	t.Helper()
	var e *imerr.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *imerr.Error with code %d", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("error code = %d (%v), want %d", e.Code, e, code)
	}
	if e.Reason != imerr.ReasonPayloadFormat {
		t.Errorf("reason = %#x, want %#x", e.Reason, imerr.ReasonPayloadFormat)
	}
}

func TestValidateBodyAllElements(t *testing.T) {
	out, err := ValidateBody(json.RawMessage(allElementsBody), 32)
	if err != nil {
		t.Fatalf("ValidateBody: %v", err)
	}
	var canon []canonicalElement
	if err := json.Unmarshal([]byte(allElementsBody), &canon); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(canon)
	if !bytes.Equal(out, want) {
		t.Errorf("ValidateBody returned\n%s\nwant canonical\n%s", out, want)
	}
	var elems []canonicalElement
	if err := json.Unmarshal(out, &elems); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range elems {
		seen[e.MsgType] = true
	}
	for typ := range elementRules {
		if !seen[typ] {
			t.Errorf("test body lacks a %s", typ)
		}
	}
}

func TestValidateBodyMinimalElements(t *testing.T) {
	// Only required fields; optional ones may also be null.
	for _, body := range []string{
		textBody,
		`[{"MsgType":"TIMTextElem","MsgContent":{"Text":""}}]`,
		`[{"MsgType":"TIMFaceElem","MsgContent":{"Index":0,"Data":null}}]`,
		`[{"MsgType":"TIMCustomElem","MsgContent":{}}]`,
		`[{"MsgType":"TIMImageElem","MsgContent":{"UUID":"u","ImageFormat":255,"ImageInfoArray":[]}}]`,
		`[{"MsgType":"TIMRelayElem","MsgContent":{"MsgNum":1e2,"Extra":{"kept":true}}}]`,
		`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"a"}},{"MsgType":"TIMCustomElem","MsgContent":{"Data":"d"}}]`,
	} {
		if _, err := ValidateBody(json.RawMessage(body), 32); err != nil {
			t.Errorf("ValidateBody(%s) = %v, want nil", body, err)
		}
	}
}

func TestValidateBodyRefuses(t *testing.T) {
	text := func(content string) string {
		return `[{"MsgType":"TIMTextElem","MsgContent":` + content + `}]`
	}
	tooMany := "[" + strings.Repeat(`{"MsgType":"TIMTextElem","MsgContent":{"Text":"x"}},`, 3)
	tooMany = tooMany[:len(tooMany)-1] + "]"
	tests := []struct {
		name string
		body string
		max  int
	}{
		{"absent", ``, 32},
		{"null", `null`, 32},
		{"object", `{"MsgType":"TIMTextElem","MsgContent":{"Text":"x"}}`, 32},
		{"string", `"hi"`, 32},
		{"number", `1`, 32},
		{"empty array", `[]`, 32},
		{"array of strings", `["x"]`, 32},
		{"array of null", `[null]`, 32},
		{"more than maxElements", tooMany, 2},
		{"unknown MsgType", `[{"MsgType":"TIMBogusElem","MsgContent":{}}]`, 32},
		{"missing MsgType", `[{"MsgContent":{"Text":"x"}}]`, 32},
		{"MsgType not a string", `[{"MsgType":1,"MsgContent":{"Text":"x"}}]`, 32},
		{"MsgContent missing", `[{"MsgType":"TIMCustomElem"}]`, 32},
		{"MsgContent null", text(`null`), 32},
		{"MsgContent string", text(`"x"`), 32},
		{"MsgContent array", text(`[]`), 32},
		{"MsgContent number", text(`1`), 32},
		{"required field missing", text(`{}`), 32},
		{"required field null", text(`{"Text":null}`), 32},
		{"required field other case", text(`{"text":"x"}`), 32},
		{"Index 1e400", `[{"MsgType":"TIMFaceElem","MsgContent":{"Index":1e400}}]`, 32},
		{"Index 2^31", `[{"MsgType":"TIMFaceElem","MsgContent":{"Index":2147483648}}]`, 32},
		{"Index fraction", `[{"MsgType":"TIMFaceElem","MsgContent":{"Index":1.5}}]`, 32},
		{"Latitude 1e999999", `[{"MsgType":"TIMLocationElem","MsgContent":{"Latitude":1e999999,"Longitude":0}}]`, 32},
		{"Latitude 90.5", `[{"MsgType":"TIMLocationElem","MsgContent":{"Latitude":90.5,"Longitude":0}}]`, 32},
		{"Longitude -180.01", `[{"MsgType":"TIMLocationElem","MsgContent":{"Latitude":0,"Longitude":-180.01}}]`, 32},
		{"Size negative", `[{"MsgType":"TIMFileElem","MsgContent":{"FileName":"f","FileSize":-1}}]`, 32},
		{"Size 400 digits", `[{"MsgType":"TIMFileElem","MsgContent":{"FileName":"f","FileSize":` + strings.Repeat("9", 400) + `}}]`, 32},
		{"Second over uint32", `[{"MsgType":"TIMSoundElem","MsgContent":{"Size":1,"Second":4294967296}}]`, 32},
		{"unlisted field 1e400", text(`{"Text":"x","Extra":1e400}`), 32},
		{"nested number 400 digits", text(`{"Text":"x","Extra":[{"n":` + strings.Repeat("1", 400) + `}]}`), 32},
		{"string field is number", text(`{"Text":1}`), 32},
		{"string field is array", text(`{"Text":["x"]}`), 32},
		{"string field is bool", text(`{"Text":true}`), 32},
		{"number field is string", `[{"MsgType":"TIMFaceElem","MsgContent":{"Index":"1"}}]`, 32},
		{"number field is array", `[{"MsgType":"TIMLocationElem","MsgContent":{"Latitude":[1],"Longitude":2}}]`, 32},
		{"number field is object", `[{"MsgType":"TIMSoundElem","MsgContent":{"Size":{},"Second":1}}]`, 32},
		{"array field is string", `[{"MsgType":"TIMImageElem","MsgContent":{"UUID":"u","ImageFormat":1,"ImageInfoArray":"x"}}]`, 32},
		{"array field is object", `[{"MsgType":"TIMImageElem","MsgContent":{"UUID":"u","ImageFormat":1,"ImageInfoArray":{}}}]`, 32},
		{"optional field wrong type", `[{"MsgType":"TIMCustomElem","MsgContent":{"Data":5}}]`, 32},
		{"optional array field wrong type", `[{"MsgType":"TIMRelayElem","MsgContent":{"MsgNum":1,"MsgList":"x"}}]`, 32},
		{"second element bad", `[{"MsgType":"TIMTextElem","MsgContent":{"Text":"a"}},{"MsgType":"TIMFileElem","MsgContent":{"FileSize":1}}]`, 32},
		{"two TIMCustomElem", `[{"MsgType":"TIMCustomElem","MsgContent":{}},{"MsgType":"TIMCustomElem","MsgContent":{}}]`, 32},
		{"trailing garbage", textBody + `x`, 32},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := ValidateBody(json.RawMessage(tc.body), tc.max)
			if out != nil {
				t.Errorf("ValidateBody returned %q with an error", out)
			}
			wantCode(t, err, imerr.BadMsgBody.Code)
		})
	}
}

// sendPayload builds a send body around msgBody with the given extra
// top-level fields (already JSON-encoded values).
func sendPayload(msgBody string, extra map[string]string) []byte {
	var b strings.Builder
	b.WriteString(`{"MsgBody":` + msgBody)
	for k, v := range extra {
		b.WriteString(`,"` + k + `":` + v)
	}
	b.WriteString("}")
	return []byte(b.String())
}

func TestParseSendValid(t *testing.T) {
	payload := sendPayload(` [ {"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}} ] `, map[string]string{
		"MsgRandom": "4294967295", "MsgSeq": "7", "CloudCustomData": `"ccd"`, "ClientMsgID": `"` + strings.Repeat("c", MaxClientMsgID) + `"`,
		"SendMsgControl": `["NoUnread"]`, "Unknown": `{"ignored":1}`,
	})
	req, body, err := parseSend(payload)
	if err != nil {
		t.Fatalf("parseSend: %v", err)
	}
	if req.MsgRandom == nil || *req.MsgRandom != math.MaxUint32 {
		t.Errorf("MsgRandom = %v, want %d", req.MsgRandom, uint32(math.MaxUint32))
	}
	if req.MsgSeq != 7 || req.CloudCustomData != "ccd" || len(req.ClientMsgID) != MaxClientMsgID {
		t.Errorf("request = %+v", req)
	}
	if string(body) != textBody {
		t.Errorf("body = %s, want %s", body, textBody)
	}

	// MsgRandom 0 is present, not missing.
	req, _, err = parseSend(sendPayload(textBody, map[string]string{"MsgRandom": "0"}))
	if err != nil || req.MsgRandom == nil || *req.MsgRandom != 0 {
		t.Errorf("MsgRandom 0: req=%+v err=%v", req, err)
	}
}

func TestParseSendRefuses(t *testing.T) {
	lim := testLimits
	// CloudCustomData sized so that body+CCD lands exactly on the limit.
	fitCCD := strings.Repeat("x", lim.MaxBytes-len(textBody))
	tests := []struct {
		name    string
		payload []byte
		code    int
	}{
		{"empty", []byte{}, imerr.BadJSON.Code},
		{"garbage", []byte("not json"), imerr.BadJSON.Code},
		{"array", []byte(`[1]`), imerr.BadJSON.Code},
		{"truncated", []byte(`{"MsgRandom":1,"MsgBody":[`), imerr.BadJSON.Code},
		{"MsgRandom negative", sendPayload(textBody, map[string]string{"MsgRandom": "-1"}), imerr.BadJSON.Code},
		{"MsgRandom too big", sendPayload(textBody, map[string]string{"MsgRandom": "4294967296"}), imerr.BadJSON.Code},
		{"MsgRandom string", sendPayload(textBody, map[string]string{"MsgRandom": `"1"`}), imerr.BadJSON.Code},
		{"CloudCustomData not string", sendPayload(textBody, map[string]string{"MsgRandom": "1", "CloudCustomData": "{}"}), imerr.BadJSON.Code},
		{"MsgRandom missing", sendPayload(textBody, nil), imerr.MsgRandom.Code},
		{"MsgRandom null", sendPayload(textBody, map[string]string{"MsgRandom": "null"}), imerr.MsgRandom.Code},
		{"ClientMsgID too long", sendPayload(textBody, map[string]string{"MsgRandom": "1",
			"ClientMsgID": `"` + strings.Repeat("c", MaxClientMsgID+1) + `"`}), imerr.BadParams.Code},
		{"MsgBody missing", []byte(`{"MsgRandom":1}`), imerr.BadMsgBody.Code},
		{"MsgBody bad", sendPayload(`[{"MsgType":"TIMTextElem","MsgContent":{}}]`, map[string]string{"MsgRandom": "1"}), imerr.BadMsgBody.Code},
		{"body+CCD one over", sendPayload(textBody, map[string]string{"MsgRandom": "1", "CloudCustomData": `"` + fitCCD + `x"`}), imerr.TooLong.Code},
		{"payload too large", sendPayload(textBody, map[string]string{"MsgRandom": "1",
			"Pad": `"` + strings.Repeat("p", lim.MaxPayloadBytes) + `"`}), imerr.TooLarge.Code},
		{"too large even if not JSON", bytes.Repeat([]byte{'{'}, lim.MaxPayloadBytes+1), imerr.TooLarge.Code},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, body, err := parseSend(tc.payload)
			if req != nil || body != nil {
				t.Errorf("parseSend returned req=%+v body=%q with an error", req, body)
			}
			wantCode(t, err, tc.code)
		})
	}

	// The limits themselves are accepted.
	if _, _, err := parseSend(sendPayload(textBody, map[string]string{"MsgRandom": "1", "CloudCustomData": `"` + fitCCD + `"`})); err != nil {
		t.Errorf("body+CCD exactly at the limit: %v", err)
	}
	exact := sendPayload(textBody, map[string]string{"MsgRandom": "1", "Pad": `""`})
	exact = bytes.Replace(exact, []byte(`"Pad":""`), []byte(`"Pad":"`+strings.Repeat("p", lim.MaxPayloadBytes-len(exact))+`"`), 1)
	if len(exact) != lim.MaxPayloadBytes {
		t.Fatalf("test payload is %d bytes", len(exact))
	}
	if _, _, err := parseSend(exact); err != nil {
		t.Errorf("payload exactly MaxPayloadBytes: %v", err)
	}
}

func TestEnvelope(t *testing.T) {
	msg := C2CMsg{
		From: "alice", To: "bob", MsgSeq: 1, MsgRandom: 2, MsgTime: 1700000000, MsgKey: "1_2_1700000000",
		MsgBody: json.RawMessage(textBody), CloudCustomData: `{"q":"\u2028"}`, SendMsgControl: []string{"NoUnread"},
	}
	bodies := []any{msg, map[string]any{}, nil, "s", []int{1, 2}}
	positions := [][2]uint64{{0, 0}, {1, 2}, {math.MaxUint64, math.MaxUint64 - 1}}
	for _, body := range bodies {
		stored, err := EncodeEvent(EventC2CMsg, body)
		if err != nil {
			t.Fatalf("EncodeEvent(%v): %v", body, err)
		}
		want := decodeObject(t, stored)
		for _, p := range positions {
			epoch, seq := p[0], p[1]
			out := Envelope(epoch, seq, stored)
			if !json.Valid(out) {
				t.Fatalf("Envelope(%d, %d, %s) = %s: not valid JSON", epoch, seq, stored, out)
			}
			got := decodeObject(t, out)
			if got["Seq"] != json.Number(strconv.FormatUint(seq, 10)) || got["Epoch"] != json.Number(strconv.FormatUint(epoch, 10)) {
				t.Errorf("Envelope: Seq=%v Epoch=%v, want %d %d", got["Seq"], got["Epoch"], seq, epoch)
			}
			delete(got, "Seq")
			delete(got, "Epoch")
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Envelope fields = %v, want %v", got, want)
			}
		}
	}
}

func decodeObject(t *testing.T, data []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	if dec.More() {
		t.Fatalf("trailing data after %s", data)
	}
	return m
}

func FuzzParseSend(f *testing.F) {
	f.Add(sendPayload(textBody, map[string]string{"MsgRandom": "1"}))
	f.Add(sendPayload(allElementsBody, map[string]string{"MsgRandom": "42", "CloudCustomData": `"ccd"`, "ClientMsgID": `"id-1"`}))
	f.Add([]byte(`{"MsgRandom":1,"MsgBody":[{"MsgType":"TIMCustomElem","MsgContent":{}},{"MsgType":"TIMCustomElem","MsgContent":{}}]}`))
	f.Add([]byte(`{"MsgRandom":1,"MsgBody":null}`))
	f.Add([]byte("\x00\xff{[garbage"))
	f.Add([]byte{})
	lim := testLimits
	f.Fuzz(func(t *testing.T, payload []byte) {
		req, body, err := parseSend(payload)
		if err != nil {
			var e *imerr.Error
			if !errors.As(err, &e) || e.Code == 0 {
				t.Fatalf("parseSend(%q) error %v (%T) is not an *imerr.Error with a code", payload, err, err)
			}
			if req != nil || body != nil {
				t.Fatalf("parseSend(%q) returned req/body with error %v", payload, err)
			}
			return
		}
		if req == nil || req.MsgRandom == nil {
			t.Fatalf("parseSend(%q) accepted without MsgRandom", payload)
		}
		if err := CheckNumbers(payload); err != nil {
			t.Fatalf("parseSend(%q) accepted a number: %v", payload, err)
		}
		if len(req.ClientMsgID) > MaxClientMsgID {
			t.Fatalf("parseSend(%q) accepted a %d-byte ClientMsgID", payload, len(req.ClientMsgID))
		}
		if n := len(body) + len(req.CloudCustomData); n > lim.MaxBytes {
			t.Fatalf("parseSend(%q) accepted %d bytes, limit %d", payload, n, lim.MaxBytes)
		}
		again, err := ValidateBody(body, lim.MaxElements)
		if err != nil {
			t.Fatalf("parseSend(%q) body %s does not re-validate: %v", payload, body, err)
		}
		if !bytes.Equal(again, body) {
			t.Fatalf("compacting is not idempotent: %s -> %s", body, again)
		}
		stored, err := EncodeEvent(EventC2CMsg, C2CMsg{MsgBody: body, CloudCustomData: req.CloudCustomData,
			OfflinePushInfo: req.OfflinePushInfo, SendMsgControl: req.SendMsgControl})
		if err != nil {
			t.Fatalf("EncodeEvent of accepted payload %q: %v", payload, err)
		}
		if out := Envelope(1, 2, stored); !json.Valid(out) {
			t.Fatalf("Envelope of accepted payload %q is not valid JSON: %s", payload, out)
		}
	})
}

// Keys are matched exactly and the stored body is canonical, so what is
// stored is what was checked.
func TestValidateBodyCanonical(t *testing.T) {
	for _, body := range []string{
		`[{"msgtype":"TIMTextElem","MSGCONTENT":{"Text":"x"}}]`,
		`[{"MsgType":"TIMImageElem","MsgContent":{},"msgType":"TIMCustomElem"}]`,
		`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"x"},"Extra":1}]`,
		`[{"MsgType":"TIMTextElem"}]`,
	} {
		_, err := ValidateBody(json.RawMessage(body), 32)
		wantCode(t, err, imerr.BadMsgBody.Code)
	}
	out, err := ValidateBody(json.RawMessage(`[{"MsgContent":{"Text":1,"Text":"a","Z":2,"A":1},"MsgType":"TIMTextElem"}]`), 32)
	if err != nil {
		t.Fatal(err)
	}
	if want := `[{"MsgType":"TIMTextElem","MsgContent":{"A":1,"Text":"a","Z":2}}]`; string(out) != want {
		t.Fatalf("stored %s, want %s", out, want)
	}
	_, _, err = parseSend([]byte("{\"MsgRandom\":1,\"MsgBody\":[{\"MsgType\":\"TIMTextElem\",\"MsgContent\":{\"Text\":\"\xff\xfe\"}}]}"))
	wantCode(t, err, imerr.BadJSON.Code)
}
