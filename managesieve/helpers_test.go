package managesieve

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sieved/sieved/auth"
	"github.com/sieved/sieved/engine"
	"github.com/sieved/sieved/storage"
)

// users is the real passwd-file backend behind a gate that tests close
// (block: Authenticate waits, to catch a command in flight) or break
// (down: the backend is unavailable, as an unreachable IMAP server).
type users struct {
	real  Authenticator
	mu    sync.Mutex
	down  bool
	block chan struct{}
}

func (u *users) Authenticate(ctx context.Context, username, password string) (Identity, error) {
	u.mu.Lock()
	block, down := u.block, u.down
	u.mu.Unlock()
	if block != nil {
		<-block
	}
	if down {
		return Identity{}, fmt.Errorf("test backend: %w", ErrUnavailable)
	}
	return u.real.Authenticate(ctx, username, password)
}

// newUsers writes a Dovecot passwd-file with alice@example.org/secret and
// bob/hunter2 (default domain example.org).
func newUsers(t testing.TB) *users {
	t.Helper()
	path := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(path, []byte("alice@example.org:{PLAIN}secret\nbob:{PLAIN}hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pf, err := auth.NewPasswdFile(path, "example.org", nil)
	if err != nil {
		t.Fatal(err)
	}
	return &users{real: AuthBackend{Backend: pf}}
}

type testEnv struct {
	t     *testing.T
	srv   *Server
	addr  string
	users *users
	root  string
	store *storage.Store
	tls   *tls.Config // client side, trusts the server certificate
	done  chan error
}

type envOption func(*Options, *storage.Config)

// newEnv starts a server on 127.0.0.1 with a real temp-dir store and the
// real engine.
func newEnv(t *testing.T, opts ...envOption) *testEnv {
	t.Helper()
	root := t.TempDir()
	scfg := storage.Config{Root: root}
	o := Options{
		Compiler:       EngineCompiler{Engine: engine.New(engine.Config{})},
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		AllowPlaintext: true,
		LoginDelay:     -1,
		MaxRedirects:   4,
	}
	for _, f := range opts {
		f(&o, &scfg)
	}
	st, err := storage.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	u := newUsers(t)
	o.Auth = u
	o.Store = FileStore{Store: st}
	e := &testEnv{t: t, users: u, root: root, store: st, done: make(chan error, 1)}
	if o.TLSConfig != nil {
		pool := x509.NewCertPool()
		pool.AddCert(o.TLSConfig.Certificates[0].Leaf)
		e.tls = &tls.Config{RootCAs: pool, ServerName: "localhost"}
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.srv, e.addr = srv, l.Addr().String()
	go func() { e.done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-e.done
	})
	return e
}

// serverTLS returns a server tls.Config with a fresh self-signed
// certificate for localhost/127.0.0.1.
func serverTLS(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}}}
}

// client is a minimal ManageSieve client for tests.
type client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func (e *testEnv) dial() *client {
	e.t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return &client{t: e.t, c: c, br: bufio.NewReader(c)}
}

// greeted dials and reads the greeting.
func (e *testEnv) greeted() *client {
	cl := e.dial()
	cl.response()
	return cl
}

// login dials, reads the greeting and logs in as alice with PLAIN.
func (e *testEnv) login() *client {
	cl := e.greeted()
	cl.send(`AUTHENTICATE "PLAIN" "` + b64("\x00alice@example.org\x00secret") + `"`)
	if r := cl.response(); r.status != "OK" {
		e.t.Fatalf("login: %s", r.last)
	}
	return cl
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s+"\r\n"); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

func (c *client) sendRaw(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// resp is one server response: the lines before the final one (literals
// inlined), the final line, its status, code and text.
type resp struct {
	lines  []string
	last   string
	status string // OK, NO, BYE
	code   string // inside the parentheses
	text   string // the human text, literal or quoted, unquoted
	raw    string // everything as received
}

// readLine reads one server line; a line ending in {n} gets the literal
// appended (raw), and literal returns the literal body.
func (c *client) readLine() (line, literal string, hasLiteral bool) {
	c.t.Helper()
	l, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.t.Fatalf("line without CRLF: %q", l)
	}
	l = strings.TrimSuffix(l, "\r\n")
	if strings.HasSuffix(l, "}") {
		if i := strings.LastIndexByte(l, '{'); i >= 0 {
			n, err := strconv.Atoi(l[i+1 : len(l)-1])
			if err == nil {
				buf := make([]byte, n)
				if _, err := io.ReadFull(c.br, buf); err != nil {
					c.t.Fatalf("read literal: %v", err)
				}
				return l, string(buf), true
			}
		}
	}
	return l, "", false
}

// response reads up to and including an OK, NO or BYE line.
func (c *client) response() resp {
	c.t.Helper()
	var r resp
	for {
		l, lit, has := c.readLine()
		r.raw += l + "\r\n" + lit
		for _, st := range []string{"OK", "NO", "BYE"} {
			if l == st || strings.HasPrefix(l, st+" ") {
				r.status, r.last = st, l
				rest := strings.TrimPrefix(l, st)
				rest = strings.TrimPrefix(rest, " ")
				if strings.HasPrefix(rest, "(") {
					// The code may hold a quoted string with ")".
					end := codeEnd(rest)
					r.code = rest[1:end]
					rest = strings.TrimPrefix(rest[end+1:], " ")
				}
				switch {
				case has:
					r.text = lit
					// the CRLF after a response literal
					tail, _, _ := c.readLine()
					if tail != "" {
						c.t.Fatalf("junk after response literal: %q", tail)
					}
				case strings.HasPrefix(rest, `"`):
					r.text = unquote(c.t, rest)
				default:
					r.text = rest
				}
				return r
			}
		}
		if has {
			r.lines = append(r.lines, l+"\n"+lit)
			// literal data lines (GETSCRIPT) are followed by CRLF
			tail, _, _ := c.readLine()
			if tail != "" {
				r.lines = append(r.lines, tail)
			}
			continue
		}
		r.lines = append(r.lines, l)
	}
}

func codeEnd(s string) int {
	inQ := false
	for i := 1; i < len(s); i++ {
		switch {
		case inQ && s[i] == '\\':
			i++
		case s[i] == '"':
			inQ = !inQ
		case !inQ && s[i] == ')':
			return i
		}
	}
	return len(s) - 1
}

func unquote(t *testing.T, s string) string {
	t.Helper()
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		t.Fatalf("not a quoted string: %q", s)
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		if s[i] == '\\' {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// expectClosed checks that the server closed the connection.
func (c *client) expectClosed() {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := c.br.ReadByte()
	if err == nil {
		c.t.Fatalf("connection still open, read %q", b)
	}
}
