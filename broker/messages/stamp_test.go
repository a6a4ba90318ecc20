package messages

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/imbroker/imbroker/broker/wire"
)

func TestStampC2C(t *testing.T) {
	before := time.Now().Unix()
	st := StampC2C(0, 7, 0)
	after := time.Now().Unix()
	if st.MsgSeq == 0 || st.MsgSeq >= 1<<31 {
		t.Fatalf("MsgSeq %d: want random in [1, 2^31)", st.MsgSeq)
	}
	if st.MsgTime < before || st.MsgTime > after {
		t.Fatalf("MsgTime %d not now (%d..%d)", st.MsgTime, before, after)
	}
	if want := fmt.Sprintf("%d_%d_%d", st.MsgSeq, 7, st.MsgTime); st.MsgKey != want {
		t.Fatalf("MsgKey %q, want %q", st.MsgKey, want)
	}
	imp := StampC2C(42, 7, 1600000000)
	if imp != (Stamp{MsgSeq: 42, MsgRandom: 7, MsgTime: 1600000000, MsgKey: "42_7_1600000000"}) {
		t.Fatalf("import stamp %+v", imp)
	}
	if r := imp.Result(); r != (wire.SendResult{MsgKey: "42_7_1600000000", MsgTime: 1600000000, MsgSeq: 42}) {
		t.Fatalf("Result %+v", r)
	}
	if g := StampGroup(9, 1600000000); g != (Stamp{MsgRandom: 9, MsgTime: 1600000000}) {
		t.Fatalf("group stamp %+v", g)
	}
}

func TestResendKeys(t *testing.T) {
	rnd := uint32(5)
	req := &wire.SendRequest{MsgRandom: &rnd, CloudCustomData: "ccd", ClientMsgID: "cid"}
	body := []byte(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]`)
	// The C2C layout is stored in dedup records: it must not change.
	sum := sha256.Sum256([]byte(string(body) + "\x00ccd\x00cid"))
	if got, want := C2CResendKey("alice", "bob", req, body), fmt.Appendf(nil, "c2c/alice/bob/5/%x", sum[:16]); !bytes.Equal(got, want) {
		t.Fatalf("C2C key %s, want %s", got, want)
	}
	if got, want := GroupResendKey("g1", "alice", req, body), fmt.Appendf(nil, "grp/g1/alice/5/%x", sum[:16]); !bytes.Equal(got, want) {
		t.Fatalf("group key %s, want %s", got, want)
	}
	base := C2CResendKey("alice", "bob", req, body)
	other := func(f func(r *wire.SendRequest) []byte) []byte {
		r2, rnd2 := *req, rnd
		r2.MsgRandom = &rnd2
		return f(&r2)
	}
	for name, k := range map[string][]byte{
		"recipient": C2CResendKey("alice", "carol", req, body),
		"body":      C2CResendKey("alice", "bob", req, []byte(`[]`)),
		"random":    other(func(r *wire.SendRequest) []byte { *r.MsgRandom = 6; return C2CResendKey("alice", "bob", r, body) }),
		"custom data": other(func(r *wire.SendRequest) []byte {
			r.CloudCustomData = "x"
			return C2CResendKey("alice", "bob", r, body)
		}),
		"ClientMsgID": other(func(r *wire.SendRequest) []byte { r.ClientMsgID = "x"; return C2CResendKey("alice", "bob", r, body) }),
		"batch":       C2CResendKey("alice", batchTarget([]string{"bob"}), req, body),
	} {
		if bytes.Equal(k, base) {
			t.Errorf("a different %s gives the same key", name)
		}
	}
	if batchTarget([]string{"a", "bc"}) == batchTarget([]string{"ab", "c"}) {
		t.Error("batch targets of different lists collide")
	}
}

// A resend is answered the first send's result, from the binary dedup value
// and from the JSON one stored before it.
func TestPreviousFromDedupValue(t *testing.T) {
	for _, st := range []Stamp{StampC2C(7, 9, 1795634951), StampC2C(1<<32-1, 1<<32-1, 1<<40), StampC2C(0, 0, 0)} {
		want := st.Result()
		want.Duplicate = true
		if got := previous(dedupValue(st)); got != want {
			t.Errorf("%+v: got %+v, want %+v", st, got, want)
		}
		if n := len(dedupValue(st)); n != 17 {
			t.Errorf("dedup value of %d bytes", n)
		}
	}
	old := []byte(`{"MsgKey":"7_9_1795634951","MsgTime":1795634951,"MsgSeq":7,"Duplicate":false}`)
	if got, want := previous(old), (wire.SendResult{MsgKey: "7_9_1795634951", MsgTime: 1795634951, MsgSeq: 7, Duplicate: true}); got != want {
		t.Errorf("old value: got %+v, want %+v", got, want)
	}
}
