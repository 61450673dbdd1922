package engine

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"reflect"
	"runtime/debug"
	"strings"

	"github.com/foxcpp/go-sieve/interp"
)

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
				done <- outcome{err: &RuntimeError{
					Msg:   fmt.Sprintf("internal error in the Sieve interpreter: %v", p),
					Stack: debug.Stack(),
				}}
			}
		}()
		r, err := e.run(ctx, s, env, msg)
		done <- outcome{r, err}
	}()
	select {
	case o := <-done:
		return o.res, o.err
	case <-ctx.Done():
		// The interpreter checks ctx between commands only; a single
		// runaway test keeps its goroutine busy until it ends, but the
		// caller gets its answer now.
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w (%s)", ErrTimeout, e.cfg.Limits.Timeout)
		}
		return nil, fmt.Errorf("engine: run: %w", ctx.Err())
	}
}

// runState is shared by all Runtime values of one run.
type runState struct {
	limits    Limits
	actions   int
	redirects int
	cur       position   // command being executed, when known
	positions []position // of each recorded action
}

// onAction records an action after checking the per-run limits, so that a
// refused redirect is never recorded.
func (st *runState) onAction(ctx context.Context, a interp.AppliedAction, d *interp.RuntimeData) error {
	isRedirect := false
	switch x := a.(type) {
	case interp.ActionRedirect:
		isRedirect = true
		addr, err := st.normalizeAddress(x.Address)
		if err != nil {
			return err
		}
		x.Address = addr
		a = x
	case interp.ActionExtension:
		if r, ok := x.Value.(Redirect); ok {
			isRedirect = true
			addr, err := st.normalizeAddress(r.Address)
			if err != nil {
				return err
			}
			r.Address = addr
			x.Value = r
			a = x
		}
	}
	if keep, ok := a.(interp.ActionKeep); !ok || !keep.Implicit {
		if st.actions >= st.limits.MaxActions {
			return &RuntimeError{Line: st.cur.line, Column: st.cur.col, Msg: fmt.Sprintf("too many actions: the limit is %d per message", st.limits.MaxActions)}
		}
	}
	if isRedirect {
		if st.redirects >= st.limits.MaxRedirects {
			return &RuntimeError{Line: st.cur.line, Column: st.cur.col, Msg: fmt.Sprintf("too many redirects: the limit is %d per message", st.limits.MaxRedirects)}
		}
		st.redirects++
	}
	st.actions++
	p := st.cur
	if keep, ok := a.(interp.ActionKeep); ok && keep.Implicit {
		p = position{}
	}
	st.positions = append(st.positions, p)
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
		return nil, &RuntimeError{Line: st.cur.line, Column: st.cur.col, Msg: err.Error(), Err: err}
	}
	var actions []Action
	for _, a := range d.AppliedActions {
		x, ok := fromInterp(a)
		if !ok {
			return nil, &RuntimeError{Msg: fmt.Sprintf("unknown action %T", a)}
		}
		actions = append(actions, x)
	}
	raw := actions // parallel to st.positions
	actions, err := postProcess(actions, st.positions)
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
				var p position
				var ae *ActionError
				if errors.As(err, &ae) {
					p = positionOf(raw, st.positions, ae.Action)
				}
				return nil, &RuntimeError{Line: p.line, Column: p.col, Msg: err.Error(), Err: err}
			}
		}
	}
	return &Result{Actions: actions}, nil
}

// positionOf is the position of the first recorded action equal to a
// (zero when unknown).
func positionOf(actions []Action, pos []position, a Action) position {
	for i, x := range actions {
		if i < len(pos) && reflect.DeepEqual(x, a) {
			return pos[i]
		}
	}
	return position{}
}

// normalizeAddress turns a redirect target ("Bob <bob@example.org>",
// obsolete forms with white space) into the bare address, as Pigeonhole
// does; an invalid one (possible only through variables, constant ones are
// refused at compile time) is a runtime error.
func (st *runState) normalizeAddress(s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		a, err = mail.ParseAddress(strings.Join(strings.Fields(s), ""))
	}
	if err != nil {
		return "", &RuntimeError{Line: st.cur.line, Column: st.cur.col, Msg: fmt.Sprintf("specified redirect address '%s' is invalid", s), Err: err}
	}
	return a.Address, nil
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
