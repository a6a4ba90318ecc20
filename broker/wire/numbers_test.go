package wire

import (
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
