package vacation

import (
	"strings"
	"testing"
	"time"
)

func TestClamp(t *testing.T) {
	p := DefaultPeriods()
	for _, tc := range []struct {
		in, want time.Duration
		warn     string
	}{
		{0, day, "under the minimum"},
		{time.Hour, day, "under the minimum"},
		{day, day, ""},
		{7 * day, 7 * day, ""},
		{60 * day, 60 * day, ""},
		{90 * day, 60 * day, "over the maximum"},
	} {
		got, warn := p.Clamp(tc.in)
		if got != tc.want || (tc.warn == "") != (warn == "") || !strings.Contains(warn, tc.warn) {
			t.Errorf("Clamp(%s) = %s, %q; want %s, %q", tc.in, got, warn, tc.want, tc.warn)
		}
	}
	noMax := Periods{Min: time.Second, Default: day}
	if got, warn := noMax.Clamp(90 * day); got != 90*day || warn != "" {
		t.Errorf("no maximum: Clamp(90d) = %s, %q", got, warn)
	}
	if got, _ := noMax.Clamp(3600 * time.Second); got != time.Hour {
		t.Errorf("lowered minimum: Clamp(3600s) = %s", got)
	}
}

func TestDefaultHandle(t *testing.T) {
	a := DefaultHandle("I am away ${name}", "", "", false)
	if a != DefaultHandle("I am away ${name}", "", "", false) {
		t.Error("handle is not deterministic")
	}
	for _, other := range []string{
		DefaultHandle("I am away Bob", "", "", false), // expanded text differs from the unexpanded one
		DefaultHandle("I am away ${name}", "s", "", false),
		DefaultHandle("I am away ${name}", "", "f@x", false),
		DefaultHandle("I am away ${name}", "", "", true),
		DefaultHandle("I am away ${name", "}", "", false), // field boundaries matter
	} {
		if other == a {
			t.Errorf("distinct arguments share handle %q", a)
		}
	}
}
