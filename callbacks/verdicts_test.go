package callbacks

import (
	"testing"

	"github.com/imbroker/imbroker/internal/imerr"
)

func TestVerdictsRefusal(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    Verdicts
		d    Decision
		want int
	}{
		{"failed under refuse", SnsVerdicts, Decision{Action: Reject, Failed: true, Code: 38001}, imerr.CallbackFailed.Code},
		{"app code in range", SnsVerdicts, Decision{Action: Reject, Code: 38001}, 38001},
		{"app code out of range", SnsVerdicts, Decision{Action: Reject, Code: 10101}, imerr.CallbackRejectSns.Code},
		{"no code", GroupVerdicts, Decision{Action: Reject}, imerr.CallbackRejectGroup.Code},
		{"c2c range end", C2CVerdicts, Decision{Action: Reject, Code: 130000}, 130000},
	} {
		if got := tc.v.Refusal(tc.d).Code; got != tc.want {
			t.Errorf("%s: code %d, want %d", tc.name, got, tc.want)
		}
	}
}
