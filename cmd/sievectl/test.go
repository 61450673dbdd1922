package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"

	"github.com/sieved/sieved/engine"
)

func init() {
	register(&command{
		name:    "test",
		summary: "dry-run a script on a message and print what delivery would do",
		run:     runTest,
	})
}

const testHelp = `Runs SCRIPT on MESSAGE (an RFC 5322 file; "-" reads standard input) with
the same engine as sieve-lda and prints the actions delivery would take:
folders and IMAP flags, redirects, reject, discard, vacation replies, and
whether the implicit keep stores the message into INBOX. Nothing is
delivered, forwarded or replied to.

The envelope sender and recipient come from --from and --to. Without them
they are taken from the message like Pigeonhole's sieve-test does: the
sender from Return-Path, Sender or From; the recipient from Envelope-To,
Delivered-To or To (the output says which).

When the script does not compile, or fails while running, the output says
why; sieve-lda would then store the message into INBOX (implicit keep).`

// testReport is what `sievectl test` found, printed as text or JSON.
type testReport struct {
	Script      string          `json:"script"`
	Envelope    envelopeReport  `json:"envelope"`
	Diagnostics []diagReport    `json:"diagnostics,omitempty"`
	Compiled    bool            `json:"compiled"`
	Actions     []actionReport  `json:"actions"`
	Error       string          `json:"error,omitempty"`
	ErrorLine   int             `json:"error_line,omitempty"`
	Fallback    *fallbackReport `json:"fallback,omitempty"`
	diags       engine.Diagnostics
	maxErrors   int
	envFrom     string // where the envelope sender came from
	envTo       string
	dc          describeContext
}

type envelopeReport struct {
	From       string `json:"from"`
	To         string `json:"to"`
	OriginalTo string `json:"original_to,omitempty"`
}

type diagReport struct {
	Line     int    `json:"line"`
	Column   int    `json:"column"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

// actionReport is one action in a stable, tool-friendly shape.
type actionReport struct {
	Action   string   `json:"action"` // keep, fileinto, redirect, reject, ereject, discard, or an extension name
	Implicit bool     `json:"implicit,omitempty"`
	Mailbox  string   `json:"mailbox,omitempty"`
	Flags    []string `json:"flags,omitempty"`
	Copy     bool     `json:"copy,omitempty"`
	Create   bool     `json:"create,omitempty"`
	Address  string   `json:"address,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	Value    any      `json:"value,omitempty"`
	Text     string   `json:"text"` // human description
	// Outcome says what delivery would make of an extension action on
	// this message, e.g. whether a vacation reply would be sent.
	Outcome string `json:"outcome,omitempty"`
}

type fallbackReport struct {
	Action  string `json:"action"` // always "keep"
	Mailbox string `json:"mailbox"`
}

func runTest(ctx context.Context, st *stdio, args []string) int {
	fs := newFlagSet(st, "test", "[options] SCRIPT MESSAGE", testHelp)
	from := fs.String("from", "", "envelope sender `address` (MAIL FROM); \"<>\" for the null sender")
	to := fs.String("to", "", "envelope recipient `address` (RCPT TO), keeps +detail")
	origTo := fs.String("original-to", "", "original envelope recipient `address`, if different from --to")
	cfgPath := fs.String("config", "", "read the engine settings from this sieved `FILE` (TOML); default: built-in defaults")
	asJSON := fs.Bool("json", false, "print a JSON report instead of text")
	pos, code, ok := parseInterspersed(st, fs, args)
	if !ok {
		return code
	}
	if len(pos) != 2 {
		fmt.Fprintf(st.err, "sievectl test: want SCRIPT and MESSAGE, got %d argument(s)\n", len(pos))
		fs.Usage()
		return exitUsage
	}
	if pos[0] == "-" && pos[1] == "-" {
		fmt.Fprintln(st.err, "sievectl test: SCRIPT and MESSAGE cannot both be standard input")
		return exitUsage
	}
	cfg, eng, code, ok := loadEngine(st, *cfgPath)
	if !ok {
		return code
	}
	src, err := readInput(st, pos[0])
	if err != nil {
		fmt.Fprintf(st.err, "sievectl test: script: %v\n", err)
		return exitNoInput
	}
	raw, err := readInput(st, pos[1])
	if err != nil {
		fmt.Fprintf(st.err, "sievectl test: message: %v\n", err)
		return exitNoInput
	}
	msg, err := engine.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		fmt.Fprintf(st.err, "sievectl test: message %s: %v\n", pos[1], err)
		return exitNoInput
	}

	rep := &testReport{Script: scriptName(pos[0]), maxErrors: eng.Limits().MaxErrors, Actions: []actionReport{}}
	env := engine.Envelope{From: *from, To: *to, OriginalTo: *origTo}
	rep.envFrom, rep.envTo = "--from", "--to"
	if *from == "" {
		env.From, rep.envFrom = headerAddress(msg, "Return-Path", "Sender", "From")
	} else if *from == "<>" {
		env.From = ""
	}
	if *to == "" {
		env.To, rep.envTo = headerAddress(msg, "Envelope-To", "Delivered-To", "To")
	}
	rep.Envelope = envelopeReport{From: env.From, To: env.To, OriginalTo: env.OriginalTo}

	rep.dc = describeContext{cfg: cfg, envelope: env, msg: msg}
	code = rep.run(ctx, eng, src, env, msg)
	if *asJSON {
		enc := json.NewEncoder(st.out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(st.err, "sievectl test: %v\n", err)
		}
	} else {
		rep.writeText(st.out)
	}
	return code
}

func (rep *testReport) run(ctx context.Context, eng *engine.Engine, src []byte, env engine.Envelope, msg *engine.Message) int {
	script, diags := eng.Compile(rep.Script, src)
	rep.diags = diags
	for _, d := range diags {
		rep.Diagnostics = append(rep.Diagnostics, diagReport{Line: d.Line, Column: d.Column, Severity: d.Severity.String(), Message: d.Message})
	}
	if diags.HasErrors() || script == nil {
		rep.Error = "the script does not compile"
		if errs := diags.Errors(); len(errs) > 0 {
			rep.ErrorLine = errs[0].Line
		}
		rep.Fallback = &fallbackReport{Action: "keep", Mailbox: "INBOX"}
		return exitCompile
	}
	rep.Compiled = true
	res, err := eng.Run(ctx, script, env, msg)
	if err != nil {
		rep.Error = "the script failed at run time: " + err.Error()
		var re *engine.RuntimeError
		if errors.As(err, &re) {
			rep.ErrorLine = re.Line
		}
		rep.Fallback = &fallbackReport{Action: "keep", Mailbox: "INBOX"}
		return exitRuntime
	}
	for _, a := range res.Actions {
		rep.Actions = append(rep.Actions, describe(a, rep.dc))
	}
	return exitOK
}

// describe turns an engine action into its report, with a sentence for a
// person in Text.
func describe(a engine.Action, dc describeContext) actionReport {
	switch a := a.(type) {
	case engine.Keep:
		r := actionReport{Action: "keep", Implicit: a.Implicit, Mailbox: "INBOX", Flags: a.Flags}
		if a.Implicit {
			r.Text = "implicit keep: store into INBOX"
		} else {
			r.Text = "keep: store into INBOX"
		}
		r.Text += flagText(a.Flags)
		return r
	case engine.FileInto:
		r := actionReport{Action: "fileinto", Mailbox: a.Mailbox, Flags: a.Flags, Copy: a.Copy, Create: a.Create}
		r.Text = fmt.Sprintf("store into folder %q", a.Mailbox) + flagText(a.Flags)
		if a.Create {
			r.Text += ", creating the folder if missing"
		}
		if a.Copy {
			r.Text += " (:copy, does not cancel the implicit keep)"
		}
		return r
	case engine.Redirect:
		r := actionReport{Action: "redirect", Address: a.Address, Copy: a.Copy}
		r.Text = fmt.Sprintf("redirect to <%s>", a.Address)
		if a.Copy {
			r.Text += " (:copy, does not cancel the implicit keep)"
		}
		return r
	case engine.Reject:
		r := actionReport{Action: "reject", Reason: a.Reason}
		kind := "reject the message (bounce to the sender)"
		if a.Extended {
			r.Action = "ereject"
			kind = "reject the message (refused during SMTP if possible, else bounced)"
		}
		r.Text = fmt.Sprintf("%s with reason %q", kind, a.Reason)
		return r
	case engine.Discard:
		return actionReport{Action: "discard", Text: "discard: the message is silently dropped"}
	case engine.ExtensionAction:
		r := actionReport{Action: a.Extension, Value: a.Value}
		if d, ok := actionDescribers[a.Extension]; ok {
			r.Text, r.Outcome = d(a, dc)
		} else {
			r.Text = engine.String(a)
		}
		return r
	}
	return actionReport{Action: "unknown", Text: engine.String(a)}
}

func flagText(flags []string) string {
	if len(flags) == 0 {
		return ""
	}
	return " with flags " + strings.Join(flags, " ")
}

func (rep *testReport) writeText(w io.Writer) {
	if len(rep.diags) > 0 {
		fmt.Fprintln(w, rep.diags.Format(rep.Script, rep.maxErrors))
		fmt.Fprintln(w)
	}
	from := rep.Envelope.From
	fmt.Fprintf(w, "Envelope: from <%s> (%s), to <%s> (%s)\n", from, rep.envFrom, rep.Envelope.To, rep.envTo)
	if rep.Envelope.OriginalTo != "" {
		fmt.Fprintf(w, "          original recipient <%s>\n", rep.Envelope.OriginalTo)
	}
	fmt.Fprintln(w)
	if rep.Error != "" {
		fmt.Fprintf(w, "FAILED: %s.\n", rep.Error)
		fmt.Fprintln(w, "Delivery would fall back to implicit keep: the message would be stored into INBOX.")
		return
	}
	fmt.Fprintln(w, "Actions (dry run, nothing was delivered):")
	implicit := false
	n := 0
	for _, a := range rep.Actions {
		if a.Action == "keep" && a.Implicit {
			implicit = true
		}
		n++
		fmt.Fprintf(w, "  %d. %s\n", n, a.Text)
		if a.Outcome != "" {
			fmt.Fprintf(w, "     -> %s\n", a.Outcome)
		}
	}
	if n == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	if !implicit {
		fmt.Fprintln(w, "No implicit keep: the actions above cancel it, so the message is not stored into INBOX unless listed.")
	}
}

// headerAddress returns the first address found in the given header fields
// and a note saying where it came from.
func headerAddress(msg *engine.Message, fields ...string) (string, string) {
	h := msg.Header()
	for _, f := range fields {
		v := strings.TrimSpace(h.Get(f))
		if v == "" {
			continue
		}
		if a, err := mail.ParseAddress(v); err == nil {
			return a.Address, "from the " + f + " header"
		}
		if list, err := mail.ParseAddressList(v); err == nil && len(list) > 0 {
			return list[0].Address, "from the " + f + " header"
		}
		v = strings.Trim(v, "<> \t")
		if v != "" {
			return v, "from the " + f + " header"
		}
	}
	return "", "not set: use --from/--to"
}
