package interop

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"mime"
	"mime/quotedprintable"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"
)

// Vacation auto-replies end to end: sieve-lda delivers with a vacation
// script while a real SMTP server (go-smtp, in this process) receives the
// replies; and side by side with Pigeonhole, whose dovecot-lda (not
// sieve-test, which skips the recipient check) is the reference, both
// sending through a sendmail_path that captures the reply.

const (
	vacUser   = "alice"
	vacDomain = "example.org"
	vacAddr   = vacUser + "@" + vacDomain
	vacSender = "bob@example.com"
)

// ---------------------------------------------------------------------------
// A sieve-lda installation in a temporary directory.

type vacSite struct {
	dir, conf, sieveRoot, mailRoot string
	lda, ctl                       string
}

// newVacSite writes a config whose [sender] and [vacation] sections are
// given by the caller, creates alice's Maildir (so she is a known user)
// and installs script as her active script.
func newVacSite(t *testing.T, senderTOML, vacationTOML, script string) *vacSite {
	t.Helper()
	s := &vacSite{dir: t.TempDir(), lda: binary(t, "sieve-lda"), ctl: binary(t, "sievectl")}
	s.sieveRoot = filepath.Join(s.dir, "sieve")
	s.mailRoot = filepath.Join(s.dir, "vmail")
	mustMkdir(t, filepath.Join(s.mailRoot, vacDomain, vacUser))
	userDir := filepath.Join(s.sieveRoot, vacDomain, vacUser)
	mustMkdir(t, userDir)
	mustWrite(t, filepath.Join(userDir, "vacation.sieve"), script)
	if err := os.Symlink("vacation.sieve", filepath.Join(userDir, "active")); err != nil {
		t.Fatal(err)
	}
	s.conf = filepath.Join(s.dir, "sieved.toml")
	mustWrite(t, s.conf, fmt.Sprintf(`[storage]
root = %q

[lda]
mail_dir = "%s/{domain}/{user}"
# The tests read sieve-lda's log (skip rules, send failures) from stderr;
# the default (syslog) drops it when no syslog daemon listens.
log_file = "stderr"

[sender]
%s

[vacation]
%s
`, s.sieveRoot, s.mailRoot, senderTOML, vacationTOML))
	return s
}

// deliver runs one sieve-lda and returns its exit code and stderr.
func (s *vacSite) deliver(t *testing.T, from, to, orig, msg string) (int, string) {
	t.Helper()
	cmd, stderr := s.command(from, to, orig, msg)
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("sieve-lda: %v", err)
	}
	return code, stderr.String()
}

func (s *vacSite) command(from, to, orig, msg string) (*exec.Cmd, *bytes.Buffer) {
	args := []string{"-c", s.conf, "-d", to, "-f", from}
	if orig != "" {
		args = append(args, "-a", orig)
	}
	cmd := exec.Command(s.lda, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Stdin = strings.NewReader(strings.ReplaceAll(msg, "\n", "\r\n"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	return cmd, &stderr
}

// inboxCount counts the messages sieve-lda stored in alice's INBOX.
func (s *vacSite) inboxCount(t *testing.T) int {
	t.Helper()
	n := 0
	for _, sub := range []string{"new", "cur"} {
		es, err := os.ReadDir(filepath.Join(s.mailRoot, vacDomain, vacUser, sub))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		n += len(es)
	}
	return n
}

func (s *vacSite) sievectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(s.ctl, append([]string{"vacation", "--config", s.conf}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("sievectl vacation %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// ---------------------------------------------------------------------------
// An SMTP server that records what it receives.

type vacMail struct {
	from string
	to   []string
	data []byte
}

type vacSMTP struct {
	mu     sync.Mutex
	mails  []vacMail
	reject bool // answer DATA with 451
	port   int
}

func (b *vacSMTP) NewSession(*smtp.Conn) (smtp.Session, error) { return &vacSession{b: b}, nil }

type vacSession struct {
	b    *vacSMTP
	from string
	to   []string
}

func (s *vacSession) Reset()        { s.from, s.to = "", nil }
func (s *vacSession) Logout() error { return nil }
func (s *vacSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *vacSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *vacSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.b.reject {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	s.b.mails = append(s.b.mails, vacMail{from: s.from, to: append([]string(nil), s.to...), data: b})
	return nil
}

func (b *vacSMTP) received() []vacMail {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]vacMail(nil), b.mails...)
}

func (b *vacSMTP) setReject(v bool) {
	b.mu.Lock()
	b.reject = v
	b.mu.Unlock()
}

func startVacSMTP(t *testing.T) *vacSMTP {
	t.Helper()
	b := &vacSMTP{port: freePort(t)}
	srv := smtp.NewServer(b)
	srv.Addr = "127.0.0.1:" + strconv.Itoa(b.port)
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0) // clients that hang up without QUIT
	go srv.ListenAndServe()
	t.Cleanup(func() { srv.Close() })
	waitPort(t, b.port, 5*time.Second)
	return b
}

func (b *vacSMTP) senderTOML() string {
	return fmt.Sprintf("method = \"smtp\"\nsmtp_addr = \"127.0.0.1:%d\"\nsmtp_tls = \"none\"\nsmtp_helo = \"localhost\"\ntimeout_seconds = 10", b.port)
}

func vacMessage(id, subject string) string {
	return fmt.Sprintf("From: Bob Sender <%s>\nTo: Alice <%s>\nSubject: %s\nMessage-ID: <%s@example.com>\nDate: Tue, 24 Nov 2026 10:00:00 +0000\n\nHello Alice.\n",
		vacSender, vacAddr, subject, id)
}

func parseVacReply(t *testing.T, data []byte) (textproto.Header, string) {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(data))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		t.Fatalf("reply header: %v\n%s", err, data)
	}
	body, _ := io.ReadAll(br)
	return h, string(body)
}

// ---------------------------------------------------------------------------
// End to end with a real SMTP server.

func TestVacationEndToEnd(t *testing.T) {
	srv := startVacSMTP(t)
	site := newVacSite(t, srv.senderTOML(), `min_period = "1s"`, `require ["vacation-seconds"];
vacation :seconds 2 :subject "Out of office" :from "Alice Example <alice@example.org>" "I am away until Monday.";
`)

	// 1. The first message gets a reply, and is delivered.
	if code, stderr := site.deliver(t, vacSender, vacAddr, "", vacMessage("m1", "Lunch?")); code != 0 {
		t.Fatalf("sieve-lda exit %d: %s", code, stderr)
	}
	mails := srv.received()
	if len(mails) != 1 {
		t.Fatalf("%d replies after the first message, want 1", len(mails))
	}
	m := mails[0]
	if m.from != "" {
		t.Errorf("MAIL FROM <%s>, want the null sender <>", m.from)
	}
	if !slices.Equal(m.to, []string{vacSender}) {
		t.Errorf("RCPT TO %v, want [%s]", m.to, vacSender)
	}
	h, body := parseVacReply(t, m.data)
	for k, want := range map[string]string{
		"From":                     `"Alice Example" <alice@example.org>`,
		"To":                       `"Bob Sender" <bob@example.com>`,
		"Subject":                  "Out of office",
		"In-Reply-To":              "<m1@example.com>",
		"References":               "<m1@example.com>",
		"Auto-Submitted":           "auto-replied (vacation)",
		"Precedence":               "bulk",
		"X-Auto-Response-Suppress": "All",
		"MIME-Version":             "1.0",
		"Content-Type":             "text/plain; charset=utf-8",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("reply %s = %q, want %q", k, got, want)
		}
	}
	if id := h.Get("Message-Id"); !strings.HasSuffix(id, "@example.org>") {
		t.Errorf("Message-ID %q is not on the user's domain", id)
	}
	if _, err := time.Parse("Mon, 02 Jan 2006 15:04:05 -0700", h.Get("Date")); err != nil {
		t.Errorf("Date %q: %v", h.Get("Date"), err)
	}
	if strings.TrimSpace(body) != "I am away until Monday." {
		t.Errorf("body %q", body)
	}
	if n := site.inboxCount(t); n != 1 {
		t.Errorf("%d messages in INBOX, want 1 (vacation keeps the implicit keep)", n)
	}
	if out := site.sievectl(t, "list", vacAddr); !strings.Contains(out, vacSender) {
		t.Errorf("sievectl vacation list does not show %s:\n%s", vacSender, out)
	}

	// 2. A second message within the period gets no reply.
	if code, stderr := site.deliver(t, vacSender, vacAddr, "", vacMessage("m2", "Lunch, again?")); code != 0 {
		t.Fatalf("sieve-lda exit %d: %s", code, stderr)
	}
	if n := len(srv.received()); n != 1 {
		t.Fatalf("%d replies after a second message within the period, want 1", n)
	}

	// 3. After the period it gets one again.
	time.Sleep(2100 * time.Millisecond)
	if code, stderr := site.deliver(t, vacSender, vacAddr, "", vacMessage("m3", "Still away?")); code != 0 {
		t.Fatalf("sieve-lda exit %d: %s", code, stderr)
	}
	if n := len(srv.received()); n != 2 {
		t.Fatalf("%d replies after the period expired, want 2", n)
	}

	// 4. forget resets the memory: the next message is answered at once.
	if out := site.sievectl(t, "forget", vacAddr, vacSender); !strings.Contains(out, "forgot 1") {
		t.Errorf("sievectl vacation forget: %s", out)
	}
	site.deliver(t, vacSender, vacAddr, "", vacMessage("m4", "Hello?"))
	if n := len(srv.received()); n != 3 {
		t.Fatalf("%d replies after forget, want 3", n)
	}
	if n := site.inboxCount(t); n != 4 {
		t.Errorf("%d messages in INBOX, want 4", n)
	}
}

// A failed send never changes the delivery, and the sender is not
// remembered: the next message is answered.
func TestVacationSendFailure(t *testing.T) {
	srv := startVacSMTP(t)
	site := newVacSite(t, srv.senderTOML(), "", "require \"vacation\";\nvacation \"away\";\n")
	srv.setReject(true)
	code, stderr := site.deliver(t, vacSender, vacAddr, "", vacMessage("f1", "one"))
	if code != 0 {
		t.Fatalf("a failed vacation send changed the delivery: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "try again later") {
		t.Errorf("the failed send is not logged:\n%s", stderr)
	}
	if n := site.inboxCount(t); n != 1 {
		t.Fatalf("%d messages in INBOX after a failed send, want 1", n)
	}
	srv.setReject(false)
	site.deliver(t, vacSender, vacAddr, "", vacMessage("f2", "two"))
	if n := len(srv.received()); n != 1 {
		t.Fatalf("%d replies after the failure was over, want 1 (a failed send must not be remembered)", n)
	}
}

// send_from_recipient: MAIL FROM is the user's address instead of <>.
func TestVacationSendFromRecipient(t *testing.T) {
	srv := startVacSMTP(t)
	site := newVacSite(t, srv.senderTOML(), "send_from_recipient = true", "require \"vacation\";\nvacation \"away\";\n")
	site.deliver(t, vacSender, "alice+work@example.org", "", vacMessage("s1", "hi"))
	mails := srv.received()
	if len(mails) != 1 {
		t.Fatalf("%d replies, want 1", len(mails))
	}
	if mails[0].from != vacAddr {
		t.Errorf("MAIL FROM <%s>, want <%s>", mails[0].from, vacAddr)
	}
}

// Twenty sieve-lda processes delivering messages of one sender to one user
// at the same time send exactly one reply, and deliver all twenty.
func TestVacationParallelDeliveries(t *testing.T) {
	srv := startVacSMTP(t)
	site := newVacSite(t, srv.senderTOML(), "", "require \"vacation\";\nvacation \"away\";\n")
	const n = 20
	cmds := make([]*exec.Cmd, n)
	errs := make([]*bytes.Buffer, n)
	for i := range cmds {
		cmds[i], errs[i] = site.command(vacSender, vacAddr, "", vacMessage(fmt.Sprintf("p%d", i), "parallel"))
	}
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("sieve-lda %d: %v: %s", i, err, errs[i])
		}
	}
	if got := len(srv.received()); got != 1 {
		t.Errorf("%d replies from %d parallel deliveries, want exactly 1", got, n)
	}
	if got := site.inboxCount(t); got != n {
		t.Errorf("%d messages in INBOX, want %d", got, n)
	}
}

// ---------------------------------------------------------------------------
// Side by side with Pigeonhole (dovecot-lda) on testdata/conformance/vacation.

const (
	vacCaseDir      = "../testdata/conformance/vacation"
	vacKnownDiffs   = "known_differences.txt"
	toolDovecotLDA  = "dovecot-lda"
	toolSieveLDA    = "sieve-lda"
	vacCaseParallel = 4
)

type vacCase struct {
	name, desc, from, to, orig, script, message string
	deliveries                                  int // the message is delivered this many times
	options                                     []string
	expect                                      []string
}

// vacOptions maps a case option to the settings of both tools.
var vacOptions = map[string]struct{ sieved, pigeonhole string }{
	"send-from-recipient":    {"send_from_recipient = true", "sieve_vacation_send_from_recipient = yes"},
	"use-original-recipient": {"use_original_recipient = true", "sieve_vacation_use_original_recipient = yes"},
}

// parseVacCase reads the format of testdata/conformance/README (header
// lines "# description", "from:", "to:", plus "original-to:" and
// "deliveries: N" (deliver the message N times; all replies count) and
// "options: ..." (settings of both tools, see vacOptions); sections
// "-- script --", "-- message --", "-- expect --"). The expectation lists
// "no-reply" and optionally "rule <name>" (the rule sieve-lda must log;
// Pigeonhole's logs are not compared), or "reply" and lines the normalized
// reply must contain:
// "envelope-from <addr>", "envelope-to addr", "header Name: value" (From
// and To parsed, Subject decoded) and "body text" (whitespace collapsed).
func parseVacCase(name, text string) (vacCase, error) {
	c := vacCase{name: name, from: vacSender, to: vacAddr, deliveries: 1}
	sections := map[string]*strings.Builder{}
	var cur *strings.Builder
	for _, line := range strings.SplitAfter(text, "\n") {
		trim := strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(trim, "-- ") && strings.HasSuffix(trim, " --") && len(trim) > 6 {
			cur = &strings.Builder{}
			sections[strings.TrimSpace(trim[3:len(trim)-3])] = cur
			continue
		}
		if cur != nil {
			cur.WriteString(line)
			continue
		}
		k, v, _ := strings.Cut(trim, ":")
		v = strings.TrimSpace(v)
		switch {
		case trim == "":
		case strings.HasPrefix(trim, "#"):
			c.desc += strings.TrimSpace(strings.TrimPrefix(trim, "#")) + " "
		case k == "from":
			c.from = v
		case k == "to":
			c.to = v
		case k == "original-to":
			c.orig = v
		case k == "options":
			for _, o := range strings.Fields(v) {
				if _, ok := vacOptions[o]; !ok {
					return c, fmt.Errorf("%s: unknown option %q", name, o)
				}
				c.options = append(c.options, o)
			}
		case k == "deliveries":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 5 {
				return c, fmt.Errorf("%s: deliveries %q: want 1 to 5", name, v)
			}
			c.deliveries = n
		default:
			return c, fmt.Errorf("%s: unexpected header line %q", name, trim)
		}
	}
	for _, s := range []string{"script", "message", "expect"} {
		if sections[s] == nil {
			return c, fmt.Errorf("%s: no %s section", name, s)
		}
	}
	c.script, c.message = sections["script"].String(), sections["message"].String()
	for _, l := range strings.Split(sections["expect"].String(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			c.expect = append(c.expect, l)
		}
	}
	switch {
	case len(c.expect) == 0:
		return c, fmt.Errorf("%s: empty expectation", name)
	case c.expect[0] == "no-reply" && (len(c.expect) > 2 || len(c.expect) == 2 && !strings.HasPrefix(c.expect[1], "rule ")):
		return c, fmt.Errorf("%s: no-reply takes only a \"rule <name>\" line", name)
	case c.expect[0] != "no-reply" && c.expect[0] != "reply":
		return c, fmt.Errorf("%s: expectation must start with reply or no-reply", name)
	}
	return c, nil
}

func loadVacCases(t *testing.T) []vacCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(vacCaseDir, "*.case"))
	if err != nil {
		t.Fatal(err)
	}
	var out []vacCase
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseVacCase(strings.TrimSuffix(filepath.Base(f), ".case"), string(b))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// loadVacKnownDiffs maps case -> tool -> reason.
func loadVacKnownDiffs(t *testing.T, cases []vacCase) map[string]map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vacCaseDir, vacKnownDiffs))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, c := range cases {
		names[c.name] = true
	}
	kd := map[string]map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 || (f[1] != toolDovecotLDA && f[1] != toolSieveLDA) || !names[f[0]] {
			t.Fatalf("%s:%d: want \"<case> dovecot-lda|sieve-lda <reason>\" naming a case, got %q", vacKnownDiffs, i+1, line)
		}
		if kd[f[0]] == nil {
			kd[f[0]] = map[string]string{}
		}
		kd[f[0]][f[1]] = strings.Join(f[2:], " ")
	}
	return kd
}

// TestVacationCorpus checks the corpus itself (no peer needed).
func TestVacationCorpus(t *testing.T) {
	cases := loadVacCases(t)
	if len(cases) < 30 {
		t.Errorf("%d vacation cases, want at least 30", len(cases))
	}
	replies, silent := 0, 0
	for _, c := range cases {
		if c.expect[0] == "reply" {
			replies++
		} else {
			silent++
		}
	}
	if replies < 10 || silent < 10 {
		t.Errorf("%d reply and %d no-reply cases; want at least 10 of each", replies, silent)
	}
	loadVacKnownDiffs(t, cases)
}

// captureScript is a sendmail replacement that stores its arguments and
// the message in numbered files next to itself.
const captureScript = `#!/bin/sh
d=$(dirname "$0")/out
f=$(mktemp "$d/reply.XXXXXX")
printf '%s\n' "$@" > "$f.args"
cat > "$f.msg"
`

// captured reads the replies a capture script stored in dir/out.
func captured(t *testing.T, dir string) []vacMail {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "out", "*.args"))
	var out []vacMail
	for _, f := range files {
		args, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(strings.TrimSuffix(f, ".args") + ".msg")
		if err != nil {
			t.Fatal(err)
		}
		m := vacMail{data: data}
		a := strings.Split(strings.TrimRight(string(args), "\n"), "\n")
		for i := 0; i < len(a); i++ {
			switch {
			case a[i] == "-f" && i+1 < len(a):
				m.from = strings.Trim(a[i+1], "<>")
				i++
			case a[i] == "--":
				m.to = append(m.to, a[i+1:]...)
				i = len(a)
			}
		}
		out = append(out, m)
	}
	return out
}

var vacCompared = []string{"From", "To", "Subject", "In-Reply-To", "References", "Auto-Submitted",
	"Precedence", "X-Auto-Response-Suppress", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"}

// normalizeReplies turns the captured replies into comparable lines.
func normalizeReplies(t *testing.T, mails []vacMail) []string {
	t.Helper()
	if len(mails) == 0 {
		return []string{"no-reply"}
	}
	if len(mails) > 1 {
		return []string{fmt.Sprintf("%d replies", len(mails))}
	}
	m := mails[0]
	out := []string{"reply", "envelope-from <" + m.from + ">"}
	for _, to := range m.to {
		out = append(out, "envelope-to "+to)
	}
	h, body := parseVacReply(t, m.data)
	dec := mime.WordDecoder{}
	for _, k := range vacCompared {
		if !h.Has(k) {
			continue
		}
		v := strings.Join(strings.Fields(h.Get(k)), " ")
		switch k {
		case "From", "To":
			if l, err := gomail.ParseAddressList(v); err == nil {
				var parts []string
				for _, a := range l {
					if a.Name != "" {
						parts = append(parts, a.Name+" <"+a.Address+">")
					} else {
						parts = append(parts, "<"+a.Address+">")
					}
				}
				v = strings.Join(parts, ", ")
			}
		case "Subject":
			if d, err := dec.DecodeHeader(v); err == nil {
				v = d
			}
		}
		out = append(out, "header "+k+": "+v)
	}
	if strings.EqualFold(h.Get("Content-Transfer-Encoding"), "quoted-printable") {
		if b, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body))); err == nil {
			body = string(b)
		}
	}
	out = append(out, "body "+strings.Join(strings.Fields(body), " "))
	sort.Strings(out)
	return out
}

// matchesExpectation: no-reply must be exact (a "rule" line only for
// sieve-lda); a reply must contain every expected line.
func matchesExpectation(tool string, got, expect []string) bool {
	if expect[0] == "no-reply" {
		if tool == toolDovecotLDA {
			return slices.Equal(got, expect[:1])
		}
		return slices.Equal(got, expect)
	}
	for _, e := range expect {
		if !slices.Contains(got, e) {
			return false
		}
	}
	return true
}

// vacDovecot runs dovecot-lda with a private configuration.
type vacDovecot struct {
	bin, root, conf string
	cred            *syscall.Credential
}

func newVacDovecot(t *testing.T, bin string) *vacDovecot {
	t.Helper()
	d := &vacDovecot{bin: bin, root: t.TempDir()}
	if os.Getuid() == 0 {
		// Dovecot will not run mail code as root; run it as "mail".
		u, err := user.Lookup("mail")
		if err != nil {
			t.Fatalf("no mail user for dovecot-lda: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		d.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		for p := d.root; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
			if err := os.Chmod(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	d.conf = filepath.Join(d.root, "dovecot.conf")
	mustWrite(t, d.conf, fmt.Sprintf(`base_dir = %[1]s/run
log_path = /dev/stderr
info_log_path = /dev/stderr
ssl = no
mail_location = maildir:~/Maildir
first_valid_uid = 1
first_valid_gid = 1
postmaster_address = postmaster@example.org
lda_mailbox_autocreate = yes
sendmail_path = ~/capture.sh
protocol lda {
  mail_plugins = sieve
}
plugin {
  sieve = file:~/sieve;active=~/active.sieve
  sieve_extensions = +vacation-seconds
}
`, d.root))
	mustMkdir(t, filepath.Join(d.root, "run"))
	if d.cred != nil {
		chownTree(t, d.root, int(d.cred.Uid), int(d.cred.Gid))
	}
	return d
}

func (d *vacDovecot) run(t *testing.T, c vacCase) []string {
	t.Helper()
	home := filepath.Join(d.root, c.name)
	mustMkdir(t, filepath.Join(home, "out"))
	mustWrite(t, filepath.Join(home, "active.sieve"), c.script)
	mustWrite(t, filepath.Join(home, "message.eml"), c.message)
	script := filepath.Join(home, "capture.sh")
	mustWrite(t, script, captureScript)
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	// sendmail_path "~/" is not expanded by Dovecot: point it at this home.
	conf := filepath.Join(home, "dovecot.conf")
	b, _ := os.ReadFile(d.conf)
	text := strings.Replace(string(b), "~/capture.sh", script, 1)
	for _, o := range c.options {
		text = strings.Replace(text, "plugin {\n", "plugin {\n  "+vacOptions[o].pigeonhole+"\n", 1)
	}
	mustWrite(t, conf, text)
	if d.cred != nil {
		chownTree(t, home, int(d.cred.Uid), int(d.cred.Gid))
	}
	from := c.from
	if from == "" || from == "<>" {
		from = "<>"
	}
	orig := c.orig
	if orig == "" {
		orig = c.to
	}
	for i := 0; i < c.deliveries; i++ {
		cmd := exec.Command(d.bin, "-c", conf, "-f", from, "-a", orig, "-r", c.to, "-p", filepath.Join(home, "message.eml"))
		cmd.Env = []string{"HOME=" + home, "USER=" + vacUser, "PATH=/usr/bin:/bin"}
		if d.cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: d.cred}
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("dovecot-lda: %v\n%s", err, out)
		}
	}
	return normalizeReplies(t, captured(t, home))
}

func runSieveLDACase(t *testing.T, c vacCase) []string {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "capture.sh")
	mustWrite(t, script, captureScript)
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	mustMkdir(t, filepath.Join(dir, "out"))
	var opts []string
	for _, o := range c.options {
		opts = append(opts, vacOptions[o].sieved)
	}
	site := newVacSite(t, fmt.Sprintf("method = \"sendmail\"\nsendmail_path = %q\nsendmail_args = [\"-i\"]", script),
		strings.Join(opts, "\n"), c.script)
	from := c.from
	if from == "<>" {
		from = ""
	}
	var stderr string
	for i := 0; i < c.deliveries; i++ {
		var code int
		code, stderr = site.deliver(t, from, c.to, c.orig, c.message)
		if code != 0 {
			t.Fatalf("sieve-lda exit %d: %s", code, stderr)
		}
	}
	if n := site.inboxCount(t); n == 0 && !strings.Contains(c.script, "fileinto") {
		t.Errorf("sieve-lda did not keep the message (vacation must not cancel the implicit keep)")
	}
	got := normalizeReplies(t, captured(t, dir))
	if got[0] == "no-reply" {
		// Every skip is logged at info level with its rule.
		if m := vacRuleRE.FindStringSubmatch(stderr); m != nil {
			got = append(got, "rule "+m[1])
		}
	}
	return got
}

var vacRuleRE = regexp.MustCompile(`vacation: no reply.* rule=(\S+)`)

func withoutRule(lines []string) []string {
	var out []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "rule ") {
			out = append(out, l)
		}
	}
	return out
}

func TestVacationConformance(t *testing.T) {
	bin := requirePeer(t, "/usr/lib/dovecot/dovecot-lda")
	binary(t, "sieve-lda")
	binary(t, "sievectl")
	cases := loadVacCases(t)
	kd := loadVacKnownDiffs(t, cases)
	dv := newVacDovecot(t, bin)
	sem := make(chan struct{}, vacCaseParallel)
	t.Run("cases", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				sem <- struct{}{}
				defer func() { <-sem }()
				got := map[string][]string{
					toolDovecotLDA: dv.run(t, c),
					toolSieveLDA:   runSieveLDACase(t, c),
				}
				for _, tool := range []string{toolDovecotLDA, toolSieveLDA} {
					ok := matchesExpectation(tool, got[tool], c.expect)
					reason, known := kd[c.name][tool]
					switch {
					case !ok && !known:
						t.Errorf("%s differs from the expectation (%s)\n want (subset): %q\n got: %q",
							tool, strings.TrimSpace(c.desc), c.expect, got[tool])
					case ok && known:
						t.Errorf("%s now meets the expectation: remove \"%s %s\" (%s) from %s",
							tool, c.name, tool, reason, vacKnownDiffs)
					}
				}
				// Where neither tool is listed as different, they must agree
				// on everything compared (envelope, headers, body), not only
				// on the lines the case spells out.
				if len(kd[c.name]) == 0 && !slices.Equal(got[toolDovecotLDA], withoutRule(got[toolSieveLDA])) {
					t.Errorf("dovecot-lda and sieve-lda disagree\n dovecot-lda: %q\n sieve-lda:   %q",
						got[toolDovecotLDA], got[toolSieveLDA])
				}
			})
		}
	})
}

// ---------------------------------------------------------------------------
// sieved validates vacation scripts (CHECKSCRIPT/PUTSCRIPT, RFC 5804).

// msRaw is a minimal ManageSieve client for the responses the test reads.
type msRaw struct {
	t    *testing.T
	r    *bufio.Reader
	w    io.Writer
	last string // the final OK/NO/BYE response, literal inlined
}

// response reads lines up to the final OK/NO/BYE line and returns that
// line with any literal it carries inlined.
func (c *msRaw) response() string {
	c.t.Helper()
	var all strings.Builder
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read: %v (so far %q)", err, all.String())
		}
		line = strings.TrimRight(line, "\r\n")
		if i := strings.LastIndexByte(line, '{'); i >= 0 && strings.HasSuffix(line, "}") {
			if n, err := strconv.Atoi(strings.TrimSuffix(line[i+1:len(line)-1], "+")); err == nil {
				buf := make([]byte, n)
				if _, err := io.ReadFull(c.r, buf); err != nil {
					c.t.Fatal(err)
				}
				rest, _ := c.r.ReadString('\n')
				line = line[:i] + string(buf) + strings.TrimRight(rest, "\r\n")
			}
		}
		all.WriteString(line + "\n")
		for _, p := range []string{"OK", "NO", "BYE"} {
			if line == p || strings.HasPrefix(line, p+" ") {
				c.last = line
				return all.String()
			}
		}
	}
}

func (c *msRaw) cmd(format string, args ...any) string {
	c.t.Helper()
	fmt.Fprintf(c.w, format+"\r\n", args...)
	return c.response()
}

func TestVacationManageSieve(t *testing.T) {
	bin := binary(t, "sieved")
	dir := t.TempDir()
	root := filepath.Join(dir, "sieve")
	mustMkdir(t, root)
	passwd := filepath.Join(dir, "passwd")
	mustWrite(t, passwd, "alice@example.org:{PLAIN}secret\n")
	port := freePort(t)
	cmd := exec.Command(bin, "-listen", "127.0.0.1:"+strconv.Itoa(port), "-sieve-root", root,
		"-users", passwd, "-allow-plaintext")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	startProcess(t, cmd)
	waitPort(t, port, 15*time.Second)

	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := &msRaw{t: t, r: bufio.NewReader(conn), w: conn}
	greeting := c.response()
	var sieveCap string
	for _, l := range strings.Split(greeting, "\n") {
		if strings.HasPrefix(l, `"SIEVE" `) {
			sieveCap = " " + strings.Trim(strings.TrimPrefix(l, `"SIEVE" `), `"`) + " "
		}
	}
	for _, ext := range []string{"vacation", "vacation-seconds"} {
		if !strings.Contains(sieveCap, " "+ext+" ") {
			t.Errorf("SIEVE capability %q lacks %s", sieveCap, ext)
		}
	}
	auth := base64Std("\x00alice@example.org\x00secret")
	if c.cmd(`AUTHENTICATE "PLAIN" "%s"`, auth); !strings.HasPrefix(c.last, "OK") {
		t.Fatalf("AUTHENTICATE: %s\nsieved output:\n%s", c.last, out.String())
	}

	for _, tc := range []struct {
		name, script string
		want         string // OK, OK (WARNINGS), NO
		line         int    // the line the text must mention
	}{
		{"plain", "require \"vacation\";\nvacation :days 3 \"away\";\n", "OK", 0},
		{"days under the minimum", "require \"vacation\";\nvacation :days 0 \"away\";\n", "OK (WARNINGS)", 2},
		{"roundcube seconds", "require [\"vacation-seconds\"];\n\nvacation :seconds 3600 :subject \"Away\" \"away\";\n", "OK (WARNINGS)", 3},
		{"days with seconds", "require [\"vacation\", \"vacation-seconds\"];\nvacation :days 1 :seconds 5 \"away\";\n", "NO", 2},
		{"bad from", "require \"vacation\";\n\nvacation :from \"no address\" \"away\";\n", "NO", 3},
		{"bad addresses", "require \"vacation\";\nvacation :addresses [\"a@example.org\", \"b\"] \"away\";\n", "NO", 2},
		{"missing require", "require \"fileinto\";\nvacation \"away\";\n", "NO", 2},
		{"seconds without vacation-seconds", "require \"vacation\";\nvacation :seconds 60 \"away\";\n", "NO", 2},
		{"second vacation", "require \"vacation\";\nif true { vacation \"a\"; }\nelse {\n  vacation :handle \"b\" \"b\"; }\n", "OK (WARNINGS)", 4},
		{"vacation with reject", "require [\"vacation\", \"reject\"];\nif header :contains \"subject\" \"x\" { vacation \"a\"; }\n\nreject \"no\";\n", "OK (WARNINGS)", 4},
		{"unconditional vacation with reject", "require [\"vacation\", \"reject\"];\nvacation \"a\";\n\nreject \"no\";\n", "NO", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			for _, verb := range []string{"CHECKSCRIPT", "PUTSCRIPT \"vac\""} {
				c.cmd("%s {%d+}\r\n%s", verb, len(tc.script), tc.script)
				r := c.last
				got := "NO"
				switch {
				case strings.HasPrefix(r, "OK (WARNINGS)"):
					got = "OK (WARNINGS)"
				case strings.HasPrefix(r, "OK"):
					got = "OK"
				}
				if got != tc.want {
					t.Errorf("%s: %q, want %s", verb, r, tc.want)
				}
				if tc.line > 0 && !strings.Contains(r, fmt.Sprintf("line %d", tc.line)) {
					t.Errorf("%s: %q does not name line %d", verb, r, tc.line)
				}
			}
		})
	}
	c.t = t
	c.cmd("LOGOUT")
}

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
