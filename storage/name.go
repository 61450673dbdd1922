package storage

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

const (
	// MaxNameChars is Pigeonhole's limit on a script name, in characters.
	MaxNameChars = 256
	// ext is the suffix of every script file on disk. Because every script
	// file carries it, no script name can ever collide with the "active"
	// link, the "vacation" directory or the lock file.
	ext = ".sieve"
	// maxFileName is NAME_MAX on Linux file systems (bytes).
	maxFileName = 255
)

// ValidateName reports whether name may be used as a script name. It
// applies Pigeonhole's rule for RFC 5804 section 1.6 names:
//
//	refuse empty names, more than 256 characters, invalid UTF-8,
//	U+0000-001F, U+007F, U+0080-009F, U+2028, U+2029 and "/"
//
// and adds our own: no leading "." (temporary files, the lock file and
// Pigeonhole's own files start with one, so a client can never address them)
// and no name whose file name "<name>.sieve" would exceed the 255-byte file
// name limit of the file system (a 256-character non-ASCII name can). The
// error wraps ErrInvalidName and says why.
func ValidateName(name string) error {
	reason := nameProblem(name)
	if reason == "" {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalidName, reason)
}

func nameProblem(name string) string {
	if name == "" {
		return "empty name"
	}
	if !utf8.ValidString(name) {
		return "not valid UTF-8"
	}
	if n := utf8.RuneCountInString(name); n > MaxNameChars {
		return fmt.Sprintf("longer than %d characters", MaxNameChars)
	}
	if len(name)+len(ext) > maxFileName {
		return fmt.Sprintf("longer than %d bytes in UTF-8", maxFileName-len(ext))
	}
	if name[0] == '.' {
		return `starts with "."`
	}
	for _, r := range name {
		switch {
		case r == '/':
			return `contains "/"`
		case r <= 0x1f, r == 0x7f, r >= 0x80 && r <= 0x9f:
			return fmt.Sprintf("contains control character U+%04X", r)
		case r == 0x2028, r == 0x2029:
			return fmt.Sprintf("contains line/paragraph separator U+%04X", r)
		}
	}
	return ""
}

// fileName maps a valid script name to its file name in the user directory.
func fileName(name string) string { return name + ext }

// nameFromFile is the inverse of fileName for List and the active link; it
// returns false for anything that is not a script we would have written.
func nameFromFile(file string) (string, bool) {
	name, ok := strings.CutSuffix(file, ext)
	if !ok || nameProblem(name) != "" {
		return "", false
	}
	return name, true
}

// validatePathPart checks one of the <domain>/<user> path parts.
func validatePathPart(kind, s string) error {
	var reason string
	switch {
	case s == "":
		reason = "empty"
	case s == "." || s == "..":
		reason = "is . or .."
	case s[0] == '.':
		reason = `starts with "."`
	case strings.ContainsAny(s, "/\\"):
		reason = `contains "/" or "\"`
	case !utf8.ValidString(s):
		reason = "not valid UTF-8"
	case len(s) > maxFileName:
		reason = "too long"
	default:
		for _, r := range s {
			if r <= 0x1f || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
				reason = fmt.Sprintf("contains control character U+%04X", r)
				break
			}
		}
	}
	if reason == "" {
		return nil
	}
	return fmt.Errorf("%w: %s %q: %s", ErrInvalidUser, kind, s, reason)
}

// ErrInvalidUser is returned by Store.User for a domain or user name that
// cannot be a single directory name.
var ErrInvalidUser = errors.New("storage: invalid user or domain")
