package lda

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sieved/sieved/engine"
)

// notifyExt is a minimal project extension: `notifytest "x";` adds an
// ExtensionAction that does not cancel the implicit keep, like vacation.
type notifyExt struct{}

func (notifyExt) Names() []string { return []string{"vnd.test.notify"} }
func (notifyExt) Commands() []engine.CommandSpec {
	return []engine.CommandSpec{{
		Name:       "notifytest",
		Requires:   []string{"vnd.test.notify"},
		Positional: []engine.ArgKind{engine.ArgString},
		Load: func(c *engine.Call) (engine.Command, error) {
			arg := c.StringArg(0)
			return engine.CommandFunc(func(ctx context.Context, rt *engine.Runtime) error {
				return rt.AddAction(engine.ExtensionAction{Extension: "vnd.test.notify", Value: arg})
			}), nil
		},
	}}
}

func TestExtensionHandler(t *testing.T) {
	const script = `require "vnd.test.notify"; notifytest "hello";`
	for _, tc := range []struct {
		name    string
		handler func(ctx context.Context, d *Delivery, a engine.ExtensionAction) error
		log     string
	}{
		{"ok", func(ctx context.Context, d *Delivery, a engine.ExtensionAction) error { return nil }, ""},
		{"error", func(ctx context.Context, d *Delivery, a engine.ExtensionAction) error { return errors.New("smtp down") }, "smtp down"},
		{"panic", func(ctx context.Context, d *Delivery, a engine.ExtensionAction) error { panic("boom") }, "boom"},
		{"no handler", nil, "no handler"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, script)
			e.l.Engine = engine.New(engine.Config{SubaddressSeparators: "+-", Extensions: []engine.Extension{notifyExt{}}})
			var seen *Delivery
			var val any
			if tc.handler != nil {
				e.l.Extensions = map[string]ExtensionHandler{"vnd.test.notify": ExtensionHandlerFunc(
					func(ctx context.Context, d *Delivery, a engine.ExtensionAction) error {
						seen, val = d, a.Value
						return tc.handler(ctx, d, a)
					})}
			}
			if _, err := e.deliver(Request{}, testMsg); err != nil {
				t.Fatalf("delivery failed because of the extension: %v", err)
			}
			if got := e.files(testMsg); strings.Join(got, " ") != "./new" {
				t.Errorf("files = %q (the implicit keep must stand)", got)
			}
			if tc.handler != nil {
				if seen == nil || val != "hello" {
					t.Fatalf("handler not called (value %v)", val)
				}
				// The handler runs after the message is on disk, and sees
				// the envelope and the message.
				if len(seen.Stored) != 1 || seen.Envelope.From != "bob@example.net" || seen.Message == nil ||
					seen.Recipient.Base() != "alice@example.org" {
					t.Errorf("handler saw %+v", seen)
				}
			}
			if tc.log != "" && !strings.Contains(e.logs.String(), tc.log) {
				t.Errorf("log lacks %q:\n%s", tc.log, e.logs)
			}
		})
	}
}

// panicExt's command panics when the script is compiled (its Load runs
// then), standing in for any bug in the engine or an extension.
type panicExt struct{}

func (panicExt) Names() []string { return []string{"vnd.test.panic"} }
func (panicExt) Commands() []engine.CommandSpec {
	return []engine.CommandSpec{{
		Name:     "panictest",
		Requires: []string{"vnd.test.panic"},
		Load:     func(c *engine.Call) (engine.Command, error) { panic("compiler bug") },
	}}
}

// A panic in the script engine must not crash sieve-lda (exit 2, which an
// MTA bounces): the message goes to INBOX and the reason is logged.
func TestEnginePanicKeepsMessage(t *testing.T) {
	e := newEnv(t, `require "vnd.test.panic"; panictest;`)
	e.l.Engine = engine.New(engine.Config{SubaddressSeparators: "+-", Extensions: []engine.Extension{panicExt{}}})
	rep, err := e.deliver(Request{}, testMsg)
	if err != nil {
		t.Fatalf("delivery failed: %v", err)
	}
	if got := e.files(testMsg); strings.Join(got, " ") != "./new" {
		t.Errorf("files = %q, want the message in INBOX", got)
	}
	if !strings.Contains(rep.ScriptProblem, "compiler bug") || !strings.Contains(e.logs.String(), "panicked") {
		t.Errorf("problem %q, logs:\n%s", rep.ScriptProblem, e.logs)
	}
}
