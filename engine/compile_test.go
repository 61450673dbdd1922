package engine

import (
	"reflect"
	"sort"
	"strings"
	"testing"
)

// TestCompileDiagnostics checks line numbers (compared with Pigeonhole's
// sievec on the same scripts) and that messages read as sentences without
// interpreter call chains.
func TestCompileDiagnostics(t *testing.T) {
	cases := []struct {
		name   string
		script string
		line   int
		msg    string
	}{
		{"missing require fileinto", "if header :contains \"subject\" \"x\" {\n  fileinto \"a\";\n}\n", 2, `missing require "fileinto"`},
		{"unclosed block", "require \"fileinto\";\nif true {\n  fileinto \"a\";\n\n", 5, "expected '}'"},
		{"stray brace", "require \"fileinto\";\nfileinto \"a\";\n}\nkeep;\n", 3, "unexpected '}'"},
		{"unterminated string", "require \"fileinto\";\nif header :contains \"subject\" \"x {\n  fileinto \"a\";\n}\n", 5, "end of file before end of quoted string started at line 3"},
		{"unknown capability", "require \"foo\";\n", 1, "unknown Sieve capability 'foo'"},
		{"late require", "keep;\nrequire \"fileinto\";\n", 2, "require commands can only be placed at top level"},
		{"missing require envelope", "if envelope :is \"from\" \"a@b\" { keep; }\n", 1, `missing require "envelope"`},
		{"size overflow", "\nif size :over 99999999999G { discard; }\n", 2, "exceeds integer limits"},
		{"trailing comma", "if anyof(true,true,) { keep; }\n", 1, "after ','"},
		{"ascii-numeric contains", "require \"comparator-i;ascii-numeric\";\nif header :contains :comparator \"i;ascii-numeric\" \"x\" \"1\" { keep; }\n", 2, "does not support the :contains match type"},
		{"envelope part", "require \"envelope\";\nif envelope :is \"frob\" \"a@b\" { keep; }\n", 2, "envelope part 'frob'"},
		{"duplicate address part", "if address :localpart :domain \"from\" \"a\" { keep; }\n", 1, "only one address part"},
		{"unknown namespace", "require \"variables\";\nset \"a\" \"${foo.bar}\";\n", 2, "unknown namespace 'foo'"},
		{"envelope namespace without require", "require \"variables\";\nset \"a\" \"${envelope.from}\";\n", 2, "unknown namespace 'envelope'"},
		{"missing semicolon at EOF", "keep\n", 2, "found end of file"},
		{"unknown command", "\nfoo;\n", 2, "unknown command 'foo'"},
		{"elsif without test", "if true { keep; } elsif;\n", 1, "the elsif command requires a test"},
		{"header one argument", "if header :is \"subject\" { keep; }\n", 1, "the header test requires 2 positional argument(s), but 1 is/are specified"},
		{"unknown tag", "if header :frob \"subject\" \"x\" { keep; }\n", 1, "unknown tagged argument ':frob' for the header test"},
		{"redirect without address", "redirect;\n", 1, "the redirect command requires 1 positional argument(s)"},
		{"size without tag", "if size 100 { keep; }\n", 1, "either the :under or the :over tag"},
		{"two match types", "if header :is :contains \"subject\" \"x\" { keep; }\n", 1, "only one match type"},
		{"unknown comparator", "if header :comparator \"i;foo\" \"subject\" \"x\" { keep; }\n", 1, "unknown comparator 'i;foo'"},
		{"copy without require", "require \"fileinto\";\nfileinto :copy \"x\";\n", 2, `missing require "copy"`},
		{"stop with argument", "stop \"x\";\n", 1, "the stop command accepts at most 0"},
		{"orphan else", "else { keep; }\n", 1, "must follow an if or elsif"},
		{"fileinto string list", "require \"fileinto\";\nfileinto [\"a\",\"b\"];\n", 2, "must be a string, not a string list"},
		{"unterminated comment", "/* unterminated comment\nkeep;\n", 3, "bracket comment"},
		{"string as command", "keep;\n\"str\";\n", 2, "expected a command, but found a string"},
		{"bad relational", "require \"relational\";\nif header :value \"xx\" \"to\" \"1\" { keep; }\n", 2, `"gt", "ge", "lt", "le", "eq" or "ne"`},
		{"invalid variable name", "require \"variables\";\nset \"a b\" \"x\";\n", 2, "invalid variable name 'a b'"},
		{"not without test", "if not { keep; }\n", 1, "the not test requires a test"},
		{"keep flags without require", "keep :flags \"x\";\n", 1, `missing require "imap4flags"`},
		{"create without mailbox", "require \"fileinto\";\nfileinto :create \"x\";\n", 2, `missing require "mailbox"`},
		{"else with test", "if true { keep; } else keep;\n", 1, "the else command does not accept a test"},
		{"nesting", "if true {" + strings.Repeat("if true {", 32) + strings.Repeat("}", 33), 1, "nested too deeply"},
	}
	e := New(Config{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, d := e.Compile("t", []byte(c.script))
			if s != nil || !d.HasErrors() {
				t.Fatalf("compiled; diagnostics %v", d)
			}
			got := d.Errors()[0]
			if got.Line != c.line {
				t.Errorf("line = %d, want %d (%s)", got.Line, c.line, got.Message)
			}
			if got.Column <= 0 {
				t.Errorf("column = %d, want > 0", got.Column)
			}
			if !strings.Contains(got.Message, c.msg) {
				t.Errorf("message = %q, want it to contain %q", got.Message, c.msg)
			}
			for _, bad := range []string{"LoadCmd", "LoadTest", "LoadSpec", "loadRequire", "reading "} {
				if strings.Contains(got.Message, bad) {
					t.Errorf("message %q leaks interpreter internals (%s)", got.Message, bad)
				}
			}
		})
	}
}

func TestCompileOK(t *testing.T) {
	e := New(Config{})
	scripts := []string{
		"",
		"keep;",
		"require [\"fileinto\", \"mailbox\", \"imap4flags\", \"copy\"];\nfileinto :create :copy :flags \"\\\\Seen\" \"Archive\";",
		"require [\"envelope\", \"variables\"];\nset \"a\" \"${envelope.from}\";",
		"require \"mailbox\";\nif mailboxexists \"INBOX\" { keep; }",
		"require \"envelope\";\nif envelope :comparator \"i;octet\" :is \"to\" \"a@b\" { keep; }",
		"if header :matches \"subject\" \"*a*b*c?\" { discard; }",
	}
	for _, src := range scripts {
		if s, d := e.Compile("t", []byte(src)); s == nil || d.HasErrors() {
			t.Errorf("%q: %v", src, d)
		}
	}
}

func TestCompileLimits(t *testing.T) {
	l := DefaultLimits()
	l.MaxScriptBytes = 200
	l.MaxTokens = 50
	l.MaxVariables = 3
	l.MaxMatchWildcards = 10
	l.MaxMatchKeyBytes = 40
	l.MaxNesting = 3
	e := New(Config{Limits: l})
	cases := []struct {
		name, script, msg string
	}{
		{"bytes", "keep;" + strings.Repeat(" ", 200), "too large"},
		{"tokens", strings.Repeat("keep;", 30), "more than 50 tokens"},
		{"variables", "require \"variables\";\nset \"a\" \"1\"; set \"b\" \"1\"; set \"A\" \"1\"; set \"c\" \"1\"; set \"d\" \"1\";", "too many variables"},
		{"wildcards", "if header :matches \"subject\" \"" + strings.Repeat("*a", 11) + "\" { keep; }", "too many wildcards"},
		{"wildcards in list", "if header :matches \"subject\" [\"x\", \"" + strings.Repeat("?", 11) + "\"] { keep; }", "too many wildcards"},
		{"key bytes", "if header :matches \"subject\" \"" + strings.Repeat("a", 41) + "\" { keep; }", "too long"},
		{"nesting", "if true { if true { if true { if true { if true { keep; } } } } }", "nested too deeply"},
	}
	for _, c := range cases {
		s, d := e.Compile("t", []byte(c.script))
		if s != nil || !d.HasErrors() || !strings.Contains(d.Errors()[0].Message, c.msg) {
			t.Errorf("%s: got script=%v diagnostics %v, want an error containing %q", c.name, s != nil, d, c.msg)
		}
	}
	// Escaped wildcards and :is keys are not limited.
	for _, ok := range []string{
		"if header :matches \"subject\" \"" + strings.Repeat("\\\\*", 11) + "\" { keep; }",
		"if header :is \"subject\" \"" + strings.Repeat("*", 20) + "\" { keep; }",
		"require \"variables\";\nset \"a\" \"1\"; set \"a\" \"2\"; set \"b\" \"1\";",
	} {
		if s, d := e.Compile("t", []byte(ok)); s == nil {
			t.Errorf("%q refused: %v", ok, d)
		}
	}
}

func TestDiagnosticsFormat(t *testing.T) {
	d := Diagnostics{
		{Line: 2, Column: 1, Severity: SeverityWarning, Message: "w1"},
		{Line: 3, Column: 1, Severity: SeverityError, Message: "e1."},
		{Line: 4, Column: 1, Severity: SeverityError, Message: "e2"},
	}
	want := "s: line 2: warning: w1.\ns: line 3: error: e1.\ns: error: validation failed."
	if got := d.Format("s", 2); got != want {
		t.Errorf("Format =\n%s\nwant\n%s", got, want)
	}
	if got := (Diagnostics{{Line: 1, Severity: SeverityWarning, Message: "w"}}).Format("s", 0); got != "s: line 1: warning: w." {
		t.Errorf("warnings only: %q", got)
	}
}

func TestExtensionsList(t *testing.T) {
	got := New(Config{}).Extensions()
	for _, want := range []string{"fileinto", "envelope", "variables", "mailbox", "imap4flags", "reject", "ereject", "body", "environment"} {
		if !contains(got, want) {
			t.Errorf("Extensions() = %v, missing %q", got, want)
		}
	}
	if contains(got, "vnd.dovecot.testsuite") {
		t.Errorf("Extensions() advertises the test suite: %v", got)
	}
	if !sortedStrings(got) {
		t.Errorf("Extensions() not sorted: %v", got)
	}
	// A script may require every advertised extension.
	src := "require [\"" + strings.Join(got, "\", \"") + "\"];"
	if s, d := New(Config{}).Compile("t", []byte(src)); s == nil {
		t.Errorf("requiring every advertised extension fails: %v", d)
	}
	with := New(Config{Extensions: []Extension{&testExt{}}}).Extensions()
	if !contains(with, "x-test") || len(with) != len(got)+1 {
		t.Errorf("with a project extension: %v", with)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedStrings(s []string) bool {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return reflect.DeepEqual(c, s)
}

func TestCompileMaxDiagnostics(t *testing.T) {
	l := DefaultLimits()
	l.MaxErrors = 2
	e := New(Config{Limits: l, Extensions: []Extension{&testExt{}}})
	src := "require \"x-test\";\n" + strings.Repeat("if true { xtest :days 99 \"r\"; }\n", 4)
	_, d := e.Compile("t", []byte(src))
	// Four warnings capped at two; the validator's error (second xtest)
	// is kept.
	if w := d.Warnings(); len(w) != 2 || w[0].Line != 2 || w[1].Line != 3 {
		t.Errorf("warnings = %v", w)
	}
	if errs := d.Errors(); len(errs) != 1 || errs[0].Line != 3 {
		t.Errorf("errors = %v", errs)
	}
}

// The first error reported is the first in the script, whether it comes
// from the interpreter or from a limit check.
func TestCompileErrorOrder(t *testing.T) {
	l := DefaultLimits()
	l.MaxMatchWildcards = 2
	e := New(Config{Limits: l})
	src := "require \"variables\";\nset \"a b\" \"x\";\nif header :matches \"s\" \"***\" { keep; }\n"
	_, d := e.Compile("t", []byte(src))
	errs := d.Errors()
	if len(errs) != 2 || errs[0].Line != 2 || errs[1].Line != 3 {
		t.Fatalf("errors = %v, want line 2 (invalid name) then line 3 (wildcards)", errs)
	}
	src = "require \"fileinto\";\nkeep;\nrequire;\nrequire \"x\";\n"
	if _, d := e.Compile("t", []byte(src)); d.Errors()[0].Line != 3 {
		t.Fatalf("errors = %v, want the late require at line 3 first", d)
	}
}

func TestCompileSeveralErrors(t *testing.T) {
	e := New(Config{})
	src := "require [\"nope\", \"fileinto\"];\nfileinto \"a\";\nfoo;\nif true {\n  reject \"x\";\n  reject \"y\";\n}\nreject \"z\";\nkeep :x;\nstop;\n"
	_, d := e.Compile("t", []byte(src))
	var got []int
	for _, x := range d.Errors() {
		got = append(got, x.Line)
	}
	// The repeated missing require "reject" is reported once; the cap is
	// Limits.MaxErrors (5).
	if want := []int{1, 3, 5, 9}; !reflect.DeepEqual(got, want) {
		t.Fatalf("error lines %v, want %v:\n%s", got, want, d.Format("t", 0))
	}
	want := "t: line 1: error: unknown Sieve capability 'nope'.\nt: line 3: error: unknown command 'foo'.\nt: error: validation failed."
	if f := d.Format("t", 2); f != want {
		t.Errorf("Format:\n%s\nwant\n%s", f, want)
	}
}

func TestCompileWarnings(t *testing.T) {
	e := New(Config{})
	src := "# Header test\nif header \"from:\" \"x\" { stop; }\nif exists [\"x-ok\", \"bad name\"] { stop; }\nif header :comparator \"i;octet\" \"subject\" \"a:b\" { stop; }\n"
	s, d := e.Compile("t", []byte(src))
	if s == nil {
		t.Fatalf("refused: %v", d)
	}
	w := d.Warnings()
	if len(w) != 2 || w[0].Line != 2 || !strings.Contains(w[0].Message, "'from:' is invalid") || w[1].Line != 3 || !strings.Contains(w[1].Message, "'bad name'") {
		t.Errorf("warnings = %v", w)
	}
	if f := d.Format("t", 5); !strings.HasPrefix(f, "t: line 2: warning: specified header field name 'from:' is invalid.") || strings.Contains(f, "validation failed") {
		t.Errorf("Format = %q", f)
	}
}
