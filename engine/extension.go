package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/foxcpp/go-sieve/interp"
	"github.com/foxcpp/go-sieve/lexer"
	"github.com/foxcpp/go-sieve/parser"
)

// Extension is a project-owned Sieve extension (vacation, mailbox, ...). It
// is registered with the interpreter of one Engine only (Config.Extensions),
// never globally.
//
// An extension may also implement Tester, Validator and ActionChecker.
type Extension interface {
	// Names returns the capability names the extension provides
	// (e.g. "vacation", "vacation-seconds"). They are added to
	// Engine.Extensions and so to the ManageSieve SIEVE capability.
	Names() []string
	// Commands returns the commands the extension adds (may be nil). A
	// command named like a built-in one ("fileinto") replaces it.
	Commands() []CommandSpec
}

// Tester is implemented by extensions that add tests.
type Tester interface {
	Tests() []TestSpec
}

// Validator is implemented by extensions that check the whole script after
// it compiled (e.g. "only one vacation per script"). uses lists every use of
// the extension's commands and tests, and of the built-in action commands
// keep, discard, redirect, reject and ereject (so an extension can see the
// actions it conflicts with), in script order. Errors in the returned
// diagnostics make the compile fail.
type Validator interface {
	Validate(uses []CommandUse) Diagnostics
}

// ActionChecker is implemented by extensions that check the list of actions
// after a run (e.g. vacation together with reject). A non-nil error becomes
// the run's error (the caller falls back to implicit keep); an
// *ActionError names the offending action, so the error carries its line.
type ActionChecker interface {
	CheckActions(actions []Action) error
}

// ActionError is an ActionChecker error about one of the actions it was
// given (e.g. the reject that conflicts with a vacation): Run reports it
// on the line of the command that produced Action.
type ActionError struct {
	Action Action
	Msg    string
}

func (e *ActionError) Error() string { return e.Msg }

// CommandUse is one use of an extension command or test in a script.
type CommandUse struct {
	Name         string
	Line, Column int
	// Unconditional: a top-level command with no top-level stop before
	// it, so it runs on every message. Validators can refuse conflicts
	// between unconditional commands and only warn about conditional ones.
	Unconditional bool
}

// ArgKind is the kind of a tagged or positional argument.
type ArgKind int

const (
	// ArgFlag is a tag without a value (":mime").
	ArgFlag ArgKind = iota
	// ArgNumber is a number, with an optional K/M/G suffix applied.
	ArgNumber
	// ArgString is a single string.
	ArgString
	// ArgStringList is a string list (a single string is a list of one).
	ArgStringList
)

func (k ArgKind) String() string {
	switch k {
	case ArgFlag:
		return "flag"
	case ArgNumber:
		return "number"
	case ArgString:
		return "string"
	case ArgStringList:
		return "string list"
	}
	return fmt.Sprintf("ArgKind(%d)", int(k))
}

// CommandSpec describes a command an extension adds.
type CommandSpec struct {
	Name string
	// Requires: the script must `require` one of these (none: always
	// available).
	Requires []string
	// Tags maps a tag (":days") to the kind of its value.
	Tags map[string]ArgKind
	// Positional lists the positional arguments, all mandatory.
	Positional []ArgKind
	// Load is called at compile time for every use of the command, after
	// the arguments were checked against Tags and Positional: validate,
	// warn (Call.Warnf), fail (Call.Errorf), and build the runtime half.
	Load func(c *Call) (Command, error)
}

// TestSpec describes a test an extension adds.
type TestSpec struct {
	Name       string
	Requires   []string
	Tags       map[string]ArgKind
	Positional []ArgKind
	Load       func(c *Call) (Test, error)
}

// Command is the runtime half of an extension command.
type Command interface {
	Execute(ctx context.Context, rt *Runtime) error
}

// Test is the runtime half of an extension test.
type Test interface {
	Check(ctx context.Context, rt *Runtime) (bool, error)
}

// CommandFunc adapts a function to Command.
type CommandFunc func(ctx context.Context, rt *Runtime) error

// Execute implements Command.
func (f CommandFunc) Execute(ctx context.Context, rt *Runtime) error { return f(ctx, rt) }

// Call is one use of an extension command or test in a script, at compile
// time.
type Call struct {
	name      string
	line, col int
	tags      map[string]any // key without ':', lower case
	args      []any          // string, []string or uint64
	script    *interp.Script
	st        *compileState
}

// Name is the command or test name, lower case.
func (c *Call) Name() string { return c.name }

// Line is the 1-based line of the command.
func (c *Call) Line() int { return c.line }

// Column is the 1-based column of the command.
func (c *Call) Column() int { return c.col }

func tagKey(tag string) string { return strings.ToLower(strings.TrimPrefix(tag, ":")) }

// Has reports whether the tag (":mime" or "mime") was given.
func (c *Call) Has(tag string) bool {
	_, ok := c.tags[tagKey(tag)]
	return ok
}

// Number returns the value of a number tag, size suffixes applied.
func (c *Call) Number(tag string) (uint64, bool) {
	v, ok := c.tags[tagKey(tag)].(uint64)
	return v, ok
}

// String returns the value of a string tag, unexpanded (variables are
// expanded at run time by Runtime.Expand).
func (c *Call) String(tag string) (string, bool) {
	switch v := c.tags[tagKey(tag)].(type) {
	case string:
		return v, true
	case []string:
		if len(v) == 1 {
			return v[0], true
		}
	}
	return "", false
}

// StringList returns the value of a string or string-list tag, unexpanded.
func (c *Call) StringList(tag string) ([]string, bool) {
	switch v := c.tags[tagKey(tag)].(type) {
	case string:
		return []string{v}, true
	case []string:
		return v, true
	}
	return nil, false
}

// NArgs is the number of positional arguments given.
func (c *Call) NArgs() int { return len(c.args) }

// Arg returns positional argument i: a string (ArgString), []string
// (ArgStringList) or uint64 (ArgNumber); nil when absent.
func (c *Call) Arg(i int) any {
	if i < 0 || i >= len(c.args) {
		return nil
	}
	return c.args[i]
}

// StringArg returns positional argument i as a string ("" when it is not
// a single string).
func (c *Call) StringArg(i int) string {
	switch v := c.Arg(i).(type) {
	case string:
		return v
	case []string:
		if len(v) == 1 {
			return v[0]
		}
	}
	return ""
}

// StringListArg returns positional argument i as a string list.
func (c *Call) StringListArg(i int) []string {
	switch v := c.Arg(i).(type) {
	case string:
		return []string{v}
	case []string:
		return v
	}
	return nil
}

// NumberArg returns positional argument i as a number.
func (c *Call) NumberArg(i int) uint64 {
	v, _ := c.Arg(i).(uint64)
	return v
}

// Requires reports whether the script required ext.
func (c *Call) Requires(ext string) bool { return c.script.RequiresExtension(ext) }

// Warnf records a warning at this command's position. The script still
// compiles.
func (c *Call) Warnf(format string, args ...any) {
	c.st.warn(c.line, c.col, fmt.Sprintf(format, args...))
}

// Errorf returns a compile error at this command's position; return it from
// Load.
func (c *Call) Errorf(format string, args ...any) error {
	return lexer.ErrorAt(lexer.LineCol(c.line, c.col), format, args...)
}

// Runtime is what an extension command sees while a script runs.
type Runtime struct {
	ctx   context.Context
	d     *interp.RuntimeData
	env   Envelope
	msg   *Message
	state *runState
}

type runtimeKey struct{}

// Expand expands variable references (RFC 5229) in s as the built-in
// commands do; s is returned unchanged when the script does not require
// "variables". Encoded characters (RFC 5228 2.4.2.4) were decoded at compile
// time.
func (rt *Runtime) Expand(s string) string { return interp.ExpandVars(rt.d, s) }

// ExpandList is Expand for each element of list.
func (rt *Runtime) ExpandList(list []string) []string { return interp.ExpandVarsList(rt.d, list) }

// Envelope is the SMTP envelope of the message.
func (rt *Runtime) Envelope() Envelope { return rt.env }

// Message is the message being filtered.
func (rt *Runtime) Message() *Message { return rt.msg }

// Flags returns the current value of the imap4flags internal variable
// (RFC 5232), used when an action has no :flags argument.
func (rt *Runtime) Flags() []string {
	return append([]string(nil), rt.d.Flags...)
}

// Actions returns the actions recorded so far in this run (implicit keep
// not included).
func (rt *Runtime) Actions() []Action {
	out := make([]Action, 0, len(rt.d.AppliedActions))
	for _, a := range rt.d.AppliedActions {
		if x, ok := fromInterp(a); ok {
			out = append(out, x)
		}
	}
	return out
}

// AddAction records an action. It fails (and the run fails) when the
// script exceeds Limits.MaxActions or Limits.MaxRedirects.
func (rt *Runtime) AddAction(a Action) error {
	ctx := rt.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	var cancels bool
	switch a := a.(type) {
	case Keep, Discard, Reject:
		cancels = true
	case FileInto:
		cancels = !a.Copy
	case Redirect:
		cancels = !a.Copy
	case ExtensionAction:
		cancels = a.CancelsImplicitKeep
	default:
		return fmt.Errorf("engine: unknown action type %T", a)
	}
	return rt.d.OnAction(ctx, interp.ActionExtension{
		Name: a.actionName(), Value: a, CancelsImplicitKeep: cancels,
	}, rt.d)
}

// extCmd is the interpreter-side wrapper of an extension command.
type extCmd struct {
	name      string
	line, col int
	cmd       Command
}

func (c extCmd) Execute(ctx context.Context, d *interp.RuntimeData) error {
	rt := runtimeFrom(ctx, d)
	if rt.state != nil {
		rt.state.cur = position{c.line, c.col}
	}
	if err := c.cmd.Execute(ctx, rt); err != nil {
		return positioned(err, c.line, c.col, c.name)
	}
	return nil
}

type extTest struct {
	name      string
	line, col int
	test      Test
}

func (t extTest) Check(ctx context.Context, d *interp.RuntimeData) (bool, error) {
	rt := runtimeFrom(ctx, d)
	ok, err := t.test.Check(ctx, rt)
	if err != nil {
		return false, positioned(err, t.line, t.col, t.name)
	}
	return ok, nil
}

func positioned(err error, line, col int, name string) error {
	var re *RuntimeError
	if errors.As(err, &re) || errors.Is(err, interp.ErrStop) {
		return err
	}
	return &RuntimeError{Line: line, Column: col, Msg: fmt.Sprintf("%s: %v", name, err), Err: err}
}

func runtimeFrom(ctx context.Context, d *interp.RuntimeData) *Runtime {
	base, _ := ctx.Value(runtimeKey{}).(*Runtime)
	rt := &Runtime{ctx: ctx, d: d}
	if base != nil {
		rt.env, rt.msg, rt.state = base.env, base.msg, base.state
	}
	return rt
}

// compileState collects what one Compile learns besides the script.
type compileState struct {
	warnings Diagnostics
	uses     map[Extension][]CommandUse
	builtin  []CommandUse // uses of the wrapped built-in action commands
}

// usesFor is what Validator x sees: its own uses and the built-in action
// commands, merged in script order.
func (st *compileState) usesFor(x Extension) []CommandUse {
	out := append(append([]CommandUse(nil), st.uses[x]...), st.builtin...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Line != out[j].Line {
			return out[i].Line < out[j].Line
		}
		return out[i].Column < out[j].Column
	})
	return out
}

func (st *compileState) warn(line, col int, msg string) {
	st.warnings = append(st.warnings, Diagnostic{Line: line, Column: col, Severity: SeverityWarning, Message: msg})
}

// registerExtensions fills the interpreter registry of opts with the
// project extensions, bound to one compile.
func (e *Engine) registerExtensions(opts *interp.Options, st *compileState) {
	opts.Commands = map[string]interp.CommandLoader{}
	opts.Tests = map[string]interp.TestLoader{}
	// Built-in action commands are wrapped to know their position at run
	// time, for run-time errors ("reject conflicts with keep at line 3").
	for _, name := range []string{"keep", "discard", "redirect", "reject", "ereject", "fileinto"} {
		if l := interp.BuiltinCommand(name); l != nil {
			opts.Commands[name] = positionedBuiltin(name, l, st)
		}
	}
	for _, x := range e.cfg.Extensions {
		opts.Extensions = append(opts.Extensions, x.Names()...)
		for _, spec := range x.Commands() {
			opts.Commands[strings.ToLower(spec.Name)] = commandLoader(x, spec, st)
		}
		if t, ok := x.(Tester); ok {
			for _, spec := range t.Tests() {
				opts.Tests[strings.ToLower(spec.Name)] = testLoader(x, spec, st)
			}
		}
	}
}

// posCmd is a built-in command that records its position when it runs.
type posCmd struct {
	cmd       interp.Cmd
	line, col int
}

func (c posCmd) Execute(ctx context.Context, d *interp.RuntimeData) error {
	if base, _ := ctx.Value(runtimeKey{}).(*Runtime); base != nil && base.state != nil {
		base.state.cur = position{c.line, c.col}
	}
	return c.cmd.Execute(ctx, d)
}

func positionedBuiltin(name string, l interp.CommandLoader, st *compileState) interp.CommandLoader {
	return func(s *interp.Script, pc parser.Cmd) (interp.Cmd, error) {
		c, err := l(s, pc)
		if err != nil || c == nil {
			return c, err
		}
		st.builtin = append(st.builtin, CommandUse{Name: name, Line: pc.Line, Column: pc.Col})
		return posCmd{cmd: c, line: pc.Line, col: pc.Col}, nil
	}
}

func commandLoader(x Extension, spec CommandSpec, st *compileState) interp.CommandLoader {
	return func(s *interp.Script, pc parser.Cmd) (interp.Cmd, error) {
		if pc.Block != nil {
			return nil, lexer.ErrorAt(pc.Position, "%s command does not take a block", spec.Name)
		}
		if len(pc.Tests) > 0 {
			return nil, lexer.ErrorAt(pc.Position, "%s command does not take a test", spec.Name)
		}
		c, err := newCall(s, st, spec.Name, spec.Requires, spec.Tags, spec.Positional, pc.Position, pc.Args, "command")
		if err != nil {
			return nil, err
		}
		if spec.Load == nil {
			return nil, c.Errorf("%s command is not implemented", spec.Name)
		}
		cmd, err := spec.Load(c)
		if err != nil {
			return nil, atPosition(err, pc.Position)
		}
		st.uses[x] = append(st.uses[x], CommandUse{Name: c.name, Line: c.line, Column: c.col})
		return extCmd{name: c.name, line: c.line, col: c.col, cmd: cmd}, nil
	}
}

func testLoader(x Extension, spec TestSpec, st *compileState) interp.TestLoader {
	return func(s *interp.Script, pt parser.Test) (interp.Test, error) {
		if len(pt.Tests) > 0 {
			return nil, lexer.ErrorAt(pt.Position, "%s test does not take tests as arguments", spec.Name)
		}
		c, err := newCall(s, st, spec.Name, spec.Requires, spec.Tags, spec.Positional, pt.Position, pt.Args, "test")
		if err != nil {
			return nil, err
		}
		if spec.Load == nil {
			return nil, c.Errorf("%s test is not implemented", spec.Name)
		}
		t, err := spec.Load(c)
		if err != nil {
			return nil, atPosition(err, pt.Position)
		}
		st.uses[x] = append(st.uses[x], CommandUse{Name: c.name, Line: c.line, Column: c.col})
		return extTest{name: c.name, line: c.line, col: c.col, test: t}, nil
	}
}

// atPosition makes sure a compile error from an extension carries a
// position.
func atPosition(err error, pos lexer.Position) error {
	var le *lexer.Error
	if errors.As(err, &le) {
		return err
	}
	return lexer.ErrorAt(pos, "%v", err)
}

// newCall checks the arguments of one use against the spec.
func newCall(s *interp.Script, st *compileState, name string, requires []string, tags map[string]ArgKind,
	positional []ArgKind, pos lexer.Position, args []parser.Arg, what string) (*Call, error) {
	name = strings.ToLower(name)
	c := &Call{name: name, line: pos.Line, col: pos.Col, tags: map[string]any{}, script: s, st: st}
	if len(requires) > 0 {
		ok := false
		for _, r := range requires {
			if s.RequiresExtension(r) {
				ok = true
				break
			}
		}
		if !ok {
			return nil, lexer.ErrorAt(pos, "missing require %q: the extension must be required before the %s %s is used", requires[0], name, what)
		}
	}
	kinds := make(map[string]ArgKind, len(tags))
	for t, k := range tags {
		kinds[tagKey(t)] = k
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if tag, ok := a.(parser.TagArg); ok {
			key := strings.ToLower(tag.Value)
			kind, known := kinds[key]
			if !known {
				return nil, lexer.ErrorAt(tag.Position, "unknown tagged argument :%s for the %s %s", tag.Value, name, what)
			}
			if _, dup := c.tags[key]; dup {
				return nil, lexer.ErrorAt(tag.Position, "tagged argument :%s given more than once", tag.Value)
			}
			if kind == ArgFlag {
				c.tags[key] = true
				continue
			}
			if i+1 >= len(args) {
				return nil, lexer.ErrorAt(tag.Position, "tagged argument :%s needs a %s value", tag.Value, kind)
			}
			i++
			v, err := argValue(s, args[i], kind, fmt.Sprintf("the :%s tag", tag.Value))
			if err != nil {
				return nil, err
			}
			c.tags[key] = v
			continue
		}
		n := len(c.args)
		if n >= len(positional) {
			return nil, lexer.ErrorAt(posOf(a), "too many arguments for the %s %s", name, what)
		}
		v, err := argValue(s, a, positional[n], fmt.Sprintf("argument %d of %s", n+1, name))
		if err != nil {
			return nil, err
		}
		c.args = append(c.args, v)
	}
	if len(c.args) < len(positional) {
		return nil, lexer.ErrorAt(pos, "the %s %s needs %d positional argument(s), %d given", name, what, len(positional), len(c.args))
	}
	return c, nil
}

func posOf(a parser.Arg) lexer.Position {
	l, col := a.LineCol()
	return lexer.LineCol(l, col)
}

func argValue(s *interp.Script, a parser.Arg, kind ArgKind, what string) (any, error) {
	switch a := a.(type) {
	case parser.NumberArg:
		if kind != ArgNumber {
			return nil, lexer.ErrorAt(a.Position, "%s must be a %s, not a number", what, kind)
		}
		if a.Value < 0 {
			return nil, lexer.ErrorAt(a.Position, "%s: number is too large", what)
		}
		return uint64(a.Value), nil
	case parser.StringArg:
		switch kind {
		case ArgString:
			return decode(s, a.Position, a.Value)
		case ArgStringList:
			v, err := decode(s, a.Position, a.Value)
			if err != nil {
				return nil, err
			}
			return []string{v}, nil
		}
		return nil, lexer.ErrorAt(a.Position, "%s must be a %s, not a string", what, kind)
	case parser.StringListArg:
		if kind != ArgStringList && !(kind == ArgString && len(a.Value) == 1) {
			return nil, lexer.ErrorAt(a.Position, "%s must be a %s, not a string list", what, kind)
		}
		out := make([]string, len(a.Value))
		for i, v := range a.Value {
			d, err := decode(s, a.Position, v)
			if err != nil {
				return nil, err
			}
			out[i] = d
		}
		if kind == ArgString {
			return out[0], nil
		}
		return out, nil
	case parser.TagArg:
		return nil, lexer.ErrorAt(a.Position, "%s must be a %s, not the tag :%s", what, kind, a.Value)
	}
	return nil, fmt.Errorf("unknown argument type %T", a)
}

func decode(s *interp.Script, pos lexer.Position, v string) (string, error) {
	if s.RequiresExtension("encoded-character") {
		d, err := interp.DecodeEncodedChars(v)
		if err != nil {
			return "", lexer.ErrorAt(pos, "malformed encoded character sequence: %v", err)
		}
		v = d
	}
	if err := interp.CheckVarRefs(s, pos, v); err != nil {
		return "", err
	}
	return v, nil
}
