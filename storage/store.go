// Package storage is the per-user Sieve script store shared by sieved
// (ManageSieve, RFC 5804) and sieve-lda.
//
// # Layout
//
//	<root>/<domain>/<user>/<name>.sieve   one file per script
//	<root>/<domain>/<user>/active         relative symlink -> <name>.sieve
//	<root>/<domain>/<user>/vacation/      reserved for vacation state
//	<root>/<domain>/<user>/.lock          flock(2) target for multi-step changes
//
// This is the layout an Exim router reads directly
// (/var/lib/sieve/$domain/$local_part/active) and the one Dovecot Pigeonhole
// writes with sieve = file:<root>/%d/%n;active=<root>/%d/%n/active, so
// directories Pigeonhole wrote are read as they are: List ignores every file
// that is not "<valid name>.sieve" (Pigeonhole's .svbin binaries, its tmp/
// directory, dot files). Every script file ends in ".sieve" and script names
// may not start with ".", so no script name can ever collide with "active",
// "vacation", the lock file or a temporary file; names such as "active" or
// "vacation" are ordinary scripts stored as active.sieve / vacation.sieve.
//
// # Line endings
//
// Scripts are stored with LF line endings: Put turns every CRLF into LF
// (clients send CRLF, Exim and most tools want LF); a lone CR is kept. Get and
// ReadActive return LF line endings too, also for files Pigeonhole wrote
// with CRLF (it stores what the client sent), so a caller never sees CRLF. The
// ManageSieve layer converts LF to CRLF on the wire for GETSCRIPT (RFC 5228
// section 2.2 defines CRLF as the line break of a script, and every client we
// test sends CRLF or accepts it), counting the literal length after the
// conversion. A client therefore gets back what it uploaded, modulo line
// endings.
//
// # Exim compatibility
//
// With Config.EximCompat, Put writes "# Sieve filter" as the first line on
// disk (Exim's own Sieve interpreter only accepts such files) and Get and
// ReadActive hide that line again, so a client never sees it. The line is
// always added, even when the script already starts with it, so that Get
// returns exactly what was uploaded.
//
// # Atomicity and durability
//
// Every change is written to a temporary file in the user directory,
// fsynced, renamed over its final name, and the directory fsynced.
// Activation creates a new relative symlink and renames it over "active", so
// a reader (an MTA delivering right now) always resolves "active" to a
// complete script, the old or the new one. Renaming the active script links
// the new name, re-points "active", then removes the old name, so "active"
// never dangles. Multi-step changes (quota check + write, delete of a
// non-active script, rename, activation) hold a per-user lock: a mutex inside
// the process plus flock(2) on <user dir>/.lock, so several sieved processes
// and sieve-lda agree. Reads take no lock.
//
// # Quotas
//
// MaxScriptSize bounds the size of one script as uploaded (the size a client
// gives to HAVESPACE), MaxScripts the number of scripts, MaxTotalBytes the
// uploaded size plus the on-disk size of the user's other scripts (without
// the EximCompat line). Replacing a script does not count the old version. Zero means unlimited. The three
// errors are distinct (ErrQuotaMaxSize, ErrQuotaMaxScripts, ErrQuota) and map
// to the response codes QUOTA/MAXSIZE, QUOTA/MAXSCRIPTS and QUOTA.
package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Errors returned by the store, wrapped with the operation and script name.
// Test them with errors.Is.
var (
	ErrNotFound        = errors.New("storage: no such script")                  // NONEXISTENT
	ErrActive          = errors.New("storage: script is active")                // ACTIVE
	ErrAlreadyExists   = errors.New("storage: script already exists")           // ALREADYEXISTS
	ErrInvalidName     = errors.New("storage: invalid script name")             // plain NO
	ErrNoActive        = errors.New("storage: no active script")                // sieve-lda: keep
	ErrQuotaMaxSize    = errors.New("storage: script exceeds the maximum size") // QUOTA/MAXSIZE
	ErrQuotaMaxScripts = errors.New("storage: too many scripts")                // QUOTA/MAXSCRIPTS
	ErrQuota           = errors.New("storage: storage quota exceeded")          // QUOTA
)

const (
	activeLink   = "active"
	vacationDir  = "vacation"
	lockFile     = ".lock"
	eximHeader   = "# Sieve filter\n"
	defFileMode  = 0o640
	defDirMode   = 0o750
	tmpPrefix    = ".tmp-"
	tmpLinkPrefx = ".active-"
)

// Config configures a Store. Zero values pick the defaults named below.
type Config struct {
	Root     string      // <root>/<domain>/<user>/; required
	FileMode os.FileMode // mode of script files; default 0640
	DirMode  os.FileMode // mode of the domain and user directories; default 0750
	// Group (name or numeric gid) owning every file and directory the store
	// creates, e.g. the MTA's group (Debian-exim, vmail). "" leaves the
	// process's group.
	Group         string
	MaxScriptSize int64 // bytes per script as uploaded; 0 = unlimited
	MaxScripts    int   // scripts per user; 0 = unlimited
	MaxTotalBytes int64 // bytes of all scripts of a user; 0 = unlimited
	EximCompat    bool  // "# Sieve filter" first line on disk, hidden from Get
}

// Store is the script store rooted at Config.Root. It is safe for
// concurrent use.
type Store struct {
	cfg Config
	gid int // -1: don't chown

	mu    sync.Mutex
	locks map[string]*userLock
}

type userLock struct {
	ch   chan struct{}
	refs int
}

// New returns a store for cfg, creating the root directory when missing.
func New(cfg Config) (*Store, error) {
	if cfg.Root == "" {
		return nil, errors.New("storage: empty root")
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("storage: root %q: %w", cfg.Root, err)
	}
	cfg.Root = root
	if cfg.FileMode == 0 {
		cfg.FileMode = defFileMode
	}
	if cfg.DirMode == 0 {
		cfg.DirMode = defDirMode
	}
	cfg.FileMode &= fs.ModePerm
	cfg.DirMode &= fs.ModePerm | fs.ModeSetgid
	if cfg.MaxScriptSize < 0 || cfg.MaxScripts < 0 || cfg.MaxTotalBytes < 0 {
		return nil, errors.New("storage: negative quota")
	}
	s := &Store{cfg: cfg, gid: -1, locks: map[string]*userLock{}}
	if cfg.Group != "" {
		gid, err := lookupGroup(cfg.Group)
		if err != nil {
			return nil, err
		}
		s.gid = gid
	}
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(root, s.dirPerm()); err != nil {
			return nil, fmt.Errorf("storage: create root: %w", err)
		}
		if err := s.fixDir(root); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("storage: root: %w", err)
	}
	return s, nil
}

func lookupGroup(g string) (int, error) {
	if n, err := strconv.Atoi(g); err == nil && n >= 0 {
		return n, nil
	}
	gr, err := user.LookupGroup(g)
	if err != nil {
		return 0, fmt.Errorf("storage: group %q: %w", g, err)
	}
	n, err := strconv.Atoi(gr.Gid)
	if err != nil {
		return 0, fmt.Errorf("storage: group %q: gid %q: %w", g, gr.Gid, err)
	}
	return n, nil
}

// Root returns the absolute root directory.
func (s *Store) Root() string { return s.cfg.Root }

func (s *Store) dirPerm() os.FileMode { return s.cfg.DirMode & fs.ModePerm }

// fixDir applies the configured mode (umask-independent) and group to a
// directory the store created.
func (s *Store) fixDir(p string) error {
	mode := s.cfg.DirMode & fs.ModePerm
	if s.cfg.DirMode&fs.ModeSetgid != 0 {
		mode |= fs.ModeSetgid
	}
	if s.gid >= 0 {
		if err := os.Lchown(p, -1, s.gid); err != nil {
			return fmt.Errorf("storage: chgrp %s: %w", p, err)
		}
	}
	if err := os.Chmod(p, mode); err != nil {
		return fmt.Errorf("storage: chmod %s: %w", p, err)
	}
	return nil
}

// UserStore is one user's script directory <root>/<domain>/<user>.
type UserStore struct {
	s      *Store
	domain string
	dir    string
}

// User returns the store of user@domain. Both parts must be single,
// non-hidden directory names (no "/", "..", NUL or control characters, not
// empty, valid UTF-8). Both are lowercased, so that sieved (whose logins
// auth.SplitLogin lowercases, like Dovecot's default %Lu) and sieve-lda
// (whatever case the MTA passes; Exim's $local_part is lowercase) reach the
// same directory. The directory is created on the first change, not here,
// so looking up a user (sieve-lda for every recipient) creates nothing.
func (s *Store) User(domain, user string) (*UserStore, error) {
	if err := validatePathPart("domain", domain); err != nil {
		return nil, err
	}
	if err := validatePathPart("user", user); err != nil {
		return nil, err
	}
	domain, user = strings.ToLower(domain), strings.ToLower(user)
	return &UserStore{s: s, domain: domain, dir: filepath.Join(s.cfg.Root, domain, user)}, nil
}

// Dir returns the user's directory.
func (u *UserStore) Dir() string { return u.dir }

// ActivePath returns the path of the "active" symlink (what Exim reads).
func (u *UserStore) ActivePath() string { return filepath.Join(u.dir, activeLink) }

// VacationDir returns the directory reserved for vacation state. The store
// creates it with the user directory (see ensureVacationDir) and never
// touches its contents.
func (u *UserStore) VacationDir() string { return filepath.Join(u.dir, vacationDir) }

func (u *UserStore) path(name string) string { return filepath.Join(u.dir, fileName(name)) }

// ScriptInfo describes one stored script.
type ScriptInfo struct {
	Name   string
	Active bool
	Size   int64 // bytes on disk
}

// List returns the user's scripts sorted by name. A user without a
// directory has none.
func (u *UserStore) List(ctx context.Context) ([]ScriptInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("storage: list: %w", err)
	}
	list, err := u.list()
	if err != nil {
		return nil, fmt.Errorf("storage: list: %w", err)
	}
	active, err := u.activeName()
	if err != nil && !ignorableActive(err) {
		return nil, fmt.Errorf("storage: list: %w", err)
	}
	for i := range list {
		list[i].Active = list[i].Name == active
	}
	return list, nil
}

func (u *UserStore) list() ([]ScriptInfo, error) {
	entries, err := os.ReadDir(u.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []ScriptInfo
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		name, ok := nameFromFile(e.Name())
		if !ok {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since ReadDir
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ScriptInfo{Name: name, Size: info.Size()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Get returns the script's content (LF line endings, Exim line hidden).
func (u *UserStore) Get(ctx context.Context, name string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("storage: get %q: %w", name, err)
	}
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("storage: get %q: %w", name, err)
	}
	b, err := readNoFollow(u.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("storage: get %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: get %q: %w", name, err)
	}
	return u.hideHeader(b), nil
}

// hideHeader turns what is on disk into what a client sees: LF line
// endings (Pigeonhole stores scripts with the CRLF the client sent) and,
// with EximCompat, no "# Sieve filter" line.
func (u *UserStore) hideHeader(b []byte) []byte {
	b = normalize(b)
	if u.s.cfg.EximCompat {
		if rest, ok := bytes.CutPrefix(b, []byte(eximHeader)); ok {
			return rest
		}
	}
	return b
}

// readNoFollow reads a script file, refusing a symlink in its place so
// that nothing outside the user directory can be read through a script name.
func readNoFollow(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s is a symlink: %w", filepath.Base(p), fs.ErrNotExist)
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file: %w", filepath.Base(p), fs.ErrNotExist)
	}
	var buf bytes.Buffer
	buf.Grow(int(st.Size()))
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// normalize turns CRLF into LF.
func normalize(b []byte) []byte {
	if !bytes.Contains(b, []byte("\r\n")) {
		return b
	}
	return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
}

// Put stores script under name, replacing an existing script of that name
// (an active script stays active and is replaced atomically). Quotas are
// enforced here because clients rarely send HAVESPACE.
func (u *UserStore) Put(ctx context.Context, name string, script []byte) error {
	if err := ValidateName(name); err != nil {
		return fmt.Errorf("storage: put %q: %w", name, err)
	}
	data := normalize(script)
	if u.s.cfg.EximCompat {
		data = append([]byte(eximHeader), data...)
	}
	unlock, err := u.lock(ctx, true)
	if err != nil {
		return fmt.Errorf("storage: put %q: %w", name, err)
	}
	defer unlock()
	if err := u.checkSpace(name, int64(len(script))); err != nil {
		return fmt.Errorf("storage: put %q: %w", name, err)
	}
	if err := u.writeAtomic(fileName(name), data); err != nil {
		return fmt.Errorf("storage: put %q: %w", name, err)
	}
	u.removeStale()
	return nil
}

// CheckSpace answers HAVESPACE: could a script of size bytes be stored
// under name (replacing a script of that name does not count the old one)?
func (u *UserStore) CheckSpace(ctx context.Context, name string, size int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storage: havespace %q: %w", name, err)
	}
	if err := ValidateName(name); err != nil {
		return fmt.Errorf("storage: havespace %q: %w", name, err)
	}
	if err := u.checkSpace(name, size); err != nil {
		return fmt.Errorf("storage: havespace %q: %w", name, err)
	}
	return nil
}

func (u *UserStore) checkSpace(name string, size int64) error {
	c := &u.s.cfg
	if size < 0 {
		return fmt.Errorf("negative size %d", size)
	}
	if c.MaxScriptSize > 0 && size > c.MaxScriptSize {
		return fmt.Errorf("%w (%d > %d bytes)", ErrQuotaMaxSize, size, c.MaxScriptSize)
	}
	if c.MaxScripts == 0 && c.MaxTotalBytes == 0 {
		return nil
	}
	list, err := u.list()
	if err != nil {
		return err
	}
	count, total := 1, size
	for _, si := range list {
		if si.Name == name {
			continue
		}
		count++
		if c.EximCompat && si.Size >= int64(len(eximHeader)) {
			// The line Put added is not the user's (a script stored
			// before the switch, without it, is undercounted by as
			// much: cheaper than reading every file).
			si.Size -= int64(len(eximHeader))
		}
		total += si.Size
	}
	if c.MaxScripts > 0 && count > c.MaxScripts {
		return fmt.Errorf("%w (at most %d)", ErrQuotaMaxScripts, c.MaxScripts)
	}
	if c.MaxTotalBytes > 0 && total > c.MaxTotalBytes {
		return fmt.Errorf("%w (%d > %d bytes)", ErrQuota, total, c.MaxTotalBytes)
	}
	return nil
}

// Delete removes a script. The active script cannot be deleted (ErrActive).
func (u *UserStore) Delete(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return fmt.Errorf("storage: delete %q: %w", name, err)
	}
	unlock, err := u.lock(ctx, false)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("storage: delete %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("storage: delete %q: %w", name, err)
	}
	defer unlock()
	if !u.isScript(name) {
		return fmt.Errorf("storage: delete %q: %w", name, ErrNotFound)
	}
	active, err := u.activeName()
	if err != nil && !ignorableActive(err) {
		return fmt.Errorf("storage: delete %q: %w", name, err)
	}
	if active == name {
		return fmt.Errorf("storage: delete %q: %w", name, ErrActive)
	}
	if err := os.Remove(u.path(name)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("storage: delete %q: %w", name, ErrNotFound)
		}
		return fmt.Errorf("storage: delete %q: %w", name, err)
	}
	if err := syncDir(u.dir); err != nil {
		return fmt.Errorf("storage: delete %q: %w", name, err)
	}
	return nil
}

// isScript reports whether name is stored as a regular file.
func (u *UserStore) isScript(name string) bool {
	st, err := os.Lstat(u.path(name))
	return err == nil && st.Mode().IsRegular()
}

// Rename renames a script; the active script stays active. Renaming onto
// an existing name, including the script's own, is ErrAlreadyExists
// (RFC 5804 section 2.11.1).
func (u *UserStore) Rename(ctx context.Context, oldName, newName string) error {
	wrap := func(err error) error { return fmt.Errorf("storage: rename %q to %q: %w", oldName, newName, err) }
	if err := ValidateName(oldName); err != nil {
		return wrap(err)
	}
	if err := ValidateName(newName); err != nil {
		return wrap(err)
	}
	unlock, err := u.lock(ctx, false)
	if errors.Is(err, fs.ErrNotExist) {
		return wrap(ErrNotFound)
	}
	if err != nil {
		return wrap(err)
	}
	defer unlock()
	if !u.isScript(oldName) {
		return wrap(ErrNotFound)
	}
	if _, err := os.Lstat(u.path(newName)); err == nil {
		return wrap(ErrAlreadyExists)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return wrap(err)
	}
	active, err := u.activeName()
	if err != nil && !ignorableActive(err) {
		return wrap(err)
	}
	if active != oldName {
		// No reader follows this name through "active": a plain rename
		// (the lock guarantees newName is still free).
		if err := os.Rename(u.path(oldName), u.path(newName)); err != nil {
			return wrap(err)
		}
		if err := syncDir(u.dir); err != nil {
			return wrap(err)
		}
		return nil
	}
	// The active script: give it the new name too, re-point "active", then
	// drop the old name, so "active" always resolves.
	if err := os.Link(u.path(oldName), u.path(newName)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return wrap(ErrAlreadyExists)
		}
		// No hard links here: copy, which keeps the same guarantee.
		b, rerr := os.ReadFile(u.path(oldName))
		if rerr != nil {
			return wrap(rerr)
		}
		if werr := u.writeAtomic(fileName(newName), b); werr != nil {
			return wrap(werr)
		}
	}
	if err := u.swapActive(fileName(newName)); err != nil {
		_ = os.Remove(u.path(newName))
		return wrap(err)
	}
	if err := os.Remove(u.path(oldName)); err != nil {
		return wrap(err)
	}
	if err := syncDir(u.dir); err != nil {
		return wrap(err)
	}
	return nil
}

// SetActive makes name the active script; "" deactivates (and is not an
// error when nothing is active).
func (u *UserStore) SetActive(ctx context.Context, name string) error {
	wrap := func(err error) error { return fmt.Errorf("storage: setactive %q: %w", name, err) }
	if name != "" {
		if err := ValidateName(name); err != nil {
			return wrap(err)
		}
	}
	unlock, err := u.lock(ctx, false)
	if errors.Is(err, fs.ErrNotExist) {
		if name == "" {
			return nil
		}
		return wrap(ErrNotFound)
	}
	if err != nil {
		return wrap(err)
	}
	defer unlock()
	st, err := os.Lstat(u.ActivePath())
	switch {
	case err == nil && st.Mode()&fs.ModeSymlink == 0:
		// Not ours (a script written there by hand): never clobber it.
		return wrap(errActiveNotLink)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return wrap(err)
	}
	if name == "" {
		if err := os.Remove(u.ActivePath()); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return wrap(err)
		}
		if err := syncDir(u.dir); err != nil {
			return wrap(err)
		}
		return nil
	}
	if !u.isScript(name) {
		return wrap(ErrNotFound)
	}
	if err := u.swapActive(fileName(name)); err != nil {
		return wrap(err)
	}
	return nil
}

// swapActive atomically points "active" at target (a file name in the user
// directory): a new symlink renamed over the old one.
func (u *UserStore) swapActive(target string) error {
	tmp := filepath.Join(u.dir, tmpLinkPrefx+randomSuffix())
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if u.s.gid >= 0 {
		if err := os.Lchown(tmp, -1, u.s.gid); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	if err := os.Rename(tmp, u.ActivePath()); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(u.dir)
}

var (
	errActiveNotLink = errors.New(`storage: "active" is not a symlink`)
	errBadActiveLink = errors.New(`storage: "active" does not point to a script in the user directory`)
)

// ignorableActive reports whether an "active" problem should make List,
// Delete and Rename treat the user as having no active script (as
// Pigeonhole does) instead of failing: SETACTIVE then repairs it.
func ignorableActive(err error) bool {
	return errors.Is(err, errActiveNotLink) || errors.Is(err, errBadActiveLink)
}

// Active returns the name of the active script, "" when none.
func (u *UserStore) Active(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("storage: active: %w", err)
	}
	name, err := u.activeName()
	if err != nil {
		return "", fmt.Errorf("storage: active: %w", err)
	}
	return name, nil
}

// activeName reads the "active" link. Accepted targets: "<name>.sieve",
// "./<name>.sieve" and an absolute path into the user directory (what
// Pigeonhole may write); anything else is an error, never followed.
func (u *UserStore) activeName() (string, error) {
	target, err := os.Readlink(u.ActivePath())
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if errors.Is(err, syscall.EINVAL) {
		return "", errActiveNotLink
	}
	if err != nil {
		return "", err
	}
	file := target
	if filepath.IsAbs(file) {
		if filepath.Dir(filepath.Clean(file)) != filepath.Clean(u.dir) {
			return "", fmt.Errorf("%w: %q", errBadActiveLink, target)
		}
		file = filepath.Base(file)
	}
	file = strings.TrimPrefix(file, "./")
	if strings.Contains(file, "/") {
		return "", fmt.Errorf("%w: %q", errBadActiveLink, target)
	}
	name, ok := nameFromFile(file)
	if !ok {
		return "", fmt.Errorf("%w: %q", errBadActiveLink, target)
	}
	return name, nil
}

// ReadActive returns the active script for delivery (Exim line hidden, so
// line numbers match what the user uploaded). ErrNoActive when no script is
// active or the link dangles. A regular file in place of the link (written
// by hand) is read as it is, with name "".
func (u *UserStore) ReadActive(ctx context.Context) (string, []byte, error) {
	for try := 0; ; try++ {
		if err := ctx.Err(); err != nil {
			return "", nil, fmt.Errorf("storage: read active: %w", err)
		}
		name, err := u.activeName()
		if errors.Is(err, errActiveNotLink) {
			b, err := readNoFollow(u.ActivePath())
			if err != nil {
				return "", nil, fmt.Errorf("storage: read active: %w", err)
			}
			return "", u.hideHeader(b), nil
		}
		if errors.Is(err, errBadActiveLink) {
			// Never followed; for delivery it is as if none were active.
			return "", nil, fmt.Errorf("storage: read active: %w: %w", ErrNoActive, err)
		}
		if err != nil {
			return "", nil, fmt.Errorf("storage: read active: %w", err)
		}
		if name == "" {
			return "", nil, fmt.Errorf("storage: read active: %w", ErrNoActive)
		}
		b, err := readNoFollow(u.path(name))
		if errors.Is(err, fs.ErrNotExist) {
			// A rename moved the link on between our two reads; look again.
			// After a few tries the link really dangles.
			if try < 3 {
				continue
			}
			return "", nil, fmt.Errorf("storage: read active: %q is missing: %w", name, ErrNoActive)
		}
		if err != nil {
			return "", nil, fmt.Errorf("storage: read active: %w", err)
		}
		return name, u.hideHeader(b), nil
	}
}

// writeAtomic writes data to file in the user directory: temp file, fsync,
// rename, fsync of the directory.
func (u *UserStore) writeAtomic(file string, data []byte) (err error) {
	f, err := os.CreateTemp(u.dir, tmpPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if u.s.gid >= 0 {
		if err = f.Chown(-1, u.s.gid); err != nil {
			return err
		}
	}
	if err = f.Chmod(u.s.cfg.FileMode); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, filepath.Join(u.dir, file)); err != nil {
		return err
	}
	return syncDir(u.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ensureDir creates <root>/<domain>/<user> with the configured mode and
// group.
func (u *UserStore) ensureDir() error {
	domainDir := filepath.Dir(u.dir)
	for _, p := range []string{domainDir, u.dir} {
		err := os.Mkdir(p, u.s.dirPerm())
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := u.s.fixDir(p); err != nil {
			return err
		}
		if err := syncDir(filepath.Dir(p)); err != nil {
			return err
		}
	}
	return u.ensureVacationDir()
}

// ensureVacationDir creates vacation/ next to the scripts. sieve-lda writes
// its state there, usually as another user than sieved (the MTA's user,
// sharing only the configured group): the user directory is not writable
// for it, so the store creates vacation/ itself, writable for that group
// (setgid, so the state files keep the group) and for nobody else. Without
// a group both programs run as one user and 0700 is enough.
func (u *UserStore) ensureVacationDir() error {
	p := u.VacationDir()
	mode := fs.FileMode(0o700)
	if u.s.gid >= 0 {
		mode = 0o770 | fs.ModeSetgid
	}
	err := os.Mkdir(p, mode&fs.ModePerm)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("storage: create %s: %w", p, err)
	}
	if u.s.gid >= 0 {
		if err := os.Lchown(p, -1, u.s.gid); err != nil {
			return fmt.Errorf("storage: chgrp %s: %w", p, err)
		}
	}
	if err := os.Chmod(p, mode); err != nil {
		// setgid only keeps the state files' group tidy; a sandbox that
		// forbids it (systemd RestrictSUIDSGID=) must not fail the upload.
		if err := os.Chmod(p, mode&fs.ModePerm); err != nil {
			return fmt.Errorf("storage: chmod %s: %w", p, err)
		}
	}
	return syncDir(u.dir)
}

// lock takes the per-user lock: first a mutex shared by the goroutines of
// this process (so they don't poll each other), then flock(2) on the lock
// file for other processes. It waits until ctx is done. With create, the
// user directory is created; without it, a missing directory is
// fs.ErrNotExist.
func (u *UserStore) lock(ctx context.Context, create bool) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if create {
		if err := u.ensureDir(); err != nil {
			return nil, err
		}
	} else if _, err := os.Stat(u.dir); err != nil {
		return nil, err
	}
	s := u.s
	s.mu.Lock()
	l := s.locks[u.dir]
	if l == nil {
		l = &userLock{ch: make(chan struct{}, 1)}
		s.locks[u.dir] = l
	}
	l.refs++
	s.mu.Unlock()
	release := func() {
		s.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(s.locks, u.dir)
		}
		s.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
	unlockMu := func() { <-l.ch; release() }

	f, err := u.openLockFile()
	if err != nil {
		unlockMu()
		return nil, fmt.Errorf("lock: %w", err)
	}
	delay := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			unlockMu()
			return nil, fmt.Errorf("lock: %w", err)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			f.Close()
			unlockMu()
			return nil, ctx.Err()
		}
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
		unlockMu()
	}, nil
}

// openLockFile opens (creating it with the configured mode and group the
// first time) the file all processes flock.
func (u *UserStore) openLockFile() (*os.File, error) {
	p := filepath.Join(u.dir, lockFile)
	const flags = os.O_RDONLY | syscall.O_CLOEXEC | syscall.O_NOFOLLOW
	f, err := os.OpenFile(p, flags|os.O_CREATE|os.O_EXCL, u.s.cfg.FileMode)
	if errors.Is(err, fs.ErrExist) {
		return os.OpenFile(p, flags, 0)
	}
	if err != nil {
		return nil, err
	}
	if u.s.gid >= 0 {
		_ = f.Chown(-1, u.s.gid)
	}
	_ = f.Chmod(u.s.cfg.FileMode)
	return f, nil
}

// staleAfter is how old a temporary file must be before Put removes it: a
// writer that crashed between create and rename left it behind.
const staleAfter = time.Hour

// removeStale deletes leftover temporary files and links. Called with the
// user lock held, so no live writer's file is touched (they are younger
// anyway).
func (u *UserStore) removeStale() {
	entries, err := os.ReadDir(u.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, tmpPrefix) && !strings.HasPrefix(n, tmpLinkPrefx) {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleAfter {
			_ = os.Remove(filepath.Join(u.dir, n))
		}
	}
}
