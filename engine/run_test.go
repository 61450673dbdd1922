package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

const testMsg = "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: hello\r\n\r\nbody text\r\n"

func testMessage(t *testing.T) *Message {
	t.Helper()
	m, err := ReadMessage(strings.NewReader(testMsg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func runScript(t *testing.T, e *Engine, src string) (*Result, error) {
	t.Helper()
	s, d := e.Compile("t", []byte(src))
	if s == nil {
		t.Fatalf("compile %q: %v", src, d)
	}
	return e.Run(context.Background(), s, Envelope{From: "alice@example.com", To: "bob+lists@example.org"}, testMessage(t))
}

func TestRunActions(t *testing.T) {
	e := New(Config{})
	cases := []struct {
		name, script string
		want         []Action
	}{
		{"implicit keep", "", []Action{Keep{Implicit: true}}},
		{"explicit keep", "keep;", []Action{Keep{}}},
		{"discard", "discard;", []Action{Discard{}}},
		{"fileinto", "require \"fileinto\"; fileinto \"Lists\";", []Action{FileInto{Mailbox: "Lists"}}},
		{"fileinto copy keeps implicit keep", "require [\"fileinto\", \"copy\"]; fileinto :copy \"Lists\";",
			[]Action{FileInto{Mailbox: "Lists", Copy: true}, Keep{Implicit: true}}},
		{"dedupe INBOX case-insensitively",
			"require \"fileinto\"; keep; fileinto \"INBOX\"; fileinto \"inbox\"; fileinto \"Foo\"; fileinto \"foo\"; fileinto \"Foo\";",
			[]Action{Keep{}, FileInto{Mailbox: "Foo"}, FileInto{Mailbox: "foo"}}},
		{"implicit keep merged into fileinto INBOX with copy",
			"require [\"fileinto\", \"copy\"]; fileinto :copy \"INBOX\";",
			[]Action{FileInto{Mailbox: "INBOX"}}},
		{"flags carried",
			"require [\"fileinto\", \"imap4flags\"]; addflag \"\\\\Seen\"; fileinto \"A\"; fileinto :flags \"\\\\Flagged x\" \"B\";",
			[]Action{FileInto{Mailbox: "A", Flags: []string{"\\Seen"}}, FileInto{Mailbox: "B", Flags: []string{"\\Flagged", "x"}}}},
		{"flags on implicit keep", "require \"imap4flags\"; setflag \"\\\\Seen\";",
			[]Action{Keep{Implicit: true, Flags: []string{"\\Seen"}}}},
		{"flags united on merged delivery",
			"require [\"fileinto\", \"imap4flags\"]; keep :flags \"a\"; fileinto :flags \"b\" \"INBOX\";",
			[]Action{Keep{Flags: []string{"a", "b"}}}},
		{"mailbox create", "require [\"fileinto\", \"mailbox\"]; fileinto :create \"New\";", []Action{FileInto{Mailbox: "New", Create: true}}},
		{"fileinto expands variables", "require [\"fileinto\", \"variables\"]; set \"f\" \"Lists\"; fileinto \"${f}/x\";", []Action{FileInto{Mailbox: "Lists/x"}}},
		{"redirect", "redirect \"a@example.net\";", []Action{Redirect{Address: "a@example.net"}}},
		{"duplicate redirect", "redirect \"a@example.net\"; redirect \"A@example.net\";", []Action{Redirect{Address: "a@example.net"}}},
		{"redirect normalized", "redirect \"Bob <bob@example.net>\"; redirect \"bob@example.net\";", []Action{Redirect{Address: "bob@example.net"}}},
		{"reject", "require \"reject\"; reject \"no\";", []Action{Reject{Reason: "no"}}},
		{"ereject", "require \"ereject\"; ereject \"no\";", []Action{Reject{Reason: "no", Extended: true}}},
		{"discard and reject", "require \"reject\"; discard; reject \"no\";", []Action{Discard{}, Reject{Reason: "no"}}},
		{"stop", "keep; stop; discard;", []Action{Keep{}}},
		{"subaddress", "require [\"envelope\", \"subaddress\", \"fileinto\"]; if envelope :detail \"to\" \"lists\" { fileinto \"L\"; }", []Action{FileInto{Mailbox: "L"}}},
		{"mailboxexists default", "require [\"mailbox\", \"fileinto\"]; if mailboxexists \"Nope\" { fileinto \"Nope\"; }", []Action{Keep{Implicit: true}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := runScript(t, e, c.script)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Actions, c.want) {
				t.Errorf("actions:\n got %#v\nwant %#v", res.Actions, c.want)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	l := DefaultLimits()
	l.MaxActions = 5
	l.MaxRedirects = 2
	e := New(Config{Limits: l})
	cases := []struct{ name, script, err string }{
		{"reject and keep", "require \"reject\"; reject \"no\"; keep;", "conflicts with the keep action"},
		{"reject and fileinto", "require [\"reject\", \"fileinto\"]; fileinto \"INBOX\"; reject \"no\";", "conflicts with the fileinto action"},
		{"reject and redirect copy", "require [\"reject\", \"copy\"]; redirect :copy \"a@b.c\"; reject \"no\";", "conflicts with the redirect action"},
		{"two rejects", "require [\"reject\", \"ereject\"]; reject \"a\"; ereject \"b\";", "duplicate ereject action not allowed"},
		{"invalid redirect from variable", "require \"variables\"; set \"a\" \"not valid\"; redirect \"${a}\";", "specified redirect address 'not valid' is invalid"},
		{"too many redirects", "redirect \"a@x\"; redirect \"b@x\"; redirect \"c@x\";", "too many redirect"},
		{"too many wildcards after expansion", "require \"variables\"; set \"p\" \"" + strings.Repeat("*x", 65) + "\"; if header :matches \"subject\" \"${p}\" { discard; }", "wildcards after variable expansion (the limit is 64)"},
		{"too many actions", "require \"fileinto\"; fileinto \"a\"; fileinto \"b\"; fileinto \"c\"; fileinto \"d\"; fileinto \"e\"; fileinto \"f\";", "too many actions"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := runScript(t, e, c.script)
			var re *RuntimeError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("res=%v err=%v, want RuntimeError containing %q", res, err, c.err)
			}
		})
	}
	// The action limit counts explicit actions only.
	if _, err := runScript(t, e, "require [\"fileinto\", \"copy\"]; fileinto :copy \"a\"; fileinto :copy \"b\"; fileinto :copy \"c\"; fileinto :copy \"d\"; fileinto :copy \"e\";"); err != nil {
		t.Errorf("five actions plus implicit keep: %v", err)
	}
}

func TestRunEnvironment(t *testing.T) {
	e := New(Config{Environment: map[string]string{"domain": "example.org", "host": "mx.example.org", "location": "MS"}})
	src := `require ["environment", "fileinto", "variables"];
if allof(environment :is "location" "MDA", environment :is "phase" "during",
         environment :is "domain" "example.org", environment :is "host" "mx.example.org",
         environment :is "name" "sieved", environment :matches "version" "?*") {
	fileinto "ok";
}`
	res, err := runScript(t, e, src)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Action{FileInto{Mailbox: "ok"}}; !reflect.DeepEqual(res.Actions, want) {
		t.Errorf("actions %v, want %v", res.Actions, want)
	}
}

func TestDefaultEnvironment(t *testing.T) {
	host := func(h string, err error) func() (string, error) {
		return func() (string, error) { return h, err }
	}
	cases := []struct {
		name     string
		env      map[string]string
		hostname func() (string, error)
		want     map[string]string
	}{
		{"fqdn", nil, host("mx1.example.org", nil), map[string]string{"host": "mx1.example.org", "domain": "example.org"}},
		{"trailing dot", nil, host("mx1.example.org.", nil), map[string]string{"host": "mx1.example.org", "domain": "example.org"}},
		{"short name", nil, host("vm", nil), map[string]string{"host": "vm", "domain": "vm"}},
		{"configured wins", map[string]string{"host": "a.b.c", "domain": "mail.example"}, host("vm", nil),
			map[string]string{"host": "a.b.c", "domain": "mail.example"}},
		{"configured host gives the domain", map[string]string{"host": "mx.example.net", "name": "x"}, host("vm", nil),
			map[string]string{"host": "mx.example.net", "domain": "example.net", "name": "x"}},
		{"no host name", nil, host("", errors.New("no")), map[string]string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := map[string]string{}
			for k, v := range c.env {
				in[k] = v
			}
			got := defaultEnvironment(c.env, c.hostname)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
			if c.env != nil && !reflect.DeepEqual(c.env, in) {
				t.Errorf("the caller's map was changed: %v", c.env)
			}
		})
	}
	// An engine without configured items still answers host and domain.
	res, err := runScript(t, New(Config{}), `require "environment";
if allof(environment :matches "host" "?*", environment :matches "domain" "?*") { discard; }`)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Action{Discard{}}; !reflect.DeepEqual(res.Actions, want) {
		t.Errorf("actions %v, want %v", res.Actions, want)
	}
}

// slowExt adds a command that blocks or panics, to test the run guard.
type slowExt struct{}

func (slowExt) Names() []string { return []string{"x-slow"} }
func (slowExt) Commands() []CommandSpec {
	return []CommandSpec{
		{Name: "sleep", Load: func(c *Call) (Command, error) {
			return CommandFunc(func(ctx context.Context, rt *Runtime) error {
				time.Sleep(2 * time.Second) // ignores ctx on purpose, like a runaway :matches
				return nil
			}), nil
		}},
		{Name: "boom", Load: func(c *Call) (Command, error) {
			return CommandFunc(func(ctx context.Context, rt *Runtime) error {
				var m map[string]int
				m["x"] = 1 // nil map write: panics
				return nil
			}), nil
		}},
	}
}

func TestRunTimeout(t *testing.T) {
	l := DefaultLimits()
	l.Timeout = 50 * time.Millisecond
	e := New(Config{Limits: l, Extensions: []Extension{slowExt{}}})
	start := time.Now()
	_, err := runScript(t, e, "sleep;")
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Run returned after %v, not at its deadline", d)
	}
}

func TestRunCancelled(t *testing.T) {
	e := New(Config{})
	s, _ := e.Compile("t", []byte("keep;"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Run(ctx, s, Envelope{}, testMessage(t)); err == nil {
		t.Fatal("run with a cancelled context succeeded")
	}
}

func TestRunPanicRecovered(t *testing.T) {
	e := New(Config{Extensions: []Extension{slowExt{}}})
	_, err := runScript(t, e, "keep; boom;")
	var re *RuntimeError
	if !errors.As(err, &re) || !strings.Contains(re.Msg, "internal error") || len(re.Stack) == 0 {
		t.Fatalf("err = %#v, want a RuntimeError with a stack", err)
	}
}

func TestRunNilMessage(t *testing.T) {
	e := New(Config{})
	s, _ := e.Compile("t", []byte(`if header :contains "subject" "x" { discard; }`))
	res, err := e.Run(context.Background(), s, Envelope{}, nil)
	if err != nil || len(res.Actions) != 1 {
		t.Fatalf("res=%v err=%v", res, err)
	}
}

func TestActionString(t *testing.T) {
	cases := map[string]Action{
		"keep":                          Keep{},
		"keep (implicit) flags: \\Seen": Keep{Implicit: true, Flags: []string{"\\Seen"}},
		`fileinto "A" :copy :create`:    FileInto{Mailbox: "A", Copy: true, Create: true},
		`redirect "a@b" :copy`:          Redirect{Address: "a@b", Copy: true},
		`ereject "no"`:                  Reject{Reason: "no", Extended: true},
		"discard":                       Discard{},
	}
	for want, a := range cases {
		if got := String(a); got != want {
			t.Errorf("String(%#v) = %q, want %q", a, got, want)
		}
	}
}

// One compiled script runs concurrently (sieve-lda may share it between
// recipients); -race checks the interpreter keeps no state in it.
func TestRunConcurrent(t *testing.T) {
	e := New(Config{Extensions: []Extension{&testExt{}}})
	s, d := e.Compile("t", []byte(`require ["fileinto", "variables", "x-test", "body"];
if header :matches "subject" "h*o" { set "x" "${1}"; fileinto "m-${x}"; }
if body :contains "text" { xtest "b"; }`))
	if s == nil {
		t.Fatal(d)
	}
	done := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			m, err := ReadMessage(strings.NewReader(testMsg))
			if err != nil {
				done <- err
				return
			}
			defer m.Close()
			res, err := e.Run(context.Background(), s, Envelope{}, m)
			if err == nil && (len(res.Actions) != 2 || !reflect.DeepEqual(res.Actions[0], FileInto{Mailbox: "m-ell"})) {
				err = errors.New(fmt.Sprint(res.Actions))
			}
			done <- err
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// Run-time errors say where: the conflicting reject and the delivering
// action, the redirect over the limit.
func TestRunErrorPositions(t *testing.T) {
	l := DefaultLimits()
	l.MaxRedirects = 1
	e := New(Config{Limits: l})
	cases := []struct {
		script string
		line   int
		msg    string
	}{
		{"require [\"reject\", \"fileinto\"];\nif true {\n  fileinto \"a\";\n}\nreject \"no\";", 5, "the reject action conflicts with the fileinto action at line 3"},
		{"require \"reject\";\nreject \"a\";\n\nreject \"b\";", 4, "duplicate reject action not allowed (the previous one was at line 2)"},
		{"redirect \"a@x.org\";\n\nredirect \"b@x.org\";", 3, "too many redirect"},
		{"require \"variables\";\nset \"a\" \"bad\";\nredirect \"${a}\";", 3, "specified redirect address 'bad' is invalid"},
	}
	for _, c := range cases {
		_, err := runScript(t, e, c.script)
		var re *RuntimeError
		if !errors.As(err, &re) || re.Line != c.line || !strings.Contains(re.Msg, c.msg) {
			t.Errorf("%q: err = %#v, want line %d %q", c.script, err, c.line, c.msg)
		}
	}
}
