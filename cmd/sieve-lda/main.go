// Command sieve-lda is the local delivery agent: an MTA pipes one message
// into it; it runs the recipient's active Sieve script and delivers into
// their Maildir++. Its flags are dovecot-lda's; see help.go (--help) for
// Exim and Postfix configurations.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sieved/sieved/cmd/internal/wiring"
	"github.com/sieved/sieved/config"
	"github.com/sieved/sieved/engine"
	"github.com/sieved/sieved/lda"
	"github.com/sieved/sieved/sender"
)

// actionHandlers build, per extension name, the handler for the actions a
// project Sieve extension produces; other files of this package (e.g.
// vacation.go) register from init. The extensions themselves reach the
// engine through wiring.EngineConfig, like in sieved and sievectl.
var actionHandlers = map[string]func(cfg config.Config) lda.ExtensionHandler{}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stderr))
}

// stringFlag remembers whether it was set (an empty -f is the null sender).
type stringFlag struct {
	v   string
	set bool
}

func (s *stringFlag) String() string     { return s.v }
func (s *stringFlag) Set(v string) error { s.v, s.set = v, true; return nil }

// exitConfig is the status for a configuration that cannot be used (bad
// TOML, unwritable log file, bad [sender]): EX_TEMPFAIL like dovecot-lda,
// not EX_CONFIG. Postfix bounces on every code but 75, so a typo in the
// configuration file would otherwise bounce all mail until it is fixed;
// deferred, the mail waits for the fix.
const exitConfig = lda.ExitTempFail

func fail(stderr io.Writer, code int, format string, args ...any) int {
	fmt.Fprintf(stderr, "sieve-lda: "+format+"\n", args...)
	return code
}

func run(args []string, stdin io.Reader, stderr io.Writer) int {
	fs := flag.NewFlagSet("sieve-lda", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var rcpt, from, orig stringFlag
	cfgPath := fs.String("c", "", "")
	fs.Var(&rcpt, "d", "")
	fs.Var(&from, "f", "")
	fs.Var(&orig, "a", "")
	mailbox := fs.String("m", "", "")
	rejectExit := fs.Bool("e", false, "")
	msgPath := fs.String("p", "", "")
	// Accepted so that existing dovecot-lda command lines keep working:
	// -r (final recipient address) stands in for -d when -d is absent;
	// -o (Dovecot setting overrides) and -k (keep environment) have no
	// meaning here and are logged.
	final := fs.String("r", "", "")
	var overrides []string
	fs.Func("o", "", func(v string) error { overrides = append(overrides, v); return nil })
	fs.Bool("k", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(os.Stdout, usageText)
			return lda.ExitOK
		}
		return fail(stderr, lda.ExitUsage, "%v (see --help)", err)
	}
	if fs.NArg() > 0 {
		return fail(stderr, lda.ExitUsage, "unexpected argument %q (see --help)", fs.Arg(0))
	}

	cfg := config.Default()
	if *cfgPath != "" {
		var err error
		if cfg, err = config.Load(*cfgPath); err != nil {
			return fail(stderr, exitConfig, "%v", err)
		}
	}
	log, closeLog, err := newLogger(cfg, stderr)
	if err != nil {
		return fail(stderr, exitConfig, "log: %v", err)
	}
	defer closeLog()

	// The MTA's environment fills what the command line leaves out: Exim's
	// pipe transport and Postfix's local(8) both export RECIPIENT and
	// SENDER (empty for a bounce), Postfix also ORIGINAL_RECIPIENT.
	req := lda.Request{Mailbox: *mailbox, RejectByExit: *rejectExit}
	req.Recipient = rcpt.v
	if !rcpt.set {
		req.Recipient = *final
	}
	if req.Recipient == "" {
		req.Recipient = os.Getenv("RECIPIENT")
	}
	if len(overrides) > 0 {
		log.Warn("ignoring dovecot-lda -o settings; use the sieved configuration file", "settings", strings.Join(overrides, " "))
	}
	if req.Recipient == "" {
		return fail(stderr, lda.ExitUsage, "no recipient: give -d or set RECIPIENT (see --help)")
	}
	req.Sender, req.SenderSet = from.v, from.set
	if !from.set {
		req.Sender, req.SenderSet = os.LookupEnv("SENDER")
	}
	req.OriginalRecipient = orig.v
	if !orig.set {
		req.OriginalRecipient = os.Getenv("ORIGINAL_RECIPIENT")
	}

	in := stdin
	if *msgPath != "" {
		f, err := os.Open(*msgPath)
		if err != nil {
			return fail(stderr, lda.ExitNoInput, "%v", err)
		}
		defer f.Close()
		in = f
	}

	snd, err := sender.New(cfg.Sender)
	if err != nil {
		return fail(stderr, exitConfig, "%v", err)
	}
	handlers := map[string]lda.ExtensionHandler{}
	for name, build := range actionHandlers {
		handlers[name] = build(cfg)
	}
	l := &lda.LDA{
		Config:      cfg.LDA,
		StorageRoot: cfg.Storage.Root,
		Engine:      engine.New(wiring.EngineConfig(cfg)),
		Sender:      snd,
		Log:         log,
		Extensions:  handlers,
	}

	timeout := time.Duration(cfg.LDA.TimeoutSeconds) * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	// Reads from a pipe do not observe the context; if the MTA stalls,
	// give up a little after the deadline. Nothing partial is visible:
	// at worst a file stays in tmp/.
	watchdog := time.AfterFunc(timeout+10*time.Second, func() {
		fmt.Fprintf(stderr, "sieve-lda: delivery timed out after %s\n", timeout)
		os.Exit(lda.ExitTempFail)
	})
	defer watchdog.Stop()

	if f, ok := in.(*os.File); ok {
		in = deadlineReader(ctx, f)
	}
	start := time.Now()
	rep, err := l.Deliver(ctx, req, in)
	code := lda.ExitCode(err)
	if err != nil {
		if ctx.Err() != nil && code == lda.ExitTempFail {
			err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
		}
		log.Warn("delivery failed", "rcpt", req.Recipient, "exit", code, "err", err)
		var le *lda.Error
		if code == lda.ExitNoPerm && errors.As(err, &le) {
			// -e: the reason alone, for the MTA's bounce.
			fmt.Fprintln(stderr, le.Reason)
			return code
		}
		return fail(stderr, code, "%v", oneLine(err.Error()))
	}
	log.Info("delivered", "rcpt", rep.Recipient.Address, "user", rep.Recipient.Base(),
		"stored", len(rep.Stored), "redirected", len(rep.Redirected), "discarded", rep.Discarded,
		"elapsed", time.Since(start).Round(time.Millisecond))
	return lda.ExitOK
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func newLogger(cfg config.Config, stderr io.Writer) (*slog.Logger, func(), error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		level = slog.LevelInfo
	}
	var w io.Writer = stderr
	closeFn := func() {}
	switch dest := cfg.LDA.LogFile; dest {
	case "", "stderr":
	case "syslog":
		if sl, err := dialSyslog(); err == nil {
			w, closeFn = sl, func() { sl.Close() }
		} else if !interactive(stderr) {
			// No syslog daemon (a container, say) and stderr goes to the
			// MTA: it copies the first line of that output into its log
			// and all of it into bounces, so log lines there would push
			// the one-line reason down and show paths and script errors
			// to remote senders. Without syslog the log is dropped (set
			// log_file to keep it); an admin running sieve-lda by hand
			// (stderr a terminal) still sees it.
			w = io.Discard
		}
	default:
		f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, nil, err
		}
		w, closeFn = f, func() { f.Close() }
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h), closeFn, nil
}

// dialSyslog connects to the local syslog daemon (a variable for tests).
var dialSyslog = func() (io.WriteCloser, error) {
	return syslog.New(syslog.LOG_MAIL|syslog.LOG_INFO, "sieve-lda")
}

// interactive reports whether w is a terminal (or another character
// device such as /dev/null) rather than a pipe or file an MTA reads.
func interactive(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// deadlineReader makes reads from a pipe (the MTA's usual stdin) end when
// ctx does: the pipe is switched to non-blocking mode so that Go's poller
// serves it and a read deadline interrupts a stalled MTA. Anything else
// (a file from -p, a terminal) is returned as it is; the watchdog covers it.
func deadlineReader(ctx context.Context, f *os.File) io.Reader {
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		return f
	}
	if err := syscall.SetNonblock(int(f.Fd()), true); err != nil {
		return f
	}
	pf := os.NewFile(f.Fd(), f.Name())
	context.AfterFunc(ctx, func() { pf.SetReadDeadline(time.Now()) })
	return pf
}
