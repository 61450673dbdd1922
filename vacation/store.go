package vacation

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// The state files in a user's vacation/ directory.
const (
	stateFile  = "answered"
	lockFile   = ".lock"
	tempPrefix = ".answered.tmp-"
	stateMagic = "sieved-vacation-state 1"

	maxStateBytes   = 64 << 20
	maxStoredHandle = 200 // characters of a handle kept for display; the key covers all of it
)

// Entry is one remembered reply: Sender was answered for Handle, and is
// not answered again for that handle before Expires.
type Entry struct {
	Key     string    `json:"k"`
	Sender  string    `json:"s"`
	Handle  string    `json:"h"`
	Expires time.Time `json:"e"`
}

// Key is the store key of a sender and handle: a hash of the lower-cased
// sender and the handle (as Pigeonhole keys its duplicate database).
func Key(sender, handle string) string {
	h := sha256.New()
	h.Write([]byte(strings.ToLower(normalizeAddr(sender))))
	h.Write([]byte{0})
	h.Write([]byte(handle))
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// Store is the memory of answered senders for one user, kept in that
// user's vacation/ directory. Several processes (one sieve-lda per
// message) share it: every read-modify-write happens under an exclusive
// flock on vacation/.lock, and the state file is replaced atomically
// (write, fsync, rename, fsync the directory), so a crash leaves either
// the old or the new state. Files are 0600, the directory 0700.
type Store struct {
	dir        string
	maxEntries int
	now        func() time.Time
}

// NewStore returns the store in dir (created on first write). maxEntries
// bounds the entries kept (<= 0: 10000).
func NewStore(dir string, maxEntries int) *Store {
	if maxEntries <= 0 {
		maxEntries = 10000
	}
	return &Store{dir: dir, maxEntries: maxEntries, now: time.Now}
}

// Dir returns the directory of the store.
func (s *Store) Dir() string { return s.dir }

// Tx is a locked view of the store. Close releases the lock.
type Tx struct {
	s       *Store
	lock    *os.File
	entries map[string]Entry
}

// Lock takes the store's exclusive lock, waiting until ctx is done, and
// loads the entries.
func (s *Store) Lock(ctx context.Context) (*Tx, error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("vacation: store %q: %w", s.dir, err)
	}
	f, err := os.OpenFile(filepath.Join(s.dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("vacation: lock %q: %w", s.dir, err)
	}
	delay := time.Millisecond
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("vacation: lock %q: %w", s.dir, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("vacation: lock %q: %w", s.dir, ctx.Err())
		case <-time.After(delay):
		}
		if delay < 20*time.Millisecond {
			delay *= 2
		}
	}
	tx := &Tx{s: s, lock: f}
	if tx.entries, err = s.read(); err != nil {
		tx.Close()
		return nil, err
	}
	return tx, nil
}

// Close releases the lock.
func (tx *Tx) Close() error {
	if tx.lock == nil {
		return nil
	}
	_ = syscall.Flock(int(tx.lock.Fd()), syscall.LOCK_UN)
	err := tx.lock.Close()
	tx.lock = nil
	return err
}

// Answered reports whether sender was answered for handle and the period
// has not expired.
func (tx *Tx) Answered(sender, handle string) bool {
	e, ok := tx.entries[Key(sender, handle)]
	return ok && tx.s.now().Before(e.Expires)
}

// Mark remembers that sender was answered for handle until expires and
// writes the state.
func (tx *Tx) Mark(sender, handle string, expires time.Time) error {
	k := Key(sender, handle)
	shown := handle
	if r := []rune(shown); len(r) > maxStoredHandle {
		shown = string(r[:maxStoredHandle]) + "…"
	}
	tx.entries[k] = Entry{Key: k, Sender: strings.ToLower(normalizeAddr(sender)), Handle: shown, Expires: expires.UTC().Truncate(time.Second)}
	return tx.write()
}

// Entries returns the entries that have not expired, soonest expiry first.
func (tx *Tx) Entries() []Entry {
	now := tx.s.now()
	var out []Entry
	for _, e := range tx.entries {
		if now.Before(e.Expires) {
			out = append(out, e)
		}
	}
	sortEntries(out)
	return out
}

// Forget removes the entries for sender (case-insensitive), or all entries
// when sender is empty, and returns how many were removed.
func (tx *Tx) Forget(sender string) (int, error) {
	sender = strings.ToLower(normalizeAddr(sender))
	n := 0
	for k, e := range tx.entries {
		if sender == "" || e.Sender == sender {
			delete(tx.entries, k)
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	return n, tx.write()
}

func sortEntries(es []Entry) {
	sort.Slice(es, func(i, j int) bool {
		if !es[i].Expires.Equal(es[j].Expires) {
			return es[i].Expires.Before(es[j].Expires)
		}
		return es[i].Key < es[j].Key
	})
}

// List returns the live entries (for sievectl vacation list).
func (s *Store) List(ctx context.Context) ([]Entry, error) {
	if _, err := os.Stat(s.dir); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	tx, err := s.Lock(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Close()
	return tx.Entries(), nil
}

// Forget removes the entries of sender, or all when sender is "".
func (s *Store) Forget(ctx context.Context, sender string) (int, error) {
	if _, err := os.Stat(s.dir); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	tx, err := s.Lock(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Close()
	return tx.Forget(sender)
}

// read loads the state file. Lines that do not parse (a torn write of an
// older, non-atomic version, manual edits) are skipped rather than making
// every delivery fail.
func (s *Store) read() (map[string]Entry, error) {
	m := map[string]Entry{}
	f, err := os.Open(filepath.Join(s.dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vacation: read state: %w", err)
	}
	defer f.Close()
	// The file is bounded by maxEntries; the cap only guards against a
	// file that is not ours.
	b, err := io.ReadAll(io.LimitReader(f, maxStateBytes))
	if err != nil {
		return nil, fmt.Errorf("vacation: read state: %w", err)
	}
	for i, line := range bytes.Split(b, []byte("\n")) {
		if i == 0 && string(line) == stateMagic {
			continue
		}
		var e Entry
		if json.Unmarshal(line, &e) != nil || e.Key == "" {
			continue
		}
		m[e.Key] = e
	}
	return m, nil
}

// write prunes expired entries, bounds the count and replaces the state
// file atomically.
func (tx *Tx) write() error {
	s := tx.s
	now := s.now()
	live := make([]Entry, 0, len(tx.entries))
	for k, e := range tx.entries {
		if now.Before(e.Expires) {
			live = append(live, e)
		} else {
			delete(tx.entries, k)
		}
	}
	sortEntries(live)
	if over := len(live) - s.maxEntries; over > 0 {
		for _, e := range live[:over] {
			delete(tx.entries, e.Key)
		}
		live = live[over:]
	}
	// Left-overs of a crash between create and rename; we hold the lock,
	// so no other writer is using them.
	if old, _ := filepath.Glob(filepath.Join(s.dir, tempPrefix+"*")); len(old) > 0 {
		for _, p := range old {
			_ = os.Remove(p)
		}
	}
	tmp, err := os.CreateTemp(s.dir, tempPrefix)
	if err != nil {
		return fmt.Errorf("vacation: write state: %w", err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	w.WriteString(stateMagic + "\n")
	for _, e := range live {
		b, _ := json.Marshal(e)
		w.Write(b)
		w.WriteByte('\n')
	}
	err = w.Flush()
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(s.dir, stateFile))
	}
	if err != nil {
		return fmt.Errorf("vacation: write state: %w", err)
	}
	if d, err := os.Open(s.dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
