package rest

import "testing"

// A misspelt read endpoint would be forwarded (a round trip, never a lost
// write), but the list is meant to name real endpoints.
func TestReadEndpointsAreRegistered(t *testing.T) {
	known := map[string]bool{}
	for _, ep := range registry() {
		known[ep.Path] = true
	}
	for p := range readEndpoints {
		if !known[p] {
			t.Errorf("readEndpoints names %q, which is no endpoint", p)
		}
	}
}
