package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

func newUser(t *testing.T, cfg Config) *UserStore {
	t.Helper()
	if cfg.Root == "" {
		cfg.Root = t.TempDir()
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.User("example.org", "alice")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"main", true},
		{"my script", true},
		{"Spam-Filter_2", true},
		{"größe", true},
		{"日本語", true},
		{"a\"b\\c", true},
		{"active", true},   // stored as active.sieve, never the link
		{"vacation", true}, // stored as vacation.sieve, never the directory
		{"roundcube", true},
		{"x.sieve", true},
		{strings.Repeat("a", 249), true},
		{"", false},
		{".hidden", false},
		{".", false},
		{"..", false},
		{"../x", false},
		{"a/b", false},
		{"/etc/passwd", false},
		{"nul\x00", false},
		{"tab\there", false},
		{"nl\n", false},
		{"cr\r", false},
		{"del\x7f", false},
		{"c1\u0085", false},
		{"c1\u009f", false},
		{"ls\u2028", false},
		{"ps\u2029", false},
		{"bad\xff", false},
		{"\xc3", false},
		{strings.Repeat("a", 250), false}, // file name > 255 bytes
		{strings.Repeat("é", 124), true},  // 248 bytes
		{strings.Repeat("é", 125), false}, // 250 bytes
		{strings.Repeat("a", 257), false}, // > 256 characters
	} {
		err := ValidateName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v, does not wrap ErrInvalidName", tc.name, err)
		}
	}
}

func TestUserPathParts(t *testing.T) {
	s, err := New(Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		domain, user string
		ok           bool
		dir          string
	}{
		{"example.org", "alice", true, "example.org/alice"},
		{"Example.ORG", "alice", true, "example.org/alice"},
		{"example.org", "Alice.Smith+tag", true, "example.org/alice.smith+tag"},
		{"EXAMPLE.org", "ÉLODIE", true, "example.org/élodie"},
		{"example.org", "al\xffice", false, ""},
		{"", "alice", false, ""},
		{"example.org", "", false, ""},
		{"..", "alice", false, ""},
		{"example.org", "..", false, ""},
		{"example.org", ".", false, ""},
		{"example.org", ".hidden", false, ""},
		{"a/b", "alice", false, ""},
		{"example.org", "a/../../b", false, ""},
		{"example.org", "al\x00ice", false, ""},
		{"example.org", `a\b`, false, ""},
		{"exa\nmple", "alice", false, ""},
	} {
		u, err := s.User(tc.domain, tc.user)
		if (err == nil) != tc.ok {
			t.Errorf("User(%q, %q) err = %v, want ok=%v", tc.domain, tc.user, err, tc.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidUser) {
				t.Errorf("User(%q, %q) = %v, not ErrInvalidUser", tc.domain, tc.user, err)
			}
			continue
		}
		if want := filepath.Join(s.Root(), tc.dir); u.Dir() != want {
			t.Errorf("User(%q, %q).Dir() = %q, want %q", tc.domain, tc.user, u.Dir(), want)
		}
	}
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	u := newUser(t, Config{})

	// A user without a directory: nothing, and no directory is created.
	if l, err := u.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("List on new user = %v, %v", l, err)
	}
	if _, err := os.Stat(u.Dir()); !os.IsNotExist(err) {
		t.Fatalf("List created the user directory: %v", err)
	}
	if _, _, err := u.ReadActive(ctx); !errors.Is(err, ErrNoActive) {
		t.Fatalf("ReadActive on new user = %v, want ErrNoActive", err)
	}
	if err := u.SetActive(ctx, ""); err != nil {
		t.Fatalf(`SetActive("") with nothing active = %v`, err)
	}
	for _, op := range []struct {
		name string
		err  error
		want error
	}{
		{"get", func() error { _, err := u.Get(ctx, "x"); return err }(), ErrNotFound},
		{"delete", u.Delete(ctx, "x"), ErrNotFound},
		{"rename", u.Rename(ctx, "x", "y"), ErrNotFound},
		{"setactive", u.SetActive(ctx, "x"), ErrNotFound},
		{"put invalid", u.Put(ctx, "../x", []byte("keep;")), ErrInvalidName},
	} {
		if !errors.Is(op.err, op.want) {
			t.Errorf("%s on empty store = %v, want %v", op.name, op.err, op.want)
		}
	}

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(u.Put(ctx, "main", []byte("require \"fileinto\";\r\nfileinto \"x\";\r\n")))
	must(u.Put(ctx, "größe", []byte("keep;\n")))
	b, err := u.Get(ctx, "main")
	must(err)
	if string(b) != "require \"fileinto\";\nfileinto \"x\";\n" {
		t.Fatalf("Get = %q, want LF line endings", b)
	}
	onDisk, err := os.ReadFile(filepath.Join(u.Dir(), "main.sieve"))
	must(err)
	if !bytes.Equal(onDisk, b) {
		t.Fatalf("on disk %q, Get %q", onDisk, b)
	}

	must(u.SetActive(ctx, "main"))
	if target, err := os.Readlink(u.ActivePath()); err != nil || target != "main.sieve" {
		t.Fatalf("active link = %q, %v; want relative main.sieve", target, err)
	}
	list, err := u.List(ctx)
	must(err)
	want := []ScriptInfo{{Name: "größe", Size: 6}, {Name: "main", Active: true, Size: int64(len(b))}}
	if !reflect.DeepEqual(list, want) {
		t.Fatalf("List = %+v, want %+v", list, want)
	}
	if err := u.Delete(ctx, "main"); !errors.Is(err, ErrActive) {
		t.Fatalf("Delete active = %v, want ErrActive", err)
	}
	if err := u.Rename(ctx, "main", "größe"); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("Rename onto existing = %v, want ErrAlreadyExists", err)
	}
	must(u.Rename(ctx, "main", "primary"))
	if a, err := u.Active(ctx); err != nil || a != "primary" {
		t.Fatalf("Active after rename = %q, %v", a, err)
	}
	if _, err := u.Get(ctx, "main"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old name after rename: %v", err)
	}
	name, got, err := u.ReadActive(ctx)
	must(err)
	if name != "primary" || !bytes.Equal(got, b) {
		t.Fatalf("ReadActive = %q, %q", name, got)
	}
	must(u.Rename(ctx, "größe", "other"))
	if a, _ := u.Active(ctx); a != "primary" {
		t.Fatalf("renaming an inactive script changed active to %q", a)
	}
	must(u.SetActive(ctx, "other"))
	must(u.Delete(ctx, "primary"))
	must(u.SetActive(ctx, ""))
	if _, err := os.Lstat(u.ActivePath()); !os.IsNotExist(err) {
		t.Fatalf("active link still there after deactivation: %v", err)
	}
	must(u.Delete(ctx, "other"))
	if l, _ := u.List(ctx); len(l) != 0 {
		t.Fatalf("List after deleting all = %v", l)
	}
	// Names that look like our own files are ordinary scripts.
	for _, n := range []string{"active", "vacation"} {
		must(u.Put(ctx, n, []byte("keep;")))
		must(u.SetActive(ctx, n))
		if a, _ := u.Active(ctx); a != n {
			t.Fatalf("Active = %q, want %q", a, n)
		}
	}
	if st, err := os.Lstat(u.ActivePath()); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("active is no longer a symlink: %v", err)
	}
	// Only the scripts, the link, the lock file and the vacation state
	// directory: no temp files left.
	ents, _ := os.ReadDir(u.Dir())
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if got, want := strings.Join(names, " "), ".lock active active.sieve vacation vacation.sieve"; got != want {
		t.Fatalf("directory holds %q, want %q", got, want)
	}
}

func TestStaleTempFilesRemoved(t *testing.T) {
	ctx := context.Background()
	u := newUser(t, Config{})
	if err := u.Put(ctx, "a", []byte("keep;")); err != nil {
		t.Fatal(err)
	}
	old, fresh := filepath.Join(u.Dir(), tmpPrefix+"crashed"), filepath.Join(u.Dir(), tmpLinkPrefx+"inflight")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-2 * staleAfter)
	os.Chtimes(old, long, long)
	if err := u.Put(ctx, "b", []byte("keep;")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("stale temp file kept: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("recent temp file removed: %v", err)
	}
}

func TestQuota(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		cfg      Config
		existing map[string]int
		put      string
		size     int
		want     error
	}{
		{"unlimited", Config{}, map[string]int{"a": 100}, "b", 1 << 20, nil},
		{"max size ok", Config{MaxScriptSize: 10}, nil, "a", 10, nil},
		{"max size", Config{MaxScriptSize: 10}, nil, "a", 11, ErrQuotaMaxSize},
		{"max scripts", Config{MaxScripts: 2}, map[string]int{"a": 1, "b": 1}, "c", 1, ErrQuotaMaxScripts},
		{"max scripts replace", Config{MaxScripts: 2}, map[string]int{"a": 1, "b": 1}, "b", 1, nil},
		{"total", Config{MaxTotalBytes: 10}, map[string]int{"a": 6}, "b", 5, ErrQuota},
		{"total exact", Config{MaxTotalBytes: 10}, map[string]int{"a": 6}, "b", 4, nil},
		{"total replace", Config{MaxTotalBytes: 10}, map[string]int{"a": 6}, "a", 10, nil},
		{"size before count", Config{MaxScriptSize: 5, MaxScripts: 1}, map[string]int{"a": 1}, "b", 6, ErrQuotaMaxSize},
		// The "# Sieve filter" line exim_compat adds on disk is not the
		// user's: it does not count.
		{"total exim exact", Config{MaxTotalBytes: 10, EximCompat: true}, map[string]int{"a": 6}, "b", 4, nil},
		{"total exim", Config{MaxTotalBytes: 10, EximCompat: true}, map[string]int{"a": 6}, "b", 5, ErrQuota},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUser(t, tc.cfg)
			for n, sz := range tc.existing {
				if err := u.Put(ctx, n, bytes.Repeat([]byte("#"), sz)); err != nil {
					t.Fatal(err)
				}
			}
			err := u.CheckSpace(ctx, tc.put, int64(tc.size))
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("CheckSpace = %v, want %v", err, tc.want)
			}
			err = u.Put(ctx, tc.put, bytes.Repeat([]byte("#"), tc.size))
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Put = %v, want %v", err, tc.want)
			}
			if tc.want != nil {
				for _, other := range []error{ErrQuotaMaxSize, ErrQuotaMaxScripts, ErrQuota} {
					if other != tc.want && errors.Is(err, other) {
						t.Fatalf("Put = %v also matches %v", err, other)
					}
				}
				if _, ok := tc.existing[tc.put]; !ok {
					if _, err := u.Get(ctx, tc.put); !errors.Is(err, ErrNotFound) {
						t.Fatalf("refused script was stored: %v", err)
					}
				}
			}
		})
	}
}

func TestEximCompat(t *testing.T) {
	ctx := context.Background()
	u := newUser(t, Config{EximCompat: true})
	for _, script := range []string{"keep;\r\n", "# Sieve filter\nkeep;\n", ""} {
		if err := u.Put(ctx, "s", []byte(script)); err != nil {
			t.Fatal(err)
		}
		if err := u.SetActive(ctx, "s"); err != nil {
			t.Fatal(err)
		}
		disk, _ := os.ReadFile(filepath.Join(u.Dir(), "s.sieve"))
		lf := strings.ReplaceAll(script, "\r\n", "\n")
		if string(disk) != "# Sieve filter\n"+lf {
			t.Errorf("on disk %q, want Exim line + %q", disk, lf)
		}
		// Exim reads through the link.
		viaLink, _ := os.ReadFile(u.ActivePath())
		if !bytes.HasPrefix(viaLink, []byte("# Sieve filter\n")) {
			t.Errorf("active reads %q", viaLink)
		}
		got, err := u.Get(ctx, "s")
		if err != nil || string(got) != lf {
			t.Errorf("Get = %q, %v; want %q", got, err, lf)
		}
		_, got, err = u.ReadActive(ctx)
		if err != nil || string(got) != lf {
			t.Errorf("ReadActive = %q, %v; want %q", got, err, lf)
		}
	}
	// A script written without the switch (or by Pigeonhole) is returned whole.
	if err := os.WriteFile(filepath.Join(u.Dir(), "old.sieve"), []byte("stop;\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := u.Get(ctx, "old"); string(got) != "stop;\n" {
		t.Errorf("Get old = %q", got)
	}
}

func TestModesAndGroup(t *testing.T) {
	ctx := context.Background()
	old := umask(0o077) // a strict umask must not change the configured modes
	defer umask(old)
	gid := otherGroup(t)
	u := newUser(t, Config{FileMode: 0o640, DirMode: 0o750, Group: strconv.Itoa(gid)})
	if err := u.Put(ctx, "s", []byte("keep;")); err != nil {
		t.Fatal(err)
	}
	if err := u.SetActive(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		mode os.FileMode
	}{
		{filepath.Join(u.Dir(), "s.sieve"), 0o640},
		{filepath.Join(u.Dir(), lockFile), 0o640},
		{u.Dir(), 0o750 | os.ModeDir},
		{filepath.Dir(u.Dir()), 0o750 | os.ModeDir},
		// sieve-lda, running as the MTA's user in that group, writes
		// its vacation state here.
		{u.VacationDir(), 0o770 | os.ModeDir | os.ModeSetgid},
	} {
		st, err := os.Stat(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != tc.mode {
			t.Errorf("%s mode %v, want %v", tc.path, st.Mode(), tc.mode)
		}
		if g := fileGID(st); g != gid {
			t.Errorf("%s gid %d, want %d", tc.path, g, gid)
		}
	}
	// The link Exim follows carries the group too.
	if st, err := os.Lstat(u.ActivePath()); err != nil || fileGID(st) != gid {
		t.Errorf("active link: %v, gid want %d", err, gid)
	}
	if _, err := New(Config{Root: t.TempDir(), Group: "no-such-group-sieved"}); err == nil {
		t.Error("New with an unknown group succeeded")
	}

	// Without a group both programs run as one user: private.
	solo := newUser(t, Config{DirMode: 0o750})
	if err := solo.Put(ctx, "s", []byte("keep;")); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(solo.VacationDir()); err != nil || st.Mode() != 0o700|os.ModeDir {
		t.Errorf("vacation dir without a group: %v, %v; want drwx------", st, err)
	}
}

// otherGroup returns a group the process may give its files other than the
// one they get anyway, so that a store that forgot to chgrp fails the test:
// any gid as root, else a supplementary group.
func otherGroup(t *testing.T) int {
	egid := os.Getegid()
	if os.Geteuid() == 0 {
		return egid + 4242
	}
	groups, _ := os.Getgroups()
	for _, g := range groups {
		if g != egid {
			return g
		}
	}
	t.Skip("no group other than the primary one to chgrp to")
	return 0
}

// A directory Dovecot Pigeonhole wrote (sieve = file:<root>/%d/%n;
// active=<root>/%d/%n/active): scripts, compiled .svbin files, tmp/, dot
// files. We read it as it is.
func TestPigeonholeDirectory(t *testing.T) {
	ctx := context.Background()
	for _, target := range []string{"roundcube.sieve", "./roundcube.sieve", "ABS"} {
		t.Run(target, func(t *testing.T) {
			u := newUser(t, Config{})
			d := u.Dir()
			if err := os.MkdirAll(filepath.Join(d, "tmp"), 0o700); err != nil {
				t.Fatal(err)
			}
			files := map[string]string{
				"roundcube.sieve":     "require [\"fileinto\"];\r\nfileinto \"Junk\";\r\n", // Pigeonhole keeps CRLF
				"roundcube.svbin":     "\x00binary",
				"managesieve.sieve":   "keep;\n",
				".dovecot.lda-dupes":  "x",
				"tmp/foo.sieve_12345": "partial",
				"notes.txt":           "x",
				".hidden.sieve":       "x",
			}
			for n, c := range files {
				if err := os.WriteFile(filepath.Join(d, n), []byte(c), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink("managesieve.sieve", filepath.Join(d, "link.sieve")); err != nil {
				t.Fatal(err)
			}
			if target == "ABS" {
				target = filepath.Join(d, "roundcube.sieve")
			}
			if err := os.Symlink(target, filepath.Join(d, "active")); err != nil {
				t.Fatal(err)
			}
			list, err := u.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := []ScriptInfo{{Name: "managesieve", Size: 6}, {Name: "roundcube", Active: true, Size: int64(len(files["roundcube.sieve"]))}}
			if !reflect.DeepEqual(list, want) {
				t.Fatalf("List = %+v, want %+v", list, want)
			}
			name, b, err := u.ReadActive(ctx)
			if err != nil || name != "roundcube" || string(b) != "require [\"fileinto\"];\nfileinto \"Junk\";\n" {
				t.Fatalf("ReadActive = %q, %q, %v", name, b, err)
			}
			if b, err := u.Get(ctx, "roundcube"); err != nil || bytes.Contains(b, []byte("\r")) {
				t.Fatalf("Get = %q, %v; want LF line endings", b, err)
			}
			if _, err := u.Get(ctx, "link"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get through a symlinked script = %v, want ErrNotFound", err)
			}
			if err := u.SetActive(ctx, "managesieve"); err != nil {
				t.Fatal(err)
			}
			if a, _ := u.Active(ctx); a != "managesieve" {
				t.Fatalf("Active = %q", a)
			}
		})
	}
}

func TestActiveLinkOutside(t *testing.T) {
	ctx := context.Background()
	u := newUser(t, Config{})
	if err := u.Put(ctx, "x", []byte("keep;")); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(filepath.Dir(u.Dir()), "secret.sieve")
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"../secret.sieve", secret, "sub/x.sieve", "x.svbin", ".x.sieve"} {
		os.Remove(u.ActivePath())
		if err := os.Symlink(target, u.ActivePath()); err != nil {
			t.Fatal(err)
		}
		if _, b, err := u.ReadActive(ctx); !errors.Is(err, ErrNoActive) {
			t.Errorf("ReadActive via %q = %q, %v; want ErrNoActive", target, b, err)
		}
		if _, err := u.Active(ctx); err == nil {
			t.Errorf("Active with active -> %q succeeded", target)
		}
		// Listing still works (nothing active), and SETACTIVE repairs it.
		if l, err := u.List(ctx); err != nil || len(l) != 1 || l[0].Active {
			t.Errorf("List with active -> %q = %+v, %v", target, l, err)
		}
	}
	if err := u.SetActive(ctx, "x"); err != nil {
		t.Errorf("SetActive over a bad link: %v", err)
	}
	// A dangling link: no active script for delivery.
	os.Remove(u.ActivePath())
	os.Symlink("gone.sieve", u.ActivePath())
	if _, _, err := u.ReadActive(ctx); !errors.Is(err, ErrNoActive) {
		t.Errorf("ReadActive dangling = %v, want ErrNoActive", err)
	}
	// A regular file in place of the link is read but never clobbered.
	os.Remove(u.ActivePath())
	os.WriteFile(u.ActivePath(), []byte("discard;"), 0o600)
	if n, b, err := u.ReadActive(ctx); err != nil || n != "" || string(b) != "discard;" {
		t.Errorf("ReadActive regular file = %q %q %v", n, b, err)
	}
	if err := u.SetActive(ctx, "x"); err == nil {
		t.Error("SetActive replaced a regular active file")
	}
	if b, _ := os.ReadFile(u.ActivePath()); string(b) != "discard;" {
		t.Errorf("active file changed to %q", b)
	}
}

// script builds a script whose completeness a reader can check: it begins
// and ends with a marker naming its version.
func script(v int) []byte {
	head := fmt.Sprintf("# begin %d\n", v)
	return []byte(head + strings.Repeat("# padding line to make writes non-trivial\n", 200) + fmt.Sprintf("# end %d\n", v))
}

func checkScript(b []byte) error {
	var v int
	if _, err := fmt.Sscanf(string(b), "# begin %d\n", &v); err != nil {
		return fmt.Errorf("no begin marker in %d bytes", len(b))
	}
	if !bytes.Equal(b, script(v)) {
		return fmt.Errorf("version %d is incomplete (%d bytes)", v, len(b))
	}
	return nil
}

// Many writers (two Store values, as two processes would have: they share
// only the flock) replace, activate and rename scripts while readers follow
// "active" like an MTA. "active" must always resolve to a complete script.
func TestConcurrentActivation(t *testing.T) {
	const writers, rounds = 6, 12
	ctx := context.Background()
	root := t.TempDir()
	var users []*UserStore
	for range 2 {
		s, err := New(Config{Root: root, MaxScripts: 4 + writers})
		if err != nil {
			t.Fatal(err)
		}
		u, err := s.User("example.org", "alice")
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	u0 := users[0]
	if err := u0.Put(ctx, "s0", script(0)); err != nil {
		t.Fatal(err)
	}
	if err := u0.SetActive(ctx, "s0"); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errc := make(chan error, 1000)
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for r := range 3 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var b []byte
				var err error
				if r == 0 {
					b, err = os.ReadFile(u0.ActivePath()) // what Exim does
				} else {
					_, b, err = users[r%2].ReadActive(ctx)
				}
				if err == nil {
					err = checkScript(b)
				}
				if err != nil {
					errc <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
			}
		}()
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := users[w%2]
			for i := range rounds {
				v := w*1000 + i + 1
				name := fmt.Sprintf("s%d", v%4)
				if err := u.Put(ctx, name, script(v)); err != nil {
					errc <- err
					return
				}
				if err := u.SetActive(ctx, name); err != nil && !errors.Is(err, ErrNotFound) {
					errc <- err
					return
				}
				if i%5 == 0 {
					// Rename whatever is active to a spare name and back.
					a, err := u.Active(ctx)
					if err != nil {
						errc <- err
						return
					}
					spare := fmt.Sprintf("spare%d", w)
					if err := u.Rename(ctx, a, spare); err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrAlreadyExists) {
						errc <- err
						return
					} else if err == nil {
						// Another writer may have renamed it on meanwhile.
						if err := u.Rename(ctx, spare, a); err != nil && !errors.Is(err, ErrAlreadyExists) && !errors.Is(err, ErrNotFound) {
							errc <- err
							return
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	list, err := u0.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	active := 0
	for _, si := range list {
		if si.Active {
			active++
		}
		b, err := u0.Get(ctx, si.Name)
		if err == nil {
			err = checkScript(b)
		}
		if err != nil {
			t.Errorf("%s: %v", si.Name, err)
		}
	}
	if active != 1 {
		t.Errorf("%d active scripts in %+v", active, list)
	}
	ents, _ := os.ReadDir(u0.Dir())
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) || strings.HasPrefix(e.Name(), tmpLinkPrefx) {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestContextCancelledWhileLocked(t *testing.T) {
	u := newUser(t, Config{})
	ctx := context.Background()
	if err := u.Put(ctx, "a", []byte("keep;")); err != nil {
		t.Fatal(err)
	}
	// Hold the lock as another process would.
	f, err := os.Open(filepath.Join(u.Dir(), lockFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := flockEx(f); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- u.Put(cctx, "a", []byte("discard;")) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Put while locked elsewhere = %v, want context.Canceled", err)
	}
	if b, _ := u.Get(ctx, "a"); string(b) != "keep;" {
		t.Fatalf("script changed to %q", b)
	}
}

func FuzzValidateName(f *testing.F) {
	f.Add("main")
	f.Add("../x")
	f.Add("größe")
	s, err := New(Config{Root: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	u, err := s.User("example.org", "alice")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateName(name)
		if err != nil {
			if !errors.Is(err, ErrInvalidName) {
				t.Fatalf("error %v does not wrap ErrInvalidName", err)
			}
			return
		}
		if !utf8.ValidString(name) || strings.ContainsAny(name, "/\x00") || name[0] == '.' {
			t.Fatalf("accepted %q", name)
		}
		p := u.path(name)
		if filepath.Dir(p) != u.Dir() {
			t.Fatalf("%q maps to %q, outside %q", name, p, u.Dir())
		}
		if base := filepath.Base(p); base == activeLink || base == vacationDir || base == lockFile || len(base) > 255 {
			t.Fatalf("%q maps to reserved or overlong file %q", name, base)
		}
		if back, ok := nameFromFile(filepath.Base(p)); !ok || back != name {
			t.Fatalf("round trip %q -> %q (%v)", name, back, ok)
		}
	})
}
