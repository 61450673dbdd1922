package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sieved/sieved/vacation"
)

func runVac(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), &stdio{in: strings.NewReader(""), out: &out, err: &errb}, append([]string{"vacation"}, args...))
	return code, out.String(), errb.String()
}

func TestVacationListForget(t *testing.T) {
	root := t.TempDir()
	conf := filepath.Join(t.TempDir(), "sieved.toml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("[storage]\nroot = %q\n", root)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runVac(t, "--config", conf, "list", "alice@example.org"); code != 0 || !strings.Contains(out, "no senders") {
		t.Fatalf("list of a user without state: %d %q %q", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(root, "example.org")); err == nil {
		t.Error("list created the user's directory")
	}

	st := vacation.NewStore(filepath.Join(root, "example.org", "alice", "vacation"), 0)
	tx, err := st.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(48 * time.Hour)
	tx.Mark("bob@example.com", "default-1", until)
	tx.Mark("bob@example.com", "work", until)
	tx.Mark("carol@example.net", "work", until)
	tx.Close()

	code, out, _ := runVac(t, "list", "alice@example.org", "--config", conf)
	if code != 0 || strings.Count(out, "bob@example.com") != 2 || !strings.Contains(out, "carol@example.net") ||
		!strings.Contains(out, until.UTC().Format("2006-01-02")) {
		t.Fatalf("list: %d\n%s", code, out)
	}
	if code, out, _ := runVac(t, "--config", conf, "forget", "alice@example.org", "BOB@example.com"); code != 0 || !strings.Contains(out, "forgot 2 entries") {
		t.Fatalf("forget bob: %d %q", code, out)
	}
	if _, out, _ := runVac(t, "--config", conf, "list", "alice@example.org"); strings.Contains(out, "bob@") || !strings.Contains(out, "carol@") {
		t.Fatalf("after forget bob:\n%s", out)
	}
	// "forget USER [SENDER]": without a sender, every sender is forgotten.
	if code, out, _ := runVac(t, "--config", conf, "forget", "alice@example.org"); code != 0 || !strings.Contains(out, "forgot 1 entry") {
		t.Fatalf("forget USER: %d %q", code, out)
	}
	if _, out, _ := runVac(t, "--config", conf, "list", "alice@example.org"); !strings.Contains(out, "no senders") {
		t.Fatalf("after forget USER:\n%s", out)
	}
	tx, err = st.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tx.Mark("dave@example.com", "default-1", until)
	tx.Close()
	if code, out, _ := runVac(t, "--config", conf, "forget", "alice@example.org", "--all"); code != 0 || !strings.Contains(out, "forgot 1 entry") {
		t.Fatalf("forget --all: %d %q", code, out)
	}
}

func TestVacationUsage(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "sieved.toml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("[storage]\nroot = %q\n", t.TempDir())), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{},
		{"list"},
		{"list", "alice@example.org", "extra"},
		{"forget"},
		{"forget", "alice@example.org", "bob@example.com", "--all"},
		{"frobnicate", "alice@example.org"},
		{"list", "not-an-address"},
		{"list", "../../etc@example.org"},
	} {
		if code, _, errs := runVac(t, append([]string{"--config", conf}, args...)...); code != exitUsage {
			t.Errorf("sievectl vacation %q: exit %d, want %d (%s)", args, code, exitUsage, errs)
		}
	}
	if code, out, _ := runVac(t, "--help"); code != 0 || !strings.Contains(out, "forget USER") {
		t.Errorf("--help: %d %q", code, out)
	}
	missing := filepath.Join(t.TempDir(), "missing.toml")
	os.WriteFile(missing, []byte("[storage]\nroot = \"/nonexistent/sieve\"\n"), 0o600)
	if code, _, _ := runVac(t, "--config", missing, "list", "alice@example.org"); code != exitNoInput {
		t.Errorf("missing storage root: exit %d, want %d", code, exitNoInput)
	}
}
