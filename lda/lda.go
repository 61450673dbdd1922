// Package lda is sieve-lda's delivery logic: it turns an envelope, a message
// and the recipient's active Sieve script (RFC 5228 and extensions, run by
// package engine) into durable Maildir++ copies (package maildir),
// redirects and rejections (RFC 5429, sent through package sender).
//
// A script can never cause a lost message: no script, an unreadable or
// broken one, a runtime error or a failed action all fall back to the
// implicit keep (INBOX), and any temporary problem is reported (exit 75) so
// the MTA retries instead of bouncing.
package lda

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/sieved/sieved/config"
	"github.com/sieved/sieved/engine"
	"github.com/sieved/sieved/maildir"
	"github.com/sieved/sieved/sender"
)

// ExtensionHandler acts on an action produced by a project extension (for
// example vacation). It runs after the message is safely stored; its error
// is logged and never changes the outcome of the delivery (nor does a
// panic).
type ExtensionHandler interface {
	Handle(ctx context.Context, d *Delivery, a engine.ExtensionAction) error
}

// ExtensionHandlerFunc adapts a function to ExtensionHandler.
type ExtensionHandlerFunc func(ctx context.Context, d *Delivery, a engine.ExtensionAction) error

// Handle implements ExtensionHandler.
func (f ExtensionHandlerFunc) Handle(ctx context.Context, d *Delivery, a engine.ExtensionAction) error {
	return f(ctx, d, a)
}

// Delivery is what an ExtensionHandler sees of the delivery in progress.
type Delivery struct {
	Recipient Recipient
	// Envelope is what the script saw: To is the original recipient (-a)
	// when given, else the final recipient, detail included (Pigeonhole's
	// choice); Recipient is always the final one.
	Envelope engine.Envelope
	// Message is the message (Header, HeaderGet, Open for the exact
	// bytes); nil when it could not be parsed (then no script ran).
	Message *engine.Message
	// MailDir is the recipient's Maildir root; ScriptPath their active
	// script's path (its directory is the user's sieve directory).
	MailDir, ScriptPath string
	// Stored lists the copies written.
	Stored []maildir.Delivered
	// Sender sends mail (vacation replies).
	Sender sender.Sender
	Log    *slog.Logger
}

// LDA delivers messages. Fields are set once and not changed.
type LDA struct {
	Config      config.LDA
	StorageRoot string // [storage] root, for the {storage_root} placeholder
	Engine      *engine.Engine
	Sender      sender.Sender
	Log         *slog.Logger
	// Extensions maps engine.ExtensionAction.Extension ("vacation") to its
	// handler. An action without a handler is logged.
	Extensions map[string]ExtensionHandler
}

// Request is one delivery as the MTA asks for it (dovecot-lda's flags).
type Request struct {
	Recipient         string // -d
	Sender            string // -f; "" is the null sender when SenderSet
	SenderSet         bool   // -f given (else Return-Path is used)
	OriginalRecipient string // -a
	Mailbox           string // -m: default mailbox for keep ("" = INBOX)
	RejectByExit      bool   // -e: reject by exit status 77 with the reason
}

// Report says what Deliver did.
type Report struct {
	Recipient  Recipient
	Stored     []maildir.Delivered
	Redirected []string
	Rejected   string // the reason, when a rejection notice was sent or due
	Discarded  bool
	// ScriptProblem is why the script did not decide (implicit keep).
	ScriptProblem string
}

func (l *LDA) log() *slog.Logger {
	if l.Log != nil {
		return l.Log
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Lookup resolves the recipient address to a known user. It returns an
// *Error with ExitNoUser for an unknown user, ExitUsage for an address that
// cannot be parsed and ExitTempFail when the check itself failed.
func (l *LDA) Lookup(address string) (Recipient, error) {
	local, domain, err := ParseAddress(address, l.Config.DefaultDomain)
	if err != nil {
		return Recipient{}, errorf(ExitUsage, err, "bad recipient %q", address)
	}
	full := local + "@" + domain
	var users map[string]bool
	if l.Config.UsersFile != "" {
		users, err = readUsers(l.Config.UsersFile)
		if err != nil {
			return Recipient{}, errorf(ExitTempFail, err, "cannot read users file")
		}
	}
	for _, c := range Candidates(full, local, domain, l.Config.SubaddressSeparators) {
		if safePathPart(c.User) != "" || safePathPart(c.Domain) != "" {
			continue
		}
		if users != nil {
			if users[c.Base()] {
				return c, nil
			}
			continue
		}
		st, err := os.Stat(expand(l.Config.MailDir, c, l.StorageRoot))
		if err == nil && st.IsDir() {
			return c, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return Recipient{}, errorf(ExitTempFail, err, "cannot look up %s", c.Base())
		}
	}
	// No Maildir for any candidate. If the fixed part of the mail_dir
	// template is missing too, the mail store is not there (an unmounted
	// volume): that is not an unknown user, and a 67 would bounce every
	// message for as long as it lasts.
	if users == nil {
		if root := templateRoot(l.Config.MailDir, l.StorageRoot); root != "" {
			if _, err := os.Stat(root); err != nil {
				return Recipient{}, errorf(ExitTempFail, err, "mail store %s is not available", root)
			}
		}
	}
	return Recipient{}, errorf(ExitNoUser, nil, "unknown user %s", full)
}

// templateRoot is the directory a path template names before its first
// per-user placeholder ("/var/vmail" for "/var/vmail/{domain}/{user}"), ""
// when there is none worth checking.
func templateRoot(tmpl, storageRoot string) string {
	t := strings.ReplaceAll(tmpl, "{storage_root}", storageRoot)
	i := strings.IndexByte(t, '{')
	if i < 0 {
		return ""
	}
	root := filepath.Dir(t[:i] + "x")
	if root == "/" || root == "." {
		return ""
	}
	return root
}

func readUsers(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	users := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line != "" {
			users[strings.ToLower(line)] = true
		}
	}
	return users, sc.Err()
}

// Deliver reads the message from r and delivers it for req. It returns a
// nil error only when every copy the outcome needs is durable on disk (or
// the message was deliberately discarded, redirected or rejected).
func (l *LDA) Deliver(ctx context.Context, req Request, r io.Reader) (*Report, error) {
	rcpt, err := l.Lookup(req.Recipient)
	if err != nil {
		return nil, err
	}
	log := l.log().With("rcpt", rcpt.Address)
	rep := &Report{Recipient: rcpt}
	md := &maildir.Maildir{Root: expand(l.Config.MailDir, rcpt, l.StorageRoot)}
	md.Owner = mailOwner(md.Root)
	if err := md.Init(); err != nil {
		return nil, errorf(ExitTempFail, err, "cannot open mailbox of %s", rcpt.Base())
	}

	// 1. Spool the message into tmp/ and fsync it: from here on a copy of
	// the message is on disk, and a full or read-only disk has already
	// failed (75) before anything else happened. This is the only time the
	// message is written: the script reads this file and every folder
	// gets a hard link to it.
	sp, err := md.Spool(ctx, engine.StripMboxFrom(r))
	if err != nil {
		return nil, errorf(ExitTempFail, err, "cannot write message")
	}
	defer sp.Remove()

	d := &Delivery{Recipient: rcpt, MailDir: md.Root, Sender: l.Sender, Log: log,
		ScriptPath: expand(l.Config.Script, rcpt, l.StorageRoot)}
	msg, closeMsg, err := l.openMessage(sp)
	if err != nil {
		// The bytes are safe in the spool; without a parsed message no
		// script can run: implicit keep.
		log.Warn("cannot parse message; delivering to INBOX", "err", err)
		rep.ScriptProblem = "message: " + err.Error()
	} else {
		defer closeMsg()
		d.Message = msg
	}
	// Like Pigeonhole under dovecot-lda, the envelope "to" a script tests
	// is the original recipient (-a) when the MTA gives one, else the
	// final recipient; either keeps its +detail.
	d.Envelope = engine.Envelope{
		From:       l.envelopeSender(req, msg),
		To:         rcpt.Address,
		OriginalTo: strings.Trim(strings.TrimSpace(req.OriginalRecipient), "<>"),
	}
	if d.Envelope.OriginalTo != "" {
		d.Envelope.To = d.Envelope.OriginalTo
	}

	// 2. Run the script.
	actions := l.runScript(ctx, d, rep)
	return l.execute(ctx, req, d, md, sp, actions, rep)
}

var errNoMessage = errors.New("no parsed message")

// mailOwner returns who must own what a delivery creates when sieve-lda
// runs as root (an MTA configured without a delivery user): the owner of
// the Maildir root, or of its nearest existing ancestor when the root is
// still to be created (a users_file user of a new domain: both
// <mail root>/<domain> and the Maildir are new). Otherwise nil: files
// belong to the running user, as usual.
func mailOwner(root string) *maildir.Owner {
	if os.Geteuid() != 0 {
		return nil
	}
	for p := root; ; p = filepath.Dir(p) {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err == nil {
			if st.Uid == 0 {
				return nil
			}
			return &maildir.Owner{UID: int(st.Uid), GID: int(st.Gid)}
		}
		if filepath.Dir(p) == p {
			return nil
		}
	}
}

// openMessage hands the spool file itself to the engine, which parses the
// header and reads body tests from it: no second copy (in memory or in a
// temporary file) that could fail on its own, e.g. on a nearly full disk,
// and skip the script. The file stays open until the returned close
// function has run; the delivery links it meanwhile, which is fine: files
// in a Maildir never change.
func (l *LDA) openMessage(sp *maildir.Spool) (_ *engine.Message, _ func(), err error) {
	if l.Engine == nil {
		return nil, nil, errNoMessage
	}
	f, err := sp.Open()
	if err != nil {
		return nil, nil, err
	}
	// A parser bug triggered by a hostile message must not crash the
	// process: Go exits 2 on a panic, which MTAs take as a permanent
	// failure and bounce. The spool is safe; deliver it to INBOX.
	defer func() {
		if p := recover(); p != nil {
			f.Close()
			err = fmt.Errorf("message parser panicked: %v", p)
		}
	}()
	msg, err := l.Engine.NewMessageAt(f, sp.Size(), engine.MessageOptions{})
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return msg, func() {
		msg.Close()
		f.Close()
	}, nil
}

// envelopeSender is -f when given, else the Return-Path the MTA added.
func (l *LDA) envelopeSender(req Request, msg *engine.Message) string {
	if req.SenderSet {
		return strings.Trim(strings.TrimSpace(req.Sender), "<>")
	}
	if msg != nil {
		if rp := msg.HeaderRaw("Return-Path"); len(rp) > 0 {
			return strings.Trim(strings.TrimSpace(rp[0]), "<>")
		}
	}
	return ""
}

// runScript returns the actions to perform: the script's, or an implicit
// keep when there is no usable script.
func (l *LDA) runScript(ctx context.Context, d *Delivery, rep *Report) (actions []engine.Action) {
	keep := []engine.Action{engine.Keep{Implicit: true}}
	if d.Message == nil || l.Engine == nil {
		return keep
	}
	log := d.Log
	// A panic while compiling or running a script (the engine, an
	// extension) would crash the process with exit 2, which MTAs bounce:
	// the script must never cost the message, so it is an implicit keep.
	defer func() {
		if p := recover(); p != nil {
			rep.ScriptProblem = fmt.Sprintf("panic: %v", p)
			log.Error("script engine panicked; delivering to INBOX", "path", d.ScriptPath,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			actions = keep
		}
	}()
	src, err := readScript(d.ScriptPath, l.Engine.Limits().MaxScriptBytes)
	if errors.Is(err, fs.ErrNotExist) {
		log.Info("no active script; delivering to INBOX", "path", d.ScriptPath)
		return keep
	}
	if err != nil {
		rep.ScriptProblem = err.Error()
		log.Error("cannot read script; delivering to INBOX", "path", d.ScriptPath, "err", err)
		return keep
	}
	s, diags := l.Engine.Compile(d.ScriptPath, src)
	if diags.HasErrors() {
		rep.ScriptProblem = "compile: " + diags.Errors().Format(d.ScriptPath, 3)
		log.Error("script does not compile; delivering to INBOX", "path", d.ScriptPath,
			"errors", diags.Errors().Format(d.ScriptPath, 3))
		return keep
	}
	res, err := l.Engine.Run(ctx, s, d.Envelope, d.Message)
	if err != nil {
		rep.ScriptProblem = "run: " + err.Error()
		log.Error("script failed; delivering to INBOX", "path", d.ScriptPath, "err", err)
		return keep
	}
	for _, a := range res.Actions {
		log.Debug("action", "action", engine.String(a))
	}
	return res.Actions
}

func readScript(path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("read script: %w", err)
	}
	if len(b) > max {
		return nil, fmt.Errorf("script %s is larger than %d bytes", path, max)
	}
	return b, nil
}
