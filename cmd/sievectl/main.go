// Command sievectl is the administrator's and user's Sieve tool: it checks
// scripts the way the ManageSieve server does (RFC 5804 CHECKSCRIPT,
// Pigeonhole's error format) and dry-runs them against a message the way
// sieve-lda would, without delivering anything (the project's sieve-test).
//
// Subcommands live in their own files and register themselves in init(), so
// a new one (vacation.go, ...) is added without touching this file.
//
// Exit codes (shared by all subcommands; see usage below):
//
//	0   success
//	1   the script does not compile (check, test)
//	2   the script compiled but failed at run time (test); delivery would
//	    fall back to implicit keep into INBOX
//	64  usage error (EX_USAGE)
//	66  a script, message or config file cannot be read (EX_NOINPUT)
//	78  the configuration file is invalid (EX_CONFIG)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/sieved/sieved/cmd/internal/wiring"
	"github.com/sieved/sieved/config"
	"github.com/sieved/sieved/engine"
)

// Exit codes.
const (
	exitOK          = 0
	exitCompile     = 1
	exitRuntime     = 2
	exitUsage       = 64 // EX_USAGE
	exitNoInput     = 66 // EX_NOINPUT
	exitConfig      = 78 // EX_CONFIG
	exitCodesDetail = `Exit codes:
  0   success (check: the script compiles, perhaps with warnings)
  1   the script does not compile
  2   the script failed at run time (test); delivery would fall back to
      implicit keep into INBOX
  64  usage error
  66  a script, message or config file cannot be read
  78  the configuration file is invalid`
)

// command is one sievectl subcommand.
type command struct {
	name    string
	summary string // one line for the command list
	// run executes the command with its arguments (after the name) and
	// returns the exit code.
	run func(ctx context.Context, st *stdio, args []string) int
}

// stdio is what a command reads and writes; tests substitute buffers.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

var commands = map[string]*command{}

// register adds a subcommand; called from init() in the subcommand's file.
func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("sievectl: duplicate subcommand " + c.name)
	}
	commands[c.name] = c
}

// actionDescribers render an extension's actions for `sievectl test`,
// keyed by engine.ExtensionAction.Extension: the text, and optionally what
// delivery would make of the action for this message (a vacation reply
// sent or not, and why). Without one, engine.String is used.
var actionDescribers = map[string]func(a engine.ExtensionAction, dc describeContext) (text, outcome string){}

// describeContext is what a describer may look at besides the action.
type describeContext struct {
	cfg      config.Config
	envelope engine.Envelope
	msg      *engine.Message
}

func main() {
	os.Exit(run(context.Background(), &stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr}, os.Args[1:]))
}

func run(ctx context.Context, st *stdio, args []string) int {
	if len(args) == 0 {
		usage(st.err)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return c.run(ctx, st, []string{"--help"})
			}
		}
		usage(st.out)
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(st.err, "sievectl: unknown command %q\n\n", args[0])
		usage(st.err)
		return exitUsage
	}
	return c.run(ctx, st, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: sievectl <command> [options] [arguments]\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nRun \"sievectl <command> --help\" for the options of a command.\n\n%s\n", exitCodesDetail)
}

// newFlagSet returns a FlagSet whose -h/--help output names the command
// and explains its arguments.
func newFlagSet(st *stdio, name, synopsis, help string) *flag.FlagSet {
	fs := flag.NewFlagSet("sievectl "+name, flag.ContinueOnError)
	fs.SetOutput(st.err)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: sievectl %s %s\n\n%s\n\nOptions:\n", name, synopsis, strings.TrimSpace(help))
		fs.PrintDefaults()
		fmt.Fprintf(w, "\n%s\n", exitCodesDetail)
	}
	return fs
}

// parseInterspersed parses flags that may appear before, between or after
// the positional arguments ("sievectl test filter.sieve msg.eml --from x").
// "--" ends option parsing. It returns the positional arguments, or the
// exit code to return (help: 0, bad flag: 64) and ok=false.
func parseInterspersed(st *stdio, fs *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(st.out)
				fs.Usage()
				return nil, exitOK, false
			}
			return nil, exitUsage, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, 0, true
		}
		// flag stops at the first non-flag or after "--"; a "--" is
		// consumed, so check what preceded rest.
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), 0, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// loadConfig returns the configuration from path, or the defaults when path
// is empty. It reports problems on stderr and returns the exit code.
func loadConfig(st *stdio, path string) (config.Config, int, bool) {
	if path == "" {
		return config.Default(), 0, true
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintf(st.err, "sievectl: %v\n", err)
		var pe *os.PathError
		if errors.As(err, &pe) {
			return cfg, exitNoInput, false
		}
		return cfg, exitConfig, false
	}
	return cfg, 0, true
}

// loadEngine loads the configuration (see loadConfig) and builds the
// engine from it exactly as sieved and sieve-lda do (wiring.EngineConfig).
func loadEngine(st *stdio, path string) (config.Config, *engine.Engine, int, bool) {
	cfg, code, ok := loadConfig(st, path)
	if !ok {
		return cfg, nil, code, false
	}
	return cfg, engine.New(wiring.EngineConfig(cfg)), 0, true
}

// readInput reads a file, or stdin for "-".
func readInput(st *stdio, path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(st.in)
	}
	return os.ReadFile(path)
}

// scriptName is the name Pigeonhole uses in diagnostics: the file name
// without directory and ".sieve" suffix.
func scriptName(path string) string {
	if path == "-" {
		return "stdin"
	}
	base := path
	if i := strings.LastIndexAny(base, `/\`); i >= 0 {
		base = base[i+1:]
	}
	return strings.TrimSuffix(base, ".sieve")
}
