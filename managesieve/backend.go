package managesieve

import (
	"context"
	"errors"
)

// Identity is an authenticated user: scripts live under <domain>/<user>.
type Identity struct {
	User   string
	Domain string
}

// String is the OWNER capability value, user@domain.
func (id Identity) String() string {
	if id.Domain == "" {
		return id.User
	}
	return id.User + "@" + id.Domain
}

// Authenticator checks a user name and password. It returns an error
// wrapping ErrInvalidCredentials for a wrong login and ErrUnavailable when
// the backend cannot answer now (the client may retry: TRYLATER).
type Authenticator interface {
	Authenticate(ctx context.Context, username, password string) (Identity, error)
}

// Store gives access to one user's scripts.
type Store interface {
	User(ctx context.Context, id Identity) (Scripts, error)
}

// ScriptInfo is one LISTSCRIPTS entry.
type ScriptInfo struct {
	Name   string
	Active bool
}

// Scripts is one user's script collection. Errors wrap the sentinels
// below so the server can pick the response code; their text is logged,
// never sent (it may hold paths).
type Scripts interface {
	// ValidateName reports whether name may be stored (ErrInvalidName).
	ValidateName(name string) error
	List(ctx context.Context) ([]ScriptInfo, error)
	Get(ctx context.Context, name string) ([]byte, error)
	// CheckSpace reports whether a script of size bytes could be stored
	// under name (replacing one of that name) without exceeding a quota.
	CheckSpace(ctx context.Context, name string, size int64) error
	Put(ctx context.Context, name string, script []byte) error
	Delete(ctx context.Context, name string) error
	Rename(ctx context.Context, oldName, newName string) error
	// SetActive activates name; "" deactivates.
	SetActive(ctx context.Context, name string) error
}

// Sentinel errors a Store, Scripts or Authenticator wraps.
var (
	ErrInvalidCredentials = errors.New("managesieve: invalid credentials")
	ErrUnavailable        = errors.New("managesieve: backend unavailable")
	ErrNonexistent        = errors.New("managesieve: no such script")
	ErrActive             = errors.New("managesieve: script is active")
	ErrAlreadyExists      = errors.New("managesieve: script already exists")
	ErrInvalidName        = errors.New("managesieve: invalid script name")
	ErrQuotaMaxSize       = errors.New("managesieve: script too large")
	ErrQuotaMaxScripts    = errors.New("managesieve: too many scripts")
	ErrQuota              = errors.New("managesieve: quota exceeded")
)

// Compiler validates scripts exactly as delivery will run them.
type Compiler interface {
	// Extensions is the SIEVE capability: what a script may require.
	Extensions() []string
	// Check compiles script. errs is the Pigeonhole-style error report
	// ("" when the script compiles), warnings the warning report.
	Check(name string, script []byte) (errs, warnings string)
}
