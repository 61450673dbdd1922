package maildir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Dovecot updates its small Maildir control files ("dovecot-keywords",
// "subscriptions") under a dotlock: it creates "<file>.lock" exclusively,
// writes the new content into it and renames it over the file. Doing the
// same here means a running Dovecot and concurrent sieve-lda processes
// never see a half-written file and never lose each other's additions.

const (
	// lockStale: a lock this old belongs to a dead process (the critical
	// section takes milliseconds); it is broken, as Dovecot breaks stale
	// dotlocks.
	lockStale = 30 * time.Second
	// lockWait bounds how long a delivery waits for a live lock; the
	// caller then does without (keywords, subscription), logged, rather
	// than delay the mail.
	lockWait = 10 * time.Second
	lockPoll = 20 * time.Millisecond
)

// ErrLockBusy is returned when a control file stayed locked for lockWait.
var ErrLockBusy = errors.New("maildir: control file is locked")

// updateLocked replaces the file at path with update(old) under a dotlock.
// update returns changed=false to leave the file untouched. A missing file
// reads as empty.
func updateLocked(ctx context.Context, path string, perm filePerm, update func(old []byte) (next []byte, changed bool, err error)) error {
	lock := path + ".lock"
	var f *os.File
	deadline := time.Now().Add(lockWait)
	for {
		var err error
		f, err = os.OpenFile(lock, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm.file)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("maildir: lock %q: %w", lock, err)
		}
		if st, err := os.Stat(lock); err == nil && time.Since(st.ModTime()) > lockStale {
			// A process died holding it; Dovecot overrides stale locks too.
			_ = os.Remove(lock)
			continue
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %q", ErrLockBusy, lock)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("maildir: lock %q: %w", lock, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(lock)
		}
	}()
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("maildir: read %q: %w", path, err)
	}
	next, changed, err := update(old)
	if err != nil || !changed {
		return err
	}
	if o := perm.owner; o != nil {
		if err := f.Chown(o.UID, o.GID); err != nil {
			return fmt.Errorf("maildir: chown %q: %w", lock, err)
		}
	}
	if _, err := f.Write(next); err != nil {
		return fmt.Errorf("maildir: write %q: %w", lock, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("maildir: fsync %q: %w", lock, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("maildir: close %q: %w", lock, err)
	}
	if err := os.Rename(lock, path); err != nil {
		return fmt.Errorf("maildir: rename %q: %w", lock, err)
	}
	done = true
	// The rename must be durable before a message names a keyword letter
	// it assigned (the caller links the message next).
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	return nil
}
