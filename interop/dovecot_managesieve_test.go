package interop

import (
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"text/template"
	"time"
)

// dovecotMailUser runs Dovecot's mail processes (managesieve): Dovecot
// refuses root for them.
const dovecotMailUser = "mail"

// dovecotQuota are the Pigeonhole quota settings of a test instance; zero
// leaves a setting out (unlimited).
type dovecotQuota struct {
	MaxScriptSize int // sieve_max_script_size, bytes
	MaxScripts    int // sieve_quota_max_scripts
	MaxStorage    int // sieve_quota_max_storage, bytes
}

// startDovecotManageSieve starts Dovecot's real managesieved (Pigeonhole)
// on a free port of 127.0.0.1 with a private configuration
// (testdata/managesieve/dovecot.conf.tmpl), the users of the passwd-file
// passwd, and STARTTLS with the certificate of tc. Scripts of
// user@domain live in <dir>/home/<domain>/<user>/scripts/.
func startDovecotManageSieve(t *testing.T, passwd string, tc *testCerts, q dovecotQuota) *msServer {
	t.Helper()
	dovecot := requirePeer(t, "/usr/sbin/dovecot")
	requirePeer(t, "/usr/lib/dovecot/managesieve")
	requirePeer(t, "/usr/lib/dovecot/managesieve-login")
	if os.Getuid() != 0 {
		if os.Getenv("SIEVED_REQUIRE_PEERS") == "1" {
			t.Fatal("the Dovecot managesieved test needs root (CI runs as root)")
		}
		t.Skip("the Dovecot managesieved test needs root")
	}
	u, err := user.Lookup(dovecotMailUser)
	if err != nil {
		t.Fatalf("user %s: %v", dovecotMailUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)

	dir := t.TempDir()
	// The mail processes run as dovecotMailUser: they must reach their
	// homes through the temp directory chain.
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	home := filepath.Join(dir, "home")
	mustMkdir(t, home)
	chownTree(t, home, uid, gid)

	port := freePort(t)
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "managesieve", "dovecot.conf.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	var conf bytes.Buffer
	err = tmpl.Execute(&conf, struct {
		Dir, Cert, Key, Passwd, User string
		Port                         int
		dovecotQuota
	}{dir, tc.certFile, tc.keyFile, passwd, dovecotMailUser, port, q})
	if err != nil {
		t.Fatal(err)
	}
	confFile := filepath.Join(dir, "dovecot.conf")
	mustWrite(t, confFile, conf.String())

	cmd := exec.Command(dovecot, "-F", "-c", confFile)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	startProcess(t, cmd)
	logFile := filepath.Join(dir, "dovecot.log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("dovecot output:\n%s\ndovecot log:\n%s", out.String(), b)
		}
	})
	waitPort(t, port, 15*time.Second)
	return &msServer{
		name:    "dovecot",
		port:    port,
		crlfGet: false, // Pigeonhole stores and returns the uploaded bytes
		scriptDir: func(userName string) string {
			return filepath.Join(home, domainOf(userName), localOf(userName), "scripts")
		},
	}
}
