package interop

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"
)

// The delivery path as an administrator runs it: Exim (a real MTA) accepts
// mail over SMTP, routes virtual-domain recipients with
// local_part_suffix = +* : -*, and pipes each message into sieve-lda; a real
// Dovecot imapd then reads the Maildir++ that sieve-lda wrote, so folder
// names, subscriptions and flags are checked the way a mail client sees them.

type eximEnv struct {
	dir       string // everything lives below this
	sieveRoot string
	mailRoot  string
	conf      string
	port      int
	uid, gid  int
	lda       string
}

// eximScripts are the users' active scripts, written straight into the
// store layout sieved also uses (<root>/<domain>/<user>/<name>.sieve plus
// the relative symlink "active").
var eximScripts = map[string]string{
	"alice": `require ["fileinto", "envelope", "subaddress", "imap4flags"];
if envelope :detail "to" "lists" {
  fileinto "Lists/Go";
  stop;
}
if header :contains "subject" "flag me" {
  addflag ["\\Flagged", "$Label1"];
  keep;
  stop;
}
if header :contains "subject" "seen it" {
  fileinto :flags ["\\Seen", "\\Answered", "Work"] "inbox";
  fileinto "INBOX";
  stop;
}
if header :contains "subject" "Köln" {
  fileinto "INBOX/Städte";
  stop;
}
if header :contains "subject" "junk" {
  discard;
  stop;
}
`,
	// A broken script must never lose mail: delivery falls back to INBOX.
	"bob": "require \"fileinto\";\nif header :contains \"subject\" \"x\" {\n  fileinto \"A\"\n",
}

func setupExim(t *testing.T) *eximEnv {
	t.Helper()
	eximBin := requirePeer(t, "exim4")
	requirePeer(t, "/usr/sbin/dovecot")
	// The pipe transport runs as "mail" (Exim refuses to run a pipe as
	// root): it must reach the binary, the scripts and the Maildirs through
	// the temp directory chain.
	dir, uid, gid := mailUserDir(t, "Exim delivery")
	e := &eximEnv{dir: dir, uid: uid, gid: gid}
	e.sieveRoot = filepath.Join(e.dir, "sieve")
	e.mailRoot = filepath.Join(e.dir, "vmail")
	e.lda = filepath.Join(e.dir, "sieve-lda")
	copyFile(t, binary(t, "sieve-lda"), e.lda, 0o755)

	for userName, script := range eximScripts {
		ud := filepath.Join(e.sieveRoot, "example.org", userName)
		mustMkdir(t, ud)
		mustWrite(t, filepath.Join(ud, "main.sieve"), script)
		if err := os.Symlink("main.sieve", filepath.Join(ud, "active")); err != nil {
			t.Fatal(err)
		}
		md := filepath.Join(e.mailRoot, "example.org", userName)
		for _, sub := range []string{"cur", "new", "tmp"} {
			mustMkdir(t, filepath.Join(md, sub))
		}
	}
	chownTree(t, e.mailRoot, uid, gid)
	chownTree(t, e.sieveRoot, uid, gid)

	ldaConf := filepath.Join(e.dir, "sieve-lda.toml")
	mustWrite(t, ldaConf, eximLDAConfig(e.sieveRoot, e.mailRoot))

	spool := filepath.Join(e.dir, "spool")
	logDir := filepath.Join(e.dir, "log")
	mustMkdir(t, spool)
	mustMkdir(t, logDir)
	chownTree(t, spool, uid, gid)
	chownTree(t, logDir, uid, gid)

	e.port = freePort(t)
	e.conf = filepath.Join(e.dir, "exim.conf")
	mustWrite(t, e.conf, eximConfig(t, e, spool, logDir, ldaConf))

	cmd := exec.Command(eximBin, "-C", e.conf, "-bdf", "-oX", strconv.Itoa(e.port))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	startProcess(t, cmd)
	waitPort(t, e.port, 10*time.Second)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(logDir, "mainlog"))
			t.Logf("exim mainlog:\n%s", b)
		}
	})
	return e
}

// eximLDAConfig is the sieve-lda configuration used by the pipe transport.
func eximLDAConfig(sieveRoot, mailRoot string) string {
	return fmt.Sprintf(`[storage]
root = %q

[lda]
mail_dir = %q
`, sieveRoot, filepath.Join(mailRoot, "{domain}", "{user}"))
}

// eximConfig is a complete Exim configuration whose router and transport
// are taken verbatim from `sieve-lda --help`, so the test proves the exact
// snippet administrators copy: nothing tainted reaches the command line;
// the sender and the full recipient (with its +detail) travel in the
// environment Exim gives every pipe, and the router's dsearch lookups make
// "known user" mean "has a Maildir". Only the paths and the delivery user
// are replaced by the test's.
//
// The daemon only queues (queue_only): with a configuration passed by -C,
// Exim drops root for the processes the daemon re-executes, so the test
// runs the queue itself as root, the way the system daemon would.
func eximConfig(t *testing.T, e *eximEnv, spool, logDir, ldaConf string) string {
	t.Helper()
	snippet := eximSnippetFromHelp(t, e.lda)
	snippet = strings.NewReplacer(
		"/var/vmail", e.mailRoot,
		"/usr/local/bin/sieve-lda", e.lda,
		"/etc/sieved/sieved.toml", ldaConf,
		"user = vmail", "user = "+peerMailUser,
		"group = vmail", "group = "+peerMailUser,
	).Replace(snippet)
	return fmt.Sprintf(`primary_hostname = mx.test
spool_directory = %[1]s
log_file_path = %[2]s/%%slog
pid_file_path = %[3]s/exim.pid
daemon_smtp_ports = %[4]d
local_interfaces = 127.0.0.1
exim_user = %[5]s
exim_group = %[5]s
never_users = root
keep_environment =
host_lookup =
tls_advertise_hosts =
queue_only = true
acl_smtp_rcpt = acl_check_rcpt

begin acl
acl_check_rcpt:
  accept domains = dsearch;%[6]s
  deny message = relay not permitted

%[7]s

begin retry
*   *   F,1h,10m
`, spool, logDir, e.dir, e.port, peerMailUser, e.mailRoot, snippet)
}

// eximSnippetFromHelp cuts the router and transport out of the built
// binary's --help text (from "begin routers" to the transport's "group ="
// line) and removes the two-space indent.
func eximSnippetFromHelp(t *testing.T, lda string) string {
	t.Helper()
	out, err := exec.Command(lda, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("sieve-lda --help: %v\n%s", err, out)
	}
	var b strings.Builder
	in := false
	for _, line := range strings.Split(string(out), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "begin routers" {
			in = true
		}
		if !in {
			continue
		}
		b.WriteString(strings.TrimPrefix(line, "  ") + "\n")
		if strings.HasPrefix(trimmed, "group =") {
			return b.String()
		}
	}
	t.Fatalf("no Exim router/transport snippet (begin routers ... group =) in sieve-lda --help:\n%s", out)
	return ""
}

// send submits one message to Exim over SMTP.
func (e *eximEnv) send(t *testing.T, from, to, subject, body string) {
	t.Helper()
	c, err := smtp.Dial(fmt.Sprintf("127.0.0.1:%d", e.port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	msg := fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%d.%s@client.test>\r\nDate: %s\r\n\r\n%s\r\n",
		from, to, subject, time.Now().UnixNano(), strings.ReplaceAll(to, "@", "."), time.Now().Format(time.RFC1123Z), body)
	if err := c.SendMail(from, []string{to}, strings.NewReader(msg)); err != nil {
		t.Fatalf("SMTP to %s: %v", to, err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

// runQueue delivers everything queued and fails if anything stays queued.
func (e *eximEnv) runQueue(t *testing.T) {
	t.Helper()
	out, err := exec.Command("exim4", "-C", e.conf, "-qff").CombinedOutput()
	if err != nil {
		t.Fatalf("exim -qff: %v\n%s", err, out)
	}
	cnt, err := exec.Command("exim4", "-C", e.conf, "-bpc").Output()
	if err != nil {
		t.Fatalf("exim -bpc: %v", err)
	}
	if n := strings.TrimSpace(string(cnt)); n != "0" {
		q, _ := exec.Command("exim4", "-C", e.conf, "-bp").CombinedOutput()
		t.Fatalf("%s messages still queued after a queue run:\n%s", n, q)
	}
}

type imapView struct {
	folders    map[string]int      // name -> message count
	subscribed map[string]bool     // LSUB view
	flags      map[string][]string // folder -> sorted flags of each message, joined
}

// readIMAP starts a real Dovecot imapd over mailRoot and reads every
// folder of user@example.org through go-imap's client.
func (e *eximEnv) readIMAP(t *testing.T, userName string) imapView {
	t.Helper()
	dir := filepath.Join(e.dir, "dovecot-"+userName)
	mustMkdir(t, dir)
	port := freePort(t)
	mustWrite(t, filepath.Join(dir, "passwd"), userName+"@example.org:{PLAIN}secret\n")
	conf := filepath.Join(dir, "dovecot.conf")
	mustWrite(t, conf, fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
default_internal_user = %[4]s
default_internal_group = %[4]s
default_login_user = %[4]s
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:%[2]s/%%d/%%n
passdb {
  driver = passwd-file
  args = scheme=PLAIN %[1]s/passwd
}
userdb {
  driver = static
  args = uid=%[4]s gid=%[4]s home=%[2]s/%%d/%%n
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = %[3]d
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
service auth {
  user = root
}
`, dir, e.mailRoot, port, peerMailUser))
	cmd := exec.Command("/usr/sbin/dovecot", "-F", "-c", conf)
	startProcess(t, cmd)
	waitPort(t, port, 10*time.Second)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Logf("dovecot log:\n%s", b)
		}
	})

	c, err := imapclient.DialInsecure(fmt.Sprintf("127.0.0.1:%d", port), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(userName+"@example.org", "secret").Wait(); err != nil {
		t.Fatalf("IMAP login: %v", err)
	}
	v := imapView{folders: map[string]int{}, subscribed: map[string]bool{}, flags: map[string][]string{}}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, mb := range list {
		if hasAttr(mb.Attrs, imap.MailboxAttrNoSelect) || hasAttr(mb.Attrs, imap.MailboxAttrNonExistent) {
			continue // a hierarchy level such as "Lists" above "Lists.Go"
		}
		st, err := c.Select(mb.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			t.Fatalf("select %q: %v", mb.Mailbox, err)
		}
		v.folders[mb.Mailbox] = int(st.NumMessages)
		if st.NumMessages > 0 {
			msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: st.NumMessages}}, &imap.FetchOptions{Flags: true}).Collect()
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				var fl []string
				for _, f := range m.Flags {
					fl = append(fl, string(f))
				}
				sort.Strings(fl)
				v.flags[mb.Mailbox] = append(v.flags[mb.Mailbox], strings.Join(fl, " "))
			}
		}
	}
	subs, err := c.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, mb := range subs {
		v.subscribed[mb.Mailbox] = true
	}
	_ = c.Logout().Wait()
	return v
}

func hasAttr(attrs []imap.MailboxAttr, a imap.MailboxAttr) bool {
	for _, x := range attrs {
		if strings.EqualFold(string(x), string(a)) {
			return true
		}
	}
	return false
}

func TestEximDeliversThroughSieveLDA(t *testing.T) {
	e := setupExim(t)

	e.send(t, "carol@remote.test", "alice+lists@example.org", "go digest", "list mail 1")
	e.send(t, "carol@remote.test", "alice-lists@example.org", "go digest 2", "list mail 2")
	e.send(t, "carol@remote.test", "alice@example.org", "please flag me", "flagged")
	e.send(t, "carol@remote.test", "alice@example.org", "=?iso-8859-1?q?K=F6ln_trip?=", "encoded subject")
	e.send(t, "carol@remote.test", "alice@example.org", "junk offer", "discarded")
	e.send(t, "carol@remote.test", "alice@example.org", "hello", "plain")
	e.send(t, "carol@remote.test", "alice@example.org", "seen it", "one copy, flags and a keyword")
	e.send(t, "carol@remote.test", "bob+x@example.org", "x marks", "broken script")
	e.runQueue(t)

	alice := e.readIMAP(t, "alice")
	if got := alice.folders["INBOX"]; got != 3 {
		t.Errorf("alice INBOX has %d messages, want 3 (flag me + hello + seen it, once); folders %v", got, alice.folders)
	}
	if got := alice.folders["Lists.Go"]; got != 2 {
		t.Errorf("alice Lists.Go has %d messages, want 2 (+lists and -lists); folders %v", got, alice.folders)
	}
	if got := alice.folders["Städte"]; got != 1 {
		t.Errorf("alice Städte has %d messages, want 1 (RFC 2047 subject); folders %v", got, alice.folders)
	}
	total := 0
	for _, n := range alice.folders {
		total += n
	}
	if total != 6 {
		t.Errorf("alice has %d messages in all, want 6 (one discarded): %v", total, alice.folders)
	}
	for _, f := range []string{"Lists.Go", "Städte"} {
		if !alice.subscribed[f] {
			t.Errorf("folder %q created by fileinto is not subscribed: %v", f, alice.subscribed)
		}
	}
	// Dovecot reads the Maildir info letters and dovecot-keywords as the
	// flags and keywords the scripts set.
	wantFlags := map[string]int{`$Label1 \Flagged \Recent`: 1, `Work \Answered \Recent \Seen`: 1, `\Recent`: 1}
	gotFlags := map[string]int{}
	for _, fl := range alice.flags["INBOX"] {
		gotFlags[fl]++
	}
	if fmt.Sprint(gotFlags) != fmt.Sprint(wantFlags) {
		t.Errorf("INBOX flags %q, want one message each with %v", alice.flags["INBOX"], wantFlags)
	}

	bob := e.readIMAP(t, "bob")
	if bob.folders["INBOX"] != 1 || len(bob.folders) != 1 {
		t.Errorf("bob (broken script) folders %v, want only INBOX with 1 message", bob.folders)
	}
}

// A mailbox sieve-lda cannot write must defer (exit 75), never bounce or
// lose the message: after the fault is fixed the queue delivers it.
func TestEximDefersOnTemporaryFailure(t *testing.T) {
	e := setupExim(t)
	inbox := filepath.Join(e.mailRoot, "example.org", "alice")
	// Make the Maildir unwritable for the delivery user.
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.Chmod(filepath.Join(inbox, sub), 0o555); err != nil {
			t.Fatal(err)
		}
	}
	e.send(t, "carol@remote.test", "alice@example.org", "hello", "deferred first")
	out, _ := exec.Command("exim4", "-C", e.conf, "-qff").CombinedOutput()
	cnt, _ := exec.Command("exim4", "-C", e.conf, "-bpc").Output()
	if strings.TrimSpace(string(cnt)) != "1" {
		t.Fatalf("after a failed delivery the queue holds %q messages, want 1 (deferred); %s", cnt, out)
	}
	for _, sub := range []string{"new", "cur"} {
		ents, _ := os.ReadDir(filepath.Join(inbox, sub))
		if len(ents) != 0 {
			t.Fatalf("%s/ has %d entries after a failed delivery", sub, len(ents))
		}
	}
	// Exim logs the first line of the pipe's output with the deferral
	// (log_defer_output): it must be sieve-lda's reason, not a log line.
	mainlog, _ := os.ReadFile(filepath.Join(e.dir, "log", "mainlog"))
	var deferLine string
	for _, l := range strings.Split(string(mainlog), "\n") {
		if strings.Contains(l, "<alice@example.org>: sieve_lda transport output: ") {
			deferLine = l
		}
	}
	if _, reason, _ := strings.Cut(deferLine, "transport output: "); !strings.HasPrefix(reason, "sieve-lda: cannot write message") {
		t.Errorf("Exim's deferral line does not carry sieve-lda's reason:\n%s\nmainlog:\n%s", deferLine, mainlog)
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.Chmod(filepath.Join(inbox, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	e.runQueue(t)
	ents, _ := os.ReadDir(filepath.Join(inbox, "new"))
	if len(ents) != 1 {
		t.Fatalf("after the retry new/ has %d messages, want 1", len(ents))
	}
}
