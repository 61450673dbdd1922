package maildir

import (
	"sort"
	"strings"
)

// systemFlags maps IMAP system flags (RFC 3501 section 2.3.2, matched
// case-insensitively) to Maildir info letters (cr.yp.to/proto/maildir.html).
var systemFlags = map[string]byte{
	`\seen`:     'S',
	`\answered`: 'R',
	`\flagged`:  'F',
	`\deleted`:  'T',
	`\draft`:    'D',
}

// Flags is the result of splitting a Sieve flag list (RFC 5232).
type Flags struct {
	// Info are the Maildir info letters for the system flags, sorted and
	// without duplicates ("FS").
	Info string
	// Keywords are the IMAP keywords ("$Label1", "Junk"), in first-seen
	// order without duplicates (compared case-insensitively, as IMAP does).
	Keywords []string
	// Ignored are flags that have no Maildir form: unknown system flags
	// (\Recent, \Foo) and strings that are not IMAP atoms. The caller logs
	// them; they are never dropped silently.
	Ignored []string
}

// SplitFlags maps Sieve flags to Maildir info letters and keywords. Each
// element may itself hold several space-separated flags, as imap4flags
// allows ("\\Seen \\Flagged").
func SplitFlags(list []string) Flags {
	var f Flags
	info := map[byte]bool{}
	seen := map[string]bool{}
	for _, item := range list {
		for _, fl := range strings.Fields(item) {
			if strings.HasPrefix(fl, `\`) {
				if c, ok := systemFlags[strings.ToLower(fl)]; ok {
					info[c] = true
				} else {
					f.Ignored = append(f.Ignored, fl)
				}
				continue
			}
			if !validKeyword(fl) {
				f.Ignored = append(f.Ignored, fl)
				continue
			}
			if k := strings.ToLower(fl); !seen[k] {
				seen[k] = true
				f.Keywords = append(f.Keywords, fl)
			}
		}
	}
	letters := make([]byte, 0, len(info))
	for c := range info {
		letters = append(letters, c)
	}
	sort.Slice(letters, func(i, j int) bool { return letters[i] < letters[j] })
	f.Info = string(letters)
	return f
}

// validKeyword reports whether s is an IMAP flag-keyword (RFC 3501: an atom,
// so no "(){ %*\"\\]" nor control characters nor non-ASCII), short enough for
// Dovecot's keywords file.
func validKeyword(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}
