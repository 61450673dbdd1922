package engine

import (
	"context"
	"fmt"
	"strings"
)

// Action is one thing a script asks the delivery agent to do.
// The concrete types are Keep, FileInto, Redirect, Reject, Discard and
// extension actions (see ExtensionAction).
type Action interface{ actionName() string }

// Keep stores the message in the default mailbox (INBOX).
type Keep struct {
	Implicit bool
	Flags    []string
}

// FileInto stores the message in Mailbox ("/"-separated hierarchy).
type FileInto struct {
	Mailbox string
	Flags   []string
	Copy    bool
	Create  bool // mailbox extension :create
}

// Redirect forwards the message to Address.
type Redirect struct {
	Address string
	Copy    bool
}

// Reject refuses the message with Reason; Extended is ereject (RFC 5429).
type Reject struct {
	Reason   string
	Extended bool
}

// Discard silently drops the message.
type Discard struct{}

// ExtensionAction wraps an action produced by a project extension
// (e.g. a vacation reply). Value is the extension's own type.
type ExtensionAction struct {
	Extension string
	Value     any
	// CancelsImplicitKeep: whether the action, like fileinto, cancels the
	// implicit keep (RFC 5228 2.10.2). A vacation reply does not.
	CancelsImplicitKeep bool
}

func (Keep) actionName() string            { return "keep" }
func (FileInto) actionName() string        { return "fileinto" }
func (Redirect) actionName() string        { return "redirect" }
func (Reject) actionName() string          { return "reject" }
func (Discard) actionName() string         { return "discard" }
func (ExtensionAction) actionName() string { return "extension" }

// postProcess applies what RFC 5228 and RFC 5429 leave to the delivery
// agent: reject conflicts and de-duplication of deliveries.
//
// pos[i] is the script position of in[i] (zero when unknown); it may be nil.
func postProcess(in []Action, pos []position) ([]Action, error) {
	at := func(i int) position {
		if i < len(pos) {
			return pos[i]
		}
		return position{}
	}
	reject := -1
	for i, a := range in {
		r, ok := a.(Reject)
		if !ok {
			continue
		}
		if reject >= 0 {
			// RFC 5429 2.1: only one reject/ereject per execution.
			p := at(i)
			return nil, &RuntimeError{Line: p.line, Column: p.col, Msg: fmt.Sprintf(
				"duplicate %s action not allowed (the previous one was%s)", rejectName(r), at(reject).suffix())}
		}
		reject = i
	}
	if reject >= 0 {
		// RFC 5429 2.1: reject is incompatible with any action that
		// delivers the message.
		for i, a := range in {
			if k, ok := a.(Keep); ok && k.Implicit {
				continue
			}
			switch a.(type) {
			case Keep, FileInto, Redirect:
				p := at(reject)
				return nil, &RuntimeError{Line: p.line, Column: p.col, Msg: fmt.Sprintf(
					"the %s action conflicts with the %s action%s, which delivers the message",
					rejectName(in[reject].(Reject)), a.actionName(), at(i).suffix())}
			}
		}
	}

	// De-duplicate deliveries to the same mailbox (keep = INBOX; "INBOX"
	// is case-insensitive, RFC 3501 5.1; other names are compared as
	// given) and redirects to the same address. Flags of merged
	// deliveries are united.
	out := make([]Action, 0, len(in))
	mailboxAt := map[string]int{}
	redirectAt := map[string]int{}
	for _, a := range in {
		switch x := a.(type) {
		case Keep, FileInto:
			key, flags := deliveryKey(x)
			if i, ok := mailboxAt[key]; ok {
				out[i] = mergeDelivery(out[i], x, flags)
				continue
			}
			mailboxAt[key] = len(out)
		case Redirect:
			key := strings.ToLower(x.Address)
			if i, ok := redirectAt[key]; ok {
				if r := out[i].(Redirect); r.Copy && !x.Copy {
					r.Copy = false
					out[i] = r
				}
				continue
			}
			redirectAt[key] = len(out)
		}
		out = append(out, a)
	}
	return out, nil
}

// position is where an action's command is in the script.
type position struct{ line, col int }

func (p position) suffix() string {
	if p.line == 0 {
		return ""
	}
	return fmt.Sprintf(" at line %d", p.line)
}

func rejectName(r Reject) string {
	if r.Extended {
		return "ereject"
	}
	return "reject"
}

func deliveryKey(a Action) (string, []string) {
	switch a := a.(type) {
	case Keep:
		return "INBOX", a.Flags
	case FileInto:
		if strings.EqualFold(a.Mailbox, "INBOX") {
			return "INBOX", a.Flags
		}
		return a.Mailbox, a.Flags
	}
	return "", nil
}

// mergeDelivery folds a second delivery into the same mailbox into the
// first: one copy, flags united; an explicit action wins over the implicit
// keep, and :copy only stays when both had it; :create is kept if any had it.
func mergeDelivery(first, second Action, flags []string) Action {
	switch f := first.(type) {
	case Keep:
		f.Flags = unionFlags(f.Flags, flags)
		if s, ok := second.(Keep); ok && !s.Implicit {
			f.Implicit = false
		}
		if _, ok := second.(FileInto); ok {
			f.Implicit = false
		}
		return f
	case FileInto:
		f.Flags = unionFlags(f.Flags, flags)
		if s, ok := second.(FileInto); ok {
			f.Copy = f.Copy && s.Copy
			f.Create = f.Create || s.Create
		} else {
			f.Copy = false
		}
		return f
	}
	return first
}

func unionFlags(a, b []string) []string {
	if len(b) == 0 {
		return a
	}
	seen := map[string]bool{}
	var out []string
	for _, f := range append(append([]string(nil), a...), b...) {
		k := strings.ToLower(f)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, f)
	}
	return out
}

// String renders an action for logs and sievectl test.
func String(a Action) string {
	switch a := a.(type) {
	case Keep:
		s := "keep"
		if a.Implicit {
			s = "keep (implicit)"
		}
		return s + flagSuffix(a.Flags)
	case FileInto:
		s := fmt.Sprintf("fileinto %q", a.Mailbox)
		if a.Copy {
			s += " :copy"
		}
		if a.Create {
			s += " :create"
		}
		return s + flagSuffix(a.Flags)
	case Redirect:
		s := fmt.Sprintf("redirect %q", a.Address)
		if a.Copy {
			s += " :copy"
		}
		return s
	case Reject:
		if a.Extended {
			return fmt.Sprintf("ereject %q", a.Reason)
		}
		return fmt.Sprintf("reject %q", a.Reason)
	case Discard:
		return "discard"
	case ExtensionAction:
		return fmt.Sprintf("%s %v", a.Extension, a.Value)
	}
	return fmt.Sprintf("%v", a)
}

func flagSuffix(f []string) string {
	if len(f) == 0 {
		return ""
	}
	return " flags: " + strings.Join(f, " ")
}

// mailboxExtension implements the "mailbox" extension (RFC 5490) through
// the project extension API: fileinto gains :create, and the
// mailboxexists test is added. It replaces the interpreter's fileinto.
type mailboxExtension struct{}

func (mailboxExtension) Names() []string { return []string{"mailbox"} }

func (mailboxExtension) Commands() []CommandSpec {
	return []CommandSpec{{
		Name:     "fileinto",
		Requires: []string{"fileinto"},
		Tags: map[string]ArgKind{
			":copy":   ArgFlag,
			":create": ArgFlag,
			":flags":  ArgStringList,
		},
		Positional: []ArgKind{ArgString},
		Load:       loadFileInto,
	}}
}

func (mailboxExtension) Tests() []TestSpec {
	return []TestSpec{{
		Name:       "mailboxexists",
		Requires:   []string{"mailbox"},
		Positional: []ArgKind{ArgStringList},
		Load: func(c *Call) (Test, error) {
			return mailboxExistsTest{names: c.StringListArg(0)}, nil
		},
	}}
}

func loadFileInto(c *Call) (Command, error) {
	for _, x := range []struct{ tag, ext string }{
		{":copy", "copy"}, {":create", "mailbox"}, {":flags", "imap4flags"},
	} {
		if c.Has(x.tag) && !c.Requires(x.ext) {
			return nil, c.Errorf("missing require %q: the %s tag of fileinto needs it", x.ext, x.tag)
		}
	}
	mailbox := c.StringArg(0)
	if mailbox == "" {
		return nil, c.Errorf("the fileinto command needs a non-empty mailbox name")
	}
	flags, hasFlags := c.StringList(":flags")
	copyTag, create := c.Has(":copy"), c.Has(":create")
	return CommandFunc(func(ctx context.Context, rt *Runtime) error {
		a := FileInto{Mailbox: rt.Expand(mailbox), Copy: copyTag, Create: create}
		if hasFlags {
			a.Flags = canonicalFlags(rt.ExpandList(flags))
		} else {
			a.Flags = canonicalFlags(rt.Flags())
		}
		return rt.AddAction(a)
	}), nil
}

// canonicalFlags splits space-separated flag lists and drops duplicates
// (RFC 5232 3).
func canonicalFlags(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range in {
		for _, f := range strings.Fields(s) {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	return out
}

type mailboxExistsKey struct{}

// WithMailboxExists returns a context that tells the mailboxexists test
// (RFC 5490) which mailboxes exist. Without it, only INBOX exists.
func WithMailboxExists(ctx context.Context, exists func(mailbox string) bool) context.Context {
	return context.WithValue(ctx, mailboxExistsKey{}, exists)
}

type mailboxExistsTest struct{ names []string }

func (t mailboxExistsTest) Check(ctx context.Context, rt *Runtime) (bool, error) {
	exists, _ := ctx.Value(mailboxExistsKey{}).(func(string) bool)
	for _, n := range rt.ExpandList(t.names) {
		switch {
		case exists != nil:
			if !exists(n) {
				return false, nil
			}
		case !strings.EqualFold(n, "INBOX"):
			return false, nil
		}
	}
	return true, nil
}
