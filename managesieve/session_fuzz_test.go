package managesieve

import (
	"bytes"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sieved/sieved/engine"
	"github.com/sieved/sieved/storage"
)

// FuzzSession runs arbitrary client input through a whole logged-in
// session against a real temp-dir store: no panic, no hang, and every
// byte the server sends is valid UTF-8 ending in CRLF.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"LISTSCRIPTS\r\n",
		"PUTSCRIPT \"a\" {5+}\r\nkeep;\r\nSETACTIVE \"a\"\r\nGETSCRIPT \"a\"\r\nDELETESCRIPT \"a\"\r\n",
		"RENAMESCRIPT \"a\" \"b\"\r\nHAVESPACE \"b\" 10\r\nCHECKSCRIPT \"frob;\"\r\n",
		"UNAUTHENTICATE\r\nAUTHENTICATE \"LOGIN\"\r\n\"YWxpY2VAZXhhbXBsZS5vcmc=\"\r\n{8+}\r\nc2VjcmV0\r\nNOOP {1+}\r\nx\r\n",
		"PUTSCRIPT {3+}\r\nx\"y \"keep;\"\r\nLOGOUT\r\n",
	} {
		f.Add([]byte(s))
	}
	st, err := storage.New(storage.Config{Root: f.TempDir(), MaxScripts: 5})
	if err != nil {
		f.Fatal(err)
	}
	srv, err := New(Options{
		Auth:           newUsers(f),
		Store:          FileStore{Store: st},
		Compiler:       EngineCompiler{Engine: engine.New(engine.Config{})},
		Logger:         slog.New(slog.DiscardHandler),
		AllowPlaintext: true,
		LoginDelay:     -1,
		MaxLine:        4096,
		MaxScriptBytes: 4096,
	})
	if err != nil {
		f.Fatal(err)
	}
	login := "AUTHENTICATE \"PLAIN\" \"" + b64("\x00alice@example.org\x00secret") + "\"\r\n"
	f.Fuzz(func(t *testing.T, data []byte) {
		in := login + string(data) + "\r\nLOGOUT\r\n"
		c := &scriptConn{in: bytes.NewReader([]byte(in)), closed: make(chan struct{})}
		srv.accept(c, false)
		select {
		case <-c.closed:
		case <-time.After(10 * time.Second):
			t.Fatal("session did not end")
		}
		got := c.out.Bytes()
		if !utf8.Valid(got) {
			t.Fatalf("server sent invalid UTF-8: %q", got)
		}
		if !bytes.HasSuffix(got, []byte("\r\n")) {
			t.Fatalf("output does not end in CRLF: %q", got)
		}
	})
}

// scriptConn is a net.Conn that reads a fixed input, then EOF, and
// records what the server writes: the session ends when input runs out.
type scriptConn struct {
	in      *bytes.Reader
	out     bytes.Buffer
	mu      sync.Mutex
	closed  chan struct{}
	closeMu sync.Once
}

func (c *scriptConn) Read(p []byte) (int, error) { return c.in.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(p)
}
func (c *scriptConn) Close() error {
	c.closeMu.Do(func() { close(c.closed) })
	return nil
}
func (c *scriptConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4190}
}
func (c *scriptConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
}
func (c *scriptConn) SetDeadline(t time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(t time.Time) error { return nil }
