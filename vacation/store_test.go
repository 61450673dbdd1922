package vacation

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStoreMarkAnsweredExpiry(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vacation")
	s := NewStore(dir, 0)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	ctx := context.Background()

	tx, err := s.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tx.Answered("bob@example.com", "h") {
		t.Fatal("answered in an empty store")
	}
	if err := tx.Mark("Bob@Example.COM", "h", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	tx.Close()

	tx, _ = s.Lock(ctx)
	if !tx.Answered("bob@example.com", "h") {
		t.Error("sender not remembered (case-insensitively) after reopening")
	}
	if tx.Answered("bob@example.com", "other") {
		t.Error("another handle shares the memory")
	}
	if tx.Answered("carol@example.com", "h") {
		t.Error("another sender shares the memory")
	}
	tx.Close()

	now = now.Add(time.Hour)
	tx, _ = s.Lock(ctx)
	if tx.Answered("bob@example.com", "h") {
		t.Error("still answered after expiry")
	}
	tx.Close()

	for _, p := range []struct {
		name string
		mode os.FileMode
	}{{"", 0o700}, {stateFile, 0o600}, {lockFile, 0o600}} {
		fi, err := os.Stat(filepath.Join(dir, p.name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != p.mode {
			t.Errorf("%s mode %v, want %v", filepath.Join(dir, p.name), fi.Mode().Perm(), p.mode)
		}
	}
}

func TestStorePruneAndBound(t *testing.T) {
	dir := t.TempDir()
	s := NewStore(dir, 3)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	ctx := context.Background()
	tx, _ := s.Lock(ctx)
	tx.Mark("expired@x", "h", now.Add(time.Minute))
	tx.Close()
	now = now.Add(2 * time.Minute)
	tx, _ = s.Lock(ctx)
	for i := 1; i <= 5; i++ {
		if err := tx.Mark(fmt.Sprintf("s%d@x", i), "h", now.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	tx.Close()
	b, _ := os.ReadFile(filepath.Join(dir, stateFile))
	if strings.Contains(string(b), "expired@x") {
		t.Error("expired entry not pruned from the file")
	}
	es, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Sender)
	}
	if strings.Join(got, " ") != "s3@x s4@x s5@x" {
		t.Errorf("entries %v, want the 3 expiring last", got)
	}
}

func TestStoreForget(t *testing.T) {
	s := NewStore(t.TempDir(), 0)
	ctx := context.Background()
	tx, _ := s.Lock(ctx)
	until := time.Now().Add(time.Hour)
	tx.Mark("a@x", "h1", until)
	tx.Mark("a@x", "h2", until)
	tx.Mark("b@x", "h1", until)
	tx.Close()
	if n, err := s.Forget(ctx, "A@X"); err != nil || n != 2 {
		t.Fatalf("Forget(A@X) = %d, %v; want 2", n, err)
	}
	if es, _ := s.List(ctx); len(es) != 1 || es[0].Sender != "b@x" {
		t.Fatalf("after forget: %+v", es)
	}
	if n, _ := s.Forget(ctx, ""); n != 1 {
		t.Fatalf("Forget all removed %d, want 1", n)
	}
	if es, _ := s.List(ctx); len(es) != 0 {
		t.Fatalf("after forget all: %+v", es)
	}
	missing := NewStore(filepath.Join(t.TempDir(), "none"), 0)
	if es, err := missing.List(ctx); err != nil || len(es) != 0 {
		t.Fatalf("List on a missing dir = %v, %v", es, err)
	}
	if _, err := os.Stat(missing.Dir()); err == nil {
		t.Error("List created the directory")
	}
}

func TestStoreSurvivesGarbage(t *testing.T) {
	dir := t.TempDir()
	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	good := fmt.Sprintf(`{"k":%q,"s":"a@x","h":"h","e":%q}`, Key("a@x", "h"), until)
	os.WriteFile(filepath.Join(dir, stateFile), []byte(stateMagic+"\n{torn\n"+good+"\n\x00\x01\n"), 0o600)
	os.WriteFile(filepath.Join(dir, tempPrefix+"crashed"), []byte("half"), 0o600)
	s := NewStore(dir, 0)
	tx, err := s.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if !tx.Answered("a@x", "h") {
		t.Error("good entry lost among garbage lines")
	}
	if err := tx.Mark("b@x", "h", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, tempPrefix+"crashed")); err == nil {
		t.Error("temp file of a crashed writer left behind")
	}
}

func TestStoreLockHonoursContext(t *testing.T) {
	s := NewStore(t.TempDir(), 0)
	tx, err := s.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := NewStore(s.Dir(), 0).Lock(ctx); err == nil {
		t.Fatal("second lock taken while the first is held")
	}
}

// reserveSendCommit is what the handler does: lock, check, "send", mark.
func reserveSendCommit(dir, sentLog string) error {
	tx, err := NewStore(dir, 0).Lock(context.Background())
	if err != nil {
		return err
	}
	defer tx.Close()
	if tx.Answered("bob@example.com", "h") {
		return nil
	}
	f, err := os.OpenFile(sentLog, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	f.Close()
	return tx.Mark("bob@example.com", "h", time.Now().Add(time.Hour))
}

func TestStoreHelperProcess(t *testing.T) {
	if os.Getenv("VACATION_STORE_HELPER") != "1" {
		t.Skip("helper process for TestStoreParallelProcesses")
	}
	if err := reserveSendCommit(os.Getenv("VACATION_DIR"), os.Getenv("VACATION_LOG")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
}

// Twenty processes answering the same sender at once send one reply.
func TestStoreParallelProcesses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vacation")
	sent := filepath.Join(t.TempDir(), "sent")
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestStoreHelperProcess$")
			cmd.Env = append(os.Environ(), "VACATION_STORE_HELPER=1", "VACATION_DIR="+dir, "VACATION_LOG="+sent)
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("%v: %s", err, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	b, err := os.ReadFile(sent)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 1 {
		t.Fatalf("%d replies sent by 20 parallel processes, want 1:\n%s", n, b)
	}
}
