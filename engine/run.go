package engine

import (
	"context"
	"errors"
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
	// CancelsImplicitKeep: whether the action, like fileinto, cancels the
	// implicit keep (RFC 5228 2.10.2). A vacation reply does not.
	CancelsImplicitKeep bool
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

// runState is shared by all Runtime values of one run.
type runState struct {
	limits    Limits
	actions   int
	redirects int
}

// onAction records an action after checking the per-run limits, so that a
// refused redirect is never recorded.
func (st *runState) onAction(ctx context.Context, a interp.AppliedAction, d *interp.RuntimeData) error {
	isRedirect := false
	switch a := a.(type) {
	case interp.ActionRedirect:
		isRedirect = true
	case interp.ActionExtension:
		_, isRedirect = a.Value.(Redirect)
	}
	if keep, ok := a.(interp.ActionKeep); !ok || !keep.Implicit {
		if st.actions >= st.limits.MaxActions {
			return &RuntimeError{Msg: fmt.Sprintf("too many actions: the limit is %d per message", st.limits.MaxActions)}
		}
	}
	if isRedirect {
		if st.redirects >= st.limits.MaxRedirects {
			return &RuntimeError{Msg: fmt.Sprintf("too many redirects: the limit is %d per message", st.limits.MaxRedirects)}
		}
		st.redirects++
	}
	st.actions++
	d.AppliedActions = append(d.AppliedActions, a)
	return nil
}

func (e *Engine) run(ctx context.Context, s *Script, env Envelope, msg *Message) (*Result, error) {
	st := &runState{limits: e.cfg.Limits}
	var imsg interp.Message = msg
	if msg == nil {
		imsg = emptyMessage{}
	}
	d := interp.NewRuntimeData(s.script, interp.DummyPolicy{},
		interp.EnvelopeStatic{From: env.From, To: env.To, Auth: env.Auth}, imsg)
	envItems := interp.MapEnv{
		"location": "MDA",
		"phase":    "during",
		"name":     "sieved",
		"version":  Version,
	}
	for k, v := range e.cfg.Environment {
		if k == "location" || k == "phase" {
			continue
		}
		envItems[k] = v
	}
	d.Env = envItems
	d.OnAction = st.onAction
	rt := &Runtime{ctx: ctx, d: d, env: env, msg: msg, state: st}
	ctx = context.WithValue(ctx, runtimeKey{}, rt)
	if err := s.script.Execute(ctx, d); err != nil {
		var re *RuntimeError
		if errors.As(err, &re) {
			return nil, re
		}
		return nil, &RuntimeError{Msg: err.Error(), Err: err}
	}
	var actions []Action
	for _, a := range d.AppliedActions {
		x, ok := fromInterp(a)
		if !ok {
			return nil, &RuntimeError{Msg: fmt.Sprintf("unknown action %T", a)}
		}
		actions = append(actions, x)
	}
	actions, err := postProcess(actions)
	if err != nil {
		return nil, err
	}
	for _, x := range e.cfg.Extensions {
		if c, ok := x.(ActionChecker); ok {
			if err := c.CheckActions(actions); err != nil {
				var re *RuntimeError
				if errors.As(err, &re) {
					return nil, re
				}
				return nil, &RuntimeError{Msg: err.Error(), Err: err}
			}
		}
	}
	return &Result{Actions: actions}, nil
}

// Version is reported as the environment item "version".
var Version = "0.1"

// emptyMessage stands in when Run is given no message.
type emptyMessage struct{}

func (emptyMessage) HeaderGet(string) ([]string, error) { return nil, nil }
func (emptyMessage) MessageSize() int                   { return 0 }

// fromInterp converts an interpreter action.
func fromInterp(a interp.AppliedAction) (Action, bool) {
	switch a := a.(type) {
	case interp.ActionKeep:
		return Keep{Implicit: a.Implicit, Flags: a.Flags}, true
	case interp.ActionFileInto:
		return FileInto{Mailbox: a.Mailbox, Flags: a.Flags, Copy: a.Copy}, true
	case interp.ActionRedirect:
		return Redirect{Address: a.Address, Copy: a.Copy}, true
	case interp.ActionReject:
		return Reject{Reason: a.Reason}, true
	case interp.ActionEReject:
		return Reject{Reason: a.Reason, Extended: true}, true
	case interp.ActionDiscard:
		return Discard{}, true
	case interp.ActionExtension:
		if x, ok := a.Value.(Action); ok {
			return x, true
		}
		return ExtensionAction{Extension: a.Name, Value: a.Value, CancelsImplicitKeep: a.CancelsImplicitKeep}, true
	}
	return nil, false
}

// postProcess applies what RFC 5228 and RFC 5429 leave to the delivery
// agent: reject conflicts and de-duplication of deliveries.
func postProcess(in []Action) ([]Action, error) {
	var rejects int
	var delivering []string
	for _, a := range in {
		switch a := a.(type) {
		case Reject:
			rejects++
		case Keep:
			if !a.Implicit {
				delivering = append(delivering, "keep")
			}
		case FileInto:
			delivering = append(delivering, "fileinto")
		case Redirect:
			delivering = append(delivering, "redirect")
		}
	}
	if rejects > 1 {
		// RFC 5429 2.1: only one reject/ereject per execution.
		return nil, &RuntimeError{Msg: "more than one reject/ereject action in one run"}
	}
	if rejects == 1 {
		// RFC 5429 2.1: reject is incompatible with any action that
		// delivers the message.
		for _, a := range in {
			if k, ok := a.(Keep); ok && k.Implicit {
				continue
			}
			switch a.(type) {
			case Keep, FileInto, Redirect:
				return nil, &RuntimeError{Msg: fmt.Sprintf(
					"the reject/ereject action conflicts with the %s action, which delivers the message", a.actionName())}
			}
		}
	}
	_ = delivering

	// De-duplicate deliveries to the same mailbox (keep = INBOX; "INBOX"
	// is case-insensitive, RFC 3501 5.1; other names are compared as
	// given) and redirects to the same address. Flags of merged
	// deliveries are united.
	out := make([]Action, 0, len(in))
	mailboxAt := map[string]int{}
	redirectAt := map[string]int{}
	for _, a := range in {
		switch x := a.(type) {
		case Keep, FileInto:
			key, flags := deliveryKey(x)
			if i, ok := mailboxAt[key]; ok {
				out[i] = mergeDelivery(out[i], x, flags)
				continue
			}
			mailboxAt[key] = len(out)
		case Redirect:
			key := strings.ToLower(x.Address)
			if i, ok := redirectAt[key]; ok {
				if r := out[i].(Redirect); r.Copy && !x.Copy {
					r.Copy = false
					out[i] = r
				}
				continue
			}
			redirectAt[key] = len(out)
		}
		out = append(out, a)
	}
	return out, nil
}

func deliveryKey(a Action) (string, []string) {
	switch a := a.(type) {
	case Keep:
		return "INBOX", a.Flags
	case FileInto:
		if strings.EqualFold(a.Mailbox, "INBOX") {
			return "INBOX", a.Flags
		}
		return a.Mailbox, a.Flags
	}
	return "", nil
}

// mergeDelivery folds a second delivery into the same mailbox into the
// first: one copy, flags united; an explicit action wins over the implicit
// keep, and :copy only stays when both had it; :create is kept if any had it.
func mergeDelivery(first, second Action, flags []string) Action {
	switch f := first.(type) {
	case Keep:
		f.Flags = unionFlags(f.Flags, flags)
		if s, ok := second.(Keep); ok && !s.Implicit {
			f.Implicit = false
		}
		if _, ok := second.(FileInto); ok {
			f.Implicit = false
		}
		return f
	case FileInto:
		f.Flags = unionFlags(f.Flags, flags)
		if s, ok := second.(FileInto); ok {
			f.Copy = f.Copy && s.Copy
			f.Create = f.Create || s.Create
		} else {
			f.Copy = false
		}
		return f
	}
	return first
}

func unionFlags(a, b []string) []string {
	if len(b) == 0 {
		return a
	}
	seen := map[string]bool{}
	var out []string
	for _, f := range append(append([]string(nil), a...), b...) {
		k := strings.ToLower(f)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, f)
	}
	return out
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
