package vacation

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

const day = 24 * time.Hour

// Periods bound the reply interval (:days, :seconds). Pigeonhole's defaults:
// minimum 1 day, default 7 days; Pigeonhole 2.4 caps at 60 days.
type Periods struct {
	Min, Default, Max time.Duration // Max 0: no maximum
}

// DefaultPeriods are 1 day / 7 days / 60 days.
func DefaultPeriods() Periods {
	return Periods{Min: day, Default: 7 * day, Max: 60 * day}
}

// Clamp applies the limits to a requested period. warning is non-empty
// when the value was changed (a compile warning, not an error: RFC 5230
// lets a site raise or lower the value).
func (p Periods) Clamp(d time.Duration) (time.Duration, string) {
	if d < p.Min {
		return p.Min, fmt.Sprintf("is under the minimum of %s (raised to it)", human(p.Min))
	}
	if p.Max > 0 && d > p.Max {
		return p.Max, fmt.Sprintf("is over the maximum of %s (lowered to it)", human(p.Max))
	}
	return d, ""
}

// human renders a period the way a script author wrote it.
func human(d time.Duration) string {
	if d%day == 0 && d != 0 {
		n := int64(d / day)
		if n == 1 {
			return "1 day"
		}
		return fmt.Sprintf("%d days", n)
	}
	n := int64(d / time.Second)
	if n == 1 {
		return "1 second"
	}
	return fmt.Sprintf("%d seconds", n)
}

// DefaultHandle derives the handle of a vacation command without :handle
// from its UNEXPANDED arguments (RFC 5230 section 4.2: "the handle must not
// have undergone variable expansion"), so two vacation commands that
// differ in text share no memory, while one command whose ${variables}
// expand differently per message keeps one.
func DefaultHandle(reason, subject, from string, mime bool) string {
	h := sha256.New()
	for _, s := range []string{reason, subject, from} {
		fmt.Fprintf(h, "%d:%s;", len(s), s)
	}
	fmt.Fprintf(h, "mime=%t", mime)
	return "default-" + hex.EncodeToString(h.Sum(nil))[:24]
}
