package interp

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/foxcpp/go-sieve/lexer"
	"github.com/foxcpp/go-sieve/parser"
)

type cmdPing struct{ cancel bool }

func (c cmdPing) Execute(ctx context.Context, d *RuntimeData) error {
	return d.OnAction(ctx, ActionExtension{Name: "ping", Value: ExpandVars(d, "${x}"), CancelsImplicitKeep: c.cancel}, d)
}

func loadWith(t *testing.T, opts *Options, src string) (*Script, error) {
	t.Helper()
	toks, err := lexer.Lex(strings.NewReader(src), &lexer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cmds, err := parser.Parse(lexer.NewStream(toks), &parser.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return LoadScript(cmds, opts)
}

func TestRegistryPerOptions(t *testing.T) {
	withPing := &Options{
		MaxRedirects: 5, MaxVariableCount: 10, MaxVariableNameLen: 32, MaxVariableLen: 100,
		Extensions: []string{"x-ping"},
		Commands: map[string]CommandLoader{
			"ping": func(s *Script, c parser.Cmd) (Cmd, error) { return cmdPing{cancel: true}, nil },
		},
	}
	plain := &Options{MaxRedirects: 5, MaxVariableCount: 10, MaxVariableNameLen: 32, MaxVariableLen: 100}

	src := `require ["x-ping", "variables"]; set "x" "pong"; ping;`
	s, err := loadWith(t, withPing, src)
	if err != nil {
		t.Fatalf("load with registry: %v", err)
	}
	if _, err := loadWith(t, plain, src); err == nil {
		t.Fatal("plain options accepted a registered extension")
	}

	d := NewRuntimeData(s, DummyPolicy{}, EnvelopeStatic{}, MessageStatic{})
	if err := s.Execute(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	want := []AppliedAction{ActionExtension{Name: "ping", Value: "pong", CancelsImplicitKeep: true}}
	if !reflect.DeepEqual(d.AppliedActions, want) {
		t.Fatalf("actions = %#v, want %#v (no implicit keep)", d.AppliedActions, want)
	}

	got := withPing.SupportedExtensions()
	if len(got) != len(BuiltinExtensions())+1 {
		t.Fatalf("SupportedExtensions = %v", got)
	}
}

// A loader registered in Options.Commands can wrap a built-in command
// through BuiltinCommand: the wrapper sees every use and the built-in
// still runs.
func TestBuiltinCommandWrap(t *testing.T) {
	if BuiltinCommand("no-such-command") != nil {
		t.Fatal("BuiltinCommand returned a loader for an unknown command")
	}
	keep := BuiltinCommand("KEEP")
	if keep == nil {
		t.Fatal("no built-in keep")
	}
	var lines []int
	opts := &Options{
		MaxRedirects: 5, MaxVariableCount: 10, MaxVariableNameLen: 32, MaxVariableLen: 100,
		Commands: map[string]CommandLoader{
			"keep": func(s *Script, c parser.Cmd) (Cmd, error) {
				lines = append(lines, c.Line)
				return keep(s, c)
			},
		},
	}
	s, err := loadWith(t, opts, "keep;\nkeep;\n")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(lines, []int{1, 2}) {
		t.Errorf("wrapper saw lines %v, want [1 2]", lines)
	}
	d := NewRuntimeData(s, DummyPolicy{}, EnvelopeStatic{}, MessageStatic{})
	if err := s.Execute(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	kept := 0
	for _, a := range d.AppliedActions {
		if k, ok := a.(ActionKeep); ok && !k.Implicit {
			kept++
		}
	}
	if kept != 2 {
		t.Errorf("actions %v, want two explicit keeps from the wrapped built-in", d.AppliedActions)
	}
}
