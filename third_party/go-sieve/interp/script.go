package interp

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/foxcpp/go-sieve/lexer"
)

type Cmd interface {
	Execute(ctx context.Context, d *RuntimeData) error
}

type Options struct {
	MaxRedirects int

	MaxVariableCount   int
	MaxVariableNameLen int
	MaxVariableLen     int

	// MaxErrors > 1 lets loading go on after a command fails, to report
	// up to MaxErrors errors at once (as *LoadErrors). 0 or 1: stop at the
	// first error.
	MaxErrors int

	// MaxMatchWildcards > 0 bounds the wildcards ('*', '?') of a :matches
	// key that holds variable references, counted after expansion: such a
	// key cannot be checked when the script is loaded, and one with
	// thousands of wildcards costs seconds per message. A key over the
	// limit is a run-time error. 0: no limit (upstream behaviour).
	MaxMatchWildcards int

	// SubAddressSep is the set of separator characters for subaddress parsing
	// (RFC 5233). Each character in the string is treated as a separator.
	// Defaults to "+" if empty.
	SubAddressSep string

	// Extensions lists capability names, besides the built-in ones, that
	// scripts loaded with these options may require. They are typically
	// implemented by Commands and Tests below.
	Extensions []string
	// Commands and Tests add commands and tests (keyed by lower-case name)
	// for scripts loaded with these options, or replace built-in ones. They
	// are per Options, so differently configured interpreters can coexist in
	// one process.
	Commands map[string]CommandLoader
	Tests    map[string]TestLoader

	// If specified - enables vnd.dovecot.testsuite extension
	// and will execute tests.
	T             *testing.T
	DisabledTests []string
}

type Script struct {
	extensions map[string]struct{}
	cmd        []Cmd

	opts *Options

	// blockDepth is the nesting of the block being loaded (0: top level).
	blockDepth int
	// loadErrs collects load errors when Options.MaxErrors > 1.
	loadErrs []error
}

var ErrStop = errors.New("interpreter: stop called")

func (s Script) Extensions() []string {
	exts := make([]string, 0, len(s.extensions))
	for ext := range s.extensions {
		exts = append(exts, ext)
	}
	return exts
}

func (s Script) RequiresExtension(name string) bool {
	_, ok := s.extensions[name]
	return ok
}

func (s Script) IsVarUsable(variableName string) (settable, gettable bool) {
	if len(variableName) > s.opts.MaxVariableNameLen {
		return false, false
	}

	namespace, name, ok := strings.Cut(strings.ToLower(variableName), ".")
	if !ok {
		name = namespace
		namespace = ""
	}

	if !lexer.IsValidIdentifier(name) {
		return false, false
	}

	switch namespace {
	case "envelope":
		if !s.RequiresExtension("envelope") {
			return false, false
		}
		return false, true
	case "":
		return true, true
	default:
		return false, false
	}
}

func (s Script) Execute(ctx context.Context, d *RuntimeData) error {
	for _, c := range s.cmd {
		// Honour cancellation between commands, so a deadline stops a
		// long script instead of letting it run to the end.
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := c.Execute(ctx, d); err != nil {
			if errors.Is(err, ErrStop) {
				// RFC 5228 3.3: stop ends the script; the implicit
				// keep still applies.
				break
			}
			return err
		}
	}

	implicitKeep := d.ImplicitKeep
	for _, act := range d.AppliedActions {
		if act.cancelsImplicitKeep() {
			implicitKeep = false
		}
	}

	if implicitKeep {
		if err := d.OnAction(ctx, ActionKeep{
			Implicit: true,
			Flags:    d.Flags,
		}, d); err != nil {
			return err
		}
	}

	return nil
}
