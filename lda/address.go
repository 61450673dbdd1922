package lda

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Recipient is the final recipient of a delivery.
type Recipient struct {
	// Address is the recipient as given (-d), detail included
	// ("alice+lists@example.org"), domain lower-cased: what the script's
	// envelope "to" is.
	Address string
	// User is the local part without detail, lower-cased ("alice").
	User string
	// Detail is the subaddress (RFC 5233) without its separator ("lists");
	// Separator is the separator found ("+"), both "" when none.
	Detail, Separator string
	// Domain is lower-cased.
	Domain string
}

// Base returns user@domain without the detail.
func (r Recipient) Base() string { return r.User + "@" + r.Domain }

// ErrBadAddress is wrapped by ParseAddress errors.
var ErrBadAddress = errors.New("lda: bad recipient address")

// ParseAddress splits an envelope address ("<alice+x@Example.ORG>") into
// local part and lower-cased domain. An address without "@" takes
// defaultDomain (dovecot-lda's -d takes a user name).
func ParseAddress(addr, defaultDomain string) (local, domain string, err error) {
	a := strings.TrimSpace(addr)
	if strings.HasPrefix(a, "<") && strings.HasSuffix(a, ">") {
		a = a[1 : len(a)-1]
	}
	at := strings.LastIndexByte(a, '@')
	if at < 0 {
		local, domain = a, defaultDomain
	} else {
		local, domain = a[:at], a[at+1:]
	}
	if local == "" {
		return "", "", fmt.Errorf("%w %q: empty local part", ErrBadAddress, addr)
	}
	if domain == "" {
		return "", "", fmt.Errorf("%w %q: no domain (set [lda] default_domain)", ErrBadAddress, addr)
	}
	if !utf8.ValidString(a) || strings.ContainsAny(a, "\x00\r\n\t ") {
		return "", "", fmt.Errorf("%w %q: invalid characters", ErrBadAddress, addr)
	}
	return local, strings.ToLower(domain), nil
}

// Candidates lists the ways local can name a user, most specific first: the
// whole local part ("mary-jane" is a user of her own when she exists), then
// the part before each separator from the left ("alice+lists" and
// "alice-lists" for "alice"), like RFC 5233 and Exim's
// local_part_suffix = +* : -*. The caller delivers to the first known one.
func Candidates(address, local, domain, separators string) []Recipient {
	out := []Recipient{{Address: address, User: strings.ToLower(local), Domain: domain}}
	for i, r := range local {
		if i == 0 || !strings.ContainsRune(separators, r) {
			continue
		}
		out = append(out, Recipient{
			Address:   address,
			User:      strings.ToLower(local[:i]),
			Detail:    local[i+utf8.RuneLen(r):],
			Separator: string(r),
			Domain:    domain,
		})
	}
	return out
}

// safePathPart reports why s cannot be one directory name in a path
// template ("" when it can).
func safePathPart(s string) string {
	switch {
	case s == "":
		return "empty"
	case s == "." || s == "..":
		return "is . or .."
	case s[0] == '.':
		return `starts with "."`
	case strings.ContainsAny(s, `/\`):
		return `contains "/" or "\"`
	case !utf8.ValidString(s):
		return "not valid UTF-8"
	case len(s) > 255:
		return "too long"
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			return "control character"
		}
	}
	return ""
}

// expand fills a path template.
func expand(tmpl string, r Recipient, storageRoot string) string {
	return strings.NewReplacer(
		"{domain}", r.Domain,
		"{user}", r.User,
		"{address}", r.Base(),
		"{storage_root}", storageRoot,
	).Replace(tmpl)
}
