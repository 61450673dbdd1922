package lda

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/sieved/sieved/engine"
	"github.com/sieved/sieved/maildir"
)

// store is one planned local copy.
type store struct {
	folder maildir.Folder
	flags  []string
	create bool // fileinto :create
}

// plan collects the actions of a run, de-duplicated: one copy per folder
// (keep and fileinto "INBOX" are one message; flags are merged).
type plan struct {
	stores    []store
	redirects []engine.Redirect
	reject    *engine.Reject
	discard   bool
	exts      []engine.ExtensionAction
}

func (p *plan) addStore(s store) {
	for i := range p.stores {
		if p.stores[i].folder.Dir == s.folder.Dir {
			p.stores[i].flags = append(p.stores[i].flags, s.flags...)
			p.stores[i].create = p.stores[i].create || s.create
			return
		}
	}
	p.stores = append(p.stores, s)
}

func (p *plan) hasInbox() bool {
	for _, s := range p.stores {
		if s.folder.IsInbox() {
			return true
		}
	}
	return false
}

func (l *LDA) mapper() maildir.Mapper {
	return maildir.Mapper{Separators: l.Config.FolderSeparators}
}

// defaultFolder is -m's mailbox (dovecot-lda's default mailbox for keep),
// INBOX when unset or unmappable.
func (l *LDA) defaultFolder(req Request, d *Delivery) maildir.Folder {
	if req.Mailbox == "" {
		return maildir.Inbox
	}
	f, err := l.mapper().Map(req.Mailbox)
	if err != nil {
		d.Log.Warn("default mailbox (-m) cannot be mapped; using INBOX", "mailbox", req.Mailbox, "err", err)
		return maildir.Inbox
	}
	return f
}

func (l *LDA) makePlan(req Request, d *Delivery, actions []engine.Action) *plan {
	p := &plan{}
	for _, a := range actions {
		switch a := a.(type) {
		case engine.Keep:
			p.addStore(store{folder: l.defaultFolder(req, d), flags: a.Flags})
		case engine.FileInto:
			f, err := l.mapper().Map(a.Mailbox)
			if err != nil {
				d.Log.Warn("fileinto: unsafe mailbox name; delivering to INBOX", "mailbox", a.Mailbox, "err", err)
				f = maildir.Inbox
			}
			p.addStore(store{folder: f, flags: a.Flags, create: a.Create})
		case engine.Redirect:
			p.redirects = append(p.redirects, a)
		case engine.Reject:
			if p.reject == nil {
				r := a
				p.reject = &r
			}
		case engine.Discard:
			p.discard = true
		case engine.ExtensionAction:
			p.exts = append(p.exts, a)
		default:
			d.Log.Warn("unknown action ignored", "action", engine.String(a))
		}
	}
	return p
}

func (l *LDA) execute(ctx context.Context, req Request, d *Delivery, md *maildir.Maildir, sp *maildir.Spool, actions []engine.Action, rep *Report) (*Report, error) {
	p := l.makePlan(req, d, actions)

	// A rejection with -e is the MTA's to send: store nothing, exit 77
	// with the reason (dovecot-lda -e).
	if p.reject != nil && req.RejectByExit {
		rep.Rejected = p.reject.Reason
		d.Log.Info("rejected (by exit status)", "reason", p.reject.Reason)
		return rep, errorf(ExitNoPerm, nil, "%s", oneLine(p.reject.Reason))
	}

	// Local copies first: they depend on nothing else, and if one fails we
	// exit 75 before any mail left the machine, so the retry is clean.
	if err := l.storeAll(ctx, d, md, sp, p.stores, rep); err != nil {
		return rep, err
	}

	// Side effects. A failure here that would lose the message (a redirect
	// without :copy, a rejection notice) falls back to INBOX.
	needKeep := false
	for i, rd := range p.redirects {
		if max := l.redirectLimit(); i >= max {
			d.Log.Warn("redirect limit reached; keeping instead", "to", rd.Address, "limit", max)
			needKeep = needKeep || !rd.Copy
			continue
		}
		if err := l.redirect(ctx, d, rd); err != nil {
			d.Log.Error("redirect failed; keeping in INBOX", "to", rd.Address, "err", err)
			needKeep = needKeep || !rd.Copy
			continue
		}
		d.Log.Info("redirected", "to", rd.Address)
		rep.Redirected = append(rep.Redirected, rd.Address)
	}
	if p.reject != nil {
		rep.Rejected = p.reject.Reason
		if err := l.reject(ctx, req, d, p.reject.Reason); err != nil {
			d.Log.Error("rejection notice failed; keeping in INBOX", "err", err)
			needKeep = true
		}
	}
	if needKeep && !p.hasInbox() {
		if err := l.storeAll(ctx, d, md, sp, []store{{folder: maildir.Inbox}}, rep); err != nil {
			return rep, err
		}
	}
	if len(rep.Stored) == 0 && len(rep.Redirected) == 0 && rep.Rejected == "" {
		rep.Discarded = true
		d.Log.Info("discarded")
	}
	d.Stored = rep.Stored

	// Extension actions (vacation) last: the message is safe whatever
	// they do.
	for _, a := range p.exts {
		l.runExtension(ctx, d, a)
	}
	return rep, nil
}

func (l *LDA) redirectLimit() int {
	if l.Engine != nil {
		return l.Engine.Limits().MaxRedirects
	}
	return engine.DefaultLimits().MaxRedirects
}

func (l *LDA) runExtension(ctx context.Context, d *Delivery, a engine.ExtensionAction) {
	h := l.Extensions[a.Extension]
	if h == nil {
		d.Log.Warn("no handler for extension action; ignored", "extension", a.Extension)
		return
	}
	defer func() {
		if p := recover(); p != nil {
			d.Log.Error("extension handler panicked", "extension", a.Extension, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	if err := h.Handle(ctx, d, a); err != nil {
		d.Log.Error("extension action failed", "extension", a.Extension, "err", err)
	}
}

// storeAll writes the planned copies. A folder that cannot be used falls
// back to INBOX (logged); only a failure to write INBOX itself is an error
// (75).
func (l *LDA) storeAll(ctx context.Context, d *Delivery, md *maildir.Maildir, sp *maildir.Spool, stores []store, rep *Report) error {
	done := map[string]bool{}
	for _, s := range rep.Stored {
		done[s.Folder.Dir] = true
	}
	queue := append([]store(nil), stores...)
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if done[s.folder.Dir] {
			continue
		}
		err := l.storeOne(ctx, d, md, sp, s, rep)
		if err == nil {
			done[s.folder.Dir] = true
			continue
		}
		if s.folder.IsInbox() {
			return errorf(ExitTempFail, err, "cannot store message")
		}
		d.Log.Warn("cannot store in folder; delivering to INBOX", "folder", s.folder.Name, "err", err)
		queue = append(queue, store{folder: maildir.Inbox, flags: s.flags})
	}
	return nil
}

func (l *LDA) storeOne(ctx context.Context, d *Delivery, md *maildir.Maildir, sp *maildir.Spool, s store, rep *Report) error {
	if !s.folder.IsInbox() {
		ok, err := md.Exists(s.folder)
		if err != nil {
			return err
		}
		if !ok {
			if !l.Config.Autocreate && !s.create {
				return fmt.Errorf("folder %q does not exist (autocreate is off)", s.folder.Name)
			}
			if err := md.Create(ctx, s.folder); err != nil {
				return err
			}
			d.Log.Info("created folder", "folder", s.folder.Name)
			if l.Config.Autosubscribe {
				if err := md.Subscribe(ctx, s.folder); err != nil {
					// The mail is more important than the subscription.
					d.Log.Warn("cannot subscribe folder", "folder", s.folder.Name, "err", err)
				}
			}
		}
	}
	fl := maildir.SplitFlags(s.flags)
	if len(fl.Ignored) > 0 {
		d.Log.Warn("flags without a Maildir form ignored", "folder", s.folder.Name, "flags", strings.Join(fl.Ignored, " "))
	}
	res, err := sp.Deliver(ctx, s.folder, fl)
	if err != nil {
		return err
	}
	if len(res.Dropped) > 0 {
		d.Log.Warn("keywords not stored (dovecot-keywords full or unwritable)", "folder", s.folder.Name, "keywords", strings.Join(res.Dropped, " "))
	}
	d.Log.Info("stored", "folder", s.folder.Name, "path", res.Path)
	rep.Stored = append(rep.Stored, res)
	return nil
}

// oneLine makes a reason safe for a one-line stderr message.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = s[:400]
	}
	return s
}
