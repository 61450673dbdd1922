package auth

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// PasswdFile authenticates against a Dovecot passwd-file:
//
//	user[@domain]:password:uid:gid:gecos:home:shell:extra_fields
//
// Only the user and password fields are used; the rest may be missing or
// empty. The password is "{SCHEME}data" (see Schemes) or, without a scheme,
// a crypt(3) hash as with Dovecot's default_pass_scheme = CRYPT. Blank lines
// and lines starting with "#" are ignored; a malformed line is skipped with a
// warning naming its line number, never its content. The extra field
// "nologin" locks the user out, "nopassword" is not supported (the user
// cannot log in). The file is re-read when its modification time, size or
// inode changes, so an administrator edits it (or renames a new one over it)
// without a restart.
type PasswdFile struct {
	path          string
	defaultDomain string
	log           *slog.Logger

	mu      sync.Mutex
	stamp   fileStamp
	entries map[Identity]passwdEntry

	// checks bounds the password hashes computed at once: a memory-hard
	// scheme (ARGON2ID: Dovecot's default is 64 MiB per check) times
	// every connection a client may open would exhaust memory.
	checks chan struct{}
	verify func(field, password string) error // VerifyPassword; tests replace it
}

// maxConcurrentChecks is the number of password checks run at once: one
// per CPU, since the hashes are CPU-bound; more only queue for the CPUs
// while holding their memory.
func maxConcurrentChecks() int { return max(2, runtime.GOMAXPROCS(0)) }

// check runs verify within the concurrency bound; waiting ends with ctx.
func (p *PasswdFile) check(ctx context.Context, field, password string) error {
	select {
	case p.checks <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("auth: passwd-file: %w: %w", ErrUnavailable, ctx.Err())
	}
	defer func() { <-p.checks }()
	return p.verify(field, password)
}

type fileStamp struct {
	mtime time.Time
	size  int64
	ino   uint64
}

type passwdEntry struct {
	id       Identity
	password string // "{SCHEME}data" or a crypt(3) hash
	nologin  bool
}

// NewPasswdFile reads path. Bare user names (in the file and at login) get
// defaultDomain. log may be nil.
func NewPasswdFile(path, defaultDomain string, log *slog.Logger) (*PasswdFile, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &PasswdFile{
		path: path, defaultDomain: strings.ToLower(defaultDomain), log: log,
		checks: make(chan struct{}, maxConcurrentChecks()), verify: VerifyPassword,
	}
	if err := p.reload(); err != nil {
		return nil, err
	}
	return p, nil
}

// Authenticate checks username and password against the file.
func (p *PasswdFile) Authenticate(ctx context.Context, username, password string) (Identity, error) {
	if err := ctx.Err(); err != nil {
		return Identity{}, fmt.Errorf("auth: passwd-file: %w: %w", ErrUnavailable, err)
	}
	if err := p.reload(); err != nil {
		return Identity{}, err
	}
	id, err := SplitLogin(username, p.defaultDomain)
	if err != nil {
		return Identity{}, err
	}
	p.mu.Lock()
	e, ok := p.entries[id]
	p.mu.Unlock()
	if !ok {
		// Spend about the time a real check would, so that response
		// times do not tell which users exist.
		if err := p.check(ctx, dummyHash, password); errors.Is(err, ErrUnavailable) {
			return Identity{}, err
		}
		return Identity{}, fmt.Errorf("auth: passwd-file: unknown user %q: %w", sanitize(username), ErrInvalidCredentials)
	}
	if e.nologin || e.password == "" {
		return Identity{}, fmt.Errorf("auth: passwd-file: user %q may not log in: %w", sanitize(username), ErrInvalidCredentials)
	}
	switch err := p.check(ctx, e.password, password); {
	case err == nil:
		return e.id, nil
	case errors.Is(err, errMismatch):
		return Identity{}, fmt.Errorf("auth: passwd-file: user %q: wrong password: %w", sanitize(username), ErrInvalidCredentials)
	case errors.Is(err, ErrUnavailable):
		return Identity{}, err
	default:
		p.log.Error("passwd-file entry unusable", "file", p.path, "user", sanitize(username), "err", err)
		return Identity{}, fmt.Errorf("auth: passwd-file %s: user %q: %w", p.path, sanitize(username), err)
	}
}

// dummyHash is a SHA512-CRYPT hash of a random string nobody knows.
const dummyHash = "{SHA512-CRYPT}$6$l94Cr6t8eDg1hmSJ$OVODJiWnsaxEZ116Dckxjp6A/9xj1YiTDfwh7XXaBjHCZdLqna41gDhaHYhqVuTpuzGH5z0IS2mRda.kj8MeJ1"

// reload re-reads the file when it changed since the last read.
func (p *PasswdFile) reload() error {
	st, err := os.Stat(p.path)
	if err != nil {
		// A file that disappeared must not keep its users logged in.
		return fmt.Errorf("auth: passwd-file: %w: %w", ErrUnavailable, err)
	}
	stamp := fileStamp{mtime: st.ModTime(), size: st.Size()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		stamp.ino = sys.Ino
	}
	p.mu.Lock()
	same := p.entries != nil && p.stamp == stamp
	p.mu.Unlock()
	if same {
		return nil
	}
	b, err := os.ReadFile(p.path)
	if err != nil {
		return fmt.Errorf("auth: passwd-file: %w: %w", ErrUnavailable, err)
	}
	entries := map[Identity]passwdEntry{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		e, ok, err := parsePasswdLine(sc.Text(), p.defaultDomain)
		if err != nil {
			p.log.Warn("passwd-file line skipped", "file", p.path, "line", n, "err", err)
			continue
		}
		if !ok {
			continue
		}
		if scheme, _ := splitScheme(e.password); e.password != "" && !knownScheme(scheme) {
			// Kept: logging in gives a clear ErrUnsupportedScheme instead
			// of "unknown user".
			p.log.Warn("passwd-file unsupported password scheme", "file", p.path, "line", n, "user", e.id.String(), "scheme", scheme)
		}
		if _, dup := entries[e.id]; dup {
			p.log.Warn("passwd-file duplicate user, first entry wins", "file", p.path, "line", n, "user", e.id.String())
			continue
		}
		entries[e.id] = e
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("auth: passwd-file %s: %w: %w", p.path, ErrUnavailable, err)
	}
	p.mu.Lock()
	p.entries, p.stamp = entries, stamp
	p.mu.Unlock()
	p.log.Info("passwd-file loaded", "file", p.path, "users", len(entries))
	return nil
}

// parsePasswdLine parses one passwd-file line. ok is false for blank lines
// and comments. Errors never quote the password field.
func parsePasswdLine(line, defaultDomain string) (e passwdEntry, ok bool, err error) {
	line = strings.TrimSuffix(line, "\r")
	trim := strings.TrimSpace(line)
	if trim == "" || strings.HasPrefix(trim, "#") {
		return passwdEntry{}, false, nil
	}
	fields := strings.Split(line, ":")
	if len(fields) < 2 {
		return passwdEntry{}, false, errors.New("no password field")
	}
	id, err := SplitLogin(fields[0], defaultDomain)
	if err != nil {
		return passwdEntry{}, false, fmt.Errorf("user field: %w", err)
	}
	e = passwdEntry{id: id, password: fields[1]}
	if len(fields) > 7 {
		// extra_fields: space-separated key[=value], after the 7th colon
		// (they may contain colons themselves).
		for _, f := range strings.Fields(strings.Join(fields[7:], ":")) {
			k, _, _ := strings.Cut(f, "=")
			switch k {
			case "nologin", "nopassword":
				e.nologin = true
			}
		}
	}
	return e, true, nil
}
