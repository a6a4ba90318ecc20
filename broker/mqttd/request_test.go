package mqttd

import "testing"

// TestOKReply: the header comes first and the handler's fields follow as
// marshalled, so int64s above 2^53 keep every digit.
func TestOKReply(t *testing.T) {
	hdr := replyHeader{ID: "r1", Op: "group.members"}
	const head = `{"Id":"r1","Op":"group.members","ErrorCode":0,"ErrorInfo":""`
	for _, tc := range []struct {
		name string
		res  any
		want string
	}{
		{"nil", nil, head + `}`},
		{"nil map", map[string]any(nil), head + `}`},
		{"empty struct", struct{}{}, head + `}`},
		{"struct", struct {
			MuteUntil int64
			Name      string
		}{1<<62 - 1, "x"}, head + `,"MuteUntil":4611686018427387903,"Name":"x"}`},
		{"map", map[string]any{"FileSize": uint64(1<<53 + 1), "B": []int{1}}, head + `,"B":[1],"FileSize":9007199254740993}`},
		// The header wins over the result's own header fields; nested ones stay.
		{"embedded header", struct {
			replyHeader
			Seq uint64
		}{replyHeader{ID: "stale", ErrorInfo: "x"}, 1<<63 + 1}, head + `,"Seq":9223372036854775809}`},
		{"header keys", map[string]any{"Id": "x", "Op": "y", "List": []map[string]any{{"ErrorCode": 1, "Id": "z"}}},
			head + `,"List":[{"ErrorCode":1,"Id":"z"}]}`},
		{"only header keys", map[string]any{"ErrorCode": 5}, head + `}`},
	} {
		got, err := okReply(hdr, tc.res)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: got %s, %v; want %s", tc.name, got, err, tc.want)
		}
	}
	if _, err := okReply(hdr, []int{1}); err == nil {
		t.Error("a list reply was accepted; replies are objects")
	}
}
