package interp

import (
	"sort"
	"strings"

	"github.com/foxcpp/go-sieve/lexer"
	"github.com/foxcpp/go-sieve/parser"
)

// CommandLoader turns one parsed use of a command into an executable Cmd.
// It runs at load (compile) time; errors should carry a position
// (see lexer.ErrorAt).
type CommandLoader func(s *Script, cmd parser.Cmd) (Cmd, error)

// TestLoader turns one parsed use of a test into an executable Test.
type TestLoader func(s *Script, t parser.Test) (Test, error)

// BuiltinExtensions returns the sorted list of extensions the interpreter
// implements itself (vnd.dovecot.testsuite excluded).
func BuiltinExtensions() []string {
	out := make([]string, 0, len(supportedRequires))
	for ext := range supportedRequires {
		out = append(out, ext)
	}
	sort.Strings(out)
	return out
}

// SupportedExtensions returns the sorted list of extensions a script loaded
// with these options may require: the built-in ones plus o.Extensions.
func (o *Options) SupportedExtensions() []string {
	seen := make(map[string]struct{}, len(supportedRequires)+len(o.Extensions))
	out := BuiltinExtensions()
	for _, ext := range out {
		seen[ext] = struct{}{}
	}
	for _, ext := range o.Extensions {
		if _, ok := seen[ext]; ok {
			continue
		}
		seen[ext] = struct{}{}
		out = append(out, ext)
	}
	sort.Strings(out)
	return out
}

func (o *Options) extensionSupported(ext string) bool {
	if _, ok := supportedRequires[ext]; ok {
		return true
	}
	if o == nil {
		return false
	}
	for _, e := range o.Extensions {
		if e == ext {
			return true
		}
	}
	return false
}

func (o *Options) commandLoader(name string) func(*Script, parser.Cmd) (Cmd, error) {
	if o != nil {
		if l, ok := o.Commands[strings.ToLower(name)]; ok && l != nil {
			return l
		}
	}
	return commands[name]
}

func (o *Options) testLoader(name string) func(*Script, parser.Test) (Test, error) {
	if o != nil {
		if l, ok := o.Tests[strings.ToLower(name)]; ok && l != nil {
			return l
		}
	}
	return tests[name]
}

// ActionExtension is an action produced by a command registered through
// Options.Commands. Name identifies the action (e.g. "vacation"), Value is
// the caller's own data.
type ActionExtension struct {
	Name  string
	Value any
	// CancelsImplicitKeep: whether this action, like fileinto or discard,
	// cancels the implicit keep (RFC 5228, section 2.10.2). A vacation
	// reply (RFC 5230) does not.
	CancelsImplicitKeep bool
}

func (a ActionExtension) testActionName() string    { return a.Name }
func (a ActionExtension) cancelsImplicitKeep() bool { return a.CancelsImplicitKeep }

// ExpandVars expands variable references (RFC 5229) in s as the built-in
// commands do, for use by commands registered through Options.Commands.
// It returns s unchanged when the script does not require "variables".
func ExpandVars(d *RuntimeData, s string) string { return expandVars(d, s) }

// ExpandVarsList is ExpandVars for each element of a string list.
func ExpandVarsList(d *RuntimeData, list []string) []string { return expandVarsList(d, list) }

// DecodeEncodedChars decodes "${hex:...}" and "${unicode:...}" sequences
// (RFC 5228, section 2.4.2.4) as the built-in commands do for scripts that
// require "encoded-character".
func DecodeEncodedChars(s string) (string, error) { return decodeEncodedChars(s) }

// CheckVarRefs returns a load error (at pos) when s refers to a variable
// that can never be read: an unknown namespace, envelope.* without
// require "envelope", an over-long name. Commands registered through
// Options.Commands use it on their string arguments.
func CheckVarRefs(script *Script, pos lexer.Position, s string) error {
	return checkVarRefs(script, pos, s)
}

// BuiltinCommand returns the interpreter's own loader for a command (nil
// when there is none), so a loader registered in Options.Commands can wrap
// it instead of reimplementing it.
func BuiltinCommand(name string) CommandLoader {
	l := commands[strings.ToLower(name)]
	if l == nil {
		return nil
	}
	return l
}
