package maildir

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// IMAP "modified UTF-7" (RFC 3501 section 5.1.3) is how Dovecot stores a
// non-ASCII mailbox name on disk in a Maildir++ folder name (".&ANw-ber"),
// unless it is configured with the UTF8 layout option. We write our own
// encoder because go-imap/v2 keeps its implementation in an internal
// package, and the encoding is small enough to test exhaustively here.

// mutf7 is RFC 3501's modified base64: "," instead of "/", no padding.
var mutf7 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// EncodeMUTF7 encodes a UTF-8 string as IMAP modified UTF-7. Printable
// ASCII other than "&" stands for itself, "&" becomes "&-", and every run
// of other characters becomes "&" + modified base64 of its UTF-16BE + "-".
// Invalid UTF-8 is encoded as U+FFFD; callers refuse it before.
func EncodeMUTF7(s string) string {
	var b strings.Builder
	var run []uint16
	flush := func() {
		if len(run) == 0 {
			return
		}
		buf := make([]byte, 2*len(run))
		for i, u := range run {
			buf[2*i] = byte(u >> 8)
			buf[2*i+1] = byte(u)
		}
		b.WriteByte('&')
		b.WriteString(mutf7.EncodeToString(buf))
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteRune(r)
			}
			continue
		}
		if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
			run = append(run, uint16(r1), uint16(r2))
		} else {
			run = append(run, uint16(r))
		}
	}
	flush()
	return b.String()
}

// DecodeMUTF7 decodes IMAP modified UTF-7. It is the inverse of
// EncodeMUTF7 and is used by tests and tools that list folders.
func DecodeMUTF7(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", errors.New("maildir: mutf7: non-ASCII byte")
		}
		if c != '&' {
			b.WriteByte(c)
			continue
		}
		j := strings.IndexByte(s[i+1:], '-')
		if j < 0 {
			return "", errors.New("maildir: mutf7: unterminated shift")
		}
		enc := s[i+1 : i+1+j]
		i += j + 1
		if enc == "" {
			b.WriteByte('&')
			continue
		}
		raw, err := mutf7.DecodeString(enc)
		if err != nil || len(raw)%2 != 0 {
			return "", errors.New("maildir: mutf7: bad base64")
		}
		u := make([]uint16, len(raw)/2)
		for k := range u {
			u[k] = uint16(raw[2*k])<<8 | uint16(raw[2*k+1])
		}
		for _, r := range utf16.Decode(u) {
			if r >= 0x20 && r <= 0x7e {
				return "", errors.New("maildir: mutf7: encoded printable ASCII")
			}
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}
