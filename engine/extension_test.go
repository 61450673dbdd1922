package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// testExt exercises the whole extension API: a command with every
// argument kind, warnings, errors, a runtime action with variable
// expansion, a test, whole-script validation and an action check.
type testExt struct{}

type testValue struct {
	Reason  string
	Days    uint64
	Subject string
	Addrs   []string
	From    string
}

func (*testExt) Names() []string { return []string{"x-test"} }

func (*testExt) Commands() []CommandSpec {
	return []CommandSpec{{
		Name:     "xtest",
		Requires: []string{"x-test"},
		Tags: map[string]ArgKind{
			":days":      ArgNumber,
			":subject":   ArgString,
			":mime":      ArgFlag,
			":addresses": ArgStringList,
		},
		Positional: []ArgKind{ArgString},
		Load: func(c *Call) (Command, error) {
			days, ok := c.Number(":days")
			if !ok {
				days = 7
			}
			if days > 30 {
				c.Warnf("xtest :days %d is more than 30, using 30", days)
				days = 30
			}
			subject, _ := c.String(":subject")
			if subject == "bad" {
				return nil, c.Errorf("xtest subject must not be %q", subject)
			}
			if subject == "plain" {
				return nil, errors.New("a plain error without position")
			}
			addrs, _ := c.StringList(":addresses")
			reason := c.StringArg(0)
			cancel := c.Has(":mime")
			return CommandFunc(func(ctx context.Context, rt *Runtime) error {
				if reason == "fail" {
					return fmt.Errorf("xtest failed on purpose")
				}
				return rt.AddAction(ExtensionAction{
					Extension: "x-test",
					Value: testValue{
						Reason: rt.Expand(reason), Days: days, Subject: rt.Expand(subject),
						Addrs: rt.ExpandList(addrs), From: rt.Envelope().From,
					},
					CancelsImplicitKeep: cancel,
				})
			}), nil
		},
	}}
}

func (*testExt) Tests() []TestSpec {
	return []TestSpec{{
		Name:       "xfrom",
		Requires:   []string{"x-test"},
		Positional: []ArgKind{ArgString},
		Load: func(c *Call) (Test, error) {
			want := c.StringArg(0)
			return testFunc(func(ctx context.Context, rt *Runtime) (bool, error) {
				return rt.Envelope().From == rt.Expand(want), nil
			}), nil
		},
	}}
}

type testFunc func(ctx context.Context, rt *Runtime) (bool, error)

func (f testFunc) Check(ctx context.Context, rt *Runtime) (bool, error) { return f(ctx, rt) }

func (*testExt) Validate(uses []CommandUse) Diagnostics {
	var d Diagnostics
	n := 0
	for _, u := range uses {
		if u.Name == "xtest" {
			n++
			if n == 2 {
				d = append(d, Diagnostic{Line: u.Line, Column: u.Column, Severity: SeverityError, Message: "only one xtest per script"})
			}
		}
	}
	return d
}

func (*testExt) CheckActions(actions []Action) error {
	var hasTest, hasReject bool
	for _, a := range actions {
		switch a := a.(type) {
		case ExtensionAction:
			hasTest = hasTest || a.Extension == "x-test"
		case Reject:
			hasReject = true
		}
	}
	if hasTest && hasReject {
		return errors.New("xtest conflicts with reject")
	}
	return nil
}

func testEngine() *Engine { return New(Config{Extensions: []Extension{&testExt{}}}) }

func TestExtensionCompile(t *testing.T) {
	e := testEngine()
	cases := []struct {
		name, script string
		line         int
		severity     Severity
		msg          string // "" = compiles without diagnostics
	}{
		{"ok", `require "x-test"; xtest :days 3 :subject "s" :mime :addresses ["a", "b"] "r";`, 0, 0, ""},
		{"warning", "require \"x-test\";\n\nxtest :days 99 \"r\";", 3, SeverityWarning, "more than 30"},
		{"size suffix", "require \"x-test\";\nxtest :days 1K \"r\";", 2, SeverityWarning, "1024 is more than 30"},
		{"Errorf", "require \"x-test\";\nxtest :subject \"bad\" \"r\";", 2, SeverityError, `must not be "bad"`},
		{"plain error positioned", "require \"x-test\";\n\nxtest :subject \"plain\" \"r\";", 3, SeverityError, "without position"},
		{"missing require", "xtest \"r\";", 1, SeverityError, `missing require "x-test"`},
		{"test missing require", "if xfrom \"a\" { keep; }", 1, SeverityError, `missing require "x-test"`},
		{"unknown tag", "require \"x-test\";\nxtest :frob \"r\";", 2, SeverityError, "unknown tagged argument :frob"},
		{"duplicate tag", "require \"x-test\";\nxtest :mime :mime \"r\";", 2, SeverityError, "more than once"},
		{"number as string", "require \"x-test\";\nxtest :days \"3\" \"r\";", 2, SeverityError, "must be a number"},
		{"string as number", "require \"x-test\";\nxtest :subject 3 \"r\";", 2, SeverityError, "must be a string"},
		{"list as string", "require \"x-test\";\nxtest :subject [\"a\", \"b\"] \"r\";", 2, SeverityError, "not a string list"},
		{"tag value missing", "require \"x-test\";\nxtest \"r\" :days;", 2, SeverityError, "needs a number value"},
		{"missing positional", "require \"x-test\";\nxtest :mime;", 2, SeverityError, "needs 1 positional"},
		{"too many positional", "require \"x-test\";\nxtest \"a\" \"b\";", 2, SeverityError, "too many arguments"},
		{"block", "require \"x-test\";\nxtest \"a\" { keep; }", 2, SeverityError, "does not take a block"},
		{"validator", "require \"x-test\";\nxtest \"a\";\nif true {\n  xtest \"b\";\n}", 4, SeverityError, "only one xtest"},
		{"bad variable", "require [\"x-test\", \"variables\"];\nxtest \"${foo.bar}\";", 2, SeverityError, "unknown namespace"},
		{"number overflow", "require \"x-test\";\nxtest :days 99999999999G \"a\";", 2, SeverityError, "exceeds integer limits"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, d := e.Compile("t", []byte(c.script))
			if c.msg == "" {
				if s == nil || len(d) != 0 {
					t.Fatalf("diagnostics %v", d)
				}
				return
			}
			if len(d) == 0 {
				t.Fatal("no diagnostics")
			}
			got := d[0]
			if got.Line != c.line || got.Severity != c.severity || !strings.Contains(got.Message, c.msg) {
				t.Errorf("got %+v, want line %d %s containing %q", got, c.line, c.severity, c.msg)
			}
			if (c.severity == SeverityError) != (s == nil) {
				t.Errorf("script=%v with severity %s", s != nil, c.severity)
			}
		})
	}
}

func TestExtensionRun(t *testing.T) {
	e := testEngine()
	env := Envelope{From: "sender@example.com", To: "me@example.org"}
	cases := []struct {
		name, script string
		want         []Action
		err          string
	}{
		{
			"expansion and implicit keep",
			"require [\"x-test\", \"variables\", \"encoded-character\"];\nset \"who\" \"world\";\nxtest :subject \"re: ${who}\" :addresses [\"${who}@x\"] \"hello ${who} ${hex:21}\";",
			[]Action{
				ExtensionAction{Extension: "x-test", Value: testValue{Reason: "hello world !", Days: 7, Subject: "re: world", Addrs: []string{"world@x"}, From: "sender@example.com"}},
				Keep{Implicit: true},
			}, "",
		},
		{
			"cancels implicit keep",
			"require \"x-test\";\nxtest :mime \"r\";",
			[]Action{ExtensionAction{Extension: "x-test", Value: testValue{Reason: "r", Days: 7, From: "sender@example.com"}, CancelsImplicitKeep: true}},
			"",
		},
		{
			"test",
			"require \"x-test\";\nif xfrom \"sender@example.com\" { discard; }",
			[]Action{Discard{}}, "",
		},
		{
			"test false",
			"require \"x-test\";\nif xfrom \"other@example.com\" { discard; }",
			[]Action{Keep{Implicit: true}}, "",
		},
		{"runtime error positioned", "require \"x-test\";\n\nxtest \"fail\";", nil, "line 3: xtest: xtest failed on purpose"},
		{"action checker", "require [\"x-test\", \"reject\"];\nxtest \"a\"; reject \"no\";", nil, "xtest conflicts with reject"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, d := e.Compile("t", []byte(c.script))
			if s == nil {
				t.Fatalf("compile: %v", d)
			}
			res, err := e.Run(context.Background(), s, env, testMessage(t))
			if c.err != "" {
				var re *RuntimeError
				if err == nil || !errors.As(err, &re) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want a RuntimeError containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Actions, c.want) {
				t.Errorf("actions:\n got %#v\nwant %#v", res.Actions, c.want)
			}
		})
	}
}

// Two engines with different extensions coexist: the registry is per
// engine, not global.
func TestExtensionIsolation(t *testing.T) {
	src := []byte("require \"x-test\";\nxtest \"a\";")
	if s, d := testEngine().Compile("t", src); s == nil {
		t.Fatalf("engine with the extension: %v", d)
	}
	if s, _ := New(Config{}).Compile("t", src); s != nil {
		t.Fatal("engine without the extension accepted it")
	}
	if s, d := testEngine().Compile("t", src); s == nil {
		t.Fatalf("again with the extension: %v", d)
	}
}

// seeAllExt records what its Validator is given.
type seeAllExt struct{ got []CommandUse }

func (*seeAllExt) Names() []string { return []string{"x-see"} }
func (*seeAllExt) Commands() []CommandSpec {
	return []CommandSpec{{Name: "xsee", Requires: []string{"x-see"}, Load: func(c *Call) (Command, error) {
		return CommandFunc(func(context.Context, *Runtime) error { return nil }), nil
	}}}
}
func (x *seeAllExt) Validate(uses []CommandUse) Diagnostics {
	x.got = append([]CommandUse(nil), uses...)
	return nil
}

// A Validator sees its own commands and the built-in action commands, in
// script order, so it can warn about conflicts (vacation with reject).
func TestValidatorSeesBuiltinActions(t *testing.T) {
	x := &seeAllExt{}
	e := New(Config{Extensions: []Extension{x}})
	src := "require [\"x-see\", \"reject\", \"fileinto\"];\nif true { reject \"no\"; }\nxsee;\n  keep; discard;\nredirect \"a@b.c\";\nfileinto \"F\";\n"
	if s, d := e.Compile("t", []byte(src)); s == nil {
		t.Fatal(d)
	}
	want := []CommandUse{
		{Name: "reject", Line: 2, Column: 11},
		{Name: "xsee", Line: 3, Column: 1, Unconditional: true},
		{Name: "keep", Line: 4, Column: 3, Unconditional: true},
		{Name: "discard", Line: 4, Column: 9, Unconditional: true},
		{Name: "redirect", Line: 5, Column: 1, Unconditional: true},
	}
	if !reflect.DeepEqual(x.got, want) {
		t.Errorf("Validate got\n %v\nwant\n %v", x.got, want)
	}
}

// pickyExt refuses any discard through an *ActionError.
type pickyExt struct{}

func (pickyExt) Names() []string         { return []string{"x-picky"} }
func (pickyExt) Commands() []CommandSpec { return nil }
func (pickyExt) CheckActions(actions []Action) error {
	for _, a := range actions {
		if _, ok := a.(Discard); ok {
			return &ActionError{Action: a, Msg: "no discard here"}
		}
	}
	return errors.New("plain checker error")
}

// An *ActionError from an ActionChecker is reported on the line of the
// command that produced the action; a plain error has no line.
func TestActionCheckerErrorPosition(t *testing.T) {
	e := New(Config{Extensions: []Extension{pickyExt{}}})
	_, err := runScript(t, e, "keep;\nif true {\n\n   discard;\n}\n")
	var re *RuntimeError
	if !errors.As(err, &re) || re.Line != 4 || re.Column != 4 || re.Msg != "no discard here" {
		t.Errorf("err = %#v, want a RuntimeError at 4:4", err)
	}
	_, err = runScript(t, e, "keep;\n")
	if !errors.As(err, &re) || re.Line != 0 || re.Msg != "plain checker error" {
		t.Errorf("err = %#v, want a RuntimeError without a line", err)
	}
}
