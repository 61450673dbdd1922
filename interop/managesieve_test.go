package interop

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The ManageSieve interoperability tests: real clients (sieve-connect,
// python3-sievelib, PHP's Net_Sieve as Roundcube uses it) drive full
// sessions against sieved, and the same sessions run against Dovecot's
// managesieved so the expectations are checked against the reference
// server too. The raw side-by-side comparison with Dovecot lives in
// dovecot_managesieve_test.go.

// msServer is a running ManageSieve server under test.
type msServer struct {
	name string
	port int
	// crlfGet: GETSCRIPT returns CRLF line endings whatever the upload
	// used (sieved stores LF and converts on the wire, see storage's
	// package doc); otherwise the uploaded bytes come back unchanged
	// (Pigeonhole).
	crlfGet bool
	// scriptDir is where the server keeps the scripts of a user, below
	// sieveRoot; uid and gid own them.
	scriptDir func(user string) string
	sieveRoot string
	uid, gid  int
}

func (s *msServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// wantGet is the content a client must get back for uploaded content.
func (s *msServer) wantGet(uploaded string) string {
	if !s.crlfGet {
		return uploaded
	}
	return strings.ReplaceAll(strings.ReplaceAll(uploaded, "\r\n", "\n"), "\n", "\r\n")
}

func msLocal(u string) string  { l, _, _ := strings.Cut(u, "@"); return l }
func msDomain(u string) string { _, d, _ := strings.Cut(u, "@"); return d }

// msCerts is a private CA and a server certificate it signed for
// localhost and 127.0.0.1.
type msCerts struct {
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
}

func (tc *msCerts) clientConfig() *tls.Config {
	return &tls.Config{RootCAs: tc.pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
}

// msMakeCerts writes a CA certificate and a server certificate + key (PEM)
// into dir. Files are world-readable: Dovecot reads them as root, clients
// as whoever they run as.
func msMakeCerts(t testing.TB, dir string) *msCerts {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sieved interop test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	tc := &msCerts{
		caFile:   filepath.Join(dir, "ca.pem"),
		certFile: filepath.Join(dir, "cert.pem"),
		keyFile:  filepath.Join(dir, "key.pem"),
		pool:     x509.NewCertPool(),
	}
	tc.pool.AddCert(ca)
	mustWrite(t, tc.caFile, pemOf("CERTIFICATE", caDER))
	// The chain a server presents: leaf, then the CA.
	mustWrite(t, tc.certFile, pemOf("CERTIFICATE", leafDER)+pemOf("CERTIFICATE", caDER))
	mustWrite(t, tc.keyFile, pemOf("PRIVATE KEY", keyDER))
	return tc
}

// msWritePasswd writes a Dovecot passwd-file (user@domain:{PLAIN}password),
// the format both sieved -users and Dovecot's passdb read.
func msWritePasswd(t testing.TB, path string, users map[string]string) {
	t.Helper()
	var b strings.Builder
	for u, p := range users {
		fmt.Fprintf(&b, "%s:{PLAIN}%s\n", u, p)
	}
	mustWrite(t, path, b.String())
}

// startSieved builds and starts sieved on a free port of 127.0.0.1 with
// STARTTLS and the users of passwd. extra are more command-line flags.
func startSieved(t *testing.T, passwd string, tc *msCerts, extra ...string) *msServer {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "sieve")
	mustMkdir(t, root)
	return startSievedOn(t, root, passwd, tc, extra...)
}

// startSievedOn starts sieved on an existing script store root.
func startSievedOn(t *testing.T, root, passwd string, tc *msCerts, extra ...string) *msServer {
	t.Helper()
	bin := binary(t, "sieved")
	dir := t.TempDir()
	port := freePort(t)
	args := append([]string{
		"-listen", "127.0.0.1:" + strconv.Itoa(port),
		"-sieve-root", root,
		"-users", passwd,
		"-tls-cert", tc.certFile,
		"-tls-key", tc.keyFile,
	}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var out msSyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	startProcess(t, cmd)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sieved output:\n%s", out.String())
		}
	})
	waitPort(t, port, 15*time.Second)
	return &msServer{
		name:      "sieved",
		port:      port,
		crlfGet:   true,
		sieveRoot: root,
		scriptDir: func(u string) string {
			return filepath.Join(root, msDomain(u), msLocal(u))
		},
	}
}

// Scripts the client sessions upload. msGoodScript uses only extensions
// every server under test has; msBrokenScript misses a ';' so the error is
// on line 4 (where the '}' ends the unterminated command).
const (
	msGoodScript = "require [\"fileinto\"];\n" +
		"# sorted by the interop test\n" +
		"if header :contains \"subject\" \"[list]\" {\n" +
		"  fileinto \"Lists\";\n" +
		"  stop;\n" +
		"}\n"
	msBrokenScript = "require \"fileinto\";\n" +
		"if true {\n" +
		"  fileinto \"A\"\n" +
		"}\n"
	msBrokenLine = 4
)

// msMentionsLine reports whether a server's error text names the line.
func msMentionsLine(text string, line int) bool {
	return strings.Contains(text, fmt.Sprintf("line %d", line))
}

// msServerFactory gives a client subtest its server: a fresh sieved per
// subtest (so one client's failed-login delay never slows another) or the
// shared Dovecot.
type msServerFactory struct {
	name  string
	start func(t *testing.T) *msServer
}

// msClientEnv is shared by the client subtests: one CA, one passwd-file
// for every user, one Dovecot.
type msClientEnv struct {
	certs   *msCerts
	passwd  string
	dovecot *msServer
}

// Users of the client tests: one per client, so parallel sessions against
// the shared Dovecot never see each other's scripts.
var msClientUsers = map[string]string{
	"sc@example.org":  "sc-secret",
	"py@example.org":  "py secret with spaces",
	"php@example.org": "php-secret",
}

func TestManageSieveClients(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := &msClientEnv{certs: msMakeCerts(t, dir), passwd: filepath.Join(dir, "passwd")}
	msWritePasswd(t, env.passwd, msClientUsers)
	// The reference run against Dovecot needs root; without it (and
	// without SIEVED_REQUIRE_PEERS) only the sieved subtests run.
	if os.Getuid() == 0 || os.Getenv("SIEVED_REQUIRE_PEERS") == "1" {
		env.dovecot = startDovecotManageSieve(t, env.passwd, env.certs, dovecotQuota{})
	}

	servers := []msServerFactory{
		{"sieved", func(t *testing.T) *msServer { return startSieved(t, env.passwd, env.certs) }},
		{"dovecot", func(t *testing.T) *msServer {
			if env.dovecot == nil {
				t.Skip("the Dovecot reference run needs root")
			}
			return env.dovecot
		}},
	}
	clients := []struct {
		name string
		run  func(t *testing.T, env *msClientEnv, srv *msServer)
	}{
		{"sieve-connect", runSieveConnect},
		{"python3-sievelib", runSievelib},
		{"php-net-sieve", runNetSieve},
	}
	for _, c := range clients {
		for _, s := range servers {
			t.Run(c.name+"/"+s.name, func(t *testing.T) {
				t.Parallel()
				c.run(t, env, s.start(t))
			})
		}
	}
}

// msSyncBuffer is a bytes.Buffer safe for a process writing while the test
// reads it.
type msSyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *msSyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *msSyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// msReadScriptDir lists the *.sieve files of dir (names without the suffix).
func msReadScriptDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".sieve"); ok && e.Type().IsRegular() {
			names = append(names, n)
		}
	}
	return names
}

// runSieveConnect drives one sieve-connect session (its --exec command
// file, the way scripts use it) and a login with a wrong password.
// sieve-connect has no rename command; the other clients cover RENAMESCRIPT.
func runSieveConnect(t *testing.T, env *msClientEnv, srv *msServer) {
	sc := requirePeer(t, "sieve-connect")
	const userName = "sc@example.org"
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "good.sieve"), msGoodScript) // LF, as a local file is
	mustWrite(t, filepath.Join(dir, "bad.sieve"), msBrokenScript)
	const uniName = msUniName
	// sieve-connect reports every failed command as a "problem" and exits 1;
	// this session expects exactly three (marked "fails").
	mustWrite(t, filepath.Join(dir, "session"), strings.Join([]string{
		"echo list-empty",
		"list",
		"put good.sieve main",
		`put good.sieve "` + uniName + `"`,
		"checkscript bad.sieve", // fails: line 4
		"put bad.sieve broken",  // fails: line 4
		"activate main",
		"echo list-active",
		"list",
		"get main got.sieve",
		"delete main", // fails: active
		"deactivate",
		"delete main",
		`delete "` + uniName + `"`,
		"echo list-end",
		"list",
		"",
	}, "\n"))

	run := func(password string, extra ...string) (stdout, stderr string, err error) {
		args := append([]string{
			"--server", "127.0.0.1", "--port", strconv.Itoa(srv.port), "--nosrv",
			"--user", userName, "--passwordfd", "0",
			// Real verification against the test CA, and no fallback to a
			// clear channel: the session must run inside STARTTLS.
			"--tlscafile", env.certs.caFile, "--tlshostname", "localhost",
			"--noclearchan",
		}, extra...)
		cmd := exec.Command(sc, args...)
		cmd.Dir = dir
		cmd.Stdin = strings.NewReader(password + "\n")
		cmd.Env = append(os.Environ(), "HOME="+dir)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err = msRunWithTimeout(t, cmd, 60*time.Second)
		return o.String(), e.String(), err
	}

	stdout, stderr, err := run(msClientUsers[userName], "--exec", "session")
	t.Logf("sieve-connect against %s:\nstdout:\n%s\nstderr:\n%s", srv.name, stdout, stderr)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("sieve-connect exit: %v, want exit status 1 (three expected failures)", err)
	}
	if !strings.Contains(stderr, "saw 3 problems") {
		t.Errorf("sieve-connect should report exactly the 3 expected failures; stderr:\n%s", stderr)
	}
	// stderr holds one block per failure: "<CMD> failed: <response>", the
	// response possibly a multi-line literal.
	blocks := map[string]string{}
	var cur string
	for _, line := range strings.Split(stderr, "\n") {
		if cmd, _, ok := strings.Cut(line, " failed: "); ok && !strings.HasPrefix(line, " ") {
			cur = cmd
		} else if strings.HasPrefix(line, "saw ") {
			cur = ""
		}
		if cur != "" {
			blocks[cur] += line + "\n"
		}
	}
	checkFail := func(cmd, want string) {
		t.Helper()
		b, ok := blocks[cmd]
		if !ok {
			t.Errorf("no failure reported for %s; stderr:\n%s", cmd, stderr)
		} else if !strings.Contains(b, want) {
			t.Errorf("%s failed without %q in the error:\n%s", cmd, want, b)
		}
	}
	checkFail("CHECKSCRIPT", fmt.Sprintf("line %d", msBrokenLine))
	checkFail("PUTSCRIPT(broken)", fmt.Sprintf("line %d", msBrokenLine))
	checkFail("DELETESCRIPT(main)", "(ACTIVE)")

	sections := map[string]string{}
	for _, part := range strings.Split(stdout, "P1 : ")[1:] {
		name, body, _ := strings.Cut(part, "\n")
		sections[name] = body
	}
	if got := strings.TrimSpace(sections["list-empty"]); got != "" {
		t.Errorf("first LISTSCRIPTS: %q, want nothing", got)
	}
	active := sections["list-active"]
	if !strings.Contains(active, `"main" ACTIVE`) || !strings.Contains(active, `"`+uniName+`"`) || strings.Contains(active, "broken") {
		t.Errorf("LISTSCRIPTS after activate:\n%s\nwant \"main\" ACTIVE and %q, no \"broken\"", active, uniName)
	}
	if got := strings.TrimSpace(sections["list-end"]); got != "" {
		t.Errorf("LISTSCRIPTS after deleting everything: %q, want nothing", got)
	}
	got, err := os.ReadFile(filepath.Join(dir, "got.sieve"))
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	if want := srv.wantGet(msGoodScript); string(got) != want {
		t.Errorf("downloaded script %q, want %q (uploaded with LF)", got, want)
	}

	// SASL LOGIN (sieve-connect sends its responses as literals), then a
	// wrong password: refused, nothing listed.
	mustWrite(t, filepath.Join(dir, "list"), "echo list-login\nlist\n")
	stdout, stderr, err = run(msClientUsers[userName], "--authmech", "LOGIN", "--exec", "list")
	if err != nil || !strings.Contains(stdout, "P1 : list-login") {
		t.Errorf("sieve-connect --authmech LOGIN: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	stdout, stderr, err = run("not-"+msClientUsers[userName], "--exec", "list")
	if err == nil {
		t.Errorf("sieve-connect with a wrong password succeeded:\n%s%s", stdout, stderr)
	}
	if !strings.Contains(strings.ToLower(stderr), "auth") {
		t.Errorf("sieve-connect with a wrong password: want an authentication error, got:\n%s", stderr)
	}
}

// msRunWithTimeout runs cmd to completion, killing it (by PID) after d.
func msRunWithTimeout(t *testing.T, cmd *exec.Cmd, d time.Duration) error {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s did not finish within %s", filepath.Base(cmd.Path), d)
		return nil
	}
}

// libSession is what the sievelib and Net_Sieve session scripts report
// (testdata/managesieve/*_session.*), step by step.
type libSession struct {
	TLS          string
	Login        bool
	LoginError   string `json:"login_error"`
	List0        *libListing
	PutMain      bool      `json:"put_main"`
	PutUni       bool      `json:"put_uni"`
	CheckBroken  libResult `json:"check_broken"`
	PutBroken    libResult `json:"put_broken"`
	Activate     bool
	List1        *libListing
	GetMain      *string `json:"get_main"`
	Havespace    bool
	Rename       bool
	List2        *libListing
	DeleteActive libResult `json:"delete_active"`
	Deactivate   bool
	Delete       bool
	DeleteUni    bool `json:"delete_uni"`
	List3        *libListing
	BadLogin     libResult `json:"bad_login"`
	// Only when asked for (quote_name): sievelib's unescaped quotes.
	PutQuoteName       *libResult  `json:"put_quote_name"`
	ListAfterQuoteName *libListing `json:"list_after_quote_name"`
}

type libListing struct {
	Active  *string
	Scripts []string
}

func (l *libListing) String() string {
	if l == nil {
		return "<failed>"
	}
	a := "<none>"
	if l.Active != nil {
		a = *l.Active
	}
	return fmt.Sprintf("scripts %q, active %s", l.Scripts, a)
}

// is reports whether the listing has exactly scripts (sorted) and active
// ("" for none).
func (l *libListing) is(active string, scripts ...string) bool {
	if l == nil || (l.Active == nil) != (active == "") || (l.Active != nil && *l.Active != active) {
		return false
	}
	return fmt.Sprint(l.Scripts) == fmt.Sprint(scripts)
}

type libResult struct {
	OK    bool
	Error string
}

const msUniName = "Filter Köln ✓"

// runLibSession runs a session script with its interpreter and checks
// every step. getExact: the library hands GETSCRIPT's literal over as it
// came (Net_Sieve) instead of re-joining lines (sievelib).
func runLibSession(t *testing.T, env *msClientEnv, srv *msServer, userName string, interp, script string, getExact bool) {
	// sievelib's unescaped quotes in a name: Dovecot runs the literal
	// after the refused line as commands (managesieve_known_differences.txt,
	// invalid-utf8), which derails sievelib; sieved drains it. Asked of
	// sieved only.
	quoteName := srv.name == "sieved" && script == "sievelib_session.py"
	s := runLibScript(t, env, srv, userName, interp, script, libOpts{useTLS: true, quoteName: quoteName})
	if quoteName && s.PutQuoteName == nil {
		t.Errorf("the sievelib session skipped the unescaped-quote step")
	}
	if !s.Login {
		t.Fatalf("login failed: %s", s.LoginError)
	}
	if !strings.HasPrefix(s.TLS, "TLSv1.") || s.TLS < "TLSv1.2" {
		t.Errorf("session ran over %q, want STARTTLS with TLS 1.2 or later", s.TLS)
	}
	checkLibSession(t, srv, userName, s, getExact)
}

// libOpts are the session script's switches.
type libOpts struct {
	useTLS    bool   // STARTTLS (Net_Sieve's useTLS)
	quoteName bool   // sievelib: the unescaped-quote step
	host      string // default 127.0.0.1; "ssl://127.0.0.1" is implicit TLS
	port      int    // default the server's plain port
}

// runLibScript runs a session script with its interpreter and returns
// its report.
func runLibScript(t *testing.T, env *msClientEnv, srv *msServer, userName string, interp, script string, o libOpts) libSession {
	t.Helper()
	dir := t.TempDir()
	if o.host == "" {
		o.host = "127.0.0.1"
	}
	if o.port == 0 {
		o.port = srv.port
	}
	cfg := map[string]any{
		"usetls": o.useTLS, "quote_name": o.quoteName,
		"host": o.host, "port": o.port,
		"user": userName, "password": msClientUsers[userName],
		"wrong_password": "wrong-" + msClientUsers[userName],
		"good":           msGoodScript, "broken": msBrokenScript,
		"uni_name": msUniName, "cafile": env.certs.caFile,
	}
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "session.json")
	mustWrite(t, cfgFile, string(b))
	abs, err := filepath.Abs(filepath.Join("testdata", "managesieve", script))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(interp, abs, cfgFile)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := msRunWithTimeout(t, cmd, 60*time.Second); err != nil {
		t.Fatalf("%s %s against %s: %v\nstdout:\n%s\nstderr:\n%s", interp, script, srv.name, err, stdout.String(), stderr.String())
	}
	t.Logf("%s against %s: %s\nstderr:\n%s", script, srv.name, stdout.String(), stderr.String())
	var s libSession
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("session output: %v\n%s", err, stdout.String())
	}
	return s
}

// checkLibSession checks every step a session script reported.
func checkLibSession(t *testing.T, srv *msServer, userName string, s libSession, getExact bool) {
	t.Helper()
	if !s.List0.is("") {
		t.Errorf("first LISTSCRIPTS: %s, want nothing", s.List0)
	}
	if !s.PutMain || !s.PutUni {
		t.Errorf("PUTSCRIPT main: %v, PUTSCRIPT %q: %v; want both OK", s.PutMain, msUniName, s.PutUni)
	}
	for name, r := range map[string]libResult{"CHECKSCRIPT": s.CheckBroken, "PUTSCRIPT": s.PutBroken} {
		if r.OK || !msMentionsLine(r.Error, msBrokenLine) {
			t.Errorf("%s of a broken script: ok=%v error %q; want NO naming line %d", name, r.OK, r.Error, msBrokenLine)
		}
	}
	if !s.Activate || !s.List1.is("main", msUniName, "main") {
		t.Errorf("SETACTIVE main: %v, then LISTSCRIPTS: %s; want %q and main, main active (the broken one never stored)", s.Activate, s.List1, msUniName)
	}
	switch {
	case s.GetMain == nil:
		t.Errorf("GETSCRIPT main failed")
	case getExact:
		// Net_Sieve reads the literal plus the CRLF that ends its line.
		want := srv.wantGet(strings.ReplaceAll(msGoodScript, "\n", "\r\n")) + "\r\n"
		if *s.GetMain != want {
			t.Errorf("GETSCRIPT main: %q, want %q", *s.GetMain, want)
		}
	default:
		// sievelib re-joins the literal's lines with "\n"; whether a final
		// line break survives depends on the literal ending in CRLF or LF.
		if got, want := strings.TrimRight(*s.GetMain, "\n"), strings.TrimRight(msGoodScript, "\n"); got != want {
			t.Errorf("GETSCRIPT main (lines re-joined by the library): %q, want %q", got, want)
		}
	}
	if !s.Havespace {
		t.Errorf("HAVESPACE of 1000 bytes refused")
	}
	if !s.Rename || !s.List2.is("renamed", msUniName, "renamed") {
		t.Errorf("RENAMESCRIPT main renamed: %v, then LISTSCRIPTS: %s; want renamed, still active", s.Rename, s.List2)
	}
	if s.DeleteActive.OK || !strings.Contains(s.DeleteActive.Error, "active") {
		t.Errorf("DELETESCRIPT of the active script: %+v, want refused as active", s.DeleteActive)
	}
	if !s.Deactivate || !s.Delete || !s.DeleteUni || !s.List3.is("") {
		t.Errorf("SETACTIVE \"\" %v, DELETESCRIPT renamed %v, DELETESCRIPT %q %v, LISTSCRIPTS %s; want all OK and nothing left",
			s.Deactivate, s.Delete, msUniName, s.DeleteUni, s.List3)
	}
	if got := msReadScriptDir(t, srv.scriptDir(userName)); len(got) != 0 {
		t.Errorf("script files left on disk after deleting everything: %q", got)
	}
	if s.BadLogin.OK {
		t.Errorf("login with a wrong password succeeded")
	}
	if s.PutQuoteName != nil {
		if s.PutQuoteName.OK || !s.ListAfterQuoteName.is("") {
			t.Errorf("sievelib PUTSCRIPT with an unescaped quote in the name: %+v, then LISTSCRIPTS %s; want refused and the session going on with nothing stored", *s.PutQuoteName, s.ListAfterQuoteName)
		}
	}
}

func runSievelib(t *testing.T, env *msClientEnv, srv *msServer) {
	// Debian's python3-sievelib is installed for the system interpreter.
	py := requirePeer(t, "/usr/bin/python3")
	if err := exec.Command(py, "-c", "import sievelib.managesieve").Run(); err != nil {
		requirePeer(t, "python3-sievelib (import sievelib.managesieve)")
	}
	runLibSession(t, env, srv, "py@example.org", py, "sievelib_session.py", false)
}

func runNetSieve(t *testing.T, env *msClientEnv, srv *msServer) {
	php := requirePeer(t, "php")
	requirePeer(t, "/usr/share/php/Net/Sieve.php")
	runLibSession(t, env, srv, "php@example.org", php, "netsieve_session.php", true)
}

// Roundcube's other connection modes. On the same host it often runs with
// managesieve_usetls = false (webmails that cannot STARTTLS, see the wire
// notes): sieved refuses plaintext logins unless -allow-plaintext is
// given, and with it the whole Net_Sieve session works without TLS
// (Dovecot allows it because it treats loopback clients as secure). And
// managesieve_host = "ssl://host" is implicit TLS, sieved's -listen-tls.
func TestManageSieveNetSieveModes(t *testing.T) {
	t.Parallel()
	php := requirePeer(t, "php")
	requirePeer(t, "/usr/share/php/Net/Sieve.php")
	dir := t.TempDir()
	env := &msClientEnv{certs: msMakeCerts(t, dir), passwd: filepath.Join(dir, "passwd")}
	msWritePasswd(t, env.passwd, msClientUsers)
	const userName = "php@example.org"

	t.Run("refused-by-default", func(t *testing.T) {
		t.Parallel()
		srv := startSieved(t, env.passwd, env.certs)
		s := runLibScript(t, env, srv, userName, php, "netsieve_session.php", libOpts{})
		if s.Login {
			t.Fatalf("Net_Sieve logged in without TLS although sieved runs without -allow-plaintext")
		}
		// SASL "" before TLS: Net_Sieve finds no mechanism to try.
		if !strings.Contains(s.LoginError, "authentication methods") {
			t.Errorf("login error %q, want Net_Sieve's \"no authentication methods\"", s.LoginError)
		}
		if s.TLS != "" {
			t.Errorf("connection used %q, want plaintext", s.TLS)
		}
	})
	t.Run("allow-plaintext", func(t *testing.T) {
		t.Parallel()
		srv := startSieved(t, env.passwd, env.certs, "-allow-plaintext")
		s := runLibScript(t, env, srv, userName, php, "netsieve_session.php", libOpts{})
		if !s.Login {
			t.Fatalf("Net_Sieve without TLS against sieved -allow-plaintext: login failed: %s", s.LoginError)
		}
		if s.TLS != "" {
			t.Errorf("connection used %q, want plaintext", s.TLS)
		}
		checkLibSession(t, srv, userName, s, true)
	})
	t.Run("implicit-tls", func(t *testing.T) {
		t.Parallel()
		tlsPort := freePort(t)
		srv := startSieved(t, env.passwd, env.certs, "-listen-tls", "127.0.0.1:"+strconv.Itoa(tlsPort))
		waitPort(t, tlsPort, 15*time.Second)
		s := runLibScript(t, env, srv, userName, php, "netsieve_session.php", libOpts{host: "ssl://127.0.0.1", port: tlsPort})
		if !s.Login {
			t.Fatalf("Net_Sieve over ssl:// (implicit TLS) against sieved -listen-tls: login failed: %s", s.LoginError)
		}
		if !strings.HasPrefix(s.TLS, "TLSv1.") || s.TLS < "TLSv1.2" {
			t.Errorf("session ran over %q, want implicit TLS 1.2 or later", s.TLS)
		}
		checkLibSession(t, srv, userName, s, true)
	})
}

// Issue 3's Exim-compatibility switch, checked by Exim itself: a script
// uploaded and activated over ManageSieve with [storage] exim_compat on is
// a file Exim's own Sieve interpreter accepts through the "active" link
// (exim -bf, its filter test mode), while GETSCRIPT still returns exactly
// what was uploaded. Without the switch Exim takes the same file for a
// .forward file and refuses it: that is why the switch exists.
func TestManageSieveEximCompat(t *testing.T) {
	t.Parallel()
	exim := requirePeer(t, "exim4")
	dir := t.TempDir()
	certs := msMakeCerts(t, dir)
	const userName, password = "exim@example.org", "exim secret"
	passwd := filepath.Join(dir, "passwd")
	msWritePasswd(t, passwd, map[string]string{userName: password})
	eximConf := filepath.Join(dir, "exim.conf")
	mustWrite(t, eximConf, "# exim -bf needs no settings\n")
	listMsg := "From: carol@remote.test\nTo: " + userName + "\nSubject: [list] news\n\nbody\n"
	otherMsg := "From: carol@remote.test\nTo: " + userName + "\nSubject: hello\n\nbody\n"

	upload := func(t *testing.T, srv *msServer) string {
		t.Helper()
		c, err := dialManageSieve(srv, certs)
		if err != nil {
			t.Fatal(err)
		}
		defer c.conn.Close()
		plain := base64.StdEncoding.EncodeToString([]byte("\x00" + userName + "\x00" + password))
		crlf := strings.ReplaceAll(msGoodScript, "\n", "\r\n")
		for _, e := range []struct{ cmd, want string }{
			{greetingMarker + quietSuffix, "OK"},
			{"STARTTLS", "OK"},
			{tlsMarker + quietSuffix, "OK"},
			{`AUTHENTICATE "PLAIN" "` + plain + `"`, "OK"},
			{fmt.Sprintf("PUTSCRIPT \"main\" {%d+}\r\n%s", len(crlf), crlf), "OK"},
			{`SETACTIVE "main"`, "OK"},
			{`GETSCRIPT "main"`, "OK get=" + strconv.Quote(msGoodScript)},
			{"LOGOUT", "OK"},
		} {
			if got := c.exchange(e.cmd); got != e.want {
				t.Fatalf("%s: got %s, want %s\nwire:\n%s", strings.TrimSuffix(e.cmd, quietSuffix), got, e.want, c.trace)
			}
		}
		return filepath.Join(srv.scriptDir(userName), "active")
	}
	eximFilter := func(t *testing.T, file, msg string) string {
		t.Helper()
		cmd := exec.Command(exim, "-C", eximConf, "-bf", file, "-f", "carol@remote.test")
		cmd.Stdin = strings.NewReader(msg)
		out, _ := cmd.CombinedOutput()
		return string(out)
	}

	t.Run("exim_compat", func(t *testing.T) {
		t.Parallel()
		conf := filepath.Join(t.TempDir(), "sieved.toml")
		mustWrite(t, conf, "[storage]\nexim_compat = true\n")
		active := upload(t, startSieved(t, passwd, certs, "-config", conf))
		b, err := os.ReadFile(active)
		if err != nil {
			t.Fatal(err)
		}
		if first, _, _ := strings.Cut(string(b), "\n"); !strings.EqualFold(strings.TrimSpace(first), "# Sieve filter") {
			t.Errorf("first line on disk %q, want \"# Sieve filter\"", first)
		}
		out := eximFilter(t, active, listMsg)
		if !strings.Contains(out, "Testing Sieve filter file") || !strings.Contains(out, "No implicit keep") {
			t.Errorf("exim -bf on the active script, list mail: want a Sieve filter that files the message (no implicit keep):\n%s", out)
		}
		out = eximFilter(t, active, otherMsg)
		if !strings.Contains(out, "Testing Sieve filter file") || strings.Contains(out, "No implicit keep") || !strings.Contains(out, "Implicit keep") {
			t.Errorf("exim -bf on the active script, other mail: want the implicit keep:\n%s", out)
		}
	})
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		active := upload(t, startSieved(t, passwd, certs))
		if out := eximFilter(t, active, listMsg); strings.Contains(out, "Testing Sieve filter file") {
			t.Errorf("without exim_compat Exim took the script for a Sieve filter; then the switch is pointless:\n%s", out)
		}
	})
}
