package mochifix

import (
	"fmt"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

// FuzzTopicAliasInbound: a client's PUBLISHes setting and using aliases
// (in the range the caller has already checked) resolve to exactly the
// topics a plain alias table gives, and an alias never set is refused.
func FuzzTopicAliasInbound(f *testing.F) {
	f.Add(uint8(3), []byte{0, 1, 0, 0, 1, 2, 1, 0})
	f.Add(uint8(1), []byte{1, 0})
	f.Fuzz(func(t *testing.T, max uint8, steps []byte) {
		inMax := uint16(max%16) + 1
		c := &conn{inMax: inMax, in: map[uint16]string{}}
		ref := map[uint16]string{}
		for i := 0; i+1 < len(steps); i += 2 {
			id := uint16(steps[i])%inMax + 1
			topic := ""
			if steps[i+1]%3 != 0 { // a third of the PUBLISHes use the alias alone
				topic = fmt.Sprintf("im/send/c2c/u%d", steps[i+1])
			}
			pk := packets.Packet{TopicName: topic, Properties: packets.Properties{TopicAlias: id, TopicAliasFlag: true}}
			ok := c.resolve(&pk)
			if topic != "" {
				ref[id] = topic
			}
			want, known := ref[id]
			if ok != known || (ok && pk.TopicName != want) {
				t.Fatalf("step %d alias %d topic %q: resolved %q %v, want %q %v", i/2, id, topic, pk.TopicName, ok, want, known)
			}
		}
	})
}

// FuzzTopicAliasOutbound: PUBLISHes given aliases when queued and written
// later in queue order decode, on a client that keeps the alias table the
// spec describes, to exactly the topics they were sent with; aliases stay
// within the client's maximum.
func FuzzTopicAliasOutbound(f *testing.F) {
	f.Add(uint8(2), []byte{0, 2, 1, 1, 4, 1, 0, 1, 1})
	f.Add(uint8(0), []byte{0, 1})
	f.Fuzz(func(t *testing.T, max uint8, steps []byte) {
		outMax := uint16(max % 8)
		c := &conn{outMax: outMax, out: map[string]outAlias{}}
		client := map[uint16]string{}
		type queued struct {
			pk    packets.Packet
			topic string
		}
		var queue []queued
		write := func() {
			q := queue[0]
			queue = queue[1:]
			pk := q.pk
			got := pk.TopicName
			if pk.Properties.TopicAliasFlag {
				if id := pk.Properties.TopicAlias; id == 0 || id > outMax {
					t.Fatalf("alias %d outside 1..%d", id, outMax)
				}
				if got != "" {
					client[pk.Properties.TopicAlias] = got
				} else {
					got = client[pk.Properties.TopicAlias]
				}
			}
			if got != q.topic {
				t.Fatalf("a PUBLISH to %q reached the client as %q", q.topic, got)
			}
			c.sent(&pk)
		}
		for _, b := range steps {
			if b%2 == 1 && len(queue) > 0 {
				write()
				continue
			}
			topic := fmt.Sprintf("im/u/u%d", b/2%8)
			pk := packets.Packet{TopicName: topic}
			c.alias(&pk)
			queue = append(queue, queued{pk, topic})
		}
		for len(queue) > 0 {
			write()
		}
	})
}
