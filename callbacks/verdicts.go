package callbacks

import "github.com/imbroker/imbroker/internal/imerr"

// Verdicts is how one family of before-callbacks refuses: the code when the
// app names none of its own, and the range of codes Tencent leaves to the
// app (tencent-im.md §5).
type Verdicts struct {
	Reject *imerr.Kind
	Lo, Hi int
}

// The families of before-callbacks.
var (
	C2CVerdicts   = Verdicts{imerr.CallbackRejectC2C, 120001, 130000}
	GroupVerdicts = Verdicts{imerr.CallbackRejectGroup, 10100, 10200}
	SnsVerdicts   = Verdicts{imerr.CallbackRejectSns, 38000, 39000}
)

// AppCode reports whether code is one the app may choose.
func (v Verdicts) AppCode(code int) bool { return code >= v.Lo && code <= v.Hi }

// Refusal is the error a refusing verdict (reject, drop where it means
// reject, or a failure under the refuse policy) becomes: the one mapping
// from callback verdicts to errors.
func (v Verdicts) Refusal(d Decision) *imerr.Error {
	switch {
	case d.Failed:
		return imerr.CallbackFailed.Err()
	case v.AppCode(d.Code):
		return imerr.Custom(d.Code, d.Info)
	default:
		return v.Reject.Err()
	}
}
