package engine

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	sieve "github.com/foxcpp/go-sieve"
	"github.com/foxcpp/go-sieve/interp"
	"github.com/foxcpp/go-sieve/lexer"
	"github.com/foxcpp/go-sieve/parser"
)

// Severity of a Diagnostic.
type Severity int

const (
	SeverityError Severity = iota
	SeverityWarning
)

func (s Severity) String() string {
	if s == SeverityWarning {
		return "warning"
	}
	return "error"
}

// Diagnostic is one compile error or warning, positioned in the script.
// Line and Column are 1-based; 0 means unknown.
type Diagnostic struct {
	Line, Column int
	Severity     Severity
	Message      string // a sentence for a person, no interpreter call chain
}

// Diagnostics is the outcome of a compile besides the script itself.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error.
func (d Diagnostics) HasErrors() bool {
	for _, x := range d {
		if x.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Errors returns only the errors.
func (d Diagnostics) Errors() Diagnostics { return d.filter(SeverityError) }

// Warnings returns only the warnings.
func (d Diagnostics) Warnings() Diagnostics { return d.filter(SeverityWarning) }

func (d Diagnostics) filter(s Severity) Diagnostics {
	var out Diagnostics
	for _, x := range d {
		if x.Severity == s {
			out = append(out, x)
		}
	}
	return out
}

// Format renders diagnostics the way Pigeonhole does for ManageSieve and
// sieve-test, one per line:
//
//	<name>: line <N>: error: <message>.
//
// at most max entries (max <= 0: all), then, when there are errors, the
// summary line "<name>: error: validation failed.".
func (d Diagnostics) Format(name string, max int) string {
	var b strings.Builder
	n := 0
	for _, x := range d {
		if max > 0 && n >= max {
			break
		}
		n++
		msg := strings.TrimRight(x.Message, ".")
		if x.Line > 0 {
			fmt.Fprintf(&b, "%s: line %d: %s: %s.\n", name, x.Line, x.Severity, msg)
		} else {
			fmt.Fprintf(&b, "%s: %s: %s.\n", name, x.Severity, msg)
		}
	}
	if d.HasErrors() {
		fmt.Fprintf(&b, "%s: error: validation failed.\n", name)
	}
	return strings.TrimRight(b.String(), "\n")
}

// Script is a compiled script, safe to run concurrently.
type Script struct {
	Name   string
	script *interp.Script
	eng    *Engine
}

// Compile compiles src. It returns a script (nil when there are errors) and
// the diagnostics, which may hold warnings for a usable script.
func (e *Engine) Compile(name string, src []byte) (*Script, Diagnostics) {
	if len(src) > e.cfg.Limits.MaxScriptBytes {
		return nil, Diagnostics{{Severity: SeverityError, Message: fmt.Sprintf(
			"script is too large (%d bytes, the limit is %d)", len(src), e.cfg.Limits.MaxScriptBytes)}}
	}
	st := &compileState{uses: map[Extension][]CommandUse{}}
	opts := e.options(st)
	// sieve.Load in three steps, to check limits on the syntax tree before
	// the interpreter sees it.
	toks, end, err := lexer.LexEnd(bytes.NewReader(src), &opts.Lexer)
	if err != nil {
		return nil, Diagnostics{diagnosticFromError(err)}
	}
	cmds, err := parser.Parse(lexer.NewStreamEnd(toks, end), &opts.Parser)
	if err != nil {
		return nil, Diagnostics{diagnosticFromError(err)}
	}
	// Limit errors and the interpreter's (first) error are reported
	// together, in script order, so the first error shown is the first in
	// the script, as with Pigeonhole.
	diags := e.checkTree(cmds)
	s, err := interp.LoadScript(cmds, &opts.Interp)
	if err != nil {
		diags = append(diags, diagnosticsFromError(err)...)
		diags = append(diags, st.warnings...)
		sortDiagnostics(diags)
		return nil, capDiagnostics(diags, e.cfg.Limits.MaxErrors)
	}
	diags = append(diags, st.warnings...)
	always := unconditional(cmds)
	for _, x := range e.cfg.Extensions {
		if v, ok := x.(Validator); ok {
			uses := st.usesFor(x)
			for i := range uses {
				uses[i].Unconditional = always[position{uses[i].Line, uses[i].Column}]
			}
			diags = append(diags, v.Validate(uses)...)
		}
	}
	sortDiagnostics(diags)
	diags = capDiagnostics(diags, e.cfg.Limits.MaxErrors)
	if diags.HasErrors() {
		return nil, diags
	}
	return &Script{Name: name, script: s, eng: e}, diags
}

func sortDiagnostics(d Diagnostics) {
	sort.SliceStable(d, func(i, j int) bool {
		if d[i].Line != d[j].Line {
			return d[i].Line < d[j].Line
		}
		return d[i].Column < d[j].Column
	})
}

func (e *Engine) options(st *compileState) sieve.Options {
	opts := sieve.DefaultOptions()
	l := e.cfg.Limits
	opts.Lexer.MaxTokens = l.MaxTokens
	opts.Parser.MaxBlockNesting = l.MaxNesting
	opts.Parser.MaxTestNesting = l.MaxNesting
	opts.Interp.MaxRedirects = l.MaxRedirects
	opts.Interp.MaxVariableCount = l.MaxVariables
	opts.Interp.MaxVariableLen = l.MaxVariableLen
	// Pigeonhole accepts names up to 64 characters (RFC 5229 requires at
	// least 32).
	opts.Interp.MaxVariableNameLen = 64
	opts.Interp.SubAddressSep = e.cfg.SubaddressSeparators
	// Constant :matches keys are checked at compile time (checkTree); a
	// key built from variables is checked after expansion, at run time.
	opts.Interp.MaxMatchWildcards = l.MaxMatchWildcards
	// Headroom for repeated errors, reported once (diagnosticsFromError).
	opts.Interp.MaxErrors = 4 * l.MaxErrors
	e.registerExtensions(&opts.Interp, st)
	return opts
}

var posRE = regexp.MustCompile(`(?:^|[\s:])(\d+):(\d+): ?`)

// diagnosticsFromError turns a load error, possibly holding several, into
// diagnostics. An error repeated word for word (a command used without its
// require, over and over) is reported once, at its first occurrence, as
// Pigeonhole does.
func diagnosticsFromError(err error) Diagnostics {
	var le *interp.LoadErrors
	if !errors.As(err, &le) {
		return Diagnostics{diagnosticFromError(err)}
	}
	var out Diagnostics
	seen := map[string]bool{}
	for _, x := range le.Errs {
		d := diagnosticFromError(x)
		if seen[d.Message] {
			continue
		}
		seen[d.Message] = true
		out = append(out, d)
	}
	return out
}

// diagnosticFromError turns an interpreter error into a positioned,
// readable diagnostic.
func diagnosticFromError(err error) Diagnostic {
	d := Diagnostic{Severity: SeverityError}
	var le *lexer.Error
	if errors.As(err, &le) {
		d.Line, d.Column = le.Position.Line, le.Position.Col
		d.Message = le.Msg
		return d
	}
	text := err.Error()
	if loc := posRE.FindStringSubmatchIndex(text); loc != nil {
		d.Line, _ = strconv.Atoi(text[loc[2]:loc[3]])
		d.Column, _ = strconv.Atoi(text[loc[4]:loc[5]])
		text = text[loc[1]:]
	}
	d.Message = text
	return d
}

// computeExtensions is the interpreter's own list plus the project
// extensions, as the interpreter registry reports it.
func (e *Engine) computeExtensions() []string {
	opts := e.options(&compileState{uses: map[Extension][]CommandUse{}})
	return sortedUnique(opts.Interp.SupportedExtensions())
}

// checkTree enforces the limits the interpreter does not: the cost of
// :matches patterns (a pattern with thousands of '*' costs seconds per
// message) and the number of distinct variables.
func (e *Engine) checkTree(cmds []parser.Cmd) Diagnostics {
	l := e.cfg.Limits
	var diags Diagnostics
	vars := map[string]bool{}
	errAt := func(line, col int, format string, args ...any) {
		diags = append(diags, Diagnostic{Line: line, Column: col, Severity: SeverityError, Message: fmt.Sprintf(format, args...)})
	}
	var walkTest func(t parser.Test)
	checkMatchArgs := func(id string, args []parser.Arg) {
		matches := false
		for _, a := range args {
			if tag, ok := a.(parser.TagArg); ok && strings.EqualFold(tag.Value, "matches") {
				matches = true
			}
		}
		if !matches {
			return
		}
		for _, a := range args {
			var keys []string
			var pos lexer.Position
			switch a := a.(type) {
			case parser.StringArg:
				keys, pos = []string{a.Value}, a.Position
			case parser.StringListArg:
				keys, pos = a.Value, a.Position
			default:
				continue
			}
			for _, k := range keys {
				if len(k) > l.MaxMatchKeyBytes {
					errAt(pos.Line, pos.Col, "the :matches pattern of the %s test is too long (%d bytes, the limit is %d)", id, len(k), l.MaxMatchKeyBytes)
					return
				}
				if n := countWildcards(k); n > l.MaxMatchWildcards {
					errAt(pos.Line, pos.Col, "the :matches pattern of the %s test has too many wildcards (%d, the limit is %d)", id, n, l.MaxMatchWildcards)
					return
				}
			}
		}
	}
	walkTest = func(t parser.Test) {
		id := strings.ToLower(t.Id)
		checkMatchArgs(id, t.Args)
		if id == "header" || id == "address" || id == "exists" {
			for _, h := range firstStrings(t.Args) {
				if !strings.Contains(h, "${") && !validFieldName(h) {
					diags = append(diags, Diagnostic{Line: t.Line, Column: t.Col, Severity: SeverityWarning,
						Message: fmt.Sprintf("specified header field name '%s' is invalid", h)})
				}
			}
		}
		for _, sub := range t.Tests {
			walkTest(sub)
		}
	}
	var walk func(cmds []parser.Cmd)
	walk = func(cmds []parser.Cmd) {
		for _, c := range cmds {
			if strings.EqualFold(c.Id, "set") {
				for _, a := range c.Args {
					if s, ok := a.(parser.StringArg); ok {
						name := strings.ToLower(s.Value)
						if !vars[name] {
							vars[name] = true
							if len(vars) > l.MaxVariables {
								errAt(c.Line, c.Col, "too many variables: the limit is %d per script", l.MaxVariables)
							}
						}
						break
					}
				}
			}
			for _, t := range c.Tests {
				walkTest(t)
			}
			walk(c.Block)
			if len(diags.Errors()) >= l.MaxErrors {
				return
			}
		}
	}
	walk(cmds)
	return diags
}

// firstStrings returns the first positional string argument of a test,
// skipping tags and their values.
func firstStrings(args []parser.Arg) []string {
	skip := false
	for _, a := range args {
		if skip {
			skip = false
			continue
		}
		switch a := a.(type) {
		case parser.TagArg:
			switch strings.ToLower(a.Value) {
			case "comparator", "value", "count":
				skip = true
			}
		case parser.StringArg:
			return []string{a.Value}
		case parser.StringListArg:
			return a.Value
		}
	}
	return nil
}

// validFieldName: RFC 5322 2.2, printable US-ASCII except ':'.
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 || s[i] == ':' {
			return false
		}
	}
	return true
}

// countWildcards counts unescaped '*' and '?' in a :matches pattern.
func countWildcards(p string) int {
	n := 0
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '*', '?':
			n++
		}
	}
	return n
}

// capDiagnostics keeps at most max errors and max warnings, in order.
func capDiagnostics(d Diagnostics, max int) Diagnostics {
	var out Diagnostics
	var errs, warns int
	for _, x := range d {
		if x.Severity == SeverityError {
			if errs >= max {
				continue
			}
			errs++
		} else {
			if warns >= max {
				continue
			}
			warns++
		}
		out = append(out, x)
	}
	return out
}

// unconditional returns the positions of the top-level commands that run on
// every message: those before the first top-level stop.
func unconditional(cmds []parser.Cmd) map[position]bool {
	out := map[position]bool{}
	for _, c := range cmds {
		if strings.EqualFold(c.Id, "stop") {
			break
		}
		out[position{c.Line, c.Col}] = true
	}
	return out
}
