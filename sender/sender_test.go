package sender

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sieved/sieved/config"
	"github.com/sieved/sieved/sender/sendertest"
)

// fakeSendmail writes a shell script that records its arguments and stdin.
func fakeSendmail(t *testing.T, exit int) (path, argsFile, msgFile string) {
	t.Helper()
	dir := t.TempDir()
	argsFile, msgFile = filepath.Join(dir, "args"), filepath.Join(dir, "msg")
	path = filepath.Join(dir, "sendmail")
	script := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > " + argsFile +
		"\ncat > " + msgFile + "\necho 'sendmail says hi' >&2\nexit " + string(rune('0'+exit)) + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, argsFile, msgFile
}

func TestSendmail(t *testing.T) {
	for _, tc := range []struct {
		name, from string
		wantArgs   string
	}{
		{"sender", "bob@example.org", "-i\n-f\nbob@example.org\n--\nalice@example.org\ncarol@example.org\n"},
		{"null sender", "", "-i\n-f\n<>\n--\nalice@example.org\ncarol@example.org\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, argsFile, msgFile := fakeSendmail(t, 0)
			s := &Sendmail{Path: path, Args: []string{"-i"}}
			const msg = "Subject: x\n\nbody\n"
			if err := s.Send(context.Background(), tc.from, []string{"alice@example.org", "carol@example.org"}, strings.NewReader(msg)); err != nil {
				t.Fatal(err)
			}
			args, _ := os.ReadFile(argsFile)
			got, _ := os.ReadFile(msgFile)
			if string(args) != tc.wantArgs {
				t.Errorf("args = %q, want %q", args, tc.wantArgs)
			}
			if string(got) != msg {
				t.Errorf("stdin = %q", got)
			}
		})
	}
}

func TestSendmailFailure(t *testing.T) {
	path, _, _ := fakeSendmail(t, 3)
	s := &Sendmail{Path: path}
	err := s.Send(context.Background(), "a@b", []string{"c@d"}, strings.NewReader("x"))
	if err == nil || !strings.Contains(err.Error(), "sendmail says hi") {
		t.Fatalf("err = %v, want the command's failure with its output", err)
	}
}

func TestSendmailTimeout(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "slow")
	os.WriteFile(path, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755)
	s := &Sendmail{Path: path, Timeout: 200 * time.Millisecond}
	err := s.Send(context.Background(), "a@b", []string{"c@d"}, strings.NewReader("x"))
	if err == nil {
		t.Fatal("a hanging sendmail did not time out")
	}
}

func TestRejectsUnsafeAddresses(t *testing.T) {
	s := &Sendmail{Path: "/bin/false"}
	for _, tc := range []struct {
		from string
		to   []string
	}{
		{"a@b", nil},
		{"a@b", []string{"-oQ/tmp@x"}},
		{"a@b", []string{""}},
		{"a@b\r\nRCPT TO:<x>", []string{"c@d"}},
		{"a@b", []string{"c@d>"}},
		{"a b@c", []string{"c@d"}},
	} {
		if err := s.Send(context.Background(), tc.from, tc.to, strings.NewReader("x")); err == nil || !strings.HasPrefix(err.Error(), "sender: ") {
			t.Errorf("Send(%q, %q) = %v, want a refusal", tc.from, tc.to, err)
		}
	}
}

func TestSMTP(t *testing.T) {
	sink := sendertest.NewSink(t)
	sink.Password = "secret"
	s := &SMTP{Addr: sink.Addr, TLS: "none", Helo: "lda.test", Username: "lda", Password: "secret", Timeout: 5 * time.Second}
	if err := s.Send(context.Background(), "", []string{"alice@example.org"}, strings.NewReader("Subject: x\n\nline\n.\nend\n")); err != nil {
		t.Fatal(err)
	}
	m := sink.Mails()
	if len(m) != 1 || m[0].From != "" || len(m[0].To) != 1 || m[0].To[0] != "alice@example.org" || m[0].User != "lda" {
		t.Fatalf("received %+v", m)
	}
	if m[0].Data != "Subject: x\r\n\r\nline\r\n.\r\nend\r\n" {
		t.Errorf("data = %q (dot-stuffing and CRLF must round-trip)", m[0].Data)
	}
}

func TestSMTPRejectedRecipient(t *testing.T) {
	sink := sendertest.NewSink(t)
	sink.Reject = "nobody@example.org"
	s := &SMTP{Addr: sink.Addr, TLS: "none", Timeout: 5 * time.Second}
	err := s.Send(context.Background(), "a@b", []string{"nobody@example.org"}, strings.NewReader("x\n"))
	if err == nil || !strings.Contains(err.Error(), "RCPT") {
		t.Fatalf("err = %v, want a RCPT failure", err)
	}
	if len(sink.Mails()) != 0 {
		t.Fatal("message delivered despite the refused recipient")
	}
}

func TestSMTPContextCancelled(t *testing.T) {
	sink := sendertest.NewSink(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := &SMTP{Addr: sink.Addr, TLS: "none"}
	if err := s.Send(ctx, "a@b", []string{"c@d"}, strings.NewReader("x\n")); err == nil {
		t.Fatal("send with a cancelled context succeeded")
	}
}

func TestNew(t *testing.T) {
	c := config.Default().Sender
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if sm, ok := s.(*Sendmail); !ok || sm.Path != "/usr/sbin/sendmail" || sm.Timeout != time.Minute {
		t.Errorf("default sender = %#v", s)
	}
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("hunter2\n"), 0o600)
	c.Method, c.SMTPAddr, c.SMTPUsername, c.SMTPPasswordFile = "smtp", "relay:587", "u", pw
	s, err = New(c)
	if err != nil {
		t.Fatal(err)
	}
	if sm, ok := s.(*SMTP); !ok || sm.Addr != "relay:587" || sm.Password != "hunter2" {
		t.Errorf("smtp sender = %#v", s)
	}
	c.SMTPPasswordFile = filepath.Join(t.TempDir(), "missing")
	if _, err := New(c); err == nil {
		t.Error("missing password file accepted")
	}
}
