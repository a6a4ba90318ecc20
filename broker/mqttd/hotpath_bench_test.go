package mqttd

import (
	"testing"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/config"
)

// Hot paths of every send and delivery (docs/benchmarks.md).

func BenchmarkParseSend(b *testing.B) {
	cfg := config.Default()
	payload := []byte(`{"MsgRandom":42,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"a typical short chat message, about sixty bytes long"}}],"CloudCustomData":"x"}`)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := wire.ParseSend(payload, cfg.Messages); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEnvelope(b *testing.B) {
	stored, _ := wire.EncodeEvent(wire.EventC2CMsg, wire.C2CMsg{From: "alice", To: "bob", MsgRandom: 1, MsgBody: []byte(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hello"}}]`)})
	b.SetBytes(int64(len(stored)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = wire.Envelope(1795634951123, uint64(i), stored)
	}
}

func BenchmarkACL_OwnsUserTopic(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if !ownsUserTopic("alice_1234", "im/u/alice_1234/rpc") {
			b.Fatal("refused")
		}
	}
}

func BenchmarkMatchFilter(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if !matchFilter("im/u/alice/#", "im/u/alice/rpc") {
			b.Fatal("no match")
		}
	}
}
