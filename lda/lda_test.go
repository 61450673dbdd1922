package lda

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sieved/sieved/config"
	"github.com/sieved/sieved/engine"
	"github.com/sieved/sieved/sender"
	"github.com/sieved/sieved/sender/sendertest"
)

type env struct {
	t        *testing.T
	l        *LDA
	mailRoot string
	sink     *sendertest.Sink
	logs     *bytes.Buffer
}

func (e *env) maildir(user string) string { return filepath.Join(e.mailRoot, "example.org", user) }

// newEnv makes a mail root with alice's Maildir, a script root with alice's
// active script (when script != ""), and an LDA sending to a real SMTP sink.
func newEnv(t *testing.T, script string) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, mailRoot: filepath.Join(dir, "mail"), sink: sendertest.NewSink(t), logs: &bytes.Buffer{}}
	if err := os.MkdirAll(e.maildir("alice"), 0o700); err != nil {
		t.Fatal(err)
	}
	sieveRoot := filepath.Join(dir, "sieve")
	if script != "" {
		udir := filepath.Join(sieveRoot, "example.org", "alice")
		os.MkdirAll(udir, 0o700)
		if err := os.WriteFile(filepath.Join(udir, "main.sieve"), []byte(script), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("main.sieve", filepath.Join(udir, "active")); err != nil {
			t.Fatal(err)
		}
	}
	c := config.Default().LDA
	c.MailDir = filepath.Join(e.mailRoot, "{domain}", "{user}")
	e.l = &LDA{
		Config:      c,
		StorageRoot: sieveRoot,
		Engine:      engine.New(engine.Config{SubaddressSeparators: c.SubaddressSeparators}),
		Sender:      &sender.SMTP{Addr: e.sink.Addr, TLS: "none", Timeout: 5 * time.Second},
		Log:         slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	return e
}

const testMsg = "From: Bob <bob@example.net>\nTo: alice@example.org\nSubject: Hello\nMessage-ID: <m1@example.net>\n\nHi Alice.\n"

func (e *env) deliver(req Request, msg string) (*Report, error) {
	e.t.Helper()
	if req.Recipient == "" {
		req.Recipient = "alice@example.org"
	}
	if !req.SenderSet {
		req.Sender, req.SenderSet = "bob@example.net", true
	}
	return e.l.Deliver(context.Background(), req, strings.NewReader(msg))
}

// files lists the message files of alice's Maildir as "folder/sub[:info]"
// and checks each holds msg; tmp/ must be empty.
func (e *env) files(msg string) []string {
	e.t.Helper()
	root := e.maildir("alice")
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		dir, name := filepath.Split(rel)
		sub := filepath.Base(dir)
		if sub != "new" && sub != "cur" && sub != "tmp" {
			return nil
		}
		folder := filepath.Dir(filepath.Clean(dir))
		if sub == "tmp" {
			e.t.Errorf("file left in tmp/: %s", rel)
		}
		b, _ := os.ReadFile(p)
		if msg != "" && string(b) != msg {
			e.t.Errorf("%s = %q, want %q", rel, b, msg)
		}
		s := folder + "/" + sub
		if _, info, ok := strings.Cut(name, ":2,"); ok {
			s += ":" + info
		}
		out = append(out, s)
		return nil
	})
	sort.Strings(out)
	return out
}

func TestDeliverScripts(t *testing.T) {
	for _, tc := range []struct {
		name, script, rcpt string
		orig               string
		msg                string
		want               []string // files, see env.files
		problem            bool     // ScriptProblem expected
		discarded          bool
	}{
		{name: "no script", want: []string{"./new"}},
		{name: "explicit keep", script: `keep;`, want: []string{"./new"}},
		{name: "keep and fileinto INBOX are one copy", script: `require "fileinto"; keep; fileinto "INBOX"; fileinto "inbox"; fileinto "INBOX/";`,
			want: []string{"./new"}},
		{name: "fileinto", script: `require "fileinto"; fileinto "Lists/Go";`, want: []string{".Lists.Go/new"}},
		{name: "fileinto INBOX prefix and dots are one folder", script: `require "fileinto"; fileinto "Lists/Go"; fileinto "INBOX/Lists/Go"; fileinto "inbox.Lists.Go";`,
			want: []string{".Lists.Go/new"}},
		{name: "fileinto non-ASCII", script: `require "fileinto"; fileinto "Ünïcode";`, want: []string{".&ANw-n&AO8-code/new"}},
		{name: "fileinto :copy keeps", script: `require ["fileinto", "copy"]; fileinto :copy "Archive";`, want: []string{"./new", ".Archive/new"}},
		{name: "unsafe name goes to INBOX", script: `require "fileinto"; fileinto "../../etc";`, want: []string{"./new"}},
		{name: "empty name goes to INBOX", script: `require "fileinto"; fileinto "";`, want: []string{"./new"}, problem: true},
		{name: "detail +", rcpt: "alice+lists@example.org",
			script: `require ["envelope", "subaddress", "fileinto"]; if envelope :detail "to" "lists" { fileinto "Lists"; }`,
			want:   []string{".Lists/new"}},
		{name: "detail -", rcpt: "alice-lists@example.org",
			script: `require ["envelope", "subaddress", "fileinto"]; if envelope :detail "to" "lists" { fileinto "Lists"; }`,
			want:   []string{".Lists/new"}},
		{name: "envelope to keeps the detail", rcpt: "alice+lists@example.org",
			script: `require ["envelope", "fileinto"]; if envelope :is "to" "alice+lists@example.org" { fileinto "Seen"; }`,
			want:   []string{".Seen/new"}},
		{name: "envelope to is the original recipient when given (Pigeonhole)", rcpt: "alice@example.org", orig: "<info+sales@example.org>",
			script: `require ["envelope", "subaddress", "fileinto"]; if envelope :detail "to" "sales" { fileinto "Sales"; }`,
			want:   []string{".Sales/new"}},
		{name: "header test", script: `require "fileinto"; if header :contains "subject" "hello" { fileinto "Hello"; }`,
			want: []string{".Hello/new"}},
		{name: "flags", script: `require ["imap4flags", "fileinto"]; addflag "\\Seen"; fileinto :flags ["\\Flagged", "$Work"] "F"; keep;`,
			want: []string{"./cur:S", ".F/cur:Fa"}},
		// One copy per folder carries the flags of every action naming it.
		{name: "one copy gets the flags of all its actions", script: `require ["imap4flags", "fileinto"]; keep; fileinto :flags "\\Seen" "inbox"; fileinto :flags "\\Flagged" "Lists/Go"; fileinto :flags "$Work" "INBOX.Lists.Go";`,
			want: []string{"./cur:S", ".Lists.Go/cur:Fa"}},
		{name: "discard", script: `discard;`, want: nil, discarded: true},
		{name: "syntax error", script: `if header :contains "subject" { fileinto "x" `, want: []string{"./new"}, problem: true},
		{name: "unknown extension", script: `require "vnd.nonexistent"; discard;`, want: []string{"./new"}, problem: true},
		{name: "runtime conflict", script: `require ["reject", "fileinto"]; fileinto "A"; reject "no";`, want: []string{"./new"}, problem: true},
		{name: "mbox From line stripped", msg: "From bob@example.net Mon Jan  1 00:00:00 2024\n" + testMsg, want: []string{"./new"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.script)
			msg := testMsg
			if tc.msg != "" {
				msg = tc.msg
			}
			rep, err := e.deliver(Request{Recipient: tc.rcpt, OriginalRecipient: tc.orig}, msg)
			if err != nil {
				t.Fatalf("Deliver: %v\n%s", err, e.logs)
			}
			got := e.files(testMsg)
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("files = %q, want %q\n%s", got, tc.want, e.logs)
			}
			if (rep.ScriptProblem != "") != tc.problem {
				t.Errorf("ScriptProblem = %q, want problem=%v", rep.ScriptProblem, tc.problem)
			}
			if rep.Discarded != tc.discarded {
				t.Errorf("Discarded = %v", rep.Discarded)
			}
		})
	}
}

func TestDefaultMailbox(t *testing.T) {
	e := newEnv(t, "")
	if _, err := e.deliver(Request{Mailbox: "Spam"}, testMsg); err != nil {
		t.Fatal(err)
	}
	if got := e.files(testMsg); strings.Join(got, " ") != ".Spam/new" {
		t.Errorf("files = %q", got)
	}
}

func TestAutocreateOff(t *testing.T) {
	e := newEnv(t, `require "fileinto"; fileinto "Missing";`)
	e.l.Config.Autocreate = false
	if _, err := e.deliver(Request{}, testMsg); err != nil {
		t.Fatal(err)
	}
	if got := e.files(testMsg); strings.Join(got, " ") != "./new" {
		t.Errorf("files = %q", got)
	}
	if !strings.Contains(e.logs.String(), "does not exist") {
		t.Errorf("no log line for the missing folder:\n%s", e.logs)
	}
}

func TestSubscriptionWritten(t *testing.T) {
	e := newEnv(t, `require "fileinto"; fileinto "Lists/Go";`)
	if _, err := e.deliver(Request{}, testMsg); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(e.maildir("alice"), "subscriptions"))
	if string(b) != "V\t2\n\nLists\tGo\n" {
		t.Errorf("subscriptions = %q", b)
	}
}

func TestUnreadableScript(t *testing.T) {
	e := newEnv(t, "keep;")
	// A directory in place of the script: unreadable as a file.
	p := filepath.Join(e.l.StorageRoot, "example.org", "alice", "main.sieve")
	os.Remove(p)
	os.Mkdir(p, 0o700)
	rep, err := e.deliver(Request{}, testMsg)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.files(testMsg); strings.Join(got, " ") != "./new" || rep.ScriptProblem == "" {
		t.Errorf("files = %q, problem %q", got, rep.ScriptProblem)
	}
}

func TestLookup(t *testing.T) {
	e := newEnv(t, "")
	os.MkdirAll(e.maildir("mary-jane"), 0o700)
	for _, tc := range []struct {
		addr, user, detail string
		code               int
	}{
		{"alice@example.org", "alice", "", 0},
		{"ALICE@Example.Org", "alice", "", 0},
		{"alice+x@example.org", "alice", "x", 0},
		{"alice-x-y@example.org", "alice", "x-y", 0},
		{"mary-jane@example.org", "mary-jane", "", 0},
		{"mary-jane+news@example.org", "mary-jane", "news", 0},
		{"bob@example.org", "", "", ExitNoUser},
		{"alice@example.net", "", "", ExitNoUser},
		{"../example.org/alice@example.org", "", "", ExitNoUser},
		{"alice@..", "", "", ExitNoUser},
		{"", "", "", ExitUsage},
		{"alice", "", "", ExitUsage}, // no default_domain
	} {
		r, err := e.l.Lookup(tc.addr)
		if code := ExitCode(err); code != tc.code {
			t.Errorf("Lookup(%q): exit %d (%v), want %d", tc.addr, code, err, tc.code)
			continue
		}
		if err == nil && (r.User != tc.user || r.Detail != tc.detail) {
			t.Errorf("Lookup(%q) = %+v, want user %q detail %q", tc.addr, r, tc.user, tc.detail)
		}
	}
}

// A missing mail store (say, an unmounted /var/vmail) is a temporary
// failure, not an unknown user: exit 67 would bounce every message.
func TestMailStoreMissing(t *testing.T) {
	e := newEnv(t, "")
	vmail := filepath.Join(t.TempDir(), "vmail")
	e.l.Config.MailDir = filepath.Join(vmail, "{domain}", "{user}")
	if _, err := e.l.Lookup("alice@example.org"); ExitCode(err) != ExitTempFail {
		t.Errorf("missing mail store: %v, want exit 75", err)
	}
	if err := os.Mkdir(vmail, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := e.l.Lookup("alice@example.org"); ExitCode(err) != ExitNoUser {
		t.Errorf("mail store present, no Maildir: %v, want exit 67", err)
	}
}

func TestUsersFile(t *testing.T) {
	e := newEnv(t, "")
	uf := filepath.Join(t.TempDir(), "users")
	os.WriteFile(uf, []byte("# comment\ncarol@example.org\n  Dave@Example.org  # trailing\n"), 0o600)
	e.l.Config.UsersFile = uf
	for addr, code := range map[string]int{"carol@example.org": 0, "dave+x@example.org": 0, "alice@example.org": ExitNoUser} {
		if _, err := e.l.Lookup(addr); ExitCode(err) != code {
			t.Errorf("Lookup(%q) = %v, want exit %d", addr, err, code)
		}
	}
	// A listed user's Maildir is created on first delivery.
	if _, err := e.deliver(Request{Recipient: "carol@example.org"}, testMsg); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.maildir("carol"), "new")); len(ents) != 1 {
		t.Errorf("carol/new has %d files", len(ents))
	}
	e.l.Config.UsersFile = filepath.Join(t.TempDir(), "missing")
	if _, err := e.l.Lookup("carol@example.org"); ExitCode(err) != ExitTempFail {
		t.Errorf("missing users file: %v, want exit 75", err)
	}
}

func TestRedirect(t *testing.T) {
	e := newEnv(t, `redirect "carol@example.com";`)
	rep, err := e.deliver(Request{}, testMsg)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.files(""); len(got) != 0 {
		t.Errorf("redirect without :copy stored %q", got)
	}
	m := e.sink.Mails()
	if len(m) != 1 || m[0].From != "bob@example.net" || strings.Join(m[0].To, ",") != "carol@example.com" {
		t.Fatalf("sent %+v", m)
	}
	want := strings.ReplaceAll("X-Sieve-Redirected-By: alice@example.org\n"+testMsg, "\n", "\r\n")
	if m[0].Data != want {
		t.Errorf("redirected data = %q, want %q", m[0].Data, want)
	}
	if len(rep.Redirected) != 1 {
		t.Errorf("report %+v", rep)
	}
}

func TestRedirectCopyAndFrom(t *testing.T) {
	e := newEnv(t, `require "copy"; redirect :copy "carol@example.com";`)
	e.l.Config.RedirectFrom = "recipient"
	if _, err := e.deliver(Request{}, testMsg); err != nil {
		t.Fatal(err)
	}
	if got := e.files(testMsg); strings.Join(got, " ") != "./new" {
		t.Errorf("files = %q", got)
	}
	if m := e.sink.Mails(); len(m) != 1 || m[0].From != "alice@example.org" {
		t.Errorf("sent %+v", m)
	}
}

func TestRedirectOfBounceKeepsNullSender(t *testing.T) {
	e := newEnv(t, `redirect "carol@example.com";`)
	if _, err := e.deliver(Request{Sender: "MAILER-DAEMON", SenderSet: true}, testMsg); err != nil {
		t.Fatal(err)
	}
	if m := e.sink.Mails(); len(m) != 1 || m[0].From != "" {
		t.Errorf("sent %+v, want one redirect with the null sender", m)
	}
}

func TestRedirectLoopsAndFailures(t *testing.T) {
	for _, tc := range []struct {
		name, script, msg, reject string
	}{
		{"already redirected by us", `redirect "carol@example.com";`, "X-Sieve-Redirected-By: alice@example.org\n" + testMsg, ""},
		{"too many hops", `redirect "carol@example.com";`, strings.Repeat("X-Sieve-Redirected-By: x@example.com\n", 5) + testMsg, ""},
		{"already delivered to the target", `redirect "carol@example.com";`, "Delivered-To: carol@example.com\n" + testMsg, ""},
		{"to the recipient itself", `redirect "alice@example.org";`, testMsg, ""},
		{"relay refuses", `redirect "carol@example.com";`, testMsg, "carol@example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.script)
			e.sink.Reject = tc.reject
			if _, err := e.deliver(Request{}, tc.msg); err != nil {
				t.Fatal(err)
			}
			if m := e.sink.Mails(); len(m) != 0 {
				t.Errorf("sent %+v", m)
			}
			if got := e.files(tc.msg); strings.Join(got, " ") != "./new" {
				t.Errorf("files = %q, want the message kept in INBOX\n%s", got, e.logs)
			}
		})
	}
}

func TestReject(t *testing.T) {
	const script = `require "reject"; reject "I do not want this.";`
	t.Run("notice", func(t *testing.T) {
		e := newEnv(t, script)
		rep, err := e.deliver(Request{OriginalRecipient: "alias@example.org"}, testMsg)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.files(""); len(got) != 0 {
			t.Errorf("rejected message stored: %q", got)
		}
		m := e.sink.Mails()
		if len(m) != 1 || m[0].From != "" || strings.Join(m[0].To, ",") != "bob@example.net" {
			t.Fatalf("sent %+v", m)
		}
		for _, want := range []string{
			"multipart/report; report-type=disposition-notification",
			"Auto-Submitted: auto-replied (rejected)",
			"I do not want this.",
			"Disposition: automatic-action/MDN-sent-automatically; deleted",
			"Final-Recipient: rfc822; alice@example.org",
			"Original-Recipient: rfc822; alias@example.org",
			"Original-Message-ID: <m1@example.net>",
			"Content-Type: message/rfc822\r\n\r\nFrom: Bob <bob@example.net>",
		} {
			if !strings.Contains(m[0].Data, want) {
				t.Errorf("notice lacks %q:\n%s", want, m[0].Data)
			}
		}
		if rep.Rejected == "" {
			t.Error("report does not say rejected")
		}
	})
	t.Run("null sender gets nothing", func(t *testing.T) {
		e := newEnv(t, script)
		if _, err := e.deliver(Request{Sender: "", SenderSet: true}, testMsg); err != nil {
			t.Fatal(err)
		}
		if m := e.sink.Mails(); len(m) != 0 {
			t.Errorf("notice sent to the null sender: %+v", m)
		}
	})
	// Postfix's pipe(8) passes a bounce's sender as "MAILER-DAEMON"
	// unless null_sender= is set.
	t.Run("MAILER-DAEMON from Postfix pipe gets nothing", func(t *testing.T) {
		e := newEnv(t, script)
		if _, err := e.deliver(Request{Sender: "MAILER-DAEMON", SenderSet: true}, testMsg); err != nil {
			t.Fatal(err)
		}
		if m := e.sink.Mails(); len(m) != 0 {
			t.Errorf("notice sent for a bounce: %+v", m)
		}
		// Like any rejection for the null sender: nothing stored (a failed
		// notice would have kept it in INBOX).
		if got := e.files(""); len(got) != 0 {
			t.Errorf("stored %q, want no notice attempt and nothing stored", got)
		}
	})
	t.Run("by exit status", func(t *testing.T) {
		e := newEnv(t, script)
		_, err := e.deliver(Request{RejectByExit: true}, testMsg)
		var le *Error
		if ExitCode(err) != ExitNoPerm || !errors.As(err, &le) || le.Reason != "I do not want this." {
			t.Fatalf("err = %v, want exit 77 with the reason", err)
		}
		if got := e.files(""); len(got) != 0 || len(e.sink.Mails()) != 0 {
			t.Errorf("stored %q / sent %d", got, len(e.sink.Mails()))
		}
	})
	t.Run("notice fails", func(t *testing.T) {
		e := newEnv(t, script)
		e.sink.Reject = "bob@example.net"
		if _, err := e.deliver(Request{}, testMsg); err != nil {
			t.Fatal(err)
		}
		if got := e.files(testMsg); strings.Join(got, " ") != "./new" {
			t.Errorf("files = %q, want INBOX when the notice cannot be sent", got)
		}
	})
}

func TestReturnPathSender(t *testing.T) {
	e := newEnv(t, `require "reject"; reject "no";`)
	_, err := e.l.Deliver(context.Background(), Request{Recipient: "alice@example.org"},
		strings.NewReader("Return-Path: <rp@example.net>\n"+testMsg))
	if err != nil {
		t.Fatal(err)
	}
	if m := e.sink.Mails(); len(m) != 1 || m[0].To[0] != "rp@example.net" {
		t.Errorf("sent %+v, want the notice to the Return-Path", m)
	}
}

func TestUnknownUserStoresNothing(t *testing.T) {
	e := newEnv(t, "")
	_, err := e.deliver(Request{Recipient: "bob@example.org"}, testMsg)
	if ExitCode(err) != ExitNoUser {
		t.Fatalf("err = %v, want 67", err)
	}
	if _, err := os.Stat(e.maildir("bob")); !os.IsNotExist(err) {
		t.Errorf("a Maildir was created for an unknown user: %v", err)
	}
}

func TestContextDeadline(t *testing.T) {
	e := newEnv(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.l.Deliver(ctx, Request{Recipient: "alice@example.org"}, strings.NewReader(testMsg))
	if ExitCode(err) != ExitTempFail {
		t.Fatalf("err = %v, want 75", err)
	}
	if got := e.files(""); len(got) != 0 {
		t.Errorf("files = %q", got)
	}
}

// Started as root, sieve-lda leaves mail owned by the Maildir's owner, so
// the IMAP server (running as that user) can read it.
func TestRootDeliveryKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	const uid, gid = 65534, 65534
	e := newEnv(t, `require ["fileinto", "imap4flags"]; fileinto :flags "$Work" "Lists/Go"; keep;`)
	if err := os.Chown(e.maildir("alice"), uid, gid); err != nil {
		t.Fatal(err)
	}
	if _, err := e.deliver(Request{}, testMsg); err != nil {
		t.Fatal(err)
	}
	n := 0
	filepath.WalkDir(e.maildir("alice"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, _ := d.Info()
		st := info.Sys().(*syscall.Stat_t)
		if st.Uid != uid || st.Gid != gid {
			t.Errorf("%s owned by %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
		}
		n++
		return nil
	})
	if n < 12 { // root, tmp/new/cur, .Lists.Go and its 3 dirs + marker, 2 messages, keywords, subscriptions
		t.Errorf("walked only %d entries", n)
	}
}

// As root, a users_file user of a domain without a directory yet: the
// domain directory and the Maildir both get the mail root's owner, so the
// IMAP server (running as that user) can read the mail.
func TestRootDeliveryNewDomainKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	const uid, gid = 65534, 65534
	e := newEnv(t, "")
	if err := os.Chown(e.mailRoot, uid, gid); err != nil {
		t.Fatal(err)
	}
	uf := filepath.Join(t.TempDir(), "users")
	os.WriteFile(uf, []byte("carol@new.example\n"), 0o600)
	e.l.Config.UsersFile = uf
	if _, err := e.deliver(Request{Recipient: "carol@new.example"}, testMsg); err != nil {
		t.Fatal(err)
	}
	n := 0
	filepath.WalkDir(filepath.Join(e.mailRoot, "new.example"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, _ := d.Info()
		st := info.Sys().(*syscall.Stat_t)
		if st.Uid != uid || st.Gid != gid {
			t.Errorf("%s owned by %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
		}
		n++
		return nil
	})
	if n != 6 { // domain, Maildir, tmp/new/cur, the message
		t.Errorf("walked %d entries, want 6", n)
	}
}
