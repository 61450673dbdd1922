package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// -auth-imap checks passwords against an IMAP server (go-imap's in-memory
// server here; the Dovecot one in interop/).
func TestAuthIMAP(t *testing.T) {
	mem := imapmemserver.New()
	mem.AddUser(imapmemserver.NewUser("alice@example.org", "secret"))
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		InsecureAuth: true,
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	root := t.TempDir()
	addr, _, _ := started(t, "-listen", "127.0.0.1:0", "-sieve-root", root, "-allow-plaintext",
		"-auth-imap", l.Addr().String(), "-auth-imap-security", "none")
	c := dial(t, addr)
	if last, _ := c.cmd(plain("alice@example.org", "wrong")); !strings.HasPrefix(last, "NO") {
		t.Fatalf("wrong password: %s", last)
	}
	if last, _ := c.cmd(plain("alice@example.org", "secret")); last != `OK "Logged in."` {
		t.Fatalf("login: %s", last)
	}
	if last, _ := c.cmd(`PUTSCRIPT "s" "keep;"`); !strings.HasPrefix(last, "OK") {
		t.Fatalf("PUTSCRIPT: %s", last)
	}
	if _, err := os.Stat(filepath.Join(root, "example.org", "alice", "s.sieve")); err != nil {
		t.Fatal(err)
	}
}
