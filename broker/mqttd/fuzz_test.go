package mqttd

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/imbroker/imbroker/broker/wire"
)

// validFilter reports an MQTT topic filter: levels that are "#" (last
// only), "+", or free of wildcards [MQTT-4.7.1-1..3].
func validFilter(f string) bool {
	if f == "" {
		return false
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if l == "#" && i == len(levels)-1 || l == "+" {
			continue
		}
		if strings.ContainsAny(l, "+#") {
			return false
		}
	}
	return true
}

// refMatch is MQTT filter matching written from the spec, level by level.
func refMatch(f, t []string) bool {
	switch {
	case len(f) == 0:
		return len(t) == 0
	case f[0] == "#":
		return true // zero or more levels: "a/#" matches "a" [MQTT-4.7.1-2]
	case len(t) == 0:
		return false
	case f[0] == "+" || f[0] == t[0]:
		return refMatch(f[1:], t[1:])
	}
	return false
}

// refCovers: every topic filter s matches, f matches.
func refCovers(f, s []string) bool {
	switch {
	case len(f) == 0:
		return len(s) == 0
	case f[0] == "#":
		return true
	case len(s) == 0 || s[0] == "#":
		return false
	case f[0] == "+":
		return refCovers(f[1:], s[1:])
	case s[0] == "+" || f[0] != s[0]:
		return false
	}
	return refCovers(f[1:], s[1:])
}

func dollarGuard(filter, topic string) bool {
	return strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#"))
}

func aclSeeds(f *testing.F) {
	for _, s := range [][2]string{
		{"im/u/alice/#", "im/u/alice/rpc"}, {"im/u/+/rpc", "im/u/bob/rpc"}, {"#", "$SYS/x"}, {"+/x", "$SYS/x"},
		{"a/#", "a"}, {"a/+", "a"}, {"a/+/c", "a//c"}, {"/#", "/"}, {"im/g/+", "im/g/g1"}, {"a/#", "a/#"}, {"a/+", "a/#"}, {"+/+", "+/a"},
	} {
		f.Add(s[0], s[1])
	}
}

// FuzzMatchFilter: the matcher behind the subscription and delivery ACL
// decisions agrees with the spec's matching on every valid filter and
// topic name.
func FuzzMatchFilter(f *testing.F) {
	aclSeeds(f)
	f.Fuzz(func(t *testing.T, filter, topic string) {
		got := matchFilter(filter, topic) // never panics, valid input or not
		if !validFilter(filter) || topic == "" || strings.ContainsAny(topic, "+#") {
			return
		}
		want := !dollarGuard(filter, topic) && refMatch(strings.Split(filter, "/"), strings.Split(topic, "/"))
		if got != want {
			t.Fatalf("matchFilter(%q, %q) = %v, spec says %v", filter, topic, got, want)
		}
	})
}

// FuzzCovers: the plain-MQTT ACL's "filter covers subscription" decision
// agrees with a level-by-level reference, and for a topic name it is
// exactly matchFilter.
func FuzzCovers(f *testing.F) {
	aclSeeds(f)
	f.Fuzz(func(t *testing.T, filter, sub string) {
		got := covers(filter, sub)
		if !validFilter(filter) || !validFilter(sub) {
			return
		}
		want := !dollarGuard(filter, sub) && refCovers(strings.Split(filter, "/"), strings.Split(sub, "/"))
		if got != want {
			t.Fatalf("covers(%q, %q) = %v, reference %v", filter, sub, got, want)
		}
		if !strings.ContainsAny(sub, "+#") && got != matchFilter(filter, sub) {
			t.Fatalf("covers(%q, %q) = %v but matchFilter says %v", filter, sub, got, !got)
		}
	})
}

// FuzzCheckRequest: the im/req payload check accepts only JSON whose
// numbers are all finite, never echoes an Id longer than maxRequestID, and
// the reply built for it is valid JSON echoing that Id.
func FuzzCheckRequest(f *testing.F) {
	for _, s := range []string{`{"Id":"r1","Since":0}`, `{"Id":"` + strings.Repeat("x", 80) + `"}`, `{"Id":"r","StartIndex":1e400}`,
		`null`, `[]`, `{"Id":5}`, `{"Id":"\ud800"}`, ``, `{"Id":"a","x":[{"y":` + strings.Repeat("9", 70) + `}]}`} {
		f.Add([]byte(s), "group.create")
	}
	f.Fuzz(func(t *testing.T, payload []byte, op string) {
		hdr, e := checkRequest(payload, 1024)
		if len(hdr.ID) > maxRequestID {
			t.Fatalf("%q: Id of %d bytes echoed", payload, len(hdr.ID))
		}
		if e == nil {
			if !json.Valid(payload) || len(payload) > 1024 || wire.CheckNumbers(payload) != nil {
				t.Fatalf("%q accepted", payload)
			}
		} else if e.Code == 0 {
			t.Fatalf("%q refused without a code: %v", payload, e)
		}
		reply, err := okReply(replyHeader{ID: hdr.ID, Op: op}, map[string]any{"Echo": string(payload)})
		if err != nil || !json.Valid(reply) {
			t.Fatalf("reply %s, %v", reply, err)
		}
		var back replyHeader
		if err := json.Unmarshal(reply, &back); err != nil {
			t.Fatal(err)
		}
		if utf8.ValidString(hdr.ID) && utf8.ValidString(op) && (back.ID != hdr.ID || back.Op != op) {
			t.Fatalf("reply %s does not echo Id %q and Op %q", reply, hdr.ID, op)
		}
	})
}
