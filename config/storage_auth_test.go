package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sieved/sieved/auth"
)

func TestStorageAndAuthSections(t *testing.T) {
	for _, tc := range []struct{ name, text, err string }{
		{"octal modes", "[storage]\nfile_mode = 0o600\ndir_mode = 0o2750\ngroup = \"mail\"\n", ""},
		{"mode too wide", "[storage]\nfile_mode = 0o4755\n", "storage.file_mode"},
		{"owner cannot write", "[storage]\nfile_mode = 0o440\n", "storage.file_mode"},
		{"negative quota", "[storage]\nmax_scripts = -1\n", "quotas"},
		{"empty root", "[storage]\nroot = \"\"\n", "storage.root"},
		{"imap", "[auth]\nbackend = \"imap\"\nimap_address = \"imap.example.org:993\"\nimap_security = \"tls\"\nimap_domains = [\"example.org\"]\n", ""},
		{"unknown backend", "[auth]\nbackend = \"ldap\"\n", "auth.backend"},
		{"bad security", "[auth]\nimap_security = \"ssl\"\n", "auth.imap_security"},
		{"bad address", "[auth]\nimap_address = \"imap.example.org\"\n", "auth.imap_address"},
		{"bad timeout", "[auth]\nimap_timeout = \"0s\"\n", "auth.imap_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.text)
			if tc.err == "" && err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("Parse = %v, want an error about %s", err, tc.err)
			}
		})
	}
	c, err := Parse("[storage]\ndir_mode = 0o2750\n")
	if err != nil {
		t.Fatal(err)
	}
	if sc := c.Storage.StoreConfig(); sc.DirMode != 0o750|os.ModeSetgid || sc.FileMode != 0o640 || sc.MaxScriptSize != 1<<20 {
		t.Errorf("StoreConfig = %+v", sc)
	}
}

func TestAuthOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(path, []byte("alice@example.org:{PLAIN}pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := Default().Auth
	a.PasswdFile = path
	b, err := a.Open(nil)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := b.Authenticate(context.Background(), "alice@example.org", "pw"); err != nil || id != (auth.Identity{User: "alice", Domain: "example.org"}) {
		t.Errorf("Authenticate = %+v, %v", id, err)
	}
	a.Backend = "imap"
	if _, err := a.Open(nil); err != nil {
		t.Errorf("imap backend: %v", err)
	}
	a.IMAPSecurity, a.IMAPDomains = "none", []string{"example.org"}
	b, err = a.Open(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(context.Background(), "alice@other.example", "pw"); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("imap_domains not applied: %v", err)
	}
	a.IMAPSecurity, a.IMAPAddress = "none", "192.0.2.1:143"
	if _, err := a.Open(nil); err == nil {
		t.Error("clear-text IMAP to a remote address accepted")
	}
	a.IMAPSecurity, a.IMAPCAFile = "tls", path
	if _, err := a.Open(nil); err == nil || errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("CA file without PEM: %v", err)
	}
}
