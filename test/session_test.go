package test

import (
	"fmt"
	"testing"
	"time"
)

// TestE2E_PersistentSessionDoesNotRedeliver: a 3.1.1 clean=false session
// keeps its subscription across a reconnect, but events sent while it was
// offline come only once, by sync: mochi must not replay them as well.
func TestE2E_PersistentSessionDoesNotRedeliver(t *testing.T) {
	b := StartBroker(t)
	alice := b.Connect("alice", "alice")
	o := b.ClientOpts("bob:phone", "bob", b.Sig("bob")).SetCleanSession(false)
	bob := ConnectOpts(t, o, "bob")
	bob.Disconnect(100)

	// bob's tablet stays online: once it has every live copy, the delivery
	// worker has finished with bob's stream, so nothing sent while the phone
	// was away can still be in flight when it comes back.
	tablet := b.Connect("bob:tablet", "bob")
	for i := 0; i < 5; i++ {
		alice.Publish1("im/send/c2c/bob", Text(fmt.Sprintf("m%d", i), Random()))
	}
	for i := 0; i < 5; i++ {
		tablet.NextEvent()
	}
	o2 := b.ClientOpts("bob:phone", "bob", b.Sig("bob")).SetCleanSession(false)
	bob2 := ConnectOpts(t, o2, "bob")
	evs, r := bob2.Sync("after-reconnect", 0)
	if r["Complete"] != true {
		t.Fatalf("sync reply %v", r)
	}
	checkSeqRun(t, evs, 1, 5)
	if len(evs) != 5 {
		t.Fatalf("%d events for 5 messages: the session replayed some", len(evs))
	}
	// The next live event is Seq 6, with nothing queued before it.
	alice.Publish1("im/send/c2c/bob", Text("live", Random()))
	if e := bob2.NextEvent(); e.Seq != 6 {
		t.Fatalf("next event %s", e.Raw)
	}
	select {
	case e := <-bob2.Events:
		t.Fatalf("duplicate after live event: %s", e.Raw)
	case <-time.After(200 * time.Millisecond): // absence check after the awaited event
	}
}
