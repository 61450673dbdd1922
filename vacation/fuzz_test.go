package vacation

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"
)

// FuzzCompose: whatever the original header, subject and reason, the reply
// is a well-formed message whose own header fields cannot be injected.
func FuzzCompose(f *testing.F) {
	f.Add("From: Bob <bob@example.com>\r\nSubject: hi\r\nMessage-ID: <a@b>\r\n", "", "away", false)
	f.Add("Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nReferences: <1@x>\r\n", "Ab\r\nBcc: x@y", "a\nb\r\nc\rd", false)
	f.Add("Sender: \"Q\\\"uote\" <bob@example.com>\r\n", "é", "Content-Type: text/html\r\n\r\n<p>x</p>", true)
	f.Fuzz(func(t *testing.T, orig, subject, reason string, mime bool) {
		h, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(orig + "\r\n")))
		if err != nil {
			return
		}
		r, err := Compose(ComposeInput{Action: &Action{Subject: subject, Reason: reason, Mime: mime},
			Original: h, Sender: "bob@example.com", ReplyFrom: "alice@example.org"})
		if err != nil {
			if mime {
				return // not a MIME entity
			}
			t.Fatalf("Compose: %v", err)
		}
		end := bytes.Index(r.Message, []byte("\r\n\r\n"))
		if end < 0 {
			t.Fatalf("no end of header:\n%q", r.Message)
		}
		head := r.Message[:end+2]
		if bytes.Contains(bytes.ReplaceAll(head, []byte("\r\n"), nil), []byte("\n")) ||
			bytes.Contains(bytes.ReplaceAll(head, []byte("\r\n"), nil), []byte("\r")) {
			t.Fatalf("bare CR or LF in the header:\n%q", head)
		}
		rh, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(r.Message)))
		if err != nil {
			t.Fatalf("reply header does not parse: %v\n%q", err, r.Message)
		}
		for _, k := range []string{"Auto-Submitted", "Subject", "From", "To", "Precedence"} {
			if n := len(rh.Values(k)); n != 1 && !(mime && k == "Subject") {
				t.Fatalf("%d %s fields:\n%q", n, k, head)
			}
		}
		if !mime && rh.Has("Bcc") {
			t.Fatalf("header injected through the subject:\n%q", head)
		}
		for _, c := range rh.Get("Subject") {
			if c > 127 {
				t.Fatalf("8-bit Subject %q", rh.Get("Subject"))
			}
		}
	})
}

// FuzzCheck: the rules never panic and always say why they skip.
func FuzzCheck(f *testing.F) {
	f.Add("bob@example.com", "alice+x@example.org", "To: alice@example.org\r\nPrecedence: bulk\r\n")
	f.Add("", "", "")
	f.Add("owner-@", "@", "To: =?utf-8?q?x?= <@>, ;;, \"\" <a@b>\r\nX-Auto-Response-Suppress: ,,,\r\n")
	f.Fuzz(func(t *testing.T, sender, rcpt, hdr string) {
		h, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(hdr + "\r\n")))
		if err != nil {
			return
		}
		p := Policy{CheckRecipient: true, MaxReceived: 10, SubaddressSeparators: "+-", NoReplyLocalParts: []string{"noreply", "x"}}
		d, err := p.Check(Request{Sender: sender, Recipient: rcpt, Header: h, Action: &Action{Addresses: []string{sender}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d.Skip != nil && (d.Skip.Rule == "" || d.Skip.Reason == "") {
			t.Fatalf("skip without rule or reason: %+v", d.Skip)
		}
		if d.Skip == nil && d.ReplyFrom == "" {
			t.Fatal("reply without a From address")
		}
	})
}

// FuzzStateFile: a damaged state file never breaks delivery: the store
// loads what it can and writes a clean file.
func FuzzStateFile(f *testing.F) {
	f.Add([]byte(stateMagic + "\n{\"k\":\"x\",\"s\":\"a@b\",\"h\":\"h\",\"e\":\"2999-01-01T00:00:00Z\"}\n"))
	f.Add([]byte("{torn"))
	f.Add([]byte("\x00\xff\n\n" + strings.Repeat("a", 70000)))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, stateFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		s := NewStore(dir, 5)
		tx, err := s.Lock(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Close()
		if err := tx.Mark("bob@example.com", "h", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if !tx.Answered("bob@example.com", "h") {
			t.Fatal("mark lost")
		}
	})
}
