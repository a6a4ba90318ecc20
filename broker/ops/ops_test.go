package ops

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/imbroker/imbroker/internal/imerr"
)

type muteReq struct {
	GroupId   string
	MuteUntil int64
}

type muteResp struct {
	MuteUntil int64
	By        string
}

func mute(_ context.Context, a Actor, q *muteReq) (*muteResp, error) {
	if q.GroupId == "" {
		return nil, imerr.GroupBadParams.New("GroupId is required")
	}
	return &muteResp{MuteUntil: q.MuteUntil, By: a.User}, nil
}

func TestOpDecodesRunsAndKeepsNumbersExact(t *testing.T) {
	reg, err := NewRegistry([]Op{New("group.mute", imerr.GroupBadParams, mute)})
	if err != nil {
		t.Fatal(err)
	}
	op, ok := reg.Lookup("group.mute")
	if !ok {
		t.Fatal("op not found")
	}
	out, err := op.Run(context.Background(), Actor{User: "alice"}, []byte(`{"GroupId":"g","MuteUntil":4611686018427387903}`))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(out)
	if string(raw) != `{"MuteUntil":4611686018427387903,"By":"alice"}` {
		t.Fatalf("reply %s", raw)
	}
	_, err = op.Run(context.Background(), Actor{}, []byte(`{"MuteUntil":"soon"}`))
	if e := imerr.As(err); e.Code != imerr.GroupBadParams.Code {
		t.Fatalf("bad body: %v", err)
	}
	_, err = op.Run(context.Background(), Actor{}, nil)
	if !imerr.GroupBadParams.Is(err) {
		t.Fatalf("handler error lost: %v", err)
	}
}

func TestRegistryRefusesDuplicates(t *testing.T) {
	o := New("x", imerr.BadParams, mute)
	if _, err := NewRegistry([]Op{o}, []Op{o}); err == nil || errors.Is(err, nil) {
		t.Fatal("duplicate accepted")
	}
	if _, ok := (&Registry{}).Lookup("x"); ok {
		t.Fatal("empty registry found an op")
	}
}

// An operation writes unless marked ReadOnly: in cluster mode a forgotten
// mark costs a forward, never a write on a node that does not own the store.
func TestOpWritesUnlessReadOnly(t *testing.T) {
	o := New("group.mute", imerr.GroupBadParams, mute)
	if !o.Writes() {
		t.Fatal("a new operation must count as a write")
	}
	if r := o.ReadOnly(); r.Writes() || r.Name != o.Name {
		t.Fatalf("ReadOnly: %+v", r)
	}
	if !o.Writes() {
		t.Fatal("ReadOnly changed the original")
	}
}
