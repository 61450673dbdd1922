package managesieve

import (
	"bufio"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Response codes (RFC 5804 section 1.3), spelled as on the wire.
const (
	CodeAuthTooWeak       = "AUTH-TOO-WEAK"
	CodeEncryptNeeded     = "ENCRYPT-NEEDED"
	CodeQuota             = "QUOTA"
	CodeQuotaMaxScripts   = "QUOTA/MAXSCRIPTS"
	CodeQuotaMaxSize      = "QUOTA/MAXSIZE"
	CodeReferral          = "REFERRAL"
	CodeSASL              = "SASL"
	CodeTransitionNeeded  = "TRANSITION-NEEDED"
	CodeTryLater          = "TRYLATER"
	CodeActive            = "ACTIVE"
	CodeNonexistent       = "NONEXISTENT"
	CodeAlreadyExists     = "ALREADYEXISTS"
	CodeTag               = "TAG"
	CodeWarnings          = "WARNINGS"
	maxQuotedResponseText = 1024
)

// codeWithString renders a response code that carries a string, such as
// TAG "x" or SASL "base64".
func codeWithString(code, s string) string { return code + " " + quote(s) }

// quote returns s as an RFC 5804 quoted string.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// quotable reports whether s can go out as a quoted string.
func quotable(s string) bool {
	if len(s) > maxQuotedResponseText || !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsAny(s, "\r\n\x00")
}

// writer buffers one response; the session flushes it when the response
// is complete, so that a client never sees half of one (the greeting in
// particular goes out in a single write).
type writer struct {
	bw *bufio.Writer
}

// literal writes "{n}" CRLF data.
func (w *writer) literal(s string) {
	w.bw.WriteString("{" + strconv.Itoa(len(s)) + "}\r\n")
	w.bw.WriteString(s)
}

// text writes a human-readable text quoted when it can be, else as a
// literal with CRLF line breaks (multi-line compile reports).
func (w *writer) text(s string) {
	if quotable(s) {
		w.bw.WriteString(quote(s))
	} else {
		w.literal(string(toCRLF([]byte(s))))
	}
}

// line writes raw text and CRLF.
func (w *writer) line(s string) {
	w.bw.WriteString(s)
	w.bw.WriteString("\r\n")
}

// response writes "OK|NO|BYE [(code)] [text]" CRLF. Multi-line text goes
// out as a literal, as Pigeonhole does for compile errors.
func (w *writer) response(kind, code, text string) {
	w.bw.WriteString(kind)
	if code != "" {
		w.bw.WriteString(" (" + code + ")")
	}
	if text != "" {
		w.bw.WriteByte(' ')
		w.text(text)
	}
	w.bw.WriteString("\r\n")
}

func (w *writer) ok(code, text string)  { w.response("OK", code, text) }
func (w *writer) no(code, text string)  { w.response("NO", code, text) }
func (w *writer) bye(code, text string) { w.response("BYE", code, text) }

func (w *writer) flush() error { return w.bw.Flush() }
