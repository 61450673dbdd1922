package engine

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/foxcpp/go-sieve/interp"
)

// Action is one thing a script asks the delivery agent to do.
// The concrete types are Keep, FileInto, Redirect, Reject, Discard and
// extension actions (see ExtensionAction).
type Action interface{ actionName() string }

// Keep stores the message in the default mailbox (INBOX).
type Keep struct {
	Implicit bool
	Flags    []string
}

// FileInto stores the message in Mailbox ("/"-separated hierarchy).
type FileInto struct {
	Mailbox string
	Flags   []string
	Copy    bool
	Create  bool // mailbox extension :create
}

// Redirect forwards the message to Address.
type Redirect struct {
	Address string
	Copy    bool
}

// Reject refuses the message with Reason; Extended is ereject (RFC 5429).
type Reject struct {
	Reason   string
	Extended bool
}

// Discard silently drops the message.
type Discard struct{}

// ExtensionAction wraps an action produced by a project extension
// (e.g. a vacation reply). Value is the extension's own type.
type ExtensionAction struct {
	Extension string
	Value     any
}

func (Keep) actionName() string            { return "keep" }
func (FileInto) actionName() string        { return "fileinto" }
func (Redirect) actionName() string        { return "redirect" }
func (Reject) actionName() string          { return "reject" }
func (Discard) actionName() string         { return "discard" }
func (ExtensionAction) actionName() string { return "extension" }

// Result is what a run decided.
type Result struct {
	Actions []Action
}

// Run executes s on msg with a deadline (Limits.Timeout) and turns panics
// and runtime errors into an error; the caller then falls back to implicit
// keep.
func (e *Engine) Run(ctx context.Context, s *Script, env Envelope, msg *Message) (res *Result, err error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Limits.Timeout)
	defer cancel()

	type outcome struct {
		res *Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- outcome{err: &RuntimeError{Msg: fmt.Sprintf("interpreter panic: %v\n%s", p, debug.Stack())}}
			}
		}()
		r, err := e.run(ctx, s, env, msg)
		done <- outcome{r, err}
	}()
	select {
	case o := <-done:
		return o.res, o.err
	case <-ctx.Done():
		// The interpreter ignores its context; the goroutine is abandoned
		// and the process (one per message in sieve-lda) exits soon.
		return nil, fmt.Errorf("%w (%s)", ErrTimeout, e.cfg.Limits.Timeout)
	}
}

func (e *Engine) run(ctx context.Context, s *Script, env Envelope, msg *Message) (*Result, error) {
	d := interp.NewRuntimeData(s.script, interp.DummyPolicy{},
		interp.EnvelopeStatic{From: env.From, To: env.To, Auth: env.Auth}, msg)
	envItems := interp.MapEnv{"location": "MDA", "phase": "during"}
	for k, v := range e.cfg.Environment {
		envItems[k] = v
	}
	d.Env = envItems
	if err := s.script.Execute(ctx, d); err != nil {
		return nil, &RuntimeError{Msg: err.Error()}
	}
	res := &Result{}
	for _, a := range d.AppliedActions {
		switch a := a.(type) {
		case interp.ActionKeep:
			res.Actions = append(res.Actions, Keep{Implicit: a.Implicit, Flags: a.Flags})
		case interp.ActionFileInto:
			res.Actions = append(res.Actions, FileInto{Mailbox: a.Mailbox, Flags: a.Flags, Copy: a.Copy})
		case interp.ActionRedirect:
			res.Actions = append(res.Actions, Redirect{Address: a.Address, Copy: a.Copy})
		case interp.ActionReject:
			res.Actions = append(res.Actions, Reject{Reason: a.Reason})
		case interp.ActionEReject:
			res.Actions = append(res.Actions, Reject{Reason: a.Reason, Extended: true})
		case interp.ActionDiscard:
			res.Actions = append(res.Actions, Discard{})
		default:
			return nil, &RuntimeError{Msg: fmt.Sprintf("unknown action %T", a)}
		}
	}
	return res, nil
}

// String renders an action for logs and sievectl test.
func String(a Action) string {
	switch a := a.(type) {
	case Keep:
		s := "keep"
		if a.Implicit {
			s = "keep (implicit)"
		}
		return s + flagSuffix(a.Flags)
	case FileInto:
		s := fmt.Sprintf("fileinto %q", a.Mailbox)
		if a.Copy {
			s += " :copy"
		}
		return s + flagSuffix(a.Flags)
	case Redirect:
		s := fmt.Sprintf("redirect %q", a.Address)
		if a.Copy {
			s += " :copy"
		}
		return s
	case Reject:
		if a.Extended {
			return fmt.Sprintf("ereject %q", a.Reason)
		}
		return fmt.Sprintf("reject %q", a.Reason)
	case Discard:
		return "discard"
	case ExtensionAction:
		return fmt.Sprintf("%s %v", a.Extension, a.Value)
	}
	return fmt.Sprintf("%v", a)
}

func flagSuffix(f []string) string {
	if len(f) == 0 {
		return ""
	}
	return " flags: " + strings.Join(f, " ")
}
