package vacation

import (
	"net/mail"
	"strings"

	gomail "github.com/emersion/go-message/mail"
)

// normalizeAddr trims an envelope address ("<a@b>" or "a@b") to "a@b".
func normalizeAddr(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	return s
}

// splitAddr splits "local@domain" at the last '@'. ok is false when there
// is no '@' or either side is empty.
func splitAddr(a string) (local, domain string, ok bool) {
	i := strings.LastIndexByte(a, '@')
	if i <= 0 || i == len(a)-1 {
		return a, "", false
	}
	return a[:i], a[i+1:], true
}

// sameAddr compares two addresses case-insensitively, as Pigeonhole does
// (smtp_address_equals_icase).
func sameAddr(a, b string) bool {
	return a != "" && strings.EqualFold(normalizeAddr(a), normalizeAddr(b))
}

// baseAddr removes a +detail (RFC 5233) from the local part:
// "alice+shop@example.org" -> "alice@example.org".
func baseAddr(a, seps string) string {
	local, domain, ok := splitAddr(a)
	if !ok || seps == "" {
		return a
	}
	if i := strings.IndexAny(local, seps); i > 0 {
		return local[:i] + "@" + domain
	}
	return a
}

// validAddr reports whether s is a usable addr-spec or name-addr
// (e.g. `"Alice" <alice@example.org>`), returning the addr-spec.
func validAddr(s string) (string, bool) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", false
	}
	if _, _, ok := splitAddr(a.Address); !ok {
		return "", false
	}
	return a.Address, true
}

// headerAddresses returns the addresses in the values of an address header
// (To, Cc, ...). It is lenient like Pigeonhole: an unparsable list is
// retried item by item, and a bare "<a@b>" is accepted.
func headerAddresses(values []string) []*mail.Address {
	var out []*mail.Address
	for _, v := range values {
		v = unfold(v)
		if l, err := gomail.ParseAddressList(v); err == nil {
			for _, a := range l {
				out = append(out, (*mail.Address)(a))
			}
			continue
		}
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if a, err := gomail.ParseAddress(part); err == nil {
				out = append(out, (*mail.Address)(a))
				continue
			}
			if i, j := strings.LastIndexByte(part, '<'), strings.LastIndexByte(part, '>'); i >= 0 && j > i {
				if _, _, ok := splitAddr(part[i+1 : j]); ok {
					out = append(out, &mail.Address{Address: part[i+1 : j]})
				}
			}
		}
	}
	return out
}

// unfold joins folded header lines and trims the value.
func unfold(v string) string {
	v = strings.NewReplacer("\r\n", "", "\n", "", "\r", "").Replace(v)
	return strings.TrimSpace(v)
}
