package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestCheckNumbers(t *testing.T) {
	for _, ok := range []string{
		`{}`, `[1,-2.5,3e10,0.1e-5,-0]`, `{"a":"1e400","b":"\"1e400"}`, `{"x":1.7976931348623157e308}`,
		`{"x":9007199254740993}`, `[true,false,null]`, `{"x":1e-400}`, // underflow rounds to 0: finite
		`{"x":` + strings.Repeat("1", MaxNumberChars) + `}`,
	} {
		if err := CheckNumbers([]byte(ok)); err != nil {
			t.Errorf("CheckNumbers(%s) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{
		`1e400`, `{"x":1e999999}`, `[-1e309]`, `{"a":"\\","x":1E400}`,
		`{"x":` + strings.Repeat("1", MaxNumberChars+1) + `}`, `{"x":` + strings.Repeat("9", 400) + `}`,
	} {
		if err := CheckNumbers([]byte(bad)); err == nil {
			t.Errorf("CheckNumbers(%.40s) = nil, want an error", bad)
		}
	}
}

func TestElementNumberRanges(t *testing.T) {
	for _, ok := range []string{
		`[{"MsgType":"TIMLocationElem","MsgContent":{"Latitude":90,"Longitude":-180}}]`,
		`[{"MsgType":"TIMLocationElem","MsgContent":{"Latitude":-90,"Longitude":180.0}}]`,
		`[{"MsgType":"TIMFaceElem","MsgContent":{"Index":-2147483648}}]`,
		`[{"MsgType":"TIMFaceElem","MsgContent":{"Index":1e2}}]`,
		`[{"MsgType":"TIMFileElem","MsgContent":{"FileName":"f","FileSize":9223372036854775807}}]`,
		`[{"MsgType":"TIMSoundElem","MsgContent":{"Size":0,"Second":4294967295}}]`,
	} {
		if _, err := ValidateBody([]byte(ok), 8); err != nil {
			t.Errorf("ValidateBody(%s) = %v, want nil", ok, err)
		}
	}
}

// FuzzCheckNumbers: on any valid JSON document CheckNumbers agrees with a
// decoder that keeps every number as written: it refuses exactly the
// documents holding a number that is not a finite float64 or is longer
// than MaxNumberChars.
func FuzzCheckNumbers(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[1e400]`, `{"s":"1e400","n":-0.5e-3}`, `"\\"1e999"`, `[` + strings.Repeat("9", 70) + `]`, `{"x":[{"y":1E308},2e308]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		err := CheckNumbers(doc) // never panics, valid JSON or not
		if !json.Valid(doc) {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(doc))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			t.Fatalf("%s: valid but not decodable", doc)
		}
		want := refCheckNumbers(v)
		if (err == nil) != (want == nil) {
			t.Fatalf("%s: CheckNumbers %v, reference %v", doc, err, want)
		}
	})
}

// refCheckNumbers is CheckNumbers on a decoded document.
func refCheckNumbers(v any) error {
	switch v := v.(type) {
	case json.Number:
		if len(v) > MaxNumberChars {
			return errors.New("too long")
		}
		if f, err := v.Float64(); err != nil || math.IsInf(f, 0) {
			return errors.New("not finite")
		}
	case []any:
		for _, e := range v {
			if err := refCheckNumbers(e); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, e := range v {
			if err := refCheckNumbers(e); err != nil {
				return err
			}
		}
	}
	return nil
}
