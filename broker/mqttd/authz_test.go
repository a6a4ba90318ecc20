package mqttd

import "testing"

func TestMatchFilter(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+", "a", false},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"a/b/#", "a", false},
		{"#", "a", true},
		{"#", "a/b", true},
		{"+/b", "a/b", true},
		{"+/b", "a/c", false},
		{"a/b", "a", false},
		{"a", "a/b", false},
		{"a/b", "a/c", false},
		{"+", "", true},
		{"+", "a/b", false},
		{"+/+", "/", true},
		{"a/+/c", "a//c", true},
		{"a/+/#", "a/b", true},
		{"im/u/alice/#", "im/u/alice/rpc", true},
		{"im/u/alice/#", "im/u/alice", true},
		{"im/u/alice/#", "im/u/alicex", false},
		{"im/u/alice", "im/u/alice/rpc", false},
		{"im/u/alice/rpc", "im/u/alice/rpc", true},
	}
	for _, tc := range tests {
		if got := matchFilter(tc.filter, tc.topic); got != tc.want {
			t.Errorf("matchFilter(%q, %q) = %v, want %v", tc.filter, tc.topic, got, tc.want)
		}
	}
}

func TestOwnsUserTopic(t *testing.T) {
	tests := []struct {
		user, topic string
		want        bool
	}{
		{"alice", "im/u/alice", true},
		{"alice", "im/u/alice/rpc", true},
		{"alice", "im/u/alice/#", true},
		{"alice", "im/u/alice/+", true},
		{"alice", "im/u/alicex", false},
		{"alice", "im/u/alic", false},
		{"alice", "im/u/bob", false},
		{"alice", "im/u/+", false},
		{"alice", "im/u/#", false},
		{"alice", "im/u/", false},
		{"alice", "im/u", false},
		{"alice", "im/send/c2c/alice", false},
		{"", "im/u/", false},
		{"", "im/u//x", false},
		{"alice", "$share/g/im/u/alice", false},
		{"alice", "IM/U/alice", false},
	}
	for _, tc := range tests {
		if got := ownsUserTopic(tc.user, tc.topic); got != tc.want {
			t.Errorf("ownsUserTopic(%q, %q) = %v, want %v", tc.user, tc.topic, got, tc.want)
		}
	}
}
