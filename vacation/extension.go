package vacation

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/sieved/sieved/engine"
)

// ExtensionName is the engine.ExtensionAction.Extension of vacation actions.
const ExtensionName = "vacation"

// Extension is the "vacation" and "vacation-seconds" Sieve extension,
// registered through engine.Config.Extensions.
type Extension struct {
	periods Periods
}

// NewExtension returns the extension with the given period limits.
func NewExtension(p Periods) *Extension {
	if p.Min <= 0 {
		p.Min = time.Second
	}
	if p.Default < p.Min {
		p.Default = p.Min
	}
	return &Extension{periods: p}
}

var (
	_ engine.Extension     = (*Extension)(nil)
	_ engine.Validator     = (*Extension)(nil)
	_ engine.ActionChecker = (*Extension)(nil)
)

// Names implements engine.Extension. "vacation-seconds" implies "vacation"
// (RFC 6131 section 2).
func (x *Extension) Names() []string { return []string{"vacation", "vacation-seconds"} }

// Commands implements engine.Extension.
//
//	vacation [":days" number | ":seconds" number] [":subject" string]
//	         [":from" string] [":addresses" string-list]
//	         [":mime"] [":handle" string] <reason: string>
func (x *Extension) Commands() []engine.CommandSpec {
	return []engine.CommandSpec{{
		Name:     "vacation",
		Requires: []string{"vacation", "vacation-seconds"},
		Tags: map[string]engine.ArgKind{
			":days":      engine.ArgNumber,
			":seconds":   engine.ArgNumber,
			":subject":   engine.ArgString,
			":from":      engine.ArgString,
			":addresses": engine.ArgStringList,
			":mime":      engine.ArgFlag,
			":handle":    engine.ArgString,
		},
		Positional: []engine.ArgKind{engine.ArgString},
		Load:       x.load,
	}}
}

// hasVariables reports whether s may change at run time.
func hasVariables(c *engine.Call, s string) bool {
	return c.Requires("variables") && strings.Contains(s, "${")
}

func (x *Extension) load(c *engine.Call) (engine.Command, error) {
	if c.Has(":seconds") && !c.Requires("vacation-seconds") {
		return nil, c.Errorf(`the :seconds argument of vacation requires the "vacation-seconds" extension: add require "vacation-seconds"`)
	}
	if c.Has(":days") && c.Has(":seconds") {
		return nil, c.Errorf("vacation takes :days or :seconds, not both")
	}
	period := x.periods.Default
	if n, ok := c.Number(":days"); ok {
		period = scaled(n, day)
		if w := x.clampWarning(&period); w != "" {
			c.Warnf("specified :days value '%d' %s", n, w)
		}
	} else if n, ok := c.Number(":seconds"); ok {
		period = scaled(n, time.Second)
		if w := x.clampWarning(&period); w != "" {
			c.Warnf("specified :seconds value '%d' %s", n, w)
		}
	}
	subject, _ := c.String(":subject")
	from, hasFrom := c.String(":from")
	if hasFrom && !hasVariables(c, from) {
		if _, ok := validAddr(from); !ok {
			return nil, c.Errorf("specified :from address '%s' is invalid for vacation action", from)
		}
	}
	addresses, _ := c.StringList(":addresses")
	for _, a := range addresses {
		if hasVariables(c, a) {
			continue
		}
		if _, ok := validAddr(a); !ok {
			return nil, c.Errorf("specified :addresses item '%s' is invalid for vacation action", a)
		}
	}
	reason := c.StringArg(0)
	mime := c.Has(":mime")
	handle, hasHandle := c.String(":handle")
	if !hasHandle {
		// From the UNEXPANDED arguments (RFC 5230 section 4.2).
		handle = DefaultHandle(reason, subject, from, mime)
	}
	return &command{period: period, subject: subject, from: from, addresses: addresses,
		mime: mime, handle: handle, expandHandle: hasHandle, reason: reason}, nil
}

func scaled(n uint64, unit time.Duration) time.Duration {
	if n > uint64(math.MaxInt64/int64(unit)) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(n) * unit
}

func (x *Extension) clampWarning(p *time.Duration) string {
	v, w := x.periods.Clamp(*p)
	*p = v
	return w
}

// command is the compiled vacation command.
type command struct {
	period       time.Duration
	subject      string
	from         string
	addresses    []string
	mime         bool
	handle       string
	expandHandle bool
	reason       string
}

// Execute expands the arguments and records the vacation action. It does
// not cancel the implicit keep (RFC 5230 section 4.7).
func (cmd *command) Execute(ctx context.Context, rt *engine.Runtime) error {
	act := &Action{
		Period:  cmd.period,
		Subject: rt.Expand(cmd.subject),
		From:    rt.Expand(cmd.from),
		Mime:    cmd.mime,
		Handle:  cmd.handle,
		Reason:  rt.Expand(cmd.reason),
	}
	if cmd.expandHandle {
		act.Handle = rt.Expand(cmd.handle)
	}
	if act.From != "" {
		if _, ok := validAddr(act.From); !ok {
			return fmt.Errorf("specified :from address '%s' is invalid for vacation action", act.From)
		}
	}
	for _, a := range rt.ExpandList(cmd.addresses) {
		// Pigeonhole ignores an invalid item at run time; so do we.
		if addr, ok := validAddr(a); ok {
			act.Addresses = append(act.Addresses, addr)
		}
	}
	for _, prev := range rt.Actions() {
		switch p := prev.(type) {
		case engine.ExtensionAction:
			if p.Extension == ExtensionName {
				return fmt.Errorf("duplicate vacation action not allowed")
			}
		case engine.Reject:
			// Reported here, at the vacation's line; a reject executed
			// after the vacation is caught by CheckActions.
			return fmt.Errorf("vacation conflicts with the earlier %s action: both send a response to the sender", rejectName(p))
		}
	}
	return rt.AddAction(engine.ExtensionAction{Extension: ExtensionName, Value: act, CancelsImplicitKeep: false})
}

// Validate implements engine.Validator: a second vacation command, or
// vacation together with reject or ereject (RFC 5429 2.3), is flagged at
// the later of the two. When both run on every message (top level, no stop
// before them) the script can never work and it is a compile error, so
// PUTSCRIPT refuses it with both lines. Otherwise it is a warning (PUTSCRIPT
// answers OK (WARNINGS)): "if ... { vacation ... } else { reject ... }" is
// a fine script, and executing both in one run is a run-time error (see
// Execute and CheckActions), as in Pigeonhole, which accepts both forms.
func (x *Extension) Validate(uses []engine.CommandUse) engine.Diagnostics {
	var d engine.Diagnostics
	var first, reject *engine.CommandUse
	// report flags a conflict between u and the earlier other: an error
	// when both run on every message (the script can never work), a
	// warning when a condition may keep them apart.
	report := func(u, other *engine.CommandUse, format string, args ...any) {
		sev, tail := engine.SeverityWarning, ": executing both in one run is an error"
		if u.Unconditional && other.Unconditional {
			sev, tail = engine.SeverityError, ": both run on every message, and one run cannot execute both"
		}
		d = append(d, engine.Diagnostic{Line: u.Line, Column: u.Column, Severity: sev,
			Message: fmt.Sprintf(format, args...) + tail})
	}
	reported := false
	for i := range uses {
		u := &uses[i]
		switch u.Name {
		case "vacation":
			switch {
			case first != nil:
				report(u, first, "second vacation command (the first is at line %d)", first.Line)
			case reject != nil && !reported:
				report(u, reject, "vacation command with the %s command at line %d (both send a response to the sender)", reject.Name, reject.Line)
				reported = true
			}
			if first == nil {
				first = u
			}
		case "reject", "ereject":
			if reject == nil {
				reject = u
			}
			if first != nil && !reported {
				report(u, first, "%s command with the vacation command at line %d (both send a response to the sender)", u.Name, first.Line)
				reported = true
			}
		}
	}
	return d
}

func rejectName(r engine.Reject) string {
	if r.Extended {
		return "ereject"
	}
	return "reject"
}

// CheckActions implements engine.ActionChecker: vacation conflicts with
// reject and ereject, which also answer the sender (RFC 5429 section 2.3),
// and a run may execute only one vacation.
func (x *Extension) CheckActions(actions []engine.Action) error {
	var vacations []engine.Action
	var reject *engine.Reject
	for _, a := range actions {
		switch a := a.(type) {
		case engine.ExtensionAction:
			if a.Extension == ExtensionName {
				vacations = append(vacations, a)
			}
		case engine.Reject:
			reject = &a
		}
	}
	if len(vacations) > 1 {
		return &engine.ActionError{Action: vacations[1], Msg: "duplicate vacation action not allowed"}
	}
	if len(vacations) == 1 && reject != nil {
		return &engine.ActionError{Action: *reject,
			Msg: fmt.Sprintf("%s action conflicts with the vacation action: both send a response to the sender", rejectName(*reject))}
	}
	return nil
}
