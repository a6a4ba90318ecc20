package wire

import (
	"encoding/json"
	"testing"
)

func fastBodySeeds(f *testing.F) {
	for _, s := range []string{
		textBody, allElementsBody, `[]`, `null`, `{}`, `[null]`, `[1]`,
		`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"a typical short chat message, about sixty bytes long"}}]`,
		`[{"MsgContent":{"Text":"x","A":[1, 2],"B":{"c":"<"}},"MsgType":"TIMTextElem"}, {"MsgType":"TIMCustomElem","MsgContent":{}}]`,
		`[{"MsgType":"TIMTextElem","MsgType":"TIMFaceElem","MsgContent":{"Index":1}}]`,
		`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"a","Text":1}}]`,
		`[{"MsgType":"TIM\u0054extElem","MsgContent":{"T\u0065xt":"a"}}]`,
		`[{"MsgType":"TIMTextElem","MsgContent":{"Text":null}}]`,
		`[{"MsgType":"TIMFaceElem","MsgContent":{"Index":-1.5e3,"Data":"\"\\"}}]`,
		`[{"MsgType":"TIMCustomElem","MsgContent":{}},{"MsgType":"TIMCustomElem","MsgContent":{}}]`,
		`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"x"}} , {"MsgType":"TIMTextElem","MsgContent":null}]`,
		`[{"MsgType":"TIMImageElem","MsgContent":{"UUID":"u","ImageFormat":1,"ImageInfoArray":[{"URL":"a&b"}]}}]`,
	} {
		f.Add([]byte(s), 32)
	}
	f.Add([]byte(textBody), 0)
	f.Add([]byte(allElementsBody), 3)
}

// fastBody accepts only what the encoding/json path accepts, and stores
// exactly what it stores.
func FuzzFastBody(f *testing.F) {
	fastBodySeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte, maxElements int) {
		if !json.Valid(raw) || maxElements < 0 || maxElements > 64 {
			t.Skip()
		}
		if CheckNumbers(raw) != nil { // refused before either path looks at it
			if _, err := ValidateBody(raw, maxElements); err == nil {
				t.Fatalf("%s: a number that is not finite or too long was accepted", raw)
			}
			return
		}
		fast, ok := fastBody(raw, maxElements)
		slow, err := slowValidateBody(raw, maxElements)
		if ok && (err != nil || string(fast) != string(slow)) {
			t.Fatalf("%s: fast %s, slow %s %v", raw, fast, slow, err)
		}
		got, gotErr := ValidateBody(raw, maxElements)
		if string(got) != string(slow) || (gotErr == nil) != (err == nil) || (err != nil && gotErr.Error() != err.Error()) {
			t.Fatalf("%s: ValidateBody %s %v, encoding/json %s %v", raw, got, gotErr, slow, err)
		}
	})
}

// The common bodies take the fast path.
func TestFastBodyTakesCommonBodies(t *testing.T) {
	for _, s := range []string{textBody, `[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hello 张三"}},{"MsgType":"TIMCustomElem","MsgContent":{"Data":"d","Desc":"x"}}]`,
		`[ {"MsgType": "TIMFaceElem", "MsgContent": {"Index": 1, "Data": "content"}} ]`} {
		if _, ok := fastBody([]byte(s), 32); !ok {
			t.Errorf("%s: not on the fast path", s)
		}
	}
}
