package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// started runs sieved in-process with args and returns the address of its
// first listener, the printed lines so far, and a stop function that
// delivers "SIGTERM" and returns the exit status.
func started(t *testing.T, args ...string) (addr string, out []string, stop func() int) {
	t.Helper()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, args, pw, io.Discard)
		pw.Close()
	}()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, pr)
	}()
	re := regexp.MustCompile(`^sieved: listening on (\S+) `)
	timeout := time.After(20 * time.Second)
	for addr == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("sieved exited (status %d) before listening; output %q", <-code, out)
			}
			out = append(out, l)
			if m := re.FindStringSubmatch(l); m != nil {
				addr = m[1]
			}
		case <-timeout:
			t.Fatalf("sieved did not print a listening line; output %q", out)
		}
	}
	stopped := false
	var status int
	stop = func() int {
		if !stopped {
			stopped = true
			cancel()
			select {
			case status = <-code:
			case <-time.After(20 * time.Second):
				t.Fatal("sieved did not stop")
			}
		}
		return status
	}
	t.Cleanup(func() { stop() })
	return addr, out, stop
}

var literalRE = regexp.MustCompile(`\{(\d+)\}$`)

type conn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	cn := &conn{t: t, c: c, br: bufio.NewReader(c)}
	cn.until()
	return cn
}

// until reads lines up to the final OK/NO/BYE and returns them all.
func (c *conn) until() []string {
	c.t.Helper()
	var ls []string
	for {
		l, err := c.br.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read: %v after %q", err, ls)
		}
		l = strings.TrimRight(l, "\r\n")
		if m := literalRE.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			buf := make([]byte, n+2) // the literal and its CRLF
			if _, err := io.ReadFull(c.br, buf); err != nil {
				c.t.Fatal(err)
			}
			l += "\n" + string(buf[:n])
		}
		ls = append(ls, l)
		if strings.HasPrefix(l, "OK") || strings.HasPrefix(l, "NO") || strings.HasPrefix(l, "BYE") {
			return ls
		}
	}
}

func (c *conn) cmd(s string) (last string, all []string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s+"\r\n"); err != nil {
		c.t.Fatal(err)
	}
	all = c.until()
	return all[len(all)-1], all
}

func plain(user, pass string) string {
	return `AUTHENTICATE "PLAIN" "` + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass)) + `"`
}

// The interop tests start the binary exactly like this.
func TestFlagsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "sieve")
	users := filepath.Join(dir, "users")
	os.WriteFile(users, []byte("alice@example.org:{PLAIN}secret\n"), 0o600)
	addr, _, stop := started(t, "-listen", "127.0.0.1:0", "-sieve-root", root, "-users", users, "-allow-plaintext")

	c := dial(t, addr)
	if last, _ := c.cmd(plain("alice@example.org", "wrong")); !strings.HasPrefix(last, "NO") {
		t.Fatalf("wrong password: %s", last)
	}
	if last, _ := c.cmd(plain("alice@example.org", "secret")); last != `OK "Logged in."` {
		t.Fatalf("login: %s", last)
	}
	script := "require \"fileinto\";\r\nfileinto \"Junk\";\r\n"
	if last, _ := c.cmd(`PUTSCRIPT "main" {` + itoa(len(script)) + "+}\r\n" + script); !strings.HasPrefix(last, "OK") {
		t.Fatalf("PUTSCRIPT: %s", last)
	}
	broken := "fileinto \"Junk\";\r\n"
	last, all := c.cmd(`PUTSCRIPT "main" {` + itoa(len(broken)) + "+}\r\n" + broken)
	if !strings.HasPrefix(last, "NO") || !strings.Contains(strings.Join(all, "\n"), "line 1") {
		t.Fatalf("broken PUTSCRIPT: %q", all)
	}
	if last, _ := c.cmd(`SETACTIVE "main"`); !strings.HasPrefix(last, "OK") {
		t.Fatalf("SETACTIVE: %s", last)
	}
	// What sieve-lda and Exim read.
	b, err := os.ReadFile(filepath.Join(root, "example.org", "alice", "active"))
	if err != nil || string(b) != "require \"fileinto\";\nfileinto \"Junk\";\n" {
		t.Fatalf("active script on disk = %q, %v", b, err)
	}
	if target, _ := os.Readlink(filepath.Join(root, "example.org", "alice", "active")); target != "main.sieve" {
		t.Errorf("active -> %q", target)
	}
	// Graceful stop: the idle client is told BYE (TRYLATER).
	done := make(chan int, 1)
	go func() { done <- stop() }()
	if l := c.until(); !strings.HasPrefix(l[len(l)-1], "BYE (TRYLATER)") {
		t.Errorf("on shutdown: %q", l)
	}
	if code := <-done; code != 0 {
		t.Errorf("exit status %d", code)
	}
}

// Without TLS and without -allow-plaintext nobody can log in in clear:
// SASL "" and ENCRYPT-NEEDED, even on loopback.
func TestNoPlaintextByDefault(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	os.WriteFile(users, []byte("alice@example.org:{PLAIN}secret\n"), 0o600)
	addr, _, _ := started(t, "-listen", "127.0.0.1:0", "-sieve-root", dir, "-users", users)
	c := dial(t, addr)
	_, all := c.cmd("CAPABILITY")
	if !contains(all, `"SASL" ""`) {
		t.Errorf("capabilities: %q", all)
	}
	if last, _ := c.cmd(plain("alice@example.org", "secret")); !strings.HasPrefix(last, "NO (ENCRYPT-NEEDED)") {
		t.Errorf("plaintext login: %s", last)
	}
}

// README's first command: no arguments, a demo under ./sieved-data/.
func TestDemo(t *testing.T) {
	t.Chdir(t.TempDir())
	addr, out, stop := started(t, "-listen", "127.0.0.1:0")
	re := regexp.MustCompile(`demo user (\S+) password (\S+)`)
	var user, pass string
	for _, l := range out {
		if m := re.FindStringSubmatch(l); m != nil {
			user, pass = m[1], m[2]
		}
	}
	if user == "" {
		t.Fatalf("no demo user printed: %q", out)
	}
	c := dial(t, addr)
	if last, _ := c.cmd(plain(user, pass)); last != `OK "Logged in."` {
		t.Fatalf("demo login: %s", last)
	}
	if last, _ := c.cmd(`PUTSCRIPT "x" "keep;"`); !strings.HasPrefix(last, "OK") {
		t.Fatalf("PUTSCRIPT: %s", last)
	}
	if _, err := os.Stat(filepath.Join("sieved-data", "sieve", "example.org", "demo", "x.sieve")); err != nil {
		t.Errorf("demo script not under ./sieved-data: %v", err)
	}
	stop()
	// A second start prints the same password.
	_, out2, _ := started(t, "-listen", "127.0.0.1:0")
	if !strings.Contains(strings.Join(out2, "\n"), "password "+pass+" ") {
		t.Errorf("second start: %q", out2)
	}
}

func TestConfigFileAndOverride(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	os.WriteFile(users, []byte("alice@example.org:{PLAIN}secret\n"), 0o600)
	cfg := filepath.Join(dir, "sieved.toml")
	os.WriteFile(cfg, []byte("[storage]\nroot = \""+filepath.Join(dir, "s")+"\"\nmax_scripts = 1\n"+
		"[server]\nlisten = \"127.0.0.1:1\"\nallow_plaintext = true\nimplementation = \"Test\"\n"+
		"[auth]\npasswd_file = \""+users+"\"\ndefault_domain = \"example.org\"\n"), 0o644)
	// -listen overrides the file; users, quotas and the rest come from it.
	addr, _, _ := started(t, "-config", cfg, "-listen", "127.0.0.1:0")
	c := dial(t, addr)
	_, all := c.cmd("CAPABILITY")
	if !contains(all, `"IMPLEMENTATION" "Test"`) || !contains(all, `"SASL" "PLAIN LOGIN"`) {
		t.Errorf("config not applied: %q", all)
	}
	if last, _ := c.cmd(plain("alice", "secret")); last != `OK "Logged in."` {
		t.Fatalf("bare login with default_domain: %s", last)
	}
	if last, _ := c.cmd(`PUTSCRIPT "a" "keep;"`); !strings.HasPrefix(last, "OK") {
		t.Fatalf("PUTSCRIPT: %s", last)
	}
	if last, _ := c.cmd(`PUTSCRIPT "b" "keep;"`); !strings.HasPrefix(last, "NO (QUOTA/MAXSCRIPTS)") {
		t.Errorf("storage quota from the config: %s", last)
	}

	for _, bad := range [][]string{
		{"-config", filepath.Join(dir, "missing.toml")},
		{"-users", users, "-listen", "nonsense"},
		{"-users", users, "-tls-cert", "x"},
		{"-users", users, "-auth-imap", "127.0.0.1:143"},
		{"stray"},
	} {
		if code := run(context.Background(), bad, io.Discard, io.Discard); code != 2 {
			t.Errorf("run %q = %d, want 2", bad, code)
		}
	}
}

func contains(ls []string, s string) bool {
	for _, l := range ls {
		if l == s {
			return true
		}
	}
	return false
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestMain lets the test binary play sieved for TestSIGTERM.
func TestMain(m *testing.M) {
	if os.Getenv("SIEVED_TEST_AS_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// A real SIGTERM: the idle client gets BYE (TRYLATER), the process exits 0.
func TestSIGTERM(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	os.WriteFile(users, []byte("alice@example.org:{PLAIN}secret\n"), 0o600)
	cmd := exec.Command(os.Args[0], "-listen", "127.0.0.1:0", "-sieve-root", dir, "-users", users, "-allow-plaintext")
	cmd.Env = append(os.Environ(), "SIEVED_TEST_AS_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	re := regexp.MustCompile(`^sieved: listening on (\S+) `)
	addr := ""
	for addr == "" && sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatal("no listening line")
	}
	go io.Copy(io.Discard, stdout)
	c := dial(t, addr)
	if last, _ := c.cmd(plain("alice@example.org", "secret")); last != `OK "Logged in."` {
		t.Fatalf("login: %s", last)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if l := c.until(); !strings.HasPrefix(l[len(l)-1], "BYE (TRYLATER)") {
		t.Errorf("on SIGTERM: %q", l)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit: %v", err)
	}
}
