// Package engine compiles and runs Sieve scripts (RFC 5228 and the extensions
// listed by Engine.Extensions) on top of github.com/foxcpp/go-sieve.
//
// It is the one place that knows the interpreter: sieved (ManageSieve,
// RFC 5804) compiles with it, sieve-lda and sievectl run with it, and so both
// see exactly the same extension list, limits and error texts. It knows
// scripts and messages, nothing about sockets, users or disks.
package engine

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// Limits bound what a script may cost. Zero never means "unlimited": New
// replaces zero fields with the defaults.
type Limits struct {
	MaxScriptBytes    int           // Pigeonhole: 1 MiB
	MaxTokens         int           // lexer tokens
	MaxNesting        int           // block and test nesting
	MaxVariables      int           // distinct variables (Pigeonhole: 255)
	MaxVariableLen    int           // bytes per variable value
	MaxMatchWildcards int           // '*' and '?' in one :matches key
	MaxMatchKeyBytes  int           // bytes in one match key
	MaxActions        int           // actions per run (Pigeonhole: 32)
	MaxRedirects      int           // redirects per run (Pigeonhole: 4)
	Timeout           time.Duration // wall-clock deadline for one Execute
	MaxMIMEDepth      int           // nesting of multipart/message parts
	MaxMIMEParts      int           // parts examined by body tests
	MaxBodyBytes      int64         // bytes of a message body tests may buffer
	MaxErrors         int           // errors reported per compile
}

// DefaultLimits are Pigeonhole-like defaults.
func DefaultLimits() Limits {
	return Limits{
		MaxScriptBytes:    1 << 20,
		MaxTokens:         100000,
		MaxNesting:        32,
		MaxVariables:      255, // Pigeonhole: sieve_variables_max_scope_size
		MaxVariableLen:    4000,
		MaxMatchWildcards: 64,
		MaxMatchKeyBytes:  4096,
		MaxActions:        32,
		MaxRedirects:      4,
		Timeout:           10 * time.Second,
		MaxMIMEDepth:      16,
		MaxMIMEParts:      256,
		MaxBodyBytes:      8 << 20,
		MaxErrors:         5,
	}
}

// Config configures an Engine.
type Config struct {
	Limits Limits
	// SubaddressSeparators lists the characters that separate user and
	// detail (RFC 5233); default "+".
	SubaddressSeparators string
	// Environment items for the environment extension (RFC 5183):
	// "domain", "host", "name", "version"; "location" and "phase" are set by
	// the engine. Without "host" the engine uses the machine's host name,
	// without "domain" the part of the host name after its first dot (the
	// whole name when it has none), as Pigeonhole does.
	Environment map[string]string
	// Extensions are the project's own extensions (vacation, ...), added to
	// the interpreter's built-in set.
	Extensions []Extension
}

// Engine compiles and runs scripts. It is safe for concurrent use.
type Engine struct {
	cfg  Config
	exts []string
}

// New returns an Engine.
func New(cfg Config) *Engine {
	cfg.Limits = fillLimits(cfg.Limits)
	if cfg.SubaddressSeparators == "" {
		cfg.SubaddressSeparators = "+"
	}
	// The engine's own extensions go first, so a caller's extension with
	// the same command name wins.
	cfg.Extensions = append([]Extension{mailboxExtension{}}, cfg.Extensions...)
	cfg.Environment = defaultEnvironment(cfg.Environment, os.Hostname)
	e := &Engine{cfg: cfg}
	e.exts = e.computeExtensions()
	return e
}

// Limits returns the limits in force.
func (e *Engine) Limits() Limits { return e.cfg.Limits }

// Extensions returns the sorted list of extensions a script may require:
// exactly what ManageSieve advertises in its SIEVE capability.
func (e *Engine) Extensions() []string {
	out := make([]string, len(e.exts))
	copy(out, e.exts)
	return out
}

// defaultEnvironment returns a copy of env with "host" and "domain" filled
// in from the host name when the caller did not set them, so scripts
// testing them behave as under Pigeonhole even when the delivery agent's
// configuration says nothing.
func defaultEnvironment(env map[string]string, hostname func() (string, error)) map[string]string {
	out := make(map[string]string, len(env)+2)
	for k, v := range env {
		out[k] = v
	}
	host := out["host"]
	if host == "" {
		if h, err := hostname(); err == nil {
			host = strings.TrimSuffix(h, ".")
		}
		if host != "" {
			out["host"] = host
		}
	}
	if out["domain"] == "" && host != "" {
		d := host
		if i := strings.IndexByte(host, '.'); i >= 0 && i+1 < len(host) {
			d = host[i+1:]
		}
		out["domain"] = d
	}
	return out
}

func fillLimits(l Limits) Limits {
	d := DefaultLimits()
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.MaxScriptBytes, d.MaxScriptBytes)
	set(&l.MaxTokens, d.MaxTokens)
	set(&l.MaxNesting, d.MaxNesting)
	set(&l.MaxVariables, d.MaxVariables)
	set(&l.MaxVariableLen, d.MaxVariableLen)
	set(&l.MaxMatchWildcards, d.MaxMatchWildcards)
	set(&l.MaxMatchKeyBytes, d.MaxMatchKeyBytes)
	set(&l.MaxActions, d.MaxActions)
	set(&l.MaxRedirects, d.MaxRedirects)
	set(&l.MaxMIMEDepth, d.MaxMIMEDepth)
	set(&l.MaxMIMEParts, d.MaxMIMEParts)
	set(&l.MaxErrors, d.MaxErrors)
	if l.Timeout <= 0 {
		l.Timeout = d.Timeout
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	return l
}

func sortedUnique(in []string) []string {
	sort.Strings(in)
	out := in[:0]
	for i, s := range in {
		if i == 0 || s != in[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// ErrTimeout is returned (wrapped) by Run when a script exceeds its deadline.
var ErrTimeout = errors.New("engine: script exceeded its time limit")

// RuntimeError is a failure while running a script (a panic in the
// interpreter, a conflict between actions, too many actions...). The caller
// falls back to implicit keep.
type RuntimeError struct {
	Line, Column int
	Msg          string
	Err          error  // underlying error, may be nil
	Stack        []byte // goroutine stack when the error is a recovered panic
}

// Unwrap returns the underlying error.
func (e *RuntimeError) Unwrap() error { return e.Err }

func (e *RuntimeError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// Envelope is the SMTP envelope a script sees.
type Envelope struct {
	From       string // MAIL FROM, "" for the null sender
	To         string // RCPT TO as delivered (keeps +detail)
	OriginalTo string // original recipient (dovecot-lda -a), may be ""
	Auth       string // authenticated submitter, usually ""
}
