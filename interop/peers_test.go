package interop

import (
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// requirePeer returns the path of a peer program. It fails the test when the
// peer is missing and SIEVED_REQUIRE_PEERS=1 (as in scripts/test.sh and CI),
// and skips it otherwise.
func requirePeer(t testing.TB, name string) string {
	t.Helper()
	if filepath.IsAbs(name) {
		if _, err := os.Stat(name); err == nil {
			return name
		}
	} else if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("SIEVED_REQUIRE_PEERS") == "1" {
		t.Fatalf("peer %s is not installed (scripts/test.sh installs it)", name)
	}
	t.Skipf("peer %s is not installed; run scripts/test.sh", name)
	return ""
}

var (
	buildMu   sync.Mutex
	buildDir  string
	buildErrs = map[string]error{}
	built     = map[string]string{}
)

// binary builds ./cmd/<name> once per test process and returns its path.
func binary(t testing.TB, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	if err, ok := buildErrs[name]; ok {
		t.Fatalf("build %s: %v", name, err)
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "sieved-interop-bin-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	out := filepath.Join(buildDir, name)
	cmd := exec.Command("go", "build", "-o", out, "./cmd/"+name)
	cmd.Dir = ".."
	if b, err := cmd.CombinedOutput(); err != nil {
		buildErrs[name] = err
		t.Fatalf("build %s: %v\n%s", name, err, b)
	}
	built[name] = out
	return out
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// freePort returns a free TCP port on 127.0.0.1.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitPort waits until something accepts connections on 127.0.0.1:port.
func waitPort(t testing.TB, port int, within time.Duration) {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s after %s", addr, within)
}

// startProcess starts cmd and kills it (by PID) when the test ends.
func startProcess(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
		}
	})
}

// Small file helpers shared by the interop tests.

func mustMkdir(t testing.TB, d string) {
	t.Helper()
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t testing.TB, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t testing.TB, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}

func chownTree(t testing.TB, root string, uid, gid int) {
	t.Helper()
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// peerMailUser is the unprivileged user real Dovecot and Exim instances
// run mail processes and pipe deliveries as.
const peerMailUser = "mail"

// mailUserDir is the setup every test that runs a real Dovecot or Exim
// shares: those programs refuse to deliver or serve mail as root, so their
// workers run as the unprivileged "mail" user. It requires root (failing
// under SIEVED_REQUIRE_PEERS=1, skipping otherwise; `what` names the test),
// and returns a fresh temp dir that "mail" can traverse plus mail's ids.
func mailUserDir(t *testing.T, what string) (dir string, uid, gid int) {
	t.Helper()
	if os.Getuid() != 0 {
		if os.Getenv("SIEVED_REQUIRE_PEERS") == "1" {
			t.Fatalf("the %s test needs root (CI runs as root)", what)
		}
		t.Skipf("the %s test needs root", what)
	}
	u, err := user.Lookup(peerMailUser)
	if err != nil {
		t.Fatalf("user %s: %v", peerMailUser, err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	dir = t.TempDir()
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir, uid, gid
}
