package vacation

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime/quotedprintable"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	message "github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// MaxSubjectChars bounds the reply's Subject (characters before RFC 2047
// encoding), as Pigeonhole does.
const MaxSubjectChars = 256

// DefaultSubject is used when neither :subject nor the original Subject
// gives one.
const DefaultSubject = "Automated reply"

// Reply is the composed auto-reply.
type Reply struct {
	To      string // envelope recipient: the original envelope sender
	Message []byte // RFC 5322 message, CRLF line endings
}

// ComposeInput is what Compose needs.
type ComposeInput struct {
	Action    *Action
	Original  textproto.Header // the header of the message being answered
	Sender    string           // its envelope sender: the reply goes there
	ReplyFrom string           // Decision.ReplyFrom
	Domain    string           // right side of the Message-ID; default: ReplyFrom's domain
	Now       time.Time
	// DefaultSubject replaces DefaultSubject when set.
	DefaultSubject string
}

// Compose builds the reply (RFC 5230 section 5, RFC 3834 section 3).
func Compose(in ComposeInput) (*Reply, error) {
	act := in.Action
	sender := normalizeAddr(in.Sender)
	orig := gomail.Header{Header: message.Header{Header: in.Original}}

	type field struct{ k, v string }
	var fields []field
	add := func(k, v string) { fields = append(fields, field{k, v}) }

	var h gomail.Header // used for its encoders only
	domain := in.Domain
	if domain == "" {
		_, domain, _ = splitAddr(in.ReplyFrom)
	}
	if domain == "" {
		_, domain, _ = splitAddr(sender)
	}
	add("Message-ID", "<"+randomID()+"@"+domain+">")
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	add("Date", now.Format("Mon, 02 Jan 2006 15:04:05 -0700"))

	if act.From != "" {
		a, err := gomail.ParseAddress(act.From)
		if err != nil {
			return nil, fmt.Errorf("vacation: :from %q is not a valid address: %w", act.From, err)
		}
		h.SetAddressList("From", []*gomail.Address{a})
	} else {
		h.SetAddressList("From", []*gomail.Address{{Address: normalizeAddr(in.ReplyFrom)}})
	}
	add("From", h.Get("From"))
	h.SetAddressList("To", []*gomail.Address{replyTo(in.Original, sender)})
	add("To", h.Get("To"))

	subject := act.Subject
	if subject == "" {
		subject = in.DefaultSubject
		if subject == "" {
			subject = DefaultSubject
		}
		if in.Original.Has("Subject") {
			if s, err := orig.Subject(); err == nil {
				subject = "Auto: " + s
			} else {
				subject = "Auto: " + unfold(in.Original.Get("Subject"))
			}
		}
	}
	h.SetSubject(sanitizeSubject(subject))
	add("Subject", h.Get("Subject"))

	msgID := unfold(in.Original.Get("Message-Id"))
	refs := unfold(in.Original.Get("References"))
	switch {
	case msgID != "":
		add("In-Reply-To", msgID)
		if refs != "" {
			add("References", refs+" "+msgID)
		} else {
			add("References", msgID)
		}
	case refs != "":
		add("References", refs)
	}
	add("Auto-Submitted", "auto-replied (vacation)")
	add("Precedence", "bulk")
	add("X-Auto-Response-Suppress", "All")
	add("MIME-Version", "1.0")

	var body []byte
	if act.Mime {
		// The reason is a MIME entity (its own header fields and body),
		// placed as is after our header fields.
		body = crlf(act.Reason)
		if !bytes.HasSuffix(body, []byte("\r\n")) {
			body = append(body, '\r', '\n')
		}
		if err := checkEntity(body); err != nil {
			return nil, fmt.Errorf("vacation: the :mime reason is not a MIME entity (header fields, empty line, body): %w", err)
		}
	} else {
		add("Content-Type", "text/plain; charset=utf-8")
		text := crlf(act.Reason)
		if !bytes.HasSuffix(text, []byte("\r\n")) {
			text = append(text, '\r', '\n')
		}
		if longLines(text) {
			add("Content-Transfer-Encoding", "quoted-printable")
			var b bytes.Buffer
			w := quotedprintable.NewWriter(&b)
			_, _ = w.Write(text)
			_ = w.Close()
			text = crlf(b.String())
		} else {
			add("Content-Transfer-Encoding", "8bit")
		}
		body = text
	}

	// go-message writes fields in reverse order of Add.
	var out textproto.Header
	for i := len(fields) - 1; i >= 0; i-- {
		out.Add(fields[i].k, fields[i].v)
	}
	var b bytes.Buffer
	if err := textproto.WriteHeader(&b, out); err != nil {
		return nil, fmt.Errorf("vacation: write header: %w", err)
	}
	if act.Mime {
		// WriteHeader ended the header with an empty line; the entity's own
		// header fields continue the header instead.
		b.Truncate(b.Len() - 2)
	}
	b.Write(body)
	return &Reply{To: sender, Message: b.Bytes()}, nil
}

// checkEntity accepts header fields, an empty line and a body.
func checkEntity(b []byte) error {
	if !bytes.HasPrefix(b, []byte("\r\n")) && !bytes.Contains(b, []byte("\r\n\r\n")) {
		return fmt.Errorf("no empty line after the header fields")
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(b)))
	if err != nil {
		return err
	}
	for f := h.Fields(); f.Next(); {
		if f.Key() == "" {
			return fmt.Errorf("a header field without a name")
		}
	}
	return nil
}

// replyTo finds the sender's name-addr in Sender, Resent-From or From that
// matches the envelope sender, so the reply shows the sender's name; else
// the bare envelope address.
func replyTo(h textproto.Header, sender string) *gomail.Address {
	for _, k := range []string{"Sender", "Resent-From", "From"} {
		vals := h.Values(k)
		if len(vals) == 0 {
			continue
		}
		for _, a := range headerAddresses(vals[:1]) {
			if sameAddr(a.Address, sender) {
				return &gomail.Address{Name: a.Name, Address: a.Address}
			}
		}
	}
	return &gomail.Address{Address: sender}
}

// sanitizeSubject removes control characters and invalid UTF-8 and limits
// the length to MaxSubjectChars characters.
func sanitizeSubject(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n >= MaxSubjectChars {
			break
		}
		if r == '\r' || r == '\n' || r == '\t' {
			r = ' '
		} else if unicode.IsControl(r) {
			continue
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}

// crlf normalizes line endings to CRLF.
func crlf(s string) []byte {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return []byte(strings.ReplaceAll(s, "\n", "\r\n"))
}

// longLines reports whether a line exceeds RFC 5322's 998 octets, or the
// text is not UTF-8 (both need an encoding other than 8bit).
func longLines(text []byte) bool {
	if !utf8.Valid(text) {
		return true
	}
	for _, l := range bytes.Split(text, []byte("\r\n")) {
		if len(l) > 998 {
			return true
		}
	}
	return false
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%d.%s", time.Now().Unix(), hex.EncodeToString(b[:]))
}
