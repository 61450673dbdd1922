package lda

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseAddress(t *testing.T) {
	for _, tc := range []struct {
		in, def       string
		local, domain string
		bad           bool
	}{
		{"alice@example.org", "", "alice", "example.org", false},
		{"<Alice+Lists@Example.ORG>", "", "Alice+Lists", "example.org", false},
		{" alice@example.org ", "", "alice", "example.org", false},
		{"alice", "example.net", "alice", "example.net", false},
		{"alice", "", "", "", true},
		{"@example.org", "", "", "", true},
		{"alice@", "", "", "", true},
		{"", "example.org", "", "", true},
		{"a b@example.org", "", "", "", true},
		{"a\nb@example.org", "", "", "", true},
		{"\"quoted@at\"@example.org", "", "\"quoted@at\"", "example.org", false},
	} {
		local, domain, err := ParseAddress(tc.in, tc.def)
		if tc.bad {
			if !errors.Is(err, ErrBadAddress) {
				t.Errorf("ParseAddress(%q) = %q, %q, %v; want ErrBadAddress", tc.in, local, domain, err)
			}
			continue
		}
		if err != nil || local != tc.local || domain != tc.domain {
			t.Errorf("ParseAddress(%q, %q) = %q, %q, %v; want %q, %q", tc.in, tc.def, local, domain, err, tc.local, tc.domain)
		}
	}
}

func TestCandidates(t *testing.T) {
	str := func(rs []Recipient) string {
		s := ""
		for _, r := range rs {
			s += fmt.Sprintf("[%s|%s|%s] ", r.User, r.Separator, r.Detail)
		}
		return s
	}
	for _, tc := range []struct {
		local, seps, want string
	}{
		{"alice", "+-", "[alice||] "},
		{"alice+lists", "+-", "[alice+lists||] [alice|+|lists] "},
		{"alice-lists", "+-", "[alice-lists||] [alice|-|lists] "},
		{"alice-lists", "+", "[alice-lists||] "},
		{"Alice+Lists", "+", "[alice+lists||] [alice|+|Lists] "},
		{"mary-jane+x", "+-", "[mary-jane+x||] [mary|-|jane+x] [mary-jane|+|x] "},
		{"+x", "+", "[+x||] "}, // a leading separator is not a detail
		{"a++", "+", "[a++||] [a|+|+] [a+|+|] "},
	} {
		if got := str(Candidates("x@y", tc.local, "y", tc.seps)); got != tc.want {
			t.Errorf("Candidates(%q, %q) = %s, want %s", tc.local, tc.seps, got, tc.want)
		}
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{&Error{Code: ExitNoUser, Reason: "unknown user"}, 67},
		{fmt.Errorf("wrapped: %w", &Error{Code: ExitNoPerm}), 77},
		{&Error{Code: ExitUsage}, 64},
		{errors.New("anything unexpected"), 75},
		{context.DeadlineExceeded, 75},
		{fmt.Errorf("x: %w", context.Canceled), 75},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestSafePathPart(t *testing.T) {
	for _, s := range []string{"", ".", "..", ".x", "a/b", `a\b`, "a\x00", "a\x7f", "\xff"} {
		if safePathPart(s) == "" {
			t.Errorf("safePathPart(%q) accepted", s)
		}
	}
	for _, s := range []string{"alice", "mary-jane", "a.b", "élodie"} {
		if why := safePathPart(s); why != "" {
			t.Errorf("safePathPart(%q) = %s", s, why)
		}
	}
}

func FuzzCandidates(f *testing.F) {
	for _, s := range []string{"alice+lists@example.org", "<a-b-c@x>", "mary-jane+x@Example.ORG", "@x", "a@", "\"q@q\"@x", "../x@y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		local, domain, err := ParseAddress(addr, "default.example")
		if err != nil {
			return
		}
		cs := Candidates(addr, local, domain, "+-")
		if len(cs) == 0 || cs[0].Detail != "" {
			t.Fatalf("Candidates(%q): first is not the whole local part: %+v", addr, cs)
		}
		for _, c := range cs {
			// The user plus separator plus detail is the local part again.
			if got := c.User + c.Separator + c.Detail; !strings.EqualFold(got, local) {
				t.Fatalf("Candidates(%q): %q+%q+%q != %q", addr, c.User, c.Separator, c.Detail, local)
			}
			if c.Domain != strings.ToLower(c.Domain) {
				t.Fatalf("domain %q not lower-cased", c.Domain)
			}
			// A user that passes safePathPart is one path element.
			if safePathPart(c.User) == "" && (strings.Contains(c.User, "/") || c.User == ".." || c.User == ".") {
				t.Fatalf("unsafe user %q accepted", c.User)
			}
		}
	})
}
