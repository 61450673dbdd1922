// Package bench holds benchmarks of sieved against Dovecot Pigeonhole, the
// server users compare it with. See README.md for how to run them and for
// the numbers measured so far.
package bench

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The benchmark user, the same in both servers' passwd-file. {PLAIN} so
// that neither server spends its login time in a password hash.
const (
	benchUser     = "alice@example.org"
	benchPassword = "bench-secret"
	benchScript   = "bench"
	// dovecotMailUser runs Dovecot's mail processes: Dovecot refuses root.
	dovecotMailUser = "mail"
)

// BenchmarkPutGet: one authenticated connection per server, each iteration
// replaces a 1 KB script (PUTSCRIPT with a non-synchronizing literal) and
// reads it back (GETSCRIPT), waiting for each answer (no pipelining).
func BenchmarkPutGet(b *testing.B) {
	script := oneKBScript()
	for _, p := range peers(b) {
		b.Run(p.name, func(b *testing.B) {
			addr := p.start(b)
			c, err := dialLogin(addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.close()
			put := fmt.Appendf(nil, "PUTSCRIPT \"%s\" {%d+}\r\n%s\r\n", benchScript, len(script), script)
			get := []byte("GETSCRIPT \"" + benchScript + "\"\r\n")
			var putTime, getTime time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if _, err := c.command(put); err != nil {
					b.Fatalf("PUTSCRIPT: %v", err)
				}
				t1 := time.Now()
				lit, err := c.command(get)
				if err != nil {
					b.Fatalf("GETSCRIPT: %v", err)
				}
				putTime += t1.Sub(t0)
				getTime += time.Since(t1)
				if !bytes.Equal(lit, script) {
					b.Fatalf("GETSCRIPT returned %d bytes that differ from the %d uploaded", len(lit), len(script))
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
			b.ReportMetric(float64(putTime.Microseconds())/float64(b.N), "put-µs/op")
			b.ReportMetric(float64(getTime.Microseconds())/float64(b.N), "get-µs/op")
		})
	}
}

// BenchmarkLogin: a whole short session per iteration: connect, read the
// greeting, AUTHENTICATE "PLAIN", LOGOUT, and wait for the server to close.
func BenchmarkLogin(b *testing.B) {
	for _, p := range peers(b) {
		b.Run(p.name, func(b *testing.B) {
			addr := p.start(b)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c, err := dialLogin(addr)
				if err != nil {
					b.Fatal(err)
				}
				if err := c.logout(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
		})
	}
}

// oneKBScript is a valid Sieve script of exactly 1024 bytes with CRLF line
// endings (what Thunderbird and Roundcube upload), so that both servers
// return it byte for byte.
func oneKBScript() []byte {
	var s strings.Builder
	s.WriteString("require [\"fileinto\", \"imap4flags\"];\r\n")
	for i := 0; s.Len() < 900; i++ {
		fmt.Fprintf(&s, "if header :contains \"list-id\" \"list%d.example.net\" { fileinto \"Lists/l%d\"; stop; }\r\n", i, i)
	}
	s.WriteString("keep;\r\n")
	const pre, post = "# ", "\r\n"
	if pad := 1024 - s.Len() - len(pre) - len(post); pad >= 0 {
		s.WriteString(pre + strings.Repeat("x", pad) + post)
	}
	return []byte(s.String())
}

// --- the two servers ---

// peer is one ManageSieve server under test, started on first use by a
// sub-benchmark and stopped when the parent benchmark ends.
type peer struct {
	name   string
	parent *testing.B
	launch func(dir string) (addr string, stop func(), err error)

	once sync.Once
	addr string
	skip string
	err  error
}

func peers(b *testing.B) []*peer {
	return []*peer{
		{name: "sieved", parent: b, launch: launchSieved},
		{name: "dovecot", parent: b, launch: launchDovecot},
	}
}

// start returns the server's address, starting it once. A missing peer
// skips the sub-benchmark.
func (p *peer) start(b *testing.B) string {
	b.Helper()
	p.once.Do(func() {
		dir, err := os.MkdirTemp("", "sieved-bench-"+p.name+"-")
		if err != nil {
			p.err = err
			return
		}
		addr, stop, err := p.launch(dir)
		var sk skipError
		switch {
		case errors.As(err, &sk):
			p.skip = sk.reason
		case err != nil:
			p.err = fmt.Errorf("start %s: %w", p.name, err)
		default:
			p.addr = addr
		}
		// The parent outlives the sub-benchmark's repeated runs (b.N
		// ramp-up), so the server runs once for all of them.
		p.parent.Cleanup(func() {
			if stop != nil {
				stop()
			}
			os.RemoveAll(dir)
		})
	})
	if p.skip != "" {
		b.Skip(p.skip)
	}
	if p.err != nil {
		b.Fatal(p.err)
	}
	return p.addr
}

type skipError struct{ reason string }

func (e skipError) Error() string { return e.reason }

// launchSieved builds ./cmd/sieved and runs it on a free port with a
// private store and users file.
func launchSieved(dir string) (string, func(), error) {
	bin, err := sievedBinary()
	if err != nil {
		return "", nil, err
	}
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte(benchUser+":{PLAIN}"+benchPassword+"\n"), 0o600); err != nil {
		return "", nil, err
	}
	root := filepath.Join(dir, "sieve")
	if err := os.Mkdir(root, 0o755); err != nil {
		return "", nil, err
	}
	log, err := os.Create(filepath.Join(dir, "sieved.log"))
	if err != nil {
		return "", nil, err
	}
	defer log.Close()
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin, "-listen", addr, "-sieve-root", root, "-users", users, "-allow-plaintext")
	cmd.Stdout, cmd.Stderr = log, log
	return startAndWait(cmd, addr, filepath.Join(dir, "sieved.log"))
}

// launchDovecot runs Dovecot's managesieved (Pigeonhole) with a private
// configuration: plaintext PLAIN without TLS, the same passwd-file user,
// scripts in file:~/scripts as sieved's layout, everything else default
// (one login process per connection, as Debian ships it).
func launchDovecot(dir string) (string, func(), error) {
	for _, f := range []string{"/usr/sbin/dovecot", "/usr/lib/dovecot/managesieve", "/usr/lib/dovecot/managesieve-login"} {
		if _, err := os.Stat(f); err != nil {
			return "", nil, skipError{"peer " + f + " is not installed (scripts/test.sh installs dovecot-managesieved)"}
		}
	}
	if os.Getuid() != 0 {
		return "", nil, skipError{"Dovecot's managesieved needs root to switch to the " + dovecotMailUser + " user"}
	}
	u, err := user.Lookup(dovecotMailUser)
	if err != nil {
		return "", nil, skipError{fmt.Sprintf("user %s: %v", dovecotMailUser, err)}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// The mail processes run as the mail user and must reach the home
	// through the temp directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", nil, err
	}
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		return "", nil, err
	}
	if err := os.Chown(home, uid, gid); err != nil {
		return "", nil, err
	}
	passwd := filepath.Join(dir, "passwd")
	if err := os.WriteFile(passwd, []byte(benchUser+":{PLAIN}"+benchPassword+"\n"), 0o644); err != nil {
		return "", nil, err
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
info_log_path = %[1]s/dovecot.log
protocols = sieve
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
default_internal_user = %[2]s
default_internal_group = %[2]s
default_login_user = %[2]s
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = %[3]s
}
userdb {
  driver = static
  args = uid=%[4]d gid=%[5]d home=%[1]s/home/%%d/%%n
}
service managesieve-login {
  chroot =
  inet_listener sieve {
    address = 127.0.0.1
    port = %[6]d
  }
}
service anvil {
  chroot =
}
service auth {
  user = root
}
plugin {
  sieve = file:~/scripts;active=~/scripts/active
}
`, dir, dovecotMailUser, passwd, uid, gid, port)
	confFile := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		return "", nil, err
	}
	out, err := os.Create(filepath.Join(dir, "dovecot.out"))
	if err != nil {
		return "", nil, err
	}
	defer out.Close()
	cmd := exec.Command("/usr/sbin/dovecot", "-F", "-c", confFile)
	cmd.Stdout, cmd.Stderr = out, out
	return startAndWait(cmd, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), filepath.Join(dir, "dovecot.log"))
}

// startAndWait starts cmd, waits until addr accepts connections and returns
// a stop function that ends the process by its PID: SIGTERM first (Dovecot's
// master then stops its children), SIGKILL after 5 s.
func startAndWait(cmd *exec.Cmd, addr, logFile string) (string, func(), error) {
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return addr, stop, nil
		}
		select {
		case <-done:
			log, _ := os.ReadFile(logFile)
			return "", nil, fmt.Errorf("%s exited before listening on %s; log:\n%s", cmd.Path, addr, log)
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("nothing listens on %s after 15 s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

// sievedBinary builds ./cmd/sieved once per test process.
func sievedBinary() (string, error) {
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "sieved-bench-bin-")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "sieved")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/sieved")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/sieved: %w\n%s", err, out)
		}
	})
	return buildPath, buildErr
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// --- a minimal ManageSieve client (RFC 5804) ---

// msConn is just enough client for the benchmarks: it sends whole commands
// and reads one response, returning the last literal of it (GETSCRIPT's
// script). Written here rather than borrowed from managesieve/ so that the
// benchmark measures the servers through an independent client.
type msConn struct {
	conn net.Conn
	r    *bufio.Reader
}

// maxLine bounds a response line and a literal the client accepts.
const maxLine = 1 << 20

// dialLogin connects, reads the greeting and authenticates the bench user
// with AUTHENTICATE "PLAIN" and an initial response.
func dialLogin(addr string) (*msConn, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c := &msConn{conn: conn, r: bufio.NewReader(conn)}
	if _, err := c.response(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + benchUser + "\x00" + benchPassword))
	if _, err := c.command([]byte("AUTHENTICATE \"PLAIN\" \"" + ir + "\"\r\n")); err != nil {
		conn.Close()
		return nil, fmt.Errorf("AUTHENTICATE: %w", err)
	}
	return c, nil
}

func (c *msConn) close() { c.conn.Close() }

// logout sends LOGOUT, expects OK and waits for the server to close.
func (c *msConn) logout() error {
	defer c.conn.Close()
	if _, err := c.command([]byte("LOGOUT\r\n")); err != nil {
		return fmt.Errorf("LOGOUT: %w", err)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.r.Discard(1); !errors.Is(err, io.EOF) {
		return fmt.Errorf("after LOGOUT: want the server to close, got %v", err)
	}
	return nil
}

// command writes cmd and reads the response; a NO or BYE is an error.
func (c *msConn) command(cmd []byte) ([]byte, error) {
	_ = c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write(cmd); err != nil {
		return nil, err
	}
	return c.response()
}

// response reads lines up to and including the status line (OK, NO or
// BYE). Literals ({n} or {n+} at the end of a line) may appear anywhere;
// the last one is returned.
func (c *msConn) response() ([]byte, error) {
	var lit []byte
	for {
		line, l, err := c.logicalLine()
		if err != nil {
			return nil, err
		}
		if l != nil {
			lit = l
		}
		word, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(word) {
		case "OK":
			return lit, nil
		case "NO", "BYE":
			if l != nil {
				rest += " " + string(l)
			}
			return nil, fmt.Errorf("server said %s %s", word, rest)
		}
	}
}

// logicalLine reads one line, following literals inside it; the text
// returned has each literal replaced by "{}", the literal's bytes come back
// separately.
func (c *msConn) logicalLine() (string, []byte, error) {
	var text strings.Builder
	var lit []byte
	for {
		raw, err := c.r.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return "", nil, errors.New("response line too long")
			}
			return "", nil, err
		}
		if text.Len()+len(raw) > maxLine {
			return "", nil, errors.New("response line too long")
		}
		s := strings.TrimRight(string(raw), "\r\n")
		n, before, ok := literalSuffix(s)
		if !ok {
			text.WriteString(s)
			return text.String(), lit, nil
		}
		if n > maxLine {
			return "", nil, fmt.Errorf("literal of %d bytes is too large", n)
		}
		text.WriteString(before + "{}")
		lit = make([]byte, n)
		if _, err := io.ReadFull(c.r, lit); err != nil {
			return "", nil, err
		}
	}
}

// literalSuffix recognises a line ending in "{n}" or "{n+}".
func literalSuffix(s string) (n int, before string, ok bool) {
	if !strings.HasSuffix(s, "}") {
		return 0, "", false
	}
	open := strings.LastIndexByte(s, '{')
	if open < 0 {
		return 0, "", false
	}
	num := strings.TrimSuffix(s[open+1:len(s)-1], "+")
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || num == "" || num[0] == '+' {
		return 0, "", false
	}
	return n, s[:open], true
}

// TestClient checks the benchmark's client against canned server answers,
// so that a benchmark number never rests on a misread response.
func TestClient(t *testing.T) {
	if got := len(oneKBScript()); got != 1024 {
		t.Fatalf("oneKBScript is %d bytes, want 1024", got)
	}
	tests := []struct {
		name, wire string
		want       string // the literal returned
		wantErr    string // "" for OK
	}{
		{"greeting", "\"IMPLEMENTATION\" \"x\"\r\n\"SIEVE\" \"fileinto\"\r\nOK \"ready\"\r\n", "", ""},
		{"getscript", "{5}\r\nab\r\nc\r\nOK \"Getscript completed.\"\r\n", "ab\r\nc", ""},
		{"empty literal", "{0}\r\n\r\nOK\r\n", "", ""},
		{"no", "NO (NONEXISTENT) \"no such script\"\r\n", "", "NONEXISTENT"},
		{"no literal", "NO {11}\r\nline 1: bad\r\n", "", "line 1: bad"},
		{"bye", "BYE \"going away\"\r\n", "", "going away"},
		{"eof", "\"SIEVE\" \"x\"\r\n", "", "EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &msConn{r: bufio.NewReader(strings.NewReader(tt.wire))}
			lit, err := c.response()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("response() error %v, want OK", err)
				}
				if string(lit) != tt.want {
					t.Fatalf("literal %q, want %q", lit, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("response() error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
