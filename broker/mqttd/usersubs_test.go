package mqttd

import (
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

// A user topic's list is built once and kept until a filter that can
// match the topic changes: the topic itself (shared or not) or any
// wildcard filter; another user's exact filter leaves it. A change while
// the list is built makes that list serve once; an unsubscribe of the
// exact filter drops the entry, so ended sessions leave nothing behind.
func TestUserSubsRebuildOnlyAfterAChangeThatMayConcernThem(t *testing.T) {
	var x userSubs
	builds := 0
	build := func() ([]roomSub, bool) { builds++; return []roomSub{{id: "bob"}}, true }
	get := func(topic string) {
		t.Helper()
		if list, ok := x.get(topic, build); !ok || len(list) != 1 {
			t.Fatalf("get %s: %v %v", topic, list, ok)
		}
	}
	sub := func(filter string, removed bool) { x.changed([]packets.Subscription{{Filter: filter}}, removed) }
	steps := []struct {
		change  func()
		builds  int // after a get of im/u/bob
		comment string
	}{
		{func() {}, 1, "first get builds"},
		{func() {}, 1, "kept"},
		{func() { sub("im/u/alice", false) }, 1, "another user's topic"},
		{func() { sub("sensors/7/temp", true) }, 1, "a plain exact filter"},
		{func() { sub("im/u/bob", false) }, 2, "the topic itself"},
		{func() { sub("$share/g/im/u/bob", false) }, 3, "the topic, shared"},
		{func() { sub("sensors/+/temp", false) }, 4, "any wildcard filter"},
		{func() { sub("#", true) }, 5, "any wildcard filter, removed"},
		{func() {}, 5, "kept again"},
	}
	for _, st := range steps {
		st.change()
		get("im/u/bob")
		if builds != st.builds {
			t.Fatalf("%s: %d builds, want %d", st.comment, builds, st.builds)
		}
	}

	// A change during the build: that list is not kept.
	racing := func() ([]roomSub, bool) { builds++; sub("im/u/bob", false); return nil, true }
	x.changed([]packets.Subscription{{Filter: "im/u/bob"}}, false)
	x.get("im/u/bob", racing)
	get("im/u/bob")
	if builds != 7 {
		t.Fatalf("a list built across a change was kept: %d builds, want 7", builds)
	}

	get("im/u/carol")
	if n := x.len(); n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
	sub("im/u/bob", true)
	sub("$share/g/im/u/carol", true)
	if n := x.len(); n != 0 {
		t.Fatalf("%d entries after their filters were unsubscribed, want 0", n)
	}
}

// A group topic's list is rebuilt after a change to its own filter or to a
// wildcard filter that may match group topics, and kept through any other.
func TestRoomSubsRebuildOnlyAfterAChangeThatMayConcernThem(t *testing.T) {
	var x roomSubs
	builds := 0
	build := func() ([]roomSub, bool) { builds++; return []roomSub{{id: "m1"}}, true }
	steps := []struct {
		filter string
		builds int
	}{
		{"", 1},
		{"im/g/other", 1},
		{"im/u/+", 1},
		{"sensors/#", 1},
		{"im/g/room", 2},
		{"$share/s/im/g/room", 3},
		{"im/g/+", 4},
		{"+/+/room", 5},
		{"#", 6},
		{"", 6},
	}
	for _, st := range steps {
		if st.filter != "" {
			x.changed([]packets.Subscription{{Filter: st.filter}})
		}
		if list, ok := x.get("im/g/room", build); !ok || len(list) != 1 {
			t.Fatalf("get after %q: %v %v", st.filter, list, ok)
		}
		if builds != st.builds {
			t.Fatalf("after a change to %q: %d builds, want %d", st.filter, builds, st.builds)
		}
	}
}

// len is how many topics have an entry.
func (x *userSubs) len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.rooms)
}
