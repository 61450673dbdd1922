package vacation

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"
)

func parseReply(t *testing.T, b []byte) (textproto.Header, string) {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(b, []byte("\r\n"), nil), []byte("\n")) {
		t.Errorf("bare LF in reply:\n%s", b)
	}
	br := bufio.NewReader(bytes.NewReader(b))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		t.Fatalf("reply header: %v\n%s", err, b)
	}
	body, _ := io.ReadAll(br)
	return h, string(body)
}

func TestComposeHeaders(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	orig := "From: \"Bob B.\" <bob@example.com>\nTo: alice@example.org\nSubject: Lunch?\n" +
		"Message-ID: <m1@example.com>\nReferences: <r0@example.com>\n"
	for _, tc := range []struct {
		name   string
		act    Action
		orig   string
		sender string
		want   map[string]string // header -> exact value ("" = absent)
		body   string            // substring of the body
	}{
		{
			name: "plain", act: Action{Reason: "I am away.\nBack Monday."}, orig: orig,
			want: map[string]string{
				"Auto-Submitted":            "auto-replied (vacation)",
				"Precedence":                "bulk",
				"X-Auto-Response-Suppress":  "All",
				"MIME-Version":              "1.0",
				"Content-Type":              "text/plain; charset=utf-8",
				"Content-Transfer-Encoding": "8bit",
				"In-Reply-To":               "<m1@example.com>",
				"References":                "<r0@example.com> <m1@example.com>",
				"Subject":                   "Auto: Lunch?",
				"From":                      "<alice@example.org>",
				"To":                        `"Bob B." <bob@example.com>`,
				"Date":                      "Wed, 25 Nov 2026 10:00:00 +0000",
			},
			body: "I am away.\r\nBack Monday.\r\n",
		},
		{
			name: "no message-id, no references", act: Action{Reason: "x"}, body: "x\r\n",
			orig: "From: bob@example.com\nTo: alice@example.org\n",
			want: map[string]string{"In-Reply-To": "", "References": "", "Subject": "Automated reply", "To": "<bob@example.com>"},
		},
		{
			name: "references without message-id", act: Action{Reason: "x"},
			orig: "From: bob@example.com\nReferences: <a@b>\n",
			want: map[string]string{"In-Reply-To": "", "References": "<a@b>"},
		},
		{
			name: ":subject and :from", act: Action{Reason: "x", Subject: "Out of office", From: "Alice Smith <alice@example.org>"}, orig: orig,
			want: map[string]string{"Subject": "Out of office", "From": `"Alice Smith" <alice@example.org>`},
		},
		{
			name: "To from Sender when it matches the envelope", act: Action{Reason: "x"}, sender: "list-bounces@example.com",
			orig: "From: Bob <bob@example.com>\nSender: Lists <list-bounces@example.com>\n",
			want: map[string]string{"To": `"Lists" <list-bounces@example.com>`},
		},
		{
			name: "To from Resent-From", act: Action{Reason: "x"}, sender: "carol@example.net",
			orig: "From: Bob <bob@example.com>\nResent-From: Carol <carol@example.net>\n",
			want: map[string]string{"To": `"Carol" <carol@example.net>`},
		},
		{
			name: "bare envelope sender when no header matches", act: Action{Reason: "x"}, sender: "srs=x@fwd.example",
			orig: "From: Bob <bob@example.com>\n",
			want: map[string]string{"To": "<srs=x@fwd.example>"},
		},
		{
			name: "long line is quoted-printable", act: Action{Reason: strings.Repeat("a", 1200)}, orig: orig,
			want: map[string]string{"Content-Transfer-Encoding": "quoted-printable"},
		},
		{
			name: "mime entity", act: Action{Mime: true, Reason: "Content-Type: text/html; charset=utf-8\n\n<p>Away</p>\n"}, orig: orig,
			want: map[string]string{"Content-Type": "text/html; charset=utf-8", "Content-Transfer-Encoding": "", "MIME-Version": "1.0"},
			body: "<p>Away</p>\r\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sender := tc.sender
			if sender == "" {
				sender = "bob@example.com"
			}
			act := tc.act
			r, err := Compose(ComposeInput{Action: &act, Original: header(t, tc.orig), Sender: sender,
				ReplyFrom: "alice@example.org", Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if r.To != sender {
				t.Errorf("envelope To = %q, want %q", r.To, sender)
			}
			h, body := parseReply(t, r.Message)
			for k, v := range tc.want {
				if got := h.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
				if n := len(h.Values(k)); v != "" && n != 1 {
					t.Errorf("%d %s fields, want 1", n, k)
				}
			}
			id := h.Get("Message-Id")
			if !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@example.org>") {
				t.Errorf("Message-ID %q is not on the user's domain", id)
			}
			if !strings.HasPrefix(body, tc.body) {
				t.Errorf("body %q does not contain %q", body, tc.body)
			}
		})
	}
}

func TestComposeSubject(t *testing.T) {
	dec := new(mime.WordDecoder)
	for _, tc := range []struct {
		name, subject, orig, want string
		encoded                   bool
	}{
		{"ascii", "Away", "", "Away", false},
		{"utf-8 is RFC 2047 encoded", "Abwesenheitsnotiz: Grüße", "", "Abwesenheitsnotiz: Grüße", true},
		{"original encoded subject decoded then re-encoded", "", "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n", "Auto: Grüße", true},
		{"limited to 256 characters", strings.Repeat("é", 300), "", strings.Repeat("é", 256), true},
		{"newlines removed", "a\r\nBcc: evil@example.com", "", "a  Bcc: evil@example.com", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Compose(ComposeInput{Action: &Action{Subject: tc.subject, Reason: "x"},
				Original: header(t, "From: b@x.example\n"+tc.orig), Sender: "b@x.example", ReplyFrom: "a@y.example"})
			if err != nil {
				t.Fatal(err)
			}
			h, _ := parseReply(t, r.Message)
			raw := h.Get("Subject")
			if got := strings.Contains(raw, "=?"); got != tc.encoded {
				t.Errorf("raw Subject %q encoded=%v, want %v", raw, got, tc.encoded)
			}
			for _, c := range raw {
				if c > 127 {
					t.Fatalf("raw Subject has 8-bit characters: %q", raw)
				}
			}
			got, err := dec.DecodeHeader(raw)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Subject = %q, want %q", got, tc.want)
			}
			if h.Has("Bcc") {
				t.Error("subject injected a header field")
			}
		})
	}
}

func TestComposeBadFrom(t *testing.T) {
	_, err := Compose(ComposeInput{Action: &Action{From: "not an address", Reason: "x"}, Sender: "b@x", ReplyFrom: "a@y"})
	if err == nil {
		t.Fatal("invalid :from accepted")
	}
}

func TestComposeBadMimeEntity(t *testing.T) {
	_, err := Compose(ComposeInput{Action: &Action{Mime: true, Reason: "just text, no header\n\nbody"}, Sender: "b@x", ReplyFrom: "a@y"})
	if err == nil {
		t.Fatal(":mime reason without a header accepted")
	}
}
