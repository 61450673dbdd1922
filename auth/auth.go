// Package auth checks ManageSieve logins: a Dovecot-compatible passwd-file,
// an IMAP LOGIN against the existing IMAP server, and the SASL server
// mechanisms (RFC 4616 PLAIN through go-sasl, and the obsolete but widely
// used LOGIN, draft-murchison-sasl-login) that managesieve/ offers.
//
// An Identity names the user's directory in the script store:
// alice@example.org is <root>/example.org/alice; a bare "alice" gets the
// configured default domain.
//
// Errors: ErrInvalidCredentials means the user or password is wrong (the
// client may retry; ManageSieve answers NO and delays); ErrUnavailable means
// the check could not be made (IMAP server down, passwd-file unreadable): a
// temporary failure, never to be reported as a wrong password. Any other
// error (ErrUnsupportedScheme, a malformed hash) is a configuration problem
// on the server side. No error text and no log line ever holds a password.
package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Identity is an authenticated user; it maps to <root>/<Domain>/<User>.
type Identity struct {
	User, Domain string
}

// String returns user@domain.
func (id Identity) String() string { return id.User + "@" + id.Domain }

// Backend checks a username and password.
type Backend interface {
	Authenticate(ctx context.Context, username, password string) (Identity, error)
}

var (
	// ErrInvalidCredentials: unknown user, wrong password or malformed login.
	ErrInvalidCredentials = errors.New("auth: invalid credentials")
	// ErrUnavailable: the backend cannot answer now (temporary failure).
	ErrUnavailable = errors.New("auth: backend unavailable")
	// ErrUnsupportedScheme: a passwd-file entry uses a password scheme this
	// server does not implement.
	ErrUnsupportedScheme = errors.New("auth: unsupported password scheme")
)

// SplitLogin maps a login name to an Identity: "alice@example.org" is
// {alice, example.org} (split at the last "@"), a bare "alice" gets
// defaultDomain (an error when that is empty). Both parts are lowercased:
// Dovecot does so by default (auth_username_format = %Lu) and Exim's
// routers see a lowercased $local_part, so the directory the MTA reads
// (<root>/$domain/$local_part/active) is the lowercase one. Both parts must
// be usable as one directory name.
func SplitLogin(login, defaultDomain string) (Identity, error) {
	user, domain := login, defaultDomain
	if i := strings.LastIndexByte(login, '@'); i >= 0 {
		user, domain = login[:i], login[i+1:]
	}
	if !utf8.ValidString(user) || !utf8.ValidString(domain) {
		// Checked first: ToLower would turn the bad bytes into U+FFFD.
		return Identity{}, fmt.Errorf("auth: login %q: not valid UTF-8: %w", sanitize(login), ErrInvalidCredentials)
	}
	user, domain = strings.ToLower(user), strings.ToLower(domain)
	if reason := loginProblem(user, domain); reason != "" {
		return Identity{}, fmt.Errorf("auth: login %q: %s: %w", sanitize(login), reason, ErrInvalidCredentials)
	}
	return Identity{User: user, Domain: domain}, nil
}

func loginProblem(user, domain string) string {
	if user == "" {
		return "empty user name"
	}
	if domain == "" {
		return "no domain and no default domain"
	}
	for _, p := range []string{user, domain} {
		if p == "." || p == ".." || p[0] == '.' {
			return `starts with "."`
		}
		if len(p) > 255 {
			return "too long"
		}
		if !utf8.ValidString(p) {
			return "not valid UTF-8"
		}
		for _, r := range p {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == '/' || r == '\\' || r == ':' {
				return fmt.Sprintf("invalid character %q", r)
			}
		}
	}
	if strings.Contains(domain, "@") {
		return `"@" in domain`
	}
	return ""
}

// sanitize makes a login name safe to put into an error message or log
// line (bounded, printable).
func sanitize(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
