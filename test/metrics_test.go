package test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestE2E_Metrics(t *testing.T) {
	b := StartBroker(t)
	alice := b.Connect("alice", "alice")
	alice.Publish1("im/send/c2c/bob", Text("counted", Random()))
	alice.NextEvent() // stored and delivered
	resp, err := http.Get("http://" + b.App.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"imbroker_c2c_messages_total 1", "imbroker_mqtt_connections 1", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
