package sieve

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/emersion/go-message/textproto"
	"github.com/foxcpp/go-sieve/interp"
	"github.com/foxcpp/go-sieve/lexer"
)

// Tests for the local patches listed in PATCHES.md: every compile error has
// a position and a bare message, and formerly accepted broken scripts are
// refused.
func TestLoadErrorsPositioned(t *testing.T) {
	cases := []struct {
		script string
		line   int
		msg    string
	}{
		{"require \"fileinto\";\nif true {\n  fileinto \"a\";\n", 4, "expected '}'"},
		{"keep;\n}\nkeep;\n", 2, "unexpected '}'"},
		{"if header :is \"subject\" \"x {\n  keep;\n}\n", 4, "end of file before end of quoted string started at line 1"},
		{"/* open\nkeep;\n", 3, "bracket comment"},
		{"if size :over 99999999999G { discard; }", 1, "exceeds integer limits"},
		{"keep;\nrequire \"fileinto\";", 2, "require commands can only be placed"},
		{"if true { require \"fileinto\"; }", 1, "require commands can only be placed"},
		{"if anyof(true,true,) { keep; }", 1, "after ','"},
		{"if\nenvelope :is \"from\" \"a\" { keep; }", 2, `missing require "envelope"`},
		{"require \"envelope\";\nif envelope :is \"frob\" \"a\" { keep; }", 2, "envelope part 'frob'"},
		{"if address :localpart :domain \"from\" \"a\" { keep; }", 1, "only one address part"},
		{"require \"comparator-i;ascii-numeric\";\nif header :contains :comparator \"i;ascii-numeric\" \"x\" \"1\" { keep; }", 2, "does not support the :contains"},
		{"require \"variables\";\n\nset \"a\" \"${foo.bar}\";", 3, "unknown namespace 'foo'"},
		{"require \"variables\";\nset \"a\" \"${envelope.from}\";", 2, "unknown namespace 'envelope'"},
		{"require \"foo\";", 1, "unknown Sieve capability 'foo'"},
		{"\n\nelse { keep; }", 3, "must follow an if"},
		{"if header :is \"subject\" { keep; }", 1, "the header test requires 2 positional argument(s)"},
		{"keep\n", 2, "found end of file"},
		{"require [\"a\",];", 1, "after ','"},
	}
	for _, c := range cases {
		_, err := Load(strings.NewReader(c.script), DefaultOptions())
		if err == nil {
			t.Errorf("%q: loaded, want error at line %d", c.script, c.line)
			continue
		}
		var le *lexer.Error
		if !errors.As(err, &le) {
			t.Errorf("%q: error %v has no *lexer.Error", c.script, err)
			continue
		}
		if le.Position.Line != c.line || !strings.Contains(le.Msg, c.msg) {
			t.Errorf("%q: got line %d %q, want line %d containing %q", c.script, le.Position.Line, le.Msg, c.line, c.msg)
		}
	}
}

func TestRedirectLimitBeforeRecord(t *testing.T) {
	opts := DefaultOptions()
	opts.Interp.MaxRedirects = 2
	s, err := Load(strings.NewReader(`redirect "a@x"; redirect "b@x"; redirect "c@x";`), opts)
	if err != nil {
		t.Fatal(err)
	}
	d := NewRuntimeData(s, interp.DummyPolicy{}, interp.EnvelopeStatic{}, interp.MessageStatic{Header: &textproto.Header{}})
	if err := s.Execute(context.Background(), d); err == nil {
		t.Fatal("third redirect accepted")
	}
	if len(d.AppliedActions) != 2 {
		t.Fatalf("recorded %d actions, want 2 (the refused redirect must not be recorded)", len(d.AppliedActions))
	}
}

func TestExecuteHonoursContext(t *testing.T) {
	s, err := Load(strings.NewReader(`if true { keep; }`), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d := NewRuntimeData(s, interp.DummyPolicy{}, interp.EnvelopeStatic{}, interp.MessageStatic{Header: &textproto.Header{}})
	if err := s.Execute(ctx, d); !errors.Is(err, context.Canceled) {
		t.Fatalf("Execute with a cancelled context: err = %v, want context.Canceled", err)
	}
}

func TestLoadAddressChecks(t *testing.T) {
	bad := map[string]string{
		`if address :is "subject" "x" { keep; }`:                 "not allowed for the address test",
		`if address :is ["from", "x-spam"] "x" { keep; }`:        "'x-spam' is not allowed",
		`redirect "not an address";`:                             "specified redirect address",
		`require "imap4flags"; if hasflag :is "v" "x" { keep; }`: "variables extension",
	}
	for src, msg := range bad {
		_, err := Load(strings.NewReader(src), DefaultOptions())
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: err = %v, want %q", src, err, msg)
		}
	}
	for _, src := range []string{
		`if address :is ["From", "Delivered-To"] "x" { keep; }`,
		`redirect "Bob <bob@example.org>";`,
		`redirect "stephan @example.org";`,
		`require "variables"; set "a" "b@x"; redirect "${a}";`,
	} {
		if _, err := Load(strings.NewReader(src), DefaultOptions()); err != nil {
			t.Errorf("%s: %v", src, err)
		}
	}
}

func TestLoadMultipleErrors(t *testing.T) {
	src := "require [\"nope\", \"fileinto\"];\nfileinto \"a\";\nfoo;\nif true {\n  bar;\n}\nkeep :x;\nstop;\n"
	opts := DefaultOptions()
	opts.Interp.MaxErrors = 10
	_, err := Load(strings.NewReader(src), opts)
	var le *interp.LoadErrors
	if !errors.As(err, &le) {
		t.Fatalf("err = %v, want *interp.LoadErrors", err)
	}
	var lines []int
	for _, e := range le.Errs {
		var x *lexer.Error
		if !errors.As(e, &x) {
			t.Fatalf("%v has no position", e)
		}
		lines = append(lines, x.Position.Line)
	}
	// fileinto was registered despite the unknown "nope": no error at 2.
	if want := []int{1, 3, 5, 7}; !reflect.DeepEqual(lines, want) {
		t.Fatalf("error lines %v, want %v (%v)", lines, want, err)
	}
	opts.Interp.MaxErrors = 2
	_, err = Load(strings.NewReader(src), opts)
	if !errors.As(err, &le) || len(le.Errs) != 2 {
		t.Fatalf("MaxErrors 2: %v", err)
	}
	opts.Interp.MaxErrors = 0
	_, err = Load(strings.NewReader(src), opts)
	if errors.As(err, &le) {
		t.Fatalf("MaxErrors 0 (upstream behaviour) gave several errors: %v", err)
	}
}

func TestStopKeepsImplicitKeep(t *testing.T) {
	s, err := Load(strings.NewReader(`stop; discard;`), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	d := NewRuntimeData(s, interp.DummyPolicy{}, interp.EnvelopeStatic{}, interp.MessageStatic{Header: &textproto.Header{}})
	if err := s.Execute(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if want := []interp.AppliedAction{interp.ActionKeep{Implicit: true}}; !reflect.DeepEqual(d.AppliedActions, want) {
		t.Fatalf("actions %#v, want the implicit keep", d.AppliedActions)
	}
}

func TestAddressLenient(t *testing.T) {
	h := textproto.Header{}
	h.Add("Sender", "root")
	h.Add("Cc", "bad address here, c@d.org")
	cases := map[string]bool{
		`if address :all :is "sender" "root" { discard; }`:       true,
		`if address :localpart :is "sender" "root" { discard; }`: false,
		`if address :all :is "cc" "c@d.org" { discard; }`:        true,
		`if address :all :contains "cc" "bad" { discard; }`:      false,
		`if address :is ["sender", "cc"] "c@d.org" { discard; }`: true,
	}
	for src, discard := range cases {
		s, err := Load(strings.NewReader(src), DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		d := NewRuntimeData(s, interp.DummyPolicy{}, interp.EnvelopeStatic{}, interp.MessageStatic{Header: &h})
		if err := s.Execute(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		_, got := d.AppliedActions[0].(interp.ActionDiscard)
		if got != discard {
			t.Errorf("%s: discard = %v, want %v", src, got, discard)
		}
	}
}

func TestRequireUnknownPosition(t *testing.T) {
	_, err := Load(strings.NewReader("require [\"fileinto\",\n  \"x-unknown\",\n  \"envelope\"];"), DefaultOptions())
	var le *lexer.Error
	if !errors.As(err, &le) || le.Position.Line != 2 {
		t.Fatalf("err = %v, want line 2", err)
	}
	_, err = Load(strings.NewReader(`if hasflag "\\Seen" { discard; }`), DefaultOptions())
	if err == nil || !strings.Contains(err.Error(), `missing require "imap4flags"`) {
		t.Fatalf("hasflag without require: %v", err)
	}
}

func TestNonASCIIKeys(t *testing.T) {
	h := textproto.Header{}
	h.Add("Subject", "Treffen in Köln")
	raw := []byte("Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nwir treffen uns in Köln.\r\n")
	cases := map[string]bool{
		`require "body"; if body :text :contains "Köln" { discard; }`:                        true,
		`require "body"; if body :raw :contains "KÖLN" { discard; }`:                         false, // ASCII-only case folding
		`require "body"; if body :raw :contains "köln" { discard; }`:                         true,
		`if header :matches "subject" "*Köln" { discard; }`:                                  true,
		`if header :matches "subject" "*KÖLN" { discard; }`:                                  false,
		`if header :matches :comparator "i;octet" "subject" "Treffen in K?ln" { discard; }`:  false, // ? is one octet
		`if header :matches :comparator "i;octet" "subject" "Treffen in K??ln" { discard; }`: true,
		`if header :matches "subject" "*Ã*" { discard; }`:                                    false, // no Latin-1 folding of UTF-8 bytes
	}
	for src, discard := range cases {
		s, err := Load(strings.NewReader(src), DefaultOptions())
		if err != nil {
			t.Fatal(src, err)
		}
		d := NewRuntimeData(s, interp.DummyPolicy{}, interp.EnvelopeStatic{}, interp.MessageStatic{Header: &h, RawMessage: raw})
		if err := s.Execute(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		_, got := d.AppliedActions[0].(interp.ActionDiscard)
		if got != discard {
			t.Errorf("%s: discard = %v, want %v", src, got, discard)
		}
	}
}

// A match key is expanded once (RFC 5229 3): a variable whose value looks
// like "${x}" is compared as that text, by header/string tests and by the
// body test.
func TestKeyExpandedOnce(t *testing.T) {
	h := textproto.Header{}
	h.Add("Subject", "${x}")
	h.Add("X-Test", "Lunch")
	raw := []byte("Subject: ${x}\r\nX-Test: Lunch\r\n\r\nLunch at noon.\r\n")
	prefix := `require ["variables", "body"]; set "x" "Lunch"; if header :matches "subject" "*" { set "s" "${1}"; } `
	cases := map[string]bool{
		`if header :is "x-test" "${s}" { discard; }`:        false,
		`if header :is "x-test" "${x}" { discard; }`:        true,
		`if string :is "${s}" "Lunch" { discard; }`:         false,
		`if string :is "${s}" "${s}" { discard; }`:          true,
		`if body :text :contains "${s}" { discard; }`:       false,
		`if body :text :contains "${x} at" { discard; }`:    true,
		`if header :matches "x-test" "${s}*" { discard; }`:  false,
		`if header :contains "subject" "${s}" { discard; }`: true, // "${x}" contains itself
	}
	for src, discard := range cases {
		s, err := Load(strings.NewReader(prefix+src), DefaultOptions())
		if err != nil {
			t.Fatal(src, err)
		}
		d := NewRuntimeData(s, interp.DummyPolicy{}, interp.EnvelopeStatic{}, interp.MessageStatic{Header: &h, RawMessage: raw})
		if err := s.Execute(context.Background(), d); err != nil {
			t.Fatal(src, err)
		}
		_, got := d.AppliedActions[0].(interp.ActionDiscard)
		if got != discard {
			t.Errorf("%s: discard = %v, want %v", src, got, discard)
		}
	}
}

// Options.MaxMatchWildcards bounds a :matches key with variables after
// expansion; 0 keeps upstream's behaviour, constant keys are not counted.
func TestMaxMatchWildcardsExpanded(t *testing.T) {
	h := textproto.Header{}
	h.Add("Subject", "abcd")
	raw := []byte("Subject: abcd\r\n\r\nabcd\r\n")
	cases := []struct {
		src   string
		limit int
		err   bool
	}{
		{`require "variables"; set "p" "a*b*c*d*"; if header :matches "subject" "${p}" { discard; }`, 3, true},
		{`require "variables"; set "p" "a*b*c\\*"; if header :matches "subject" "${p}" { discard; }`, 3, false},
		{`require ["variables", "body"]; set "p" "*a?b?c*"; if body :text :matches "${p}" { discard; }`, 3, true},
		{`require "variables"; set "p" "a*b*c*d*"; if header :matches "subject" "${p}" { discard; }`, 0, false},
		{`require "variables"; set "p" "a*b*c*d*"; if header :contains "subject" "${p}" { discard; }`, 3, false},
		{`if header :matches "subject" "a*b*c*d*" { discard; }`, 3, false},
	}
	for _, c := range cases {
		opts := DefaultOptions()
		opts.Interp.MaxMatchWildcards = c.limit
		s, err := Load(strings.NewReader(c.src), opts)
		if err != nil {
			t.Fatal(c.src, err)
		}
		d := NewRuntimeData(s, interp.DummyPolicy{}, interp.EnvelopeStatic{}, interp.MessageStatic{Header: &h, RawMessage: raw})
		err = s.Execute(context.Background(), d)
		if c.err != (err != nil) || (err != nil && !strings.Contains(err.Error(), "wildcards after variable expansion")) {
			t.Errorf("%s (limit %d): err = %v, want error %v", c.src, c.limit, err, c.err)
		}
	}
}
