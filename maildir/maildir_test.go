package maildir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

func newMaildir(t *testing.T) *Maildir {
	t.Helper()
	m := &Maildir{Root: filepath.Join(t.TempDir(), "alice")}
	if err := m.Init(); err != nil {
		t.Fatal(err)
	}
	return m
}

func list(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestSpoolDeliver(t *testing.T) {
	ctx := context.Background()
	m := newMaildir(t)
	const msg = "From: a@b\nSubject: hi\n\nbody\n"
	sp, err := m.Spool(ctx, strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if sp.Size() != int64(len(msg)) {
		t.Fatalf("size %d, want %d", sp.Size(), len(msg))
	}
	lists, _ := Mapper{}.Map("Lists/Go")
	if err := createSub(ctx, m, lists); err != nil {
		t.Fatal(err)
	}
	// Create is idempotent and subscribes once.
	if err := createSub(ctx, m, lists); err != nil {
		t.Fatal(err)
	}
	d1, err := sp.Deliver(ctx, Inbox, Flags{})
	if err != nil {
		t.Fatal(err)
	}
	d2, err := sp.Deliver(ctx, lists, SplitFlags([]string{`\Seen`, `\Flagged`, "$Label1", "Work"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := list(t, filepath.Join(m.Root, "tmp")); len(got) != 0 {
		t.Errorf("tmp/ not empty after Remove: %v", got)
	}
	if dir := filepath.Dir(d1.Path); dir != filepath.Join(m.Root, "new") {
		t.Errorf("unflagged copy in %s, want new/", dir)
	}
	if !strings.HasSuffix(d1.Path, fmt.Sprintf(",S=%d,W=%d", len(msg), len(msg)+strings.Count(msg, "\n"))) {
		t.Errorf("name %s lacks ,S=<size>,W=<CRLF size>", d1.Path)
	}
	if dir := filepath.Dir(d2.Path); dir != filepath.Join(m.Root, ".Lists.Go", "cur") {
		t.Errorf("flagged copy in %s, want .Lists.Go/cur/", dir)
	}
	if !strings.HasSuffix(d2.Path, ":2,FSab") {
		t.Errorf("flagged copy %s, want info :2,FSab", d2.Path)
	}
	for _, p := range []string{d1.Path, d2.Path} {
		b, err := os.ReadFile(p)
		if err != nil || string(b) != msg {
			t.Errorf("%s = %q, %v; want the message", p, b, err)
		}
	}
	kw, _ := os.ReadFile(filepath.Join(m.Root, ".Lists.Go", KeywordsFile))
	if string(kw) != "0 $Label1\n1 Work\n" {
		t.Errorf("dovecot-keywords = %q", kw)
	}
	if _, err := os.Stat(filepath.Join(m.Root, ".Lists.Go", MaildirFolderFile)); err != nil {
		t.Errorf("maildirfolder marker: %v", err)
	}
	subs, _ := os.ReadFile(filepath.Join(m.Root, SubscriptionsFile))
	if string(subs) != "V\t2\n\nLists\tGo\n" {
		t.Errorf("subscriptions = %q", subs)
	}
}

func TestKeywordsReuseAndFull(t *testing.T) {
	ctx := context.Background()
	m := newMaildir(t)
	// An existing table, as Dovecot left it, with a gap at index 1.
	if err := os.WriteFile(filepath.Join(m.Root, KeywordsFile), []byte("0 Junk\n2 $Forwarded\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	letters, full, err := keywordLetters(ctx, m.Root, m.perm(), []string{"$forwarded", "New", "junk"})
	if err != nil || letters != "cba" || len(full) != 0 {
		t.Fatalf("letters %q full %v err %v; want cba", letters, full, err)
	}
	var many []string
	for i := 0; i < 30; i++ {
		many = append(many, fmt.Sprintf("kw%02d", i))
	}
	letters, full, err = keywordLetters(ctx, m.Root, m.perm(), many)
	if err != nil {
		t.Fatal(err)
	}
	if len(letters)+len(full) != 30 || len(full) != 30-23 {
		t.Errorf("26-letter table: %d letters, %d full (%v)", len(letters), len(full), full)
	}
	if _, err := os.Stat(filepath.Join(m.Root, KeywordsFile+".lock")); !os.IsNotExist(err) {
		t.Errorf("lock left behind: %v", err)
	}
}

// Parallel deliveries (one process per message in real life) must not lose
// each other's keywords or subscriptions.
func TestConcurrentKeywordsAndSubscriptions(t *testing.T) {
	ctx := context.Background()
	m := newMaildir(t)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, _, err := keywordLetters(ctx, m.Root, m.perm(), []string{fmt.Sprintf("k%d", i)}); err != nil {
				errs <- err
			}
			f, _ := Mapper{}.Map(fmt.Sprintf("F%d", i))
			if err := createSub(ctx, m, f); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	kw, _ := os.ReadFile(filepath.Join(m.Root, KeywordsFile))
	if n := len(parseKeywords(kw)); n != 20 {
		t.Errorf("%d keywords after 20 parallel adds:\n%s", n, kw)
	}
	subs, _ := os.ReadFile(filepath.Join(m.Root, SubscriptionsFile))
	names := 0
	for _, l := range strings.Split(string(subs), "\n") {
		if strings.HasPrefix(l, "F") {
			names++
		}
	}
	if names != 20 || !strings.HasPrefix(string(subs), "V\t2\n\n") {
		t.Errorf("subscriptions after 20 parallel creates (%d names):\n%s", names, subs)
	}
}

func TestStaleLockIsBroken(t *testing.T) {
	ctx := context.Background()
	m := newMaildir(t)
	lock := filepath.Join(m.Root, SubscriptionsFile+".lock")
	if err := os.WriteFile(lock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * lockStale)
	if err := os.Chtimes(lock, old, old); err != nil {
		t.Fatal(err)
	}
	f, _ := Mapper{}.Map("X")
	if err := createSub(ctx, m, f); err != nil {
		t.Fatal(err)
	}
	subs, _ := os.ReadFile(filepath.Join(m.Root, SubscriptionsFile))
	if !strings.Contains(string(subs), "\nX\n") {
		t.Errorf("subscriptions = %q", subs)
	}
}

func TestFreshLockHonoursContext(t *testing.T) {
	m := newMaildir(t)
	lock := filepath.Join(m.Root, SubscriptionsFile+".lock")
	if err := os.WriteFile(lock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f, _ := Mapper{}.Map("X")
	if err := createSub(ctx, m, f); err == nil {
		t.Fatal("Create with a held lock and a cancelled context succeeded")
	}
}

func TestSpoolCancelled(t *testing.T) {
	m := newMaildir(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Spool(ctx, strings.NewReader("x")); err == nil {
		t.Fatal("Spool with a cancelled context succeeded")
	}
	if got := list(t, filepath.Join(m.Root, "tmp")); len(got) != 0 {
		t.Errorf("tmp/ after a failed spool: %v", got)
	}
}

func TestSubscriptionsKeepExisting(t *testing.T) {
	ctx := context.Background()
	m := newMaildir(t)
	if err := os.WriteFile(filepath.Join(m.Root, SubscriptionsFile), []byte("V\t2\n\nTrash\nLists\tGo"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Lists/Go", "Junk"} {
		f, _ := Mapper{}.Map(name)
		if err := createSub(ctx, m, f); err != nil {
			t.Fatal(err)
		}
	}
	subs, _ := os.ReadFile(filepath.Join(m.Root, SubscriptionsFile))
	if string(subs) != "V\t2\n\nTrash\nLists\tGo\nJunk\n" {
		t.Errorf("subscriptions = %q", subs)
	}
}

func createSub(ctx context.Context, m *Maildir, f Folder) error {
	if err := m.Create(ctx, f); err != nil {
		return err
	}
	return m.Subscribe(ctx, f)
}

// A folder whose creation was interrupted (no maildirfolder marker yet) is
// not taken as existing, so the next delivery completes it.
func TestExistsNeedsMarker(t *testing.T) {
	ctx := context.Background()
	m := newMaildir(t)
	f, _ := Mapper{}.Map("Half")
	for _, d := range []string{"tmp", "new", "cur"} {
		os.MkdirAll(filepath.Join(m.Root, ".Half", d), 0o700)
	}
	if ok, err := m.Exists(f); ok || err != nil {
		t.Fatalf("Exists(half-made folder) = %v, %v", ok, err)
	}
	if err := m.Create(ctx, f); err != nil {
		t.Fatal(err)
	}
	if ok, err := m.Exists(f); !ok || err != nil {
		t.Fatalf("Exists after Create = %v, %v", ok, err)
	}
	if ok, _ := m.Exists(Inbox); !ok {
		t.Fatal("INBOX does not exist after Init")
	}
}

func TestVirtualSize(t *testing.T) {
	for _, msg := range []string{"", "a", "a\nb\n", "a\r\nb\r\n", "mixed\r\nlf\n\n\r\r\n", strings.Repeat("x\r\n", 50000)} {
		m := newMaildir(t)
		// Feed it through a reader that splits CR from LF across reads.
		sp, err := m.Spool(context.Background(), iotest.OneByteReader(strings.NewReader(msg)))
		if err != nil {
			t.Fatal(err)
		}
		want := int64(len(strings.ReplaceAll(strings.ReplaceAll(msg, "\r\n", "\n"), "\n", "\r\n")))
		if sp.vsize != want || sp.size != int64(len(msg)) {
			t.Errorf("%q: size %d vsize %d, want %d %d", msg, sp.size, sp.vsize, len(msg), want)
		}
		sp.Remove()
	}
}

func FuzzParseKeywords(f *testing.F) {
	for _, s := range []string{"0 Junk\n2 $Forwarded\n", "", "x y\n99 z\n-1 a\n", "0 \n1 a b\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tab := parseKeywords(b)
		if len(tab) > maxKeywords {
			t.Fatalf("%d keywords", len(tab))
		}
		again := parseKeywords(formatKeywords(tab))
		if len(again) != len(tab) {
			t.Fatalf("round trip lost keywords: %v -> %v", tab, again)
		}
		for i, k := range tab {
			if again[i] != k && !strings.ContainsAny(k, "\n") {
				t.Fatalf("round trip changed %d: %q -> %q", i, k, again[i])
			}
		}
	})
}

// recordSyncs makes syncDir record the directories it fsyncs.
func recordSyncs(t *testing.T) func() []string {
	t.Helper()
	var mu sync.Mutex
	var got []string
	old := syncDir
	syncDir = func(dir string) error {
		mu.Lock()
		got = append(got, dir)
		mu.Unlock()
		return old(dir)
	}
	t.Cleanup(func() { syncDir = old })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := got
		got = nil
		return out
	}
}

// Every directory entry a delivery depends on is fsync'ed before the
// delivery is acknowledged: the Maildir directories Init and Create make
// (their parents synced), and Dovecot's keyword file the message's info
// letters refer to.
func TestDirectoriesAreSynced(t *testing.T) {
	ctx := context.Background()
	synced := recordSyncs(t)
	base := t.TempDir()
	m := &Maildir{Root: filepath.Join(base, "example.org", "alice")}
	if err := m.Init(); err != nil {
		t.Fatal(err)
	}
	got := synced()
	for _, want := range []string{base, filepath.Join(base, "example.org"), m.Root} {
		if !contains(got, want) {
			t.Errorf("Init: %q not synced (synced %q)", want, got)
		}
	}
	// An existing Maildir needs no sync.
	synced()
	if err := m.Init(); err != nil {
		t.Fatal(err)
	}
	if got := synced(); len(got) != 0 {
		t.Errorf("Init of an existing Maildir synced %q", got)
	}

	lists, _ := Mapper{}.Map("Lists/Go")
	if err := m.Create(ctx, lists); err != nil {
		t.Fatal(err)
	}
	got = synced()
	for _, want := range []string{m.Root, m.Path(lists)} {
		if !contains(got, want) {
			t.Errorf("Create: %q not synced (synced %q)", want, got)
		}
	}

	sp, err := m.Spool(ctx, strings.NewReader("Subject: x\n\nbody\n"))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Remove()
	synced()
	if _, err := sp.Deliver(ctx, lists, SplitFlags([]string{"$Label1"})); err != nil {
		t.Fatal(err)
	}
	got = synced()
	if len(got) != 2 || got[0] != m.Path(lists) || got[1] != filepath.Join(m.Path(lists), "cur") {
		t.Errorf("Deliver with a new keyword synced %q, want the folder (dovecot-keywords) then its cur/", got)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The message file is fsync'ed in tmp/ before any folder links it, and a
// copy into a folder on another file system is fsync'ed before its rename.
func TestSpoolFileSyncedBeforeLink(t *testing.T) {
	ctx := context.Background()
	m := newMaildir(t)
	var synced []string
	old := syncFile
	syncFile = func(f *os.File) error {
		// Nothing may be visible in new/ before the data is on disk.
		if got := list(t, filepath.Join(m.Root, "new")); len(got) != 0 {
			t.Errorf("new/ holds %q before the fsync", got)
		}
		synced = append(synced, f.Name())
		return old(f)
	}
	t.Cleanup(func() { syncFile = old })
	sp, err := m.Spool(ctx, strings.NewReader("Subject: x\n\nbody\n"))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Remove()
	if len(synced) != 1 || filepath.Dir(synced[0]) != filepath.Join(m.Root, "tmp") {
		t.Fatalf("synced %q, want the tmp/ file", synced)
	}
	if _, err := sp.Deliver(ctx, Inbox, Flags{}); err != nil {
		t.Fatal(err)
	}
	// A failing fsync is a failed spool: nothing left, nothing visible.
	syncFile = func(*os.File) error { return fmt.Errorf("EIO") }
	if _, err := m.Spool(ctx, strings.NewReader("Subject: y\n\nbody\n")); err == nil {
		t.Fatal("Spool succeeded although fsync failed")
	}
	if got := list(t, filepath.Join(m.Root, "tmp")); len(got) != 1 { // the first spool only
		t.Errorf("tmp/ = %q after a failed fsync", got)
	}
}
