package interop

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sieved/sieved/auth"
)

// authUser is one passwd-file line the tests share between Dovecot and
// auth.PasswdFile: both must reach the same verdict on every password.
type authUser struct {
	login, password, scheme string
}

var authUsers = []authUser{
	{"alice@example.org", "alice pw ü", "SHA512-CRYPT"},
	{"bob@example.org", "bob:pw", "BLF-CRYPT"},
	{"carol@example.org", "carol-pw", "ARGON2ID"},
	{"dave@example.org", "dave pw", "SHA256-CRYPT"},
	{"erin@example.org", "erin pw", "SSHA512"},
	{"frank@example.org", "frank pw", "PLAIN"},
}

// doveadmPw hashes password with Dovecot's own tool.
func doveadmPw(t *testing.T, doveadm, scheme, password string) string {
	t.Helper()
	out, err := exec.Command(doveadm, "pw", "-s", scheme, "-p", password).Output()
	if err != nil {
		t.Fatalf("doveadm pw -s %s: %v", scheme, err)
	}
	return strings.TrimSpace(string(out))
}

// TestPasswdFileMatchesDoveadm: hashes made right now by `doveadm pw` and
// `openssl passwd` (fresh salts every run) verify with auth.PasswdFile, and
// wrong passwords do not.
func TestPasswdFileMatchesDoveadm(t *testing.T) {
	doveadm := requirePeer(t, "doveadm")
	openssl := requirePeer(t, "openssl")
	var lines []string
	type check struct{ login, password string }
	var checks []check
	for i, s := range []string{"SHA512-CRYPT", "SHA256-CRYPT", "MD5-CRYPT", "BLF-CRYPT", "ARGON2ID", "ARGON2I",
		"SHA512", "SSHA512", "SHA256", "SSHA256", "SHA", "SSHA", "SHA512.HEX", "PLAIN"} {
		login := fmt.Sprintf("u%d@example.org", i)
		pw := fmt.Sprintf("pw %d %s é", i, s)
		lines = append(lines, login+":"+doveadmPw(t, doveadm, s, pw)+"::::::")
		checks = append(checks, check{login, pw})
	}
	for i, args := range [][]string{{"-6"}, {"-5"}, {"-1"}, {"-6", "-salt", "rounds=2000$ab"}, {"-5", "-salt", "rounds=1000$xyz"}} {
		login := fmt.Sprintf("o%d@example.org", i)
		pw := fmt.Sprintf("openssl pw %d", i)
		out, err := exec.Command(openssl, append(append([]string{"passwd"}, args...), pw)...).Output()
		if err != nil {
			t.Fatalf("openssl passwd %v: %v", args, err)
		}
		// No {SCHEME}: Dovecot's default CRYPT, as in many old files.
		lines = append(lines, login+":"+strings.TrimSpace(string(out)))
		checks = append(checks, check{login, pw})
	}
	path := filepath.Join(t.TempDir(), "passwd")
	mustWrite(t, path, strings.Join(lines, "\n")+"\n")
	p, err := auth.NewPasswdFile(path, "example.org", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range checks {
		if _, err := p.Authenticate(ctx, c.login, c.password); err != nil {
			t.Errorf("%s: %v", c.login, err)
		}
		if _, err := p.Authenticate(ctx, c.login, c.password+"x"); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Errorf("%s with a wrong password: %v", c.login, err)
		}
	}
}

type dovecotIMAP struct {
	plainPort, tlsPort int
	roots              *x509.CertPool
	passwd             string
}

// startDovecotIMAP runs a real Dovecot imapd on 127.0.0.1 (plain+STARTTLS
// and implicit TLS listeners) with a passwd-file passdb holding authUsers,
// hashed by doveadm.
func startDovecotIMAP(t *testing.T) *dovecotIMAP {
	t.Helper()
	dovecot := requirePeer(t, "/usr/sbin/dovecot")
	doveadm := requirePeer(t, "doveadm")
	// imap processes run as "mail" and must reach their home.
	dir, uid, gid := mailUserDir(t, "Dovecot imapd")
	home := filepath.Join(dir, "home")
	mustMkdir(t, home)
	if err := os.Chown(home, uid, gid); err != nil {
		t.Fatal(err)
	}

	d := &dovecotIMAP{plainPort: freePort(t), tlsPort: freePort(t), passwd: filepath.Join(dir, "passwd")}
	// cert.pem (chain) and key.pem in dir, signed by a private CA.
	d.roots = msMakeCerts(t, dir).pool

	var lines []string
	for _, au := range authUsers {
		lines = append(lines, au.login+":"+doveadmPw(t, doveadm, au.scheme, au.password)+"::::::")
	}
	mustWrite(t, d.passwd, strings.Join(lines, "\n")+"\n")

	conf := filepath.Join(dir, "dovecot.conf")
	mustWrite(t, conf, fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <%[1]s/cert.pem
ssl_key = <%[1]s/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
default_internal_user = %[4]s
default_internal_group = %[4]s
default_login_user = %[4]s
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = %[1]s/passwd
}
userdb {
  driver = static
  args = uid=%[4]s gid=%[4]s home=%[1]s/home/%%d/%%n
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = %[2]d
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = %[3]d
    ssl = yes
  }
}
service anvil {
  chroot =
}
service auth {
  user = root
}
`, dir, d.plainPort, d.tlsPort, peerMailUser))
	startProcess(t, exec.Command(dovecot, "-F", "-c", conf))
	waitPort(t, d.plainPort, 10*time.Second)
	waitPort(t, d.tlsPort, 10*time.Second)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Logf("dovecot log:\n%s", b)
		}
	})
	return d
}

// TestAuthIMAPDovecot logs in through auth.IMAP against a real Dovecot
// imapd over plain (loopback), STARTTLS and implicit TLS, and checks that
// auth.PasswdFile reading the very file Dovecot uses agrees with Dovecot.
func TestAuthIMAPDovecot(t *testing.T) {
	d := startDovecotIMAP(t)
	ctx := context.Background()
	files, err := auth.NewPasswdFile(d.passwd, "example.org", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Dovecot delays every login from an address that failed recently
	// (auth penalty, up to 15 s): each attempt comes from its own
	// loopback address.
	var src atomic.Uint32
	dialer := func() *net.Dialer {
		n := src.Add(1)
		ip := net.IPv4(127, 1, byte(n>>8), byte(n))
		return &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
	}
	for _, mode := range []struct {
		security string
		port     int
	}{
		{auth.IMAPPlain, d.plainPort},
		{auth.IMAPStartTLS, d.plainPort},
		{auth.IMAPTLS, d.tlsPort},
	} {
		t.Run(mode.security, func(t *testing.T) {
			cfg := func() auth.IMAPConfig {
				return auth.IMAPConfig{
					Address:       fmt.Sprintf("127.0.0.1:%d", mode.port),
					Security:      mode.security,
					TLSConfig:     &tls.Config{RootCAs: d.roots},
					Timeout:       10 * time.Second,
					DefaultDomain: "example.org",
					Dialer:        dialer(),
				}
			}
			if _, err := auth.NewIMAP(cfg()); err != nil {
				t.Fatal(err)
			}
			newBackend := func() *auth.IMAP {
				b, err := auth.NewIMAP(cfg())
				if err != nil {
					panic(err) // the same configuration passed above
				}
				return b
			}
			users := authUsers
			if mode.security != auth.IMAPPlain {
				users = users[:1] // the schemes are covered once; here the transport
			}
			// Dovecot spends about a second on each failure: users in parallel.
			var wg sync.WaitGroup
			for _, au := range users {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for _, tc := range []struct {
						password string
						ok       bool
					}{{au.password, true}, {au.password + "x", false}, {"", false}} {
						id, err := newBackend().Authenticate(ctx, au.login, tc.password)
						if tc.ok {
							want, _ := auth.SplitLogin(au.login, "")
							if err != nil || id != want {
								t.Errorf("IMAP %s (%s): %+v, %v", au.login, au.scheme, id, err)
							}
						} else if !errors.Is(err, auth.ErrInvalidCredentials) || errors.Is(err, auth.ErrUnavailable) {
							t.Errorf("IMAP %s (%s) wrong password: %v, want ErrInvalidCredentials", au.login, au.scheme, err)
						}
						if err != nil && tc.password != "" && strings.Contains(err.Error(), tc.password) {
							t.Errorf("error %q holds the password", err)
						}
						// Same file, same verdict.
						if mode.security == auth.IMAPPlain {
							_, ferr := files.Authenticate(ctx, au.login, tc.password)
							if (ferr == nil) != tc.ok {
								t.Errorf("passwd-file %s (%s) ok=%v: %v; Dovecot says ok=%v", au.login, au.scheme, ferr == nil, ferr, tc.ok)
							}
						}
					}
				}()
			}
			wg.Wait()
			if _, err := newBackend().Authenticate(ctx, "nobody@example.org", "x"); !errors.Is(err, auth.ErrInvalidCredentials) {
				t.Errorf("unknown user: %v", err)
			}
			// A bare login gets the default domain on our side; Dovecot
			// sees what the user typed, so it fails there (no such user).
			if _, err := newBackend().Authenticate(ctx, "alice", authUsers[0].password); !errors.Is(err, auth.ErrInvalidCredentials) {
				t.Errorf("bare login: %v", err)
			}
		})
	}

	t.Run("failures are unavailable, not bad passwords", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			cfg  auth.IMAPConfig
		}{
			{"nothing listens", auth.IMAPConfig{Address: fmt.Sprintf("127.0.0.1:%d", freePort(t)), Security: auth.IMAPPlain}},
			{"untrusted certificate", auth.IMAPConfig{Address: fmt.Sprintf("127.0.0.1:%d", d.tlsPort), Security: auth.IMAPTLS}},
			{"TLS to a plain port", auth.IMAPConfig{Address: fmt.Sprintf("127.0.0.1:%d", d.plainPort), Security: auth.IMAPTLS,
				TLSConfig: &tls.Config{RootCAs: d.roots}, Timeout: 2 * time.Second}},
		} {
			b, err := auth.NewIMAP(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Authenticate(ctx, authUsers[0].login, authUsers[0].password); !errors.Is(err, auth.ErrUnavailable) {
				t.Errorf("%s: %v, want ErrUnavailable", tc.name, err)
			}
		}
	})

	t.Run("a silent server times out", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close() // never greets
			}
		}()
		b, err := auth.NewIMAP(auth.IMAPConfig{Address: l.Addr().String(), Security: auth.IMAPPlain, Timeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Authenticate(ctx, "alice@example.org", "x"); !errors.Is(err, auth.ErrUnavailable) {
			t.Errorf("silent server: %v, want ErrUnavailable", err)
		}
	})

	if _, err := auth.NewIMAP(auth.IMAPConfig{Address: "192.0.2.1:143", Security: auth.IMAPPlain}); err == nil {
		t.Error("clear-text IMAP to a non-loopback address was accepted")
	}
}
