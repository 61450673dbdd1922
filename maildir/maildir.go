// Package maildir delivers messages durably into a Dovecot-compatible
// Maildir++ (cr.yp.to/proto/maildir.html, Courier's Maildir++ folders,
// Dovecot's "dovecot-keywords" and "subscriptions" files).
//
// Durability. A delivery is acknowledged to the MTA only after:
//  1. the message is written to tmp/<unique> (created O_EXCL) and the file
//     is fsync'ed, so its bytes are on disk;
//  2. it is hard-linked into each folder's new/ (or cur/ with an info
//     suffix when it carries flags) under its final name. link(2) is atomic:
//     a reader of new/ or cur/ sees the complete file or nothing, whatever
//     the moment the process is killed;
//  3. each new/ or cur/ directory that received a link is fsync'ed, so the
//     directory entry survives a crash;
//  4. the tmp/ name is removed last (a leftover in tmp/ is invisible to
//     IMAP and cleaned by Dovecot after 36 hours).
//
// go-maildir (github.com/emersion/go-maildir) creates the tmp/new/cur
// directories; its Delivery and Dir.Create neither fsync the file nor the
// directory and rename into a fixed place, and its unique-name generator is
// unexported, so the write/link/fsync path and the Dovecot-style unique
// name are here.
package maildir

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	gomaildir "github.com/emersion/go-maildir"
)

// MaildirFolderFile marks a Maildir++ subfolder (Courier, Dovecot).
const MaildirFolderFile = "maildirfolder"

type filePerm struct {
	dir, file os.FileMode
	owner     *Owner
}

// chown gives path to the owner, when one is set.
func (p filePerm) chown(paths ...string) error {
	if p.owner == nil {
		return nil
	}
	for _, path := range paths {
		if err := os.Lchown(path, p.owner.UID, p.owner.GID); err != nil {
			return err
		}
	}
	return nil
}

// Owner is a numeric user and group.
type Owner struct{ UID, GID int }

// Maildir is a user's Maildir++ root.
type Maildir struct {
	Root string
	// DirPerm and FilePerm are used for what Deliver creates; defaults
	// 0700 and 0600 like Dovecot.
	DirPerm, FilePerm os.FileMode
	// Owner, when set, owns every file and directory created (a delivery
	// agent started as root must not leave root-owned mail that the IMAP
	// server, running as the mail user, cannot read).
	Owner *Owner
}

func (m *Maildir) perm() filePerm {
	p := filePerm{dir: m.DirPerm, file: m.FilePerm, owner: m.Owner}
	if p.dir == 0 {
		p.dir = 0o700
	}
	if p.file == 0 {
		p.file = 0o600
	}
	return p
}

// Init creates the root's tmp/, new/ and cur/ (and the root itself).
// Directories it creates are made durable (their parents fsync'ed): a
// message linked into a new/ that a crash could take away is lost.
func (m *Maildir) Init() error {
	missing := missingDirs(m.Root)
	if err := os.MkdirAll(m.Root, m.perm().dir); err != nil {
		return fmt.Errorf("maildir: init %q: %w", m.Root, err)
	}
	if err := gomaildir.Dir(m.Root).Init(); err != nil {
		return fmt.Errorf("maildir: init %q: %w", m.Root, err)
	}
	if err := m.perm().chown(m.Root, filepath.Join(m.Root, "tmp"), filepath.Join(m.Root, "new"), filepath.Join(m.Root, "cur")); err != nil {
		return fmt.Errorf("maildir: init %q: %w", m.Root, err)
	}
	// Ancestors MkdirAll made (a new domain's directory) too, or the IMAP
	// server, running as the owner, could not reach the Maildir.
	if err := m.perm().chown(missing...); err != nil {
		return fmt.Errorf("maildir: init %q: %w", m.Root, err)
	}
	if err := syncParents(missing); err != nil {
		return fmt.Errorf("maildir: init %q: %w", m.Root, err)
	}
	return nil
}

// missingDirs lists the directories Init or Create will have to make for
// the Maildir at dir: dir's tmp/, new/ and cur/, dir itself and its missing
// ancestors.
func missingDirs(dir string) []string {
	var out []string
	for _, sub := range []string{"tmp", "new", "cur"} {
		if _, err := os.Lstat(filepath.Join(dir, sub)); err != nil {
			out = append(out, filepath.Join(dir, sub))
		}
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || filepath.Dir(d) == d {
			break
		}
		out = append(out, d)
	}
	return out
}

// syncParents fsyncs the parent directory of each of dirs (once each), so
// that the entries naming them are durable.
func syncParents(dirs []string) error {
	done := map[string]bool{}
	for _, d := range dirs {
		p := filepath.Dir(d)
		if done[p] {
			continue
		}
		done[p] = true
		if _, err := os.Lstat(d); err != nil {
			continue // not created after all
		}
		// A parent we may write but not read (mode -wx) cannot be
		// opened to fsync it: go on rather than defer every delivery.
		if err := syncDir(p); err != nil && !errors.Is(err, fs.ErrPermission) {
			return err
		}
	}
	return nil
}

// Path returns the directory of folder f.
func (m *Maildir) Path(f Folder) string {
	if f.IsInbox() {
		return m.Root
	}
	return filepath.Join(m.Root, f.Dir)
}

// Exists reports whether f exists as a complete Maildir: its cur/, new/ and
// tmp/ directories and, for a subfolder, the maildirfolder marker, which
// Create writes last (so a Create interrupted by a crash is redone).
func (m *Maildir) Exists(f Folder) (bool, error) {
	need := []string{"tmp", "new", "cur"}
	if !f.IsInbox() {
		need = append(need, MaildirFolderFile)
	}
	for _, n := range need {
		_, err := os.Stat(filepath.Join(m.Path(f), n))
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("maildir: stat %q: %w", f.Name, err)
		}
	}
	return true, nil
}

// Create makes folder f (tmp/, new/, cur/ and the maildirfolder marker).
// It is idempotent.
func (m *Maildir) Create(ctx context.Context, f Folder) error {
	if f.IsInbox() {
		return m.Init()
	}
	p := m.perm()
	dir := m.Path(f)
	missing := missingDirs(dir)
	if err := gomaildir.Dir(dir).Init(); err != nil {
		return fmt.Errorf("maildir: create %q: %w", f.Name, err)
	}
	mf, err := os.OpenFile(filepath.Join(dir, MaildirFolderFile), os.O_WRONLY|os.O_CREATE, p.file)
	if err != nil {
		return fmt.Errorf("maildir: create %q: %w", f.Name, err)
	}
	mf.Close()
	if err := p.chown(dir, filepath.Join(dir, "tmp"), filepath.Join(dir, "new"), filepath.Join(dir, "cur"), filepath.Join(dir, MaildirFolderFile)); err != nil {
		return fmt.Errorf("maildir: create %q: %w", f.Name, err)
	}
	// The folder's own tmp/, new/ and cur/ entries and its entry in the
	// root (with the maildirfolder marker) must survive a crash before a
	// message is linked into it.
	if err := syncParents(missing); err != nil {
		return fmt.Errorf("maildir: create %q: %w", f.Name, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("maildir: create %q: %w", f.Name, err)
	}
	if err := syncDir(m.Root); err != nil {
		return fmt.Errorf("maildir: create %q: %w", f.Name, err)
	}
	return nil
}

// Subscribe adds f to the Maildir's subscriptions file (Dovecot format),
// so that mail clients show it.
func (m *Maildir) Subscribe(ctx context.Context, f Folder) error {
	return subscribe(ctx, m.Root, m.perm(), f)
}

// Spool is a message written and fsync'ed in the root's tmp/, ready to be
// linked into folders.
type Spool struct {
	m     *Maildir
	key   string
	path  string
	size  int64
	vsize int64 // size with CRLF line ends, Dovecot's W= (RFC822.SIZE)
	done  bool
}

// vsizeWriter counts bare LFs, which IMAP's CRLF form turns into two bytes.
type vsizeWriter struct {
	w      io.Writer
	bareLF int64
	lastCR bool
}

func (v *vsizeWriter) Write(p []byte) (int, error) {
	for i, c := range p {
		if c == '\n' && !(i == 0 && v.lastCR || i > 0 && p[i-1] == '\r') {
			v.bareLF++
		}
	}
	if len(p) > 0 {
		v.lastCR = p[len(p)-1] == '\r'
	}
	return v.w.Write(p)
}

// ctxReader stops a copy when ctx is done (checked per read).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Spool streams r into tmp/ with a fixed-size buffer (constant memory
// whatever the message size) and fsyncs it. On error nothing is left
// behind.
func (m *Maildir) Spool(ctx context.Context, r io.Reader) (*Spool, error) {
	key, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("maildir: spool: %w", err)
	}
	path := filepath.Join(m.Root, "tmp", key)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, m.perm().file)
	if err != nil {
		return nil, fmt.Errorf("maildir: spool: %w", err)
	}
	fail := func(op string, err error) (*Spool, error) {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("maildir: spool: %s: %w", op, err)
	}
	if o := m.Owner; o != nil {
		if err := f.Chown(o.UID, o.GID); err != nil {
			return fail("chown", err)
		}
	}
	buf := make([]byte, 64<<10)
	vw := &vsizeWriter{w: f}
	n, err := io.CopyBuffer(vw, ctxReader{ctx, r}, buf)
	if err != nil {
		return fail("copy", err)
	}
	if err := syncFile(f); err != nil {
		return fail("fsync", err)
	}
	if err := f.Close(); err != nil {
		return fail("close", err)
	}
	return &Spool{m: m, key: key, path: path, size: n, vsize: n + vw.bareLF}, nil
}

// Size is the message size in bytes.
func (s *Spool) Size() int64 { return s.size }

// Open opens the spooled message for reading.
func (s *Spool) Open() (*os.File, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, fmt.Errorf("maildir: open spool: %w", err)
	}
	return f, nil
}

// Remove deletes the tmp/ file; links already made stay.
func (s *Spool) Remove() error {
	if s.done {
		return nil
	}
	s.done = true
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("maildir: remove spool: %w", err)
	}
	return nil
}

// Delivered describes one stored copy.
type Delivered struct {
	Folder Folder
	Path   string
	// Dropped are keywords that did not fit the folder's 26 letters.
	Dropped []string
}

// Deliver stores the spooled message in folder f with flags (info letters
// and keywords from SplitFlags). The folder must exist (see Create). The
// copy is durable when Deliver returns nil.
func (s *Spool) Deliver(ctx context.Context, f Folder, flags Flags) (Delivered, error) {
	if err := ctx.Err(); err != nil {
		return Delivered{}, fmt.Errorf("maildir: deliver %q: %w", f.Name, err)
	}
	dir := s.m.Path(f)
	info := flags.Info
	res := Delivered{Folder: f}
	if len(flags.Keywords) > 0 {
		letters, full, err := keywordLetters(ctx, dir, s.m.perm(), flags.Keywords)
		if err != nil {
			// Keywords are metadata: file the message without them rather
			// than not at all; the caller logs Dropped.
			res.Dropped = flags.Keywords
		} else {
			info += letters
			res.Dropped = full
		}
	}
	// S= and W= let Dovecot answer RFC822.SIZE without reading the file.
	sub, name := "new", s.key+",S="+strconv.FormatInt(s.size, 10)+",W="+strconv.FormatInt(s.vsize, 10)
	if info != "" {
		b := []byte(info)
		sort.Slice(b, func(i, j int) bool { return b[i] < b[j] })
		sub, name = "cur", name+":2,"+dedup(b)
	}
	dst := filepath.Join(dir, sub, name)
	if err := os.Link(s.path, dst); err != nil {
		if !errors.Is(err, syscall.EXDEV) {
			return Delivered{}, fmt.Errorf("maildir: deliver %q: %w", f.Name, err)
		}
		// The folder is on another file system (a symlinked folder):
		// copy through its own tmp/, with the same fsync discipline.
		if err := s.copyInto(ctx, dir, dst); err != nil {
			return Delivered{}, fmt.Errorf("maildir: deliver %q: %w", f.Name, err)
		}
	}
	if err := syncDir(filepath.Join(dir, sub)); err != nil {
		os.Remove(dst)
		return Delivered{}, fmt.Errorf("maildir: deliver %q: %w", f.Name, err)
	}
	res.Path = dst
	return res, nil
}

func (s *Spool) copyInto(ctx context.Context, dir, dst string) error {
	src, err := s.Open()
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := filepath.Join(dir, "tmp", s.key)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, s.m.perm().file)
	if err != nil {
		return err
	}
	if o := s.m.Owner; o != nil {
		err = f.Chown(o.UID, o.GID)
	}
	if err == nil {
		_, err = io.CopyBuffer(f, ctxReader{ctx, src}, make([]byte, 64<<10))
	}
	if err == nil {
		err = syncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func dedup(b []byte) string {
	out := b[:0]
	for i, c := range b {
		if i == 0 || c != b[i-1] {
			out = append(out, c)
		}
	}
	return string(out)
}

// syncFile fsyncs a message file before it is linked or renamed into
// place. A variable so that tests can see which files were synced.
var syncFile = (*os.File).Sync

// syncDir fsyncs a directory so that entries created in it are durable.
// A variable so that tests can see which directories were synced.
var syncDir = func(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %q: %w", dir, err)
	}
	return nil
}

var keyCounter atomic.Int64

// newKey returns a unique Maildir name in Dovecot's style:
// <seconds>.M<microseconds>P<pid>Q<counter>R<random>.<host>.
func newKey() (string, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	host = strings.NewReplacer("/", `\057`, ":", `\072`, ",", `\054`).Replace(host)
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	now := time.Now()
	return fmt.Sprintf("%d.M%dP%dQ%dR%s.%s", now.Unix(), now.Nanosecond()/1000,
		os.Getpid(), keyCounter.Add(1), hex.EncodeToString(rnd[:]), host), nil
}
