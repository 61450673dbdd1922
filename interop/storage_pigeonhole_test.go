package interop

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sieved/sieved/storage"
)

// pigeonholeDoveadm runs `doveadm sieve` against a Dovecot configured with
// Pigeonhole's file storage in our layout:
// sieve = file:<root>/%d/%n;active=<root>/%d/%n/active.
type pigeonholeDoveadm struct {
	conf, log, root string
}

func startPigeonholeDoveadm(t *testing.T) *pigeonholeDoveadm {
	t.Helper()
	dovecot := requirePeer(t, "/usr/sbin/dovecot")
	requirePeer(t, "doveadm")
	if _, err := os.Stat("/usr/lib/dovecot/modules/doveadm/lib10_doveadm_sieve_plugin.so"); err != nil {
		requirePeer(t, "/usr/lib/dovecot/modules/doveadm/lib10_doveadm_sieve_plugin.so")
	}
	dir, uid, gid := mailUserDir(t, "Pigeonhole storage") // Dovecot refuses to act as root
	p := &pigeonholeDoveadm{conf: filepath.Join(dir, "dovecot.conf"), log: filepath.Join(dir, "dovecot.log"), root: filepath.Join(dir, "sieve")}
	for _, d := range []string{p.root, filepath.Join(dir, "mail"), filepath.Join(dir, "home")} {
		mustMkdir(t, d)
		if err := os.Chown(d, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(t, p.conf, fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols =
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:%[1]s/mail/%%d/%%n
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=%[2]s gid=%[2]s home=%[1]s/home/%%d/%%n
}
plugin {
  sieve = file:%[1]s/sieve/%%d/%%n;active=%[1]s/sieve/%%d/%%n/active
}
`, dir, peerMailUser))
	startProcess(t, exec.Command(dovecot, "-F", "-c", p.conf))
	// doveadm reaches the auth process through base_dir; wait for it.
	sock := filepath.Join(dir, "run", "auth-userdb")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dovecot did not create %s", sock)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("dovecot log:\n%s", b)
		}
	})
	return p
}

// doveadm runs `doveadm sieve <args>` for alice@example.org.
func (p *pigeonholeDoveadm) doveadm(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command("doveadm", append([]string{"-c", p.conf, "sieve", args[0], "-u", "alice@example.org"}, args[1:]...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("doveadm sieve %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

// TestStoreReadsPigeonhole: a directory written by Dovecot Pigeonhole
// (scripts with the client's CRLF, the active symlink, its tmp/ directory)
// is read as it is, and what our store writes there Pigeonhole reads back.
func TestStoreReadsPigeonhole(t *testing.T) {
	p := startPigeonholeDoveadm(t)
	ctx := context.Background()
	crlf := "require \"fileinto\";\r\nif header :contains \"subject\" \"x\" {\r\n  fileinto \"X\";\r\n}\r\n"
	lf := strings.ReplaceAll(crlf, "\r\n", "\n")
	p.doveadm(t, crlf, "put", "-a", "roundcube")
	p.doveadm(t, "keep;\r\n", "put", "größe x")

	// sieved runs as root here and Dovecot as "mail": the group setting
	// is what lets Dovecot (or an MTA) read what we write.
	s, err := storage.New(storage.Config{Root: p.root, Group: "mail"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.User("example.org", "alice")
	if err != nil {
		t.Fatal(err)
	}
	list, err := u.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, si := range list {
		got = append(got, fmt.Sprintf("%s active=%v", si.Name, si.Active))
	}
	if g, want := strings.Join(got, ", "), "größe x active=false, roundcube active=true"; g != want {
		ents, _ := os.ReadDir(u.Dir())
		t.Fatalf("List = %s, want %s (dir holds %v)", g, want, ents)
	}
	name, b, err := u.ReadActive(ctx)
	if err != nil || name != "roundcube" || string(b) != lf {
		t.Fatalf("ReadActive = %q, %q, %v", name, b, err)
	}

	// Our changes, read by Pigeonhole.
	if err := u.Put(ctx, "ours", []byte("discard;\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := u.SetActive(ctx, "ours"); err != nil {
		t.Fatal(err)
	}
	if err := u.Rename(ctx, "ours", "renamed"); err != nil {
		t.Fatal(err)
	}
	if err := u.Delete(ctx, "größe x"); err != nil {
		t.Fatal(err)
	}
	out := p.doveadm(t, "", "list")
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		lines = append(lines, strings.TrimSpace(l))
	}
	if g, want := strings.Join(lines, "|"), "renamed ACTIVE|roundcube"; g != want {
		t.Fatalf("doveadm sieve list = %q, want %q", g, want)
	}
	if g := p.doveadm(t, "", "get", "renamed"); strings.TrimRight(strings.TrimPrefix(g, "sieve script:\n"), "\r\n") != "discard;" {
		t.Fatalf("doveadm sieve get renamed = %q", g)
	}
	// And Pigeonhole's own activation is what we see next.
	p.doveadm(t, "", "activate", "roundcube")
	if a, err := u.Active(ctx); err != nil || a != "roundcube" {
		t.Fatalf("Active after doveadm sieve activate = %q, %v", a, err)
	}
}
