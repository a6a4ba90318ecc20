package wire

import "testing"

func TestPushText(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]`, "hi"},
		{`[{"MsgType":"TIMCustomElem","MsgContent":{"Data":"x","Desc":"packet"}}]`, "packet"},
		{`[{"MsgType":"TIMLocationElem","MsgContent":{"Desc":"home"}}]`, "[Location]"},
		{`[{"MsgType":"TIMFaceElem","MsgContent":{"Index":1}}]`, "[Face]"},
		{`[{"MsgType":"TIMImageElem","MsgContent":{}}]`, "[Image]"},
		{`[{"MsgType":"TIMSoundElem","MsgContent":{}}]`, "[Voice]"},
		{`[{"MsgType":"TIMVideoFileElem","MsgContent":{}}]`, "[Video]"},
		{`[{"MsgType":"TIMFileElem","MsgContent":{}}]`, "[File]"},
		{`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"look "}},{"MsgType":"TIMImageElem","MsgContent":{}}]`, "look [Image]"},
	} {
		if got := PushText([]byte(tc.body)); got != tc.want {
			t.Errorf("PushText(%s) = %q, want %q", tc.body, got, tc.want)
		}
	}
	if PushFields("b", "a", []byte(`[]`), []byte(`{"PushFlag":1}`)) != nil {
		t.Error("PushFlag 1 must mean no push")
	}
	f := PushFields("b", "a", []byte(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"x"}}]`), []byte(`{"Title":"T","Desc":"D","Ext":"E"}`))
	if f["Desc"] != "D" || f["Title"] != "T" || f["Ext"] != "E" || f["To_Account"] != "b" || f["From_Account"] != "a" {
		t.Errorf("PushFields: %v", f)
	}
}
