package lda

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sieved/sieved/engine"
)

// RedirectedByHeader marks a message redirected by sieve-lda; it carries the
// redirecting user's address. Seeing our own address in it again means a
// redirect loop.
const RedirectedByHeader = "X-Sieve-Redirected-By"

var errLoop = errors.New("redirect loop")

// checkLoop refuses a redirect that would loop: to the recipient itself,
// of a message this user already redirected, of a message that already
// went through too many sieve redirects, or to an address the message
// was already delivered to (Delivered-To).
func (l *LDA) checkLoop(d *Delivery, to string) error {
	target := strings.ToLower(strings.Trim(to, "<> "))
	if target == strings.ToLower(d.Recipient.Address) || target == d.Recipient.Base() {
		return fmt.Errorf("%w: redirect to the recipient itself", errLoop)
	}
	if d.Message == nil {
		return nil
	}
	by := d.Message.HeaderRaw(RedirectedByHeader)
	for _, v := range by {
		if strings.EqualFold(strings.Trim(strings.TrimSpace(v), "<>"), d.Recipient.Base()) {
			return fmt.Errorf("%w: %s already redirected this message", errLoop, d.Recipient.Base())
		}
	}
	if max := l.Config.MaxRedirectHops; max > 0 && len(by) >= max {
		return fmt.Errorf("%w: message already redirected %d times", errLoop, len(by))
	}
	for _, v := range d.Message.HeaderRaw("Delivered-To") {
		if strings.EqualFold(strings.Trim(strings.TrimSpace(v), "<>"), target) {
			return fmt.Errorf("%w: message was already delivered to %s", errLoop, target)
		}
	}
	return nil
}

func (l *LDA) redirect(ctx context.Context, d *Delivery, rd engine.Redirect) error {
	if err := l.checkLoop(d, rd.Address); err != nil {
		return err
	}
	if l.Sender == nil {
		return errors.New("no sender configured")
	}
	if d.Message == nil {
		return errNoMessage
	}
	body, err := d.Message.Open()
	if err != nil {
		return err
	}
	from := d.Envelope.From
	if nullSender(from) {
		from = ""
	}
	switch l.Config.RedirectFrom {
	case "recipient":
		from = d.Recipient.Base()
	case "null":
		from = ""
	}
	nl := lineEnding(d.Message)
	hdr := RedirectedByHeader + ": " + d.Recipient.Base() + nl
	return l.Sender.Send(ctx, from, []string{strings.Trim(rd.Address, "<> ")}, io.MultiReader(strings.NewReader(hdr), body))
}

// nullSender reports whether an envelope sender stands for the null
// sender <>: empty, or the bare "MAILER-DAEMON" that Postfix's pipe(8)
// puts into ${sender} for a bounce unless the transport sets null_sender=
// (many dovecot-lda command lines do not). Answering it would send
// rejection notices to a mailer daemon and risk bounce loops.
func nullSender(addr string) bool {
	return addr == "" || strings.EqualFold(addr, "MAILER-DAEMON")
}

// lineEnding guesses the message's line ending from its first line, so a
// prepended header matches it.
func lineEnding(m *engine.Message) string {
	r, err := m.Open()
	if err != nil {
		return "\n"
	}
	buf := make([]byte, 1024)
	n, _ := io.ReadFull(r, buf)
	if i := bytes.IndexByte(buf[:n], '\n'); i > 0 && buf[i-1] == '\r' {
		return "\r\n"
	}
	return "\n"
}

// reject sends an RFC 5429 rejection: an MDN (RFC 3798) with disposition
// "deleted", the human-readable reason, and the original message, to the
// envelope sender with a null envelope sender. Never to a null sender: that
// message is a bounce itself, and the rejection is silently dropped (logged),
// as Pigeonhole does.
func (l *LDA) reject(ctx context.Context, req Request, d *Delivery, reason string) error {
	to := d.Envelope.From
	if nullSender(to) {
		d.Log.Info("rejected; no notice sent to the null sender", "reason", reason)
		return nil
	}
	if l.Sender == nil {
		return errors.New("no sender configured")
	}
	var orig io.Reader = strings.NewReader("")
	if d.Message != nil {
		r, err := d.Message.Open()
		if err != nil {
			return err
		}
		orig = r
	}
	head := l.rejectHead(req, d, to, reason)
	msg := io.MultiReader(strings.NewReader(head), orig, strings.NewReader("\n--"+boundaryOf(head)+"--\n"))
	if err := l.Sender.Send(ctx, "", []string{to}, msg); err != nil {
		return err
	}
	d.Log.Info("rejected; notice sent", "to", to, "reason", reason)
	return nil
}

func boundaryOf(head string) string {
	_, b, _ := strings.Cut(head, `boundary="`)
	b, _, _ = strings.Cut(b, `"`)
	return b
}

func randomToken() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// headerValue returns the first raw value of a field, unfolded and safe to
// repeat in a header.
func headerValue(m *engine.Message, key string) string {
	if m == nil {
		return ""
	}
	v := m.HeaderRaw(key)
	if len(v) == 0 {
		return ""
	}
	return strings.Join(strings.Fields(v[0]), " ")
}

func (l *LDA) rejectHead(req Request, d *Delivery, to, reason string) string {
	from := l.Config.Postmaster
	if from == "" {
		from = "MAILER-DAEMON@" + d.Recipient.Domain
	}
	host, _ := os.Hostname()
	boundary := "sieve-reject-" + randomToken()
	subject := headerValue(d.Message, "Subject")
	msgID := headerValue(d.Message, "Message-Id")
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("From: %s", from)
	w("To: <%s>", to)
	w("Subject: Rejected: %s", subject)
	w("Date: %s", time.Now().Format(time.RFC1123Z))
	w("Message-ID: <%s.sieve-reject@%s>", randomToken(), d.Recipient.Domain)
	if msgID != "" {
		w("In-Reply-To: %s", msgID)
		w("References: %s", msgID)
	}
	w("Auto-Submitted: auto-replied (rejected)")
	w("Precedence: bulk")
	w("MIME-Version: 1.0")
	w(`Content-Type: multipart/report; report-type=disposition-notification; boundary="%s"`, boundary)
	w("")
	w("This is a MIME-encapsulated message.")
	w("")
	w("--%s", boundary)
	w("Content-Type: text/plain; charset=utf-8")
	w("Content-Transfer-Encoding: 8bit")
	w("")
	w("Your message to <%s> was automatically rejected:", d.Recipient.Address)
	w("%s", strings.ReplaceAll(reason, "\r\n", "\n"))
	w("")
	w("--%s", boundary)
	w("Content-Type: message/disposition-notification")
	w("")
	w("Reporting-UA: %s; sieve-lda", host)
	if req.OriginalRecipient != "" {
		w("Original-Recipient: rfc822; %s", req.OriginalRecipient)
	}
	w("Final-Recipient: rfc822; %s", d.Recipient.Address)
	if msgID != "" {
		w("Original-Message-ID: %s", msgID)
	}
	w("Disposition: automatic-action/MDN-sent-automatically; deleted")
	w("")
	w("--%s", boundary)
	w("Content-Type: message/rfc822")
	w("")
	return b.String()
}
