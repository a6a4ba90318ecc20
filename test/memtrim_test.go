package test

import (
	"fmt"
	"testing"
	"time"

	"github.com/imbroker/imbroker/config"
)

// TestMemoryTrimAfterLogins: while logins keep coming (one every 100 ms,
// well inside mqtt.trim_quiet) no trim runs, even though more than
// mqtt.trim_after_logins came; once they stop, one trim runs, counted by
// imbroker_memory_trims_total. [MEM-TRIM]
func TestMemoryTrimAfterLogins(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) {
		c.MQTT.TrimAfterLogins = 10
		c.MQTT.TrimQuiet = time.Second
		c.MQTT.TrimInterval = time.Hour
		c.MQTT.GCEveryLogins = 7
	})
	tick := time.NewTicker(100 * time.Millisecond) // pacing the logins, not waiting for an event
	defer tick.Stop()
	for i := range 30 {
		<-tick.C
		c := b.Connect(fmt.Sprintf("trim%d", i), fmt.Sprintf("trim%d", i))
		c.Disconnect(0)
	}
	if n := metric(t, b, "imbroker_memory_trims_total"); n != 0 {
		t.Fatalf("%v trims while logins kept coming", n)
	}
	waitFor(t, 20*time.Second, "a trim after the logins went quiet", func() bool {
		return metric(t, b, "imbroker_memory_trims_total") == 1
	})
	// mqtt.gc_every_logins: 7 → a GC after each 7th of the 30 logins.
	waitFor(t, 10*time.Second, "4 login GCs", func() bool {
		return metric(t, b, "imbroker_login_gcs_total") == 4
	})
}
