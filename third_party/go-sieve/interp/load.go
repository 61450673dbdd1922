package interp

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/foxcpp/go-sieve/lexer"
	"github.com/foxcpp/go-sieve/parser"
)

var supportedRequires = map[string]struct{}{
	"fileinto":          {},
	"envelope":          {},
	"encoded-character": {},

	"comparator-i;octet":           {},
	"comparator-i;ascii-casemap":   {},
	"comparator-i;ascii-numeric":   {},
	"comparator-i;unicode-casemap": {},

	"imap4flags":   {},
	"variables":    {},
	"relational":   {},
	"copy":         {},
	"reject":       {},
	"ereject":      {},
	"subaddress":   {},
	"environment":  {},
	"body":         {},
}

var (
	commands map[string]func(*Script, parser.Cmd) (Cmd, error)
	tests    map[string]func(*Script, parser.Test) (Test, error)
)

func init() {
	// break initialization loop

	commands = map[string]func(*Script, parser.Cmd) (Cmd, error){
		// RFC 5228
		"require":  loadRequire,
		"if":       loadIf,
		"elsif":    loadElsif,
		"else":     loadElse,
		"stop":     loadStop,
		"fileinto": loadFileInto, // fileinto extension
		"redirect": loadRedirect,
		"keep":     loadKeep,
		"discard":  loadDiscard,
		// RFC 5232 (imap4flags extension)
		"setflag":    loadSetFlag,
		"addflag":    loadAddFlag,
		"removeflag": loadRemoveFlag,
		// RFC 5229 (variables extension)
		"set": loadSet,
		// RFC 5429 (reject/ereject extensions)
		"reject":  loadReject,
		"ereject": loadEReject,
		// vnd.dovecot.testsuite
		"test":                loadDovecotTest,
		"test_set":            loadDovecotTestSet,
		"test_fail":           loadDovecotTestFail,
		"test_binary_load":    loadDovecotBinaryLoad,
		"test_binary_save":    loadDovecotBinarySave,
		"test_mailbox_create": loadDovecotMailboxCreate,
		// "test_imap_metadata_set"
		"test_config_reload": loadNoop, // go-sieve applies changes immediately
		"test_config_set":    loadDovecotConfigSet,
		"test_config_unset":  loadDovecotConfigUnset,
		"test_result_reset":  loadDovecotResultReset,
		"test_message":       loadDovecotCmdMessage,
	}
	tests = map[string]func(*Script, parser.Test) (Test, error){
		// RFC 5228
		"address":  loadAddressTest,
		"allof":    loadAllOfTest,
		"anyof":    loadAnyOfTest,
		"envelope": loadEnvelopeTest, // envelope extension
		"exists":   loadExistsTest,
		"false":    loadFalseTest,
		"true":     loadTrueTest,
		"header":   loadHeaderTest,
		"not":      loadNotTest,
		"size":     loadSizeTest,
		// RFC 5229 (variables extension)
		"string": loadStringTest,
		// RFC 5232 (imap4flags extension)
		"hasflag": loadHasFlagTest,
		// RFC 5183 (environment extension)
		"environment": loadEnvironmentTest,
		// RFC 5173 (body extension)
		"body": loadBodyTest,
		// vnd.dovecot.testsuite
		"test_script_compile": loadDovecotCompile,       // compile script (to test for compile errors)
		"test_script_run":     loadDovecotRun,           // run script (to test for run-time errors)
		"test_error":          loadDovecotError,         // check detailed results of test_script_compile or test_script_run
		"test_message":        loadDovecotTestMessage,   // check results of test_result_execute - where messages are
		"test_result_action":  loadDovecotResultAction,  // check results of test_result_execute - what actions are executed
		"test_result_execute": loadDovecotResultExecute, // apply script results (validated using test_message)
	}
}

func LoadScript(cmdStream []parser.Cmd, opts *Options) (*Script, error) {
	s := &Script{
		extensions: map[string]struct{}{},
		opts:       opts,
	}

	loadedCmds, err := LoadBlock(s, cmdStream)
	if err != nil {
		if len(s.loadErrs) > 0 {
			return nil, &LoadErrors{Errs: append(s.loadErrs, err)}
		}
		return nil, err
	}
	if len(s.loadErrs) > 0 {
		return nil, &LoadErrors{Errs: s.loadErrs}
	}
	s.cmd = loadedCmds

	return s, nil
}

// LoadErrors is returned by LoadScript when Options.MaxErrors > 1 and more
// than one command failed to load. errors.As finds the first *lexer.Error.
type LoadErrors struct {
	Errs []error
}

func (e *LoadErrors) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e *LoadErrors) Unwrap() []error { return e.Errs }

// recordLoadError keeps err and reports whether loading may go on with the
// next command (Options.MaxErrors).
func (s *Script) recordLoadError(err error) bool {
	if s.opts == nil || len(s.loadErrs)+1 >= s.opts.MaxErrors {
		return false
	}
	s.loadErrs = append(s.loadErrs, err)
	return true
}

func LoadBlock(s *Script, cmds []parser.Cmd) ([]Cmd, error) {
	topLevel := s.blockDepth == 0
	loaded := make([]Cmd, 0, len(cmds))
	prev := ""
	for _, c := range cmds {
		name := strings.ToLower(c.Id)
		// RFC 5228 3.2: require is only allowed at the top, before any
		// other command.
		var err error
		switch {
		case name == "require" && (!topLevel || (prev != "" && prev != "require")):
			err = lexer.ErrorAt(c.Position, "require commands can only be placed at top level at the beginning of the file")
		case (name == "elsif" || name == "else") && prev != "if" && prev != "elsif":
			err = lexer.ErrorAt(c.Position, "the %s command must follow an if or elsif command", name)
		}
		prev = name
		var cmd Cmd
		if err == nil {
			cmd, err = LoadCmd(s, c)
			if err != nil {
				err = fmt.Errorf("LoadCmd %s: %w", c.Id, err)
			}
		}
		if err != nil {
			if s.recordLoadError(err) {
				continue
			}
			return nil, err
		}
		if cmd == nil {
			continue
		}
		loaded = append(loaded, cmd)
	}
	return loaded, nil
}

func LoadCmd(s *Script, cmd parser.Cmd) (Cmd, error) {
	cmdName := strings.ToLower(cmd.Id)
	factory := s.opts.commandLoader(cmdName)
	if factory == nil {
		return nil, lexer.ErrorAt(cmd, "unknown command '%s'", cmdName)
	}
	c, err := factory(s, cmd)
	if err != nil {
		return nil, withContext(err, cmd.Position, "the "+cmdName+" command")
	}
	return c, nil

}

func LoadTest(s *Script, t parser.Test) (Test, error) {
	testName := strings.ToLower(t.Id)
	factory := s.opts.testLoader(testName)
	if factory == nil {
		return nil, lexer.ErrorAt(t, "unknown test '%s'", testName)
	}
	test, err := factory(s, t)
	if err != nil {
		return nil, withContext(err, t.Position, "the "+testName+" test")
	}
	return test, nil
}

type CmdNoop struct{}

func (c CmdNoop) Execute(_ context.Context, _ *RuntimeData) error {
	return nil
}

func loadNoop(_ *Script, _ parser.Cmd) (Cmd, error) {
	return CmdNoop{}, nil
}

// specError is a LoadSpec error whose text names the command or test; the
// name is filled in by LoadCmd/LoadTest, which know it.
type specError struct {
	err *lexer.Error
	msg func(what string) string
}

func (e *specError) Error() string { return e.err.Error() }
func (e *specError) Unwrap() error { return e.err }

func specErrorAt(pos lexer.Position, msg func(what string) string) error {
	return &specError{err: lexer.ErrorAt(pos, "%s", msg("the command")).(*lexer.Error), msg: msg}
}

// withContext makes sure a load error has a position (pos when it has
// none) and that LoadSpec errors name what failed ("the header test").
func withContext(err error, pos lexer.Position, what string) error {
	var se *specError
	if errors.As(err, &se) && se.msg != nil {
		se.err.Msg = se.msg(what)
		se.msg = nil
	}
	var le *lexer.Error
	if errors.As(err, &le) {
		return err
	}
	return lexer.ErrorAt(pos, "%v", err)
}

// missingRequire is the error for a command or test of an extension the
// script did not require.
func missingRequire(pos lexer.Position, ext string) error {
	return lexer.ErrorAt(pos, "missing require \"%s\": the extension must be required before it is used", ext)
}
