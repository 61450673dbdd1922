package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
)

const pw = "sécret pw"

// Generated with `doveadm pw -s SCHEME -p 'sécret pw'` (Dovecot 2.3/2.4) and
// `openssl passwd -6/-5/-1`; each verifies pw and nothing else.
var vectors = []struct{ name, field string }{
	{"SHA512-CRYPT", `{SHA512-CRYPT}$6$qY4pXXtNZ90S0P.z$PIyfam54UipSaF6xWeoVLqOv.3gGg3CVt4xAYcPshCN5duqLklEynYnp2bnmFcKxwzfELdd7B/nF/s4kCpvlS.`},
	{"SHA256-CRYPT", `{SHA256-CRYPT}$5$G2QwE/z9eW/l/CsT$dWEaXPOkdGeJuwHAA.OIuGKUGKJfut9ILjXZ7Fny4a8`},
	{"BLF-CRYPT", `{BLF-CRYPT}$2y$05$lj/PEP1e3a.zVIpPihjkC.vdaF03NkFybvSuFepItYoMVMaZlWvG.`},
	{"ARGON2ID", `{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$OO/KrBDkcQlQosSxukAl2w$iD+tzM9LDAJ9D4OZKgi9ivX3rfcwt68VAKyD7kyfXgs`},
	{"ARGON2I", `{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$X84GIwfQGECNSGhWGgiz5w$v3CvedtWiQj2reqbG9SuW2qpktxW3AAglmIn4ElwdK8`},
	{"SSHA512", `{SSHA512}VDeIqUm49loyQbdosSRFq2kz8jn+sSxX8wvy17BSXxKYCVa7Cx1a71VoixqV1uB/pOY1lR5NE9wxqSg+wLmpRhZ5Lek=`},
	{"SHA512", `{SHA512}L5YnTsJJPHI5TllXvODMRfYGa7d9FU0GToxthgs3XuMFFpfyPs0Hq3am8DmoOkiCO88yesiVgcfhrFfbmElNMQ==`},
	{"SSHA256", `{SSHA256}W+/AcIpXndeLH2Uz8nercHWUHoVB6tDK09Tc3jRoM6sdLmmw`},
	{"SHA256", `{SHA256}32LNInJDy7EKibORKunzfwfTEmEZijJKIL+BOcc7CMk=`},
	{"SSHA", `{SSHA}ZYvUaxMTNhZ9LM2deYA6pUV4sEP0l9Zh`},
	{"SHA", `{SHA}vcNieP07L9yllgXcZhnaEUvrGOw=`},
	{"MD5-CRYPT", `{MD5-CRYPT}$1$tK..Trkt$ZuB15zYmTYWATtIdrW3cG.`},
	{"SHA512.HEX", `{SHA512.HEX}2f96274ec2493c72394e5957bce0cc45f6066bb77d154d064e8c6d860b375ee3051697f23ecd07ab76a6f039a83a48823bcf327ac89581c7e1ac57db98494d31`},
	{"PLAIN", `{PLAIN}sécret pw`},
	{"plain lowercase", `{plain}sécret pw`},
	{"CLEARTEXT", `{CLEARTEXT}sécret pw`},
	{"bare openssl -6", `$6$dyj8LV77iuGcp0d2$Kc8bo6vVdz7Ex770b.I8l6zAzvRgF9DdJ2UH.UihtcyKkXoV.a5wQcVyIYuKR8GORo9XrSsWxPIAfs/pxqxH30`},
	{"CRYPT openssl -5 rounds", `{CRYPT}$5$rounds=1000$saltsalt$bgeoNji7DN3jyJAjKRUwd0j7UWMr7VwUjSKAFtYXt/8`},
	{"bare openssl -1", `$1$fZbPQHgD$5w0Yl/lZxZxYmtleMk8TB1`},
	{"CRYPT bcrypt", `{CRYPT}$2y$04$ePErLJbN0108VlQYKl0Il.ifY9nG3ReCP8oquaAtQB3zoMJmNAlfS`},
}

func TestVerifyPassword(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			if err := VerifyPassword(v.field, pw); err != nil {
				t.Errorf("right password: %v", err)
			}
			wrongs := []string{"", "sécret pw ", "secret pw", "Sécret pw"}
			if strings.HasPrefix(v.name, "ARGON2") {
				wrongs = wrongs[2:3] // 64 MiB per try, slow under -race
			}
			for _, wrong := range wrongs {
				if err := VerifyPassword(v.field, wrong); !errors.Is(err, errMismatch) {
					t.Errorf("wrong password %q: %v, want mismatch", wrong, err)
				}
			}
		})
	}
}

func TestVerifyPasswordErrors(t *testing.T) {
	for _, tc := range []struct {
		field       string
		unsupported bool
	}{
		{"{NTLM}abcdef", true},
		{"{PBKDF2}$1$x$5000$abc", true},
		{"{SHA512.XYZ}abc", true},
		{"nocryptprefix", true},
		{"{SHA512-CRYPT}$5$abc$def", false}, // scheme and prefix disagree
		{"{ARGON2ID}$argon2id$v=19$m=99999999,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", false},
		{"{ARGON2ID}$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", false},
		{"{ARGON2ID}garbage", false},
		{"{SHA512}!!!!", false},
		{"{SHA256}c2hvcnQ=", false},
	} {
		err := VerifyPassword(tc.field, pw)
		if err == nil || errors.Is(err, errMismatch) {
			t.Errorf("VerifyPassword(%q) = %v, want a hash error", tc.field, err)
			continue
		}
		if errors.Is(err, ErrUnsupportedScheme) != tc.unsupported {
			t.Errorf("VerifyPassword(%q) = %v, unsupported=%v", tc.field, err, tc.unsupported)
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("error %q contains the password", err)
		}
	}
}

func TestSplitLogin(t *testing.T) {
	for _, tc := range []struct {
		login, def string
		want       Identity
		ok         bool
	}{
		{"alice@example.org", "", Identity{"alice", "example.org"}, true},
		{"alice@Example.ORG", "x.org", Identity{"alice", "example.org"}, true},
		{"alice", "example.org", Identity{"alice", "example.org"}, true},
		{"alice", "Example.Org", Identity{"alice", "example.org"}, true},
		{"Alice.Smith", "example.org", Identity{"alice.smith", "example.org"}, true},
		{"ÉLODIE@Example.org", "", Identity{"élodie", "example.org"}, true},
		{"a@b@example.org", "", Identity{"a@b", "example.org"}, true},
		{"alice", "", Identity{}, false},
		{"", "example.org", Identity{}, false},
		{"@example.org", "", Identity{}, false},
		{"alice@", "example.org", Identity{}, false},
		{"../etc@example.org", "", Identity{}, false},
		{"alice@..", "", Identity{}, false},
		{"al/ice@example.org", "", Identity{}, false},
		{"alice@exa/mple.org", "", Identity{}, false},
		{"al\x00ice", "example.org", Identity{}, false},
		{"al:ice", "example.org", Identity{}, false},
		{".alice", "example.org", Identity{}, false},
		{"al\xffice", "example.org", Identity{}, false},
	} {
		got, err := SplitLogin(tc.login, tc.def)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("SplitLogin(%q, %q) = %+v, %v; want %+v ok=%v", tc.login, tc.def, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("SplitLogin(%q) error %v is not ErrInvalidCredentials", tc.login, err)
		}
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestPasswdFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "users")
	writeFile(t, path, strings.Join([]string{
		"# Dovecot passwd-file",
		"",
		"alice@example.org:" + vectors[0].field + ":1000:1000::/home/alice::userdb_quota_rule=*:storage=1G",
		"bob@example.org:{BLF-CRYPT}$2y$04$ePErLJbN0108VlQYKl0Il.ifY9nG3ReCP8oquaAtQB3zoMJmNAlfS",
		"carol:{PLAIN}carolpw:::::",
		"dave@example.org:{NTLM}0123456789abcdef::",
		"erin@example.org:{PLAIN}erinpw::::::nologin",
		"frank@example.org::1000:1000",
		"malformed line without colon",
		"alice@example.org:{PLAIN}second-entry-ignored",
		"grace@Other.ORG:{PLAIN}gracepw\r",
	}, "\n")+"\n")
	var logs bytes.Buffer
	p, err := NewPasswdFile(path, "example.org", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user, pass string
		want       Identity
		err        error
	}{
		{"alice@example.org", pw, Identity{"alice", "example.org"}, nil},
		{"alice", pw, Identity{"alice", "example.org"}, nil},
		{"alice@EXAMPLE.org", pw, Identity{"alice", "example.org"}, nil},
		{"alice@example.org", "second-entry-ignored", Identity{}, ErrInvalidCredentials},
		{"alice@example.org", "nope-pw-123", Identity{}, ErrInvalidCredentials},
		{"Alice@example.org", pw, Identity{"alice", "example.org"}, nil}, // Dovecot's %Lu
		{"bob", pw, Identity{"bob", "example.org"}, nil},
		{"carol@example.org", "carolpw", Identity{"carol", "example.org"}, nil},
		{"dave", "x", Identity{}, ErrUnsupportedScheme},
		{"erin", "erinpw", Identity{}, ErrInvalidCredentials},
		{"frank", "", Identity{}, ErrInvalidCredentials},
		{"grace@other.org", "gracepw", Identity{"grace", "other.org"}, nil},
		{"nobody", "x", Identity{}, ErrInvalidCredentials},
		{"", "x", Identity{}, ErrInvalidCredentials},
	} {
		got, err := p.Authenticate(ctx, tc.user, tc.pass)
		if got != tc.want || !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("Authenticate(%q, %q) = %+v, %v; want %+v, %v", tc.user, tc.pass, got, err, tc.want, tc.err)
		}
		if err != nil && tc.pass != "" && strings.Contains(err.Error(), tc.pass) {
			t.Errorf("error %q holds the password", err)
		}
	}
	for _, secret := range []string{pw, "carolpw", "erinpw", "$2y$", "qY4pXXtNZ90S0P"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log holds %q:\n%s", secret, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "line=9") || !strings.Contains(logs.String(), "NTLM") {
		t.Errorf("log does not name the malformed line or the unknown scheme:\n%s", logs.String())
	}

	// The administrator replaces the file: new users, removed users.
	writeFile(t, path, "zoe@example.org:{PLAIN}zoepw\n")
	if _, err := p.Authenticate(ctx, "zoe", "zoepw"); err != nil {
		t.Errorf("after reload: %v", err)
	}
	if _, err := p.Authenticate(ctx, "alice", pw); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("removed user after reload: %v", err)
	}
	// Rewritten in place with the same size: the mtime tells.
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("zoe@example.org:{PLAIN}zoeqw\n")
	f.Close()
	future := time.Now().Add(2 * time.Second)
	os.Chtimes(path, future, future)
	if _, err := p.Authenticate(ctx, "zoe", "zoeqw"); err != nil {
		t.Errorf("after in-place rewrite: %v", err)
	}
	// The file disappears: temporary failure, not "wrong password", and
	// nobody stays logged in on a stale copy.
	os.Remove(path)
	if _, err := p.Authenticate(ctx, "zoe", "zoeqw"); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("missing file: %v, want ErrUnavailable", err)
	}
	if _, err := NewPasswdFile(path, "", nil); !errors.Is(err, ErrUnavailable) {
		t.Errorf("NewPasswdFile on missing file: %v", err)
	}
}

func TestParsePasswdLine(t *testing.T) {
	for _, tc := range []struct {
		line    string
		ok      bool
		wantErr bool
		want    passwdEntry
	}{
		{"# comment", false, false, passwdEntry{}},
		{"   ", false, false, passwdEntry{}},
		{"  # indented comment", false, false, passwdEntry{}},
		{"u@d.org:{PLAIN}x", true, false, passwdEntry{id: Identity{"u", "d.org"}, password: "{PLAIN}x"}},
		{"u:{PLAIN}x:1:2:gecos:/home/u:/bin/sh:nologin", true, false, passwdEntry{id: Identity{"u", "dflt.org"}, password: "{PLAIN}x", nologin: true}},
		{"u:{PLAIN}x:1:2:gecos:/home/u:/bin/sh:quota=1G reason=a:b nopassword", true, false, passwdEntry{id: Identity{"u", "dflt.org"}, password: "{PLAIN}x", nologin: true}},
		{"u:{PLAIN}x:1:2:gecos:/home/u:/bin/sh:userdb_mail=maildir:~/Maildir", true, false, passwdEntry{id: Identity{"u", "dflt.org"}, password: "{PLAIN}x"}},
		{"nopassword", false, true, passwdEntry{}},
		{":{PLAIN}x", false, true, passwdEntry{}},
		{"../x:{PLAIN}x", false, true, passwdEntry{}},
	} {
		got, ok, err := parsePasswdLine(tc.line, "dflt.org")
		if ok != tc.ok || (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parsePasswdLine(%q) = %+v, %v, %v; want %+v, %v, err=%v", tc.line, got, ok, err, tc.want, tc.ok, tc.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "{PLAIN}x") {
			t.Errorf("error %q quotes the password field", err)
		}
	}
}

func FuzzParsePasswdLine(f *testing.F) {
	f.Add("alice@example.org:{PLAIN}pw:1000:1000::/home/alice::nologin")
	f.Fuzz(func(t *testing.T, line string) {
		e, ok, err := parsePasswdLine(line, "example.org")
		if err != nil || !ok {
			if ok {
				t.Fatal("ok with an error")
			}
			return
		}
		if e.id.User == "" || e.id.Domain == "" || strings.ContainsAny(e.id.User+e.id.Domain, "/:\x00") {
			t.Fatalf("bad identity %+v from %q", e.id, line)
		}
		if strings.Contains(e.password, ":") {
			t.Fatalf("password field %q holds a colon", e.password)
		}
		// Whatever the field holds, verifying must not panic. Cost
		// parameters (argon2 memory, bcrypt cost, SHA-crypt rounds) come
		// from the administrator's file; the fuzzer should not spend them.
		if l := strings.ToLower(e.password); !strings.Contains(l, "argon") && !strings.Contains(l, "$2") && !strings.Contains(l, "rounds") {
			_ = VerifyPassword(e.password, "x")
		}
	})
}

type fakeBackend map[string]string // login -> password; the real backends are tested above

func (f fakeBackend) Authenticate(_ context.Context, user, pass string) (Identity, error) {
	if want, ok := f[user]; ok && want == pass {
		return SplitLogin(user, "example.org")
	}
	if user == "down" {
		return Identity{}, ErrUnavailable
	}
	return Identity{}, ErrInvalidCredentials
}

func run(s sasl.Server, responses ...[]byte) (challenges []string, done bool, err error) {
	for _, r := range responses {
		var c []byte
		c, done, err = s.Next(r)
		if c != nil {
			challenges = append(challenges, string(c))
		}
		if err != nil || done {
			return
		}
	}
	return
}

func TestSASL(t *testing.T) {
	ctx := context.Background()
	b := fakeBackend{"alice": "pw", "bob@example.org": "bobpw"}
	for _, tc := range []struct {
		name       string
		mech       string
		responses  [][]byte
		challenges string
		want       Identity
		err        error
	}{
		{"login", Login, [][]byte{nil, []byte("alice"), []byte("pw")}, "Username:|Password:", Identity{"alice", "example.org"}, nil},
		{"login initial response", Login, [][]byte{[]byte("alice"), []byte("pw")}, "Password:", Identity{"alice", "example.org"}, nil},
		{"login empty initial response", Login, [][]byte{{}, []byte("alice"), []byte("pw")}, "Username:|Password:", Identity{"alice", "example.org"}, nil},
		{"login wrong", Login, [][]byte{nil, []byte("alice"), []byte("nope")}, "Username:|Password:", Identity{}, ErrInvalidCredentials},
		{"login unavailable", Login, [][]byte{nil, []byte("down"), []byte("x")}, "Username:|Password:", Identity{}, ErrUnavailable},
		{"login extra response", Login, [][]byte{nil, []byte("alice"), []byte("pw"), []byte("more")}, "Username:|Password:", Identity{"alice", "example.org"}, nil},
		{"plain", Plain, [][]byte{[]byte("\x00alice\x00pw")}, "", Identity{"alice", "example.org"}, nil},
		{"plain no initial response", Plain, [][]byte{nil, []byte("\x00alice\x00pw")}, "", Identity{"alice", "example.org"}, nil},
		{"plain authzid self", Plain, [][]byte{[]byte("bob@example.org\x00bob@example.org\x00bobpw")}, "", Identity{"bob", "example.org"}, nil},
		{"plain authzid other", Plain, [][]byte{[]byte("bob@example.org\x00alice\x00pw")}, "", Identity{}, ErrAuthzDenied},
		{"plain wrong", Plain, [][]byte{[]byte("\x00alice\x00bad")}, "", Identity{}, ErrInvalidCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got Identity
			var s sasl.Server
			if tc.mech == Login {
				s = NewLoginServerFor(ctx, b, func(id Identity) { got = id })
			} else {
				s = NewPlainServer(ctx, b, func(id Identity) { got = id })
			}
			ch, done, err := run(s, tc.responses...)
			if c := strings.Join(ch, "|"); c != tc.challenges {
				t.Errorf("challenges %q, want %q", c, tc.challenges)
			}
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Errorf("err = %v, want %v", err, tc.err)
			}
			if tc.err == nil && !done {
				t.Error("not done")
			}
			if got != tc.want {
				t.Errorf("identity %+v, want %+v", got, tc.want)
			}
			if strings.HasSuffix(tc.name, "extra response") {
				if _, _, err := s.Next([]byte("again")); err == nil {
					t.Error("a response after completion was accepted")
				}
			}
		})
	}
}

func ExampleSplitLogin() {
	id, _ := SplitLogin("Alice@Example.ORG", "")
	fmt.Println(id.User, id.Domain)
	id, _ = SplitLogin("bob", "example.org")
	fmt.Println(id)
	// Output:
	// alice example.org
	// bob@example.org
}

// Memory-hard hashes (ARGON2ID: 64 MiB each with Dovecot's defaults) are
// computed a few at a time, however many clients log in at once; known
// and unknown users alike.
func TestPasswdFileBoundsConcurrentChecks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	writeFile(t, path, "alice@example.org:"+vectors[3].field+"\n")
	p, err := NewPasswdFile(path, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	running, peak := 0, 0
	p.verify = func(field, password string) error {
		mu.Lock()
		running++
		peak = max(peak, running)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		return errMismatch
	}
	const clients = 24
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := "alice@example.org"
			if i%2 == 1 {
				user = "nobody@example.org"
			}
			if _, err := p.Authenticate(context.Background(), user, "wrong"); !errors.Is(err, ErrInvalidCredentials) {
				t.Errorf("%s: %v, want ErrInvalidCredentials", user, err)
			}
		}()
	}
	wg.Wait()
	if limit := maxConcurrentChecks(); peak > limit || peak < 1 {
		t.Errorf("%d password checks ran at once, want at most %d", peak, limit)
	}
	// A client that gives up while queued is not kept waiting.
	for range cap(p.checks) {
		p.checks <- struct{}{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := p.Authenticate(ctx, "alice@example.org", "wrong"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("queued past its deadline: %v, want ErrUnavailable", err)
	}
}

// With Domains set, a login naming another domain is refused before the
// IMAP server is asked (which may ignore the domain and say yes).
func TestIMAPDomains(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens: a login that gets as far as dialing is unavailable
	b, err := NewIMAP(IMAPConfig{Address: addr, Security: IMAPPlain, DefaultDomain: "example.org", Domains: []string{"Example.org", "example.net"}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		login string
		want  error
	}{
		{"alice@other.example", ErrInvalidCredentials},
		{"alice@example.org.evil", ErrInvalidCredentials},
		{"alice@EXAMPLE.ORG", ErrUnavailable},
		{"alice@example.net", ErrUnavailable},
		{"alice", ErrUnavailable},
	} {
		if _, err := b.Authenticate(context.Background(), tc.login, "pw"); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.login, err, tc.want)
		}
	}
}
