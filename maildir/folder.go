package maildir

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrUnsafeName is wrapped by errors for mailbox names that cannot be mapped
// to a Maildir++ folder without leaving the Maildir or colliding with its
// own files. Callers deliver to INBOX instead and log the reason.
var ErrUnsafeName = errors.New("maildir: unsafe mailbox name")

// maxDirName is NAME_MAX on Linux file systems.
const maxDirName = 255

// Folder is a mailbox mapped onto a Maildir++ layout.
type Folder struct {
	// Name is the mailbox name as the script gave it, with the hierarchy
	// normalised to "/" ("Lists/Go"); "INBOX" for the root.
	Name string
	// Dir is the folder's directory relative to the Maildir root:
	// "" for INBOX, ".Lists.Go" otherwise (components in modified UTF-7).
	Dir string
	// Subscription is the name as Dovecot writes it in the Maildir's
	// "subscriptions" file (version 2: hierarchy separated by TAB,
	// components in modified UTF-7); "" for INBOX.
	Subscription string
}

// IsInbox reports whether f is the Maildir root.
func (f Folder) IsInbox() bool { return f.Dir == "" }

// Inbox is the Maildir root.
var Inbox = Folder{Name: "INBOX"}

// Mapper maps Sieve mailbox names (RFC 5228 fileinto) to Maildir++ folders.
type Mapper struct {
	// Separators are the characters accepted as hierarchy separators in
	// a mailbox name. "/" is the usual IMAP separator; "." is Dovecot's
	// default for Maildir++, so scripts written for it say "Lists.Go".
	// Default "/.".
	Separators string
}

// Map maps name to a folder. "INBOX" (any case) and an "INBOX" first
// component are the root: "INBOX/Lists/Go", "inbox.Lists.Go" and
// "Lists/Go" are the same folder ".Lists.Go". Names with empty components
// ("..", "a//b", a leading or trailing separator), "." or ".." components,
// control characters, invalid UTF-8, IMAP wildcards or a directory name
// longer than the file system allows are refused with ErrUnsafeName.
func (m Mapper) Map(name string) (Folder, error) {
	seps := m.Separators
	if seps == "" {
		seps = "/."
	}
	bad := func(why string) (Folder, error) {
		return Folder{}, fmt.Errorf("%w %q: %s", ErrUnsafeName, name, why)
	}
	if name == "" {
		return bad("empty name")
	}
	if !utf8.ValidString(name) {
		return bad("not valid UTF-8")
	}
	for _, r := range name {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			return bad("control character")
		case r == '*' || r == '%':
			return bad("IMAP wildcard character")
		case r == 0x2028 || r == 0x2029:
			return bad("line separator character")
		}
	}
	parts := strings.FieldsFunc(name, func(r rune) bool { return strings.ContainsRune(seps, r) })
	// FieldsFunc drops empty fields: count separators to find them.
	nsep := 0
	for _, r := range name {
		if strings.ContainsRune(seps, r) {
			nsep++
		}
	}
	if len(parts) != nsep+1 {
		return bad("empty hierarchy component")
	}
	if strings.EqualFold(parts[0], "INBOX") {
		parts = parts[1:]
	}
	if len(parts) == 0 {
		return Inbox, nil
	}
	// Dovecot reserves the name INBOX (any case) for the Maildir root: a
	// ".INBOX" or ".inbox" directory is never listed, so a message filed
	// there ("INBOX/INBOX") would be on disk yet invisible to the user.
	// (".INBOX.Sub" is listed, as "INBOX.Sub".)
	if len(parts) == 1 && strings.EqualFold(parts[0], "INBOX") {
		return bad("a folder named INBOX inside INBOX is hidden by Dovecot")
	}
	enc := make([]string, len(parts))
	for i, p := range parts {
		// "/" can only be here when it is not a separator.
		if p == "." || p == ".." || strings.ContainsAny(p, "/.") {
			return bad(`"." or "/" inside a component`)
		}
		enc[i] = EncodeMUTF7(p)
	}
	dir := "." + strings.Join(enc, ".")
	if len(dir) > maxDirName {
		return bad("folder name too long")
	}
	return Folder{
		Name:         strings.Join(parts, "/"),
		Dir:          dir,
		Subscription: strings.Join(enc, "\t"),
	}, nil
}
