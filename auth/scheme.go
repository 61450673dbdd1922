package auth

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"github.com/GehirnInc/crypt"
	_ "github.com/GehirnInc/crypt/md5_crypt"    // $1$
	_ "github.com/GehirnInc/crypt/sha256_crypt" // $5$
	_ "github.com/GehirnInc/crypt/sha512_crypt" // $6$
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Schemes lists the Dovecot password schemes VerifyPassword understands.
var Schemes = []string{
	"PLAIN", "CLEARTEXT", "CRYPT", "MD5-CRYPT", "SHA256-CRYPT", "SHA512-CRYPT",
	"BLF-CRYPT", "ARGON2I", "ARGON2ID", "SHA", "SSHA", "SHA256", "SSHA256",
	"SHA512", "SSHA512",
}

// errMismatch is what a wrong password gives; callers turn it into
// ErrInvalidCredentials.
var errMismatch = errors.New("password mismatch")

// splitScheme splits Dovecot's "{SCHEME}data" password field. Without a
// scheme the field is CRYPT (Dovecot's default_pass_scheme for passwd-file).
// The scheme is uppercased; an encoding suffix (".HEX", ".B64") is kept.
func splitScheme(field string) (scheme, data string) {
	if strings.HasPrefix(field, "{") {
		if i := strings.IndexByte(field, '}'); i > 0 {
			return strings.ToUpper(field[1:i]), field[i+1:]
		}
	}
	return "CRYPT", field
}

// knownScheme reports whether VerifyPassword implements scheme.
func knownScheme(scheme string) bool {
	base, enc, _ := strings.Cut(scheme, ".")
	if enc != "" && enc != "HEX" && enc != "B64" && enc != "BASE64" {
		return false
	}
	for _, s := range Schemes {
		if s == base {
			return true
		}
	}
	return false
}

// VerifyPassword checks password against a Dovecot password field
// ("{SCHEME}data", or a bare crypt(3) hash). It returns nil on a match,
// errMismatch on a wrong password, ErrUnsupportedScheme for a scheme it does
// not implement and another error for a malformed hash. Comparisons of
// secrets are constant-time.
func VerifyPassword(field, password string) error {
	scheme, data := splitScheme(field)
	base, enc, _ := strings.Cut(scheme, ".")
	if !knownScheme(scheme) {
		return fmt.Errorf("%w %q (known: %s)", ErrUnsupportedScheme, scheme, strings.Join(Schemes, ", "))
	}
	switch base {
	case "PLAIN", "CLEARTEXT":
		return equal([]byte(data), []byte(password))
	case "CRYPT", "MD5-CRYPT", "SHA256-CRYPT", "SHA512-CRYPT", "BLF-CRYPT":
		return verifyCrypt(base, data, password)
	case "ARGON2I", "ARGON2ID":
		return verifyArgon2(base, data, password)
	case "SHA", "SSHA":
		return verifyDigest(sha1.New, base == "SSHA", enc, data, password)
	case "SHA256", "SSHA256":
		return verifyDigest(sha256.New, base == "SSHA256", enc, data, password)
	case "SHA512", "SSHA512":
		return verifyDigest(sha512.New, base == "SSHA512", enc, data, password)
	}
	return fmt.Errorf("%w %q", ErrUnsupportedScheme, scheme)
}

func equal(a, b []byte) error {
	if subtle.ConstantTimeCompare(a, b) == 1 {
		return nil
	}
	return errMismatch
}

// verifyCrypt handles crypt(3) strings: $1$ MD5, $5$ SHA-256, $6$ SHA-512
// (Drepper's SHA-crypt, through GehirnInc/crypt) and $2a$/$2b$/$2y$
// bcrypt (x/crypto). The scheme name must agree with the hash prefix,
// except for CRYPT, which takes whatever the hash says.
func verifyCrypt(scheme, hashed, password string) error {
	want := map[string]string{"MD5-CRYPT": "$1$", "SHA256-CRYPT": "$5$", "SHA512-CRYPT": "$6$", "BLF-CRYPT": "$2"}[scheme]
	if want != "" && !strings.HasPrefix(hashed, want) {
		return fmt.Errorf("{%s} hash does not start with %q", scheme, want)
	}
	switch {
	case strings.HasPrefix(hashed, "$2a$"), strings.HasPrefix(hashed, "$2b$"), strings.HasPrefix(hashed, "$2y$"), strings.HasPrefix(hashed, "$2x$"):
		err := bcrypt.CompareHashAndPassword([]byte(hashed), []byte(password))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return errMismatch
		}
		if err != nil {
			return fmt.Errorf("{%s} hash: %v", scheme, err)
		}
		return nil
	case strings.HasPrefix(hashed, "$1$"), strings.HasPrefix(hashed, "$5$"), strings.HasPrefix(hashed, "$6$"):
		if !crypt.IsHashSupported(hashed) {
			return fmt.Errorf("{%s} hash: unsupported", scheme)
		}
		// Hash with the settings part only ("$5$rounds=N$salt"): given
		// the whole string, GehirnInc/crypt takes the hash into a salt
		// shorter than 16 characters when "rounds=" is present.
		settings := hashed[:strings.LastIndexByte(hashed, '$')]
		got, err := crypt.NewFromHash(hashed).Generate([]byte(password), []byte(settings))
		if err != nil {
			return fmt.Errorf("{%s} hash: %v", scheme, err)
		}
		if err := equal([]byte(got), []byte(hashed)); err != nil {
			return err
		}
		return nil
	}
	return fmt.Errorf("%w: crypt hash with unknown prefix", ErrUnsupportedScheme)
}

// Bounds on argon2 parameters read from the file, so that one bad line
// cannot make every login allocate gigabytes.
const (
	maxArgonMemoryKiB = 1 << 21 // 2 GiB
	maxArgonTime      = 100
)

// verifyArgon2 checks the PHC string Dovecot (libsodium) writes:
// $argon2id$v=19$m=65536,t=3,p=1$<salt b64>$<hash b64>, unpadded base64.
func verifyArgon2(scheme, s, password string) error {
	parts := strings.Split(s, "$")
	variant := strings.ToLower(scheme)
	if len(parts) != 6 || parts[0] != "" || parts[1] != variant || parts[2] != "v=19" {
		return fmt.Errorf("{%s} hash: not $%s$v=19$m=..,t=..,p=..$salt$hash", scheme, variant)
	}
	var m, t uint32
	var p uint8
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return fmt.Errorf("{%s} hash: parameter %q: %v", scheme, kv, err)
		}
		switch k {
		case "m":
			m = uint32(n)
		case "t":
			t = uint32(n)
		case "p":
			if n > 255 {
				return fmt.Errorf("{%s} hash: p=%d too large", scheme, n)
			}
			p = uint8(n)
		default:
			return fmt.Errorf("{%s} hash: unknown parameter %q", scheme, k)
		}
	}
	if m == 0 || t == 0 || p == 0 || m > maxArgonMemoryKiB || t > maxArgonTime {
		return fmt.Errorf("{%s} hash: parameters m=%d t=%d p=%d out of range", scheme, m, t, p)
	}
	salt, err1 := b64decode(parts[4])
	sum, err2 := b64decode(parts[5])
	if err1 != nil || err2 != nil || len(sum) < 4 {
		return fmt.Errorf("{%s} hash: bad base64 salt or hash", scheme)
	}
	var got []byte
	if scheme == "ARGON2ID" {
		got = argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(sum)))
	} else {
		got = argon2.Key([]byte(password), salt, t, m, p, uint32(len(sum)))
	}
	return equal(got, sum)
}

// b64decode accepts padded and unpadded standard base64.
func b64decode(s string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

// verifyDigest handles {SHA*} (plain digest) and {SSHA*} (digest of
// password+salt, salt appended to the digest), base64 or .HEX encoded.
func verifyDigest(newHash func() hash.Hash, salted bool, enc, data, password string) error {
	var raw []byte
	var err error
	if enc == "HEX" {
		raw, err = hex.DecodeString(data)
	} else {
		raw, err = b64decode(data)
	}
	h := newHash()
	if err != nil || len(raw) < h.Size() || (!salted && len(raw) != h.Size()) {
		return errors.New("digest hash: bad encoding or length")
	}
	sum, salt := raw[:h.Size()], raw[h.Size():]
	h.Write([]byte(password))
	h.Write(salt)
	return equal(h.Sum(nil), sum)
}
