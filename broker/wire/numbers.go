package wire

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
)

// MaxNumberChars bounds how a JSON number may be written anywhere in a send
// or a request: the longest float64 JavaScript writes is 24 characters
// ("-1.7976931348623157e+308"), so 64 costs no real client anything and keeps
// a 400-digit literal out of the store. [IM-NUMBERS]
const MaxNumberChars = 64

// numRange is the range of a numeric element field.
type numRange struct {
	integer bool    // an integer value (1e2 and 3.0 are; exact past 2^53 only when written as digits)
	lo, hi  float64 // bounds when !integer
	ilo     int64   // bounds when integer
	ihi     int64
}

// The ranges of the element fields (docs/protocol.md, "Numbers").
var (
	rngLatitude  = &numRange{lo: -90, hi: 90}
	rngLongitude = &numRange{lo: -180, hi: 180}
	rngIndex     = &numRange{integer: true, ilo: math.MinInt32, ihi: math.MaxInt32} // a face index
	rngCount     = &numRange{integer: true, ilo: 0, ihi: math.MaxUint32}            // seconds, pixels, flags, formats, counts
	rngBytes     = &numRange{integer: true, ilo: 0, ihi: math.MaxInt64}             // sizes in bytes (exact past 2^53)
)

// CheckNumbers checks every number in a valid JSON document: each must be
// a finite float64 (1e400 is not) written in at most MaxNumberChars
// characters. encoding/json refuses such numbers only when it decodes them
// into a Go number; a value kept as raw JSON (a MsgBody field, push info)
// would be stored and delivered verbatim.
func CheckNumbers(doc []byte) error {
	for i := 0; i < len(doc); i++ {
		switch c := doc[i]; {
		case c == '"':
			for i++; i < len(doc) && doc[i] != '"'; i++ {
				if doc[i] == '\\' {
					i++
				}
			}
		case c == '-' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(doc) && isNumberByte(doc[j]) {
				j++
			}
			if err := checkNumber(doc[i:j]); err != nil {
				return err
			}
			i = j - 1
		}
	}
	return nil
}

func isNumberByte(c byte) bool {
	return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

// checkNumber checks one number literal.
func checkNumber(lit []byte) error {
	if len(lit) > MaxNumberChars {
		return fmt.Errorf("number %.16s… is written in %d characters, limit %d", lit, len(lit), MaxNumberChars)
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return fmt.Errorf("number %s is not a finite number", lit)
	}
	return nil
}

// check checks a number field's value against the range.
func (r *numRange) check(v []byte) error {
	v = bytes.TrimSpace(v)
	if err := checkNumber(v); err != nil {
		return err
	}
	f, _ := strconv.ParseFloat(string(v), 64)
	if r.integer {
		bad := fmt.Errorf("must be an integer from %d to %d", r.ilo, r.ihi)
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil { // 1e2 or 3.0: integral, and held exactly by the float
			if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
				return bad
			}
			n = int64(f)
		}
		if n < r.ilo || n > r.ihi {
			return bad
		}
		return nil
	}
	if f < r.lo || f > r.hi {
		return fmt.Errorf("must be a number from %g to %g", r.lo, r.hi)
	}
	return nil
}
