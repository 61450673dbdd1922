package managesieve

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sieved/sieved/engine"
	"github.com/sieved/sieved/storage"
	"github.com/sieved/sieved/vacation"
)

func sieveCapa() string {
	return `"SIEVE" "` + strings.Join(engine.New(engine.Config{}).Extensions(), " ") + `"`
}

func TestGreetingAndCapability(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opt    envOption
		greet  []string
		dialIP string
	}{
		{
			name:  "plaintext allowed, no TLS",
			opt:   func(o *Options, _ *storage.Config) {},
			greet: []string{`"IMPLEMENTATION" "sieved"`, sieveCapa(), `"SASL" "PLAIN LOGIN"`, `"UNAUTHENTICATE"`, `"VERSION" "1.0"`},
		},
		{
			name: "TLS configured, plaintext refused before it",
			opt: func(o *Options, _ *storage.Config) {
				o.TLSConfig = serverTLS(t)
				o.AllowPlaintext = false
				o.Implementation = `Ex "1"`
			},
			greet: []string{`"IMPLEMENTATION" "Ex \"1\""`, sieveCapa(), `"SASL" ""`, `"STARTTLS"`, `"UNAUTHENTICATE"`, `"VERSION" "1.0"`},
		},
		{
			name: "plaintext on loopback",
			opt: func(o *Options, _ *storage.Config) {
				o.AllowPlaintext = false
				o.AllowPlaintextLoopback = true
			},
			greet: []string{`"IMPLEMENTATION" "sieved"`, sieveCapa(), `"SASL" "PLAIN LOGIN"`, `"UNAUTHENTICATE"`, `"VERSION" "1.0"`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opt)
			cl := e.dial()
			r := cl.response()
			if r.status != "OK" || !slices.Equal(r.lines, tc.greet) {
				t.Errorf("greeting:\n%s\nwant lines:\n%s", r.raw, strings.Join(tc.greet, "\n"))
			}
			cl.send("capability")
			if r2 := cl.response(); r2.status != "OK" || !slices.Equal(r2.lines, tc.greet) {
				t.Errorf("CAPABILITY:\n%s", r2.raw)
			}
		})
	}
}

func TestCapabilityAfterLogin(t *testing.T) {
	e := newEnv(t)
	cl := e.login()
	cl.send("CAPABILITY")
	r := cl.response()
	want := []string{`"IMPLEMENTATION" "sieved"`, sieveCapa(), `"MAXREDIRECTS" "4"`, `"OWNER" "alice@example.org"`, `"UNAUTHENTICATE"`, `"VERSION" "1.0"`}
	if !slices.Equal(r.lines, want) {
		t.Errorf("post-login CAPABILITY:\n%s", r.raw)
	}
}

// The greeting must reach the client in one write.
func TestGreetingOneWrite(t *testing.T) {
	e := newEnv(t)
	a, b := net.Pipe()
	defer b.Close()
	e.srv.accept(a, false)
	buf := make([]byte, 64<<10)
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := b.Read(buf) // net.Pipe: one Read returns (part of) one Write
	if err != nil {
		t.Fatal(err)
	}
	got := string(buf[:n])
	if !strings.HasPrefix(got, `"IMPLEMENTATION"`) || !strings.HasSuffix(got, "OK \"sieved ready.\"\r\n") {
		t.Errorf("first write is not the whole greeting: %q", got)
	}
}

// run sends each command and checks status, code and (part of) the text.
type step struct {
	cmd    string // sent with CRLF appended; may contain literals
	status string
	code   string
	text   string   // substring of the text
	lines  []string // exact data lines, when non-nil
}

func runSteps(t *testing.T, cl *client, steps []step) {
	t.Helper()
	for i, s := range steps {
		cl.send(s.cmd)
		r := cl.response()
		if r.status != s.status || r.code != s.code || !strings.Contains(r.text, s.text) {
			t.Fatalf("step %d %q: got %s (%s) %q, want %s (%s) %q\n%s", i, s.cmd, r.status, r.code, r.text, s.status, s.code, s.text, r.raw)
		}
		if s.lines != nil && !slices.Equal(r.lines, s.lines) {
			t.Fatalf("step %d %q: lines %q, want %q", i, s.cmd, r.lines, s.lines)
		}
	}
}

const (
	good   = "require \"fileinto\";\r\nif header :contains \"subject\" \"x\" { fileinto \"X\"; }\r\n"
	goodLF = "require \"fileinto\";\nif header :contains \"subject\" \"x\" { fileinto \"X\"; }\n"
	broken = "require \"fileinto\";\r\nif header :contains \"subject\" \"x\" {\r\n  frobnicate;\r\n}\r\n"
	tagged = `OK (TAG "STARTTLS-RESYNC-CAPA") "Done"`
)

func lit(s string) string { return "{" + itoa(len(s)) + "+}\r\n" + s }

func itoa(n int) string { return strconv.Itoa(n) }

func TestCommands(t *testing.T) {
	e := newEnv(t)
	cl := e.login()
	runSteps(t, cl, []step{
		{cmd: "LISTSCRIPTS", status: "OK", lines: []string{}},
		{cmd: `PUTSCRIPT "one" ` + lit(good), status: "OK"},
		{cmd: `putscript {3+}` + "\r\ntwo " + lit(goodLF), status: "OK"},
		{cmd: `PUTSCRIPT "q\"uo\\te" "keep;"`, status: "OK"},
		{cmd: `PUTSCRIPT "ünï" {5}` + "\r\nkeep;", status: "OK"},
		{cmd: `SETACTIVE "one"`, status: "OK"},
		{cmd: "LISTSCRIPTS", status: "OK", lines: []string{`"one" ACTIVE`, `"q\"uo\\te"`, `"two"`, `"ünï"`}},
		{cmd: `GETSCRIPT "two"`, status: "OK", lines: []string{"{" + itoa(len(good)) + "}\n" + good}},
		{cmd: `GETSCRIPT "nope"`, status: "NO", code: CodeNonexistent},
		{cmd: `DELETESCRIPT "one"`, status: "NO", code: CodeActive},
		{cmd: `DELETESCRIPT "nope"`, status: "NO", code: CodeNonexistent},
		{cmd: `RENAMESCRIPT "one" "two"`, status: "NO", code: CodeAlreadyExists},
		{cmd: `RENAMESCRIPT "nope" "three"`, status: "NO", code: CodeNonexistent},
		{cmd: `RENAMESCRIPT "one" "uno"`, status: "OK"},
		{cmd: "LISTSCRIPTS", status: "OK", lines: []string{`"q\"uo\\te"`, `"two"`, `"uno" ACTIVE`, `"ünï"`}},
		{cmd: `SETACTIVE "nope"`, status: "NO", code: CodeNonexistent},
		{cmd: `SETACTIVE ""`, status: "OK"},
		{cmd: `SETACTIVE ""`, status: "OK"},
		{cmd: `DELETESCRIPT "uno"`, status: "OK"},
		{cmd: `HAVESPACE "x" 100`, status: "OK"},
		{cmd: `HAVESPACE "x" 99999999`, status: "NO", code: CodeQuotaMaxSize},
		{cmd: `HAVESPACE "x" -1`, status: "NO", text: "Syntax"},
		{cmd: `CHECKSCRIPT ` + lit(good), status: "OK"},
		{cmd: `CHECKSCRIPT ` + lit(broken), status: "NO", text: "line 3"},
		{cmd: "NOOP", status: "OK"},
		{cmd: `NOOP "STARTTLS-RESYNC-CAPA"`, status: "OK", code: `TAG "STARTTLS-RESYNC-CAPA"`},
		{cmd: `noop {3+}` + "\r\na\"b", status: "OK", code: `TAG "a\"b"`},
		{cmd: `PUTSCRIPT "a/b" "keep;"`, status: "NO", text: "Invalid script name"},
		{cmd: `PUTSCRIPT ".hidden" "keep;"`, status: "NO", text: "Invalid script name"},
		{cmd: `PUTSCRIPT "" "keep;"`, status: "NO", text: "Invalid script name"},
		{cmd: `GETSCRIPT ""`, status: "NO", text: "Invalid script name"},
		{cmd: `PUTSCRIPT "empty" ""`, status: "OK"},
		{cmd: `STARTTLS`, status: "NO", text: "Already authenticated"},
		{cmd: `AUTHENTICATE "PLAIN"`, status: "NO", text: "Already authenticated"},
	})
	// The file on disk is what sieve-lda reads: LF line endings.
	b, err := os.ReadFile(filepath.Join(e.root, "example.org", "alice", "two.sieve"))
	if err != nil || string(b) != goodLF {
		t.Errorf("two.sieve = %q, %v", b, err)
	}
	cl.send("LOGOUT")
	if r := cl.response(); r.status != "OK" {
		t.Errorf("LOGOUT: %s", r.raw)
	}
	cl.expectClosed()
}

// A broken PUTSCRIPT is refused with Pigeonhole's text as a literal and
// never replaces the stored script.
// A NOOP tag that cannot be a quoted string (CR, LF) is echoed as a
// literal, so the client cannot make the server send lines of its choosing.
func TestNoopTagLiteral(t *testing.T) {
	e := newEnv(t)
	cl := e.greeted()
	tag := "x\r\nOK \"forged\"\r\n"
	cl.send("NOOP {" + itoa(len(tag)) + "+}\r\n" + tag)
	want := "OK (TAG {" + itoa(len(tag)) + "}\r\n" + tag + ") \"Done\"\r\n"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(cl.br, got); err != nil || string(got) != want {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
	runSteps(t, cl, []step{{cmd: "NOOP", status: "OK", text: "NOOP Completed"}})
}

func TestPutScriptBrokenKeepsOld(t *testing.T) {
	e := newEnv(t)
	cl := e.login()
	runSteps(t, cl, []step{{cmd: `PUTSCRIPT "s" ` + lit(good), status: "OK"}})
	cl.send(`PUTSCRIPT "s" ` + lit(broken))
	r := cl.response()
	if r.status != "NO" || !strings.Contains(r.last, "{") {
		t.Fatalf("broken PUTSCRIPT: want NO {n} literal, got %s", r.raw)
	}
	if !strings.Contains(r.text, "s: line 3: error: ") || !strings.HasSuffix(r.text, "s: error: validation failed.") {
		t.Errorf("error text not in Pigeonhole's format: %q", r.text)
	}
	runSteps(t, cl, []step{{cmd: `GETSCRIPT "s"`, status: "OK", lines: []string{"{" + itoa(len(good)) + "}\n" + good}}})
	// SETACTIVE compiles too: a script broken on disk (written by another
	// tool) cannot go live.
	os.WriteFile(filepath.Join(e.root, "example.org", "alice", "bad.sieve"), []byte("frob;\n"), 0o640)
	runSteps(t, cl, []step{
		{cmd: `SETACTIVE "bad"`, status: "NO", text: "line 1"},
		{cmd: `SETACTIVE "s"`, status: "OK"},
	})
}

// Warnings come back as OK (WARNINGS); CHECKSCRIPT reports carry no
// script name, as with Pigeonhole.
func TestCheckScriptReports(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *storage.Config) {
		o.Compiler = EngineCompiler{Engine: engine.New(engine.Config{
			Extensions: []engine.Extension{vacation.NewExtension(vacation.DefaultPeriods())},
		})}
	})
	cl := e.login()
	vac := `require "vacation"; vacation :days 0 "away";`
	for _, cmd := range []string{"CHECKSCRIPT " + lit(vac), `PUTSCRIPT "v" ` + lit(vac)} {
		cl.send(cmd)
		r := cl.response()
		if r.status != "OK" || r.code != CodeWarnings || !strings.Contains(r.text, "line 1: warning: ") {
			t.Errorf("%s: %s", cmd, r.raw)
		}
	}
	cl.send("CHECKSCRIPT " + lit(broken))
	r := cl.response()
	if r.status != "NO" || !strings.HasPrefix(r.text, "line 3: error: ") || !strings.HasSuffix(r.text, "\r\nerror: validation failed.") {
		t.Errorf("CHECKSCRIPT report: %q", r.text)
	}
}

func TestQuotas(t *testing.T) {
	e := newEnv(t, func(o *Options, s *storage.Config) {
		s.MaxScripts = 2
		s.MaxScriptSize = 100
		s.MaxTotalBytes = 150
	})
	cl := e.login()
	big := "keep;" + strings.Repeat("#", 100) + "\r\n"
	mid := "keep;#" + strings.Repeat("x", 80) + "\n"
	runSteps(t, cl, []step{
		{cmd: `PUTSCRIPT "a" ` + lit(big), status: "NO", code: CodeQuotaMaxSize},
		{cmd: `HAVESPACE "a" 101`, status: "NO", code: CodeQuotaMaxSize},
		{cmd: `PUTSCRIPT "a" ` + lit(mid), status: "OK"},
		{cmd: `HAVESPACE "b" 80`, status: "NO", code: CodeQuota},
		{cmd: `PUTSCRIPT "b" ` + lit(mid), status: "NO", code: CodeQuota},
		{cmd: `PUTSCRIPT "b" "keep;"`, status: "OK"},
		{cmd: `HAVESPACE "c" 1`, status: "NO", code: CodeQuotaMaxScripts},
		{cmd: `PUTSCRIPT "c" "keep;"`, status: "NO", code: CodeQuotaMaxScripts},
		{cmd: `PUTSCRIPT "b" "discard;"`, status: "OK"}, // replacing does not count twice
	})
}

func TestNotAuthenticatedState(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *storage.Config) { o.MaxBadCommandsLogin = 10 })
	cl := e.greeted()
	runSteps(t, cl, []step{
		{cmd: "LISTSCRIPTS", status: "NO", text: "Authenticate first"},
		{cmd: `PUTSCRIPT "a" "keep;"`, status: "NO", text: "Authenticate first"},
		{cmd: "UNAUTHENTICATE", status: "NO", text: "Authenticate first"},
		{cmd: "FOO", status: "NO", text: "Unknown command"},
		{cmd: `NOOP "x"`, status: "OK", code: `TAG "x"`},
		{cmd: "STARTTLS", status: "NO", text: "TLS is not available"},
	})
}

func TestUnauthenticate(t *testing.T) {
	e := newEnv(t)
	cl := e.login()
	runSteps(t, cl, []step{
		{cmd: "UNAUTHENTICATE", status: "OK"},
		{cmd: "LISTSCRIPTS", status: "NO", text: "Authenticate first"},
		{cmd: `AUTHENTICATE "PLAIN" "` + b64("\x00bob\x00hunter2") + `"`, status: "OK"},
	})
	cl.send("CAPABILITY")
	if r := cl.response(); !slices.Contains(r.lines, `"OWNER" "bob@example.org"`) {
		t.Errorf("OWNER after re-login as bob: %s", r.raw)
	}
}

func TestSASL(t *testing.T) {
	plain := b64("\x00alice@example.org\x00secret")
	type exch struct {
		send   string // a line the client sends
		expect string // the line expected back, "" to read a final response
	}
	for _, tc := range []struct {
		name   string
		steps  []exch
		status string
		code   string
	}{
		{"PLAIN quoted initial response", []exch{{`AUTHENTICATE "PLAIN" "` + plain + `"`, ""}}, "OK", ""},
		{"PLAIN literal initial response", []exch{{`AUTHENTICATE "PLAIN" {` + itoa(len(plain)) + "+}\r\n" + plain, ""}}, "OK", ""},
		{"PLAIN sync literal initial response", []exch{{`AUTHENTICATE "plain" {` + itoa(len(plain)) + "}\r\n" + plain, ""}}, "OK", ""},
		{"PLAIN continuation", []exch{{`AUTHENTICATE "PLAIN"`, `""`}, {`"` + plain + `"`, ""}}, "OK", ""},
		{"PLAIN literal continuation", []exch{{`AUTHENTICATE "PLAIN"`, `""`}, {`{` + itoa(len(plain)) + "+}\r\n" + plain, ""}}, "OK", ""},
		{"PLAIN mechanism as literal", []exch{{"AUTHENTICATE {5+}\r\nPLAIN \"" + plain + `"`, ""}}, "OK", ""},
		{"PLAIN wrong password", []exch{{`AUTHENTICATE "PLAIN" "` + b64("\x00alice@example.org\x00nope") + `"`, ""}}, "NO", ""},
		{"PLAIN other authzid", []exch{{`AUTHENTICATE "PLAIN" "` + b64("bob\x00alice@example.org\x00secret") + `"`, ""}}, "NO", ""},
		{"PLAIN same authzid", []exch{{`AUTHENTICATE "PLAIN" "` + b64("alice@example.org\x00alice@example.org\x00secret") + `"`, ""}}, "OK", ""},
		{"PLAIN cancel", []exch{{`AUTHENTICATE "PLAIN"`, `""`}, {`"*"`, ""}}, "NO", ""},
		{"PLAIN empty literal continuation", []exch{{`AUTHENTICATE "PLAIN"`, `""`}, {"{0+}\r\n", ""}}, "NO", ""},
		{"PLAIN bad base64", []exch{{`AUTHENTICATE "PLAIN" "%%%"`, ""}}, "NO", ""},
		{"LOGIN", []exch{
			{`AUTHENTICATE "LOGIN"`, `"` + b64("Username:") + `"`},
			{`"` + b64("alice@example.org") + `"`, `"` + b64("Password:") + `"`},
			{`{8+}` + "\r\n" + b64("secret"), ""}}, "OK", ""},
		{"LOGIN initial response", []exch{
			{`AUTHENTICATE "LOGIN" "` + b64("bob") + `"`, `"` + b64("Password:") + `"`},
			{`"` + b64("hunter2") + `"`, ""}}, "OK", ""},
		{"LOGIN cancel", []exch{
			{`AUTHENTICATE "LOGIN"`, `"` + b64("Username:") + `"`},
			{`"*"`, ""}}, "NO", ""},
		{"unknown mechanism", []exch{{`AUTHENTICATE "CRAM-MD5"`, ""}}, "NO", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cl := e.greeted()
			for _, x := range tc.steps {
				cl.send(x.send)
				if x.expect != "" {
					l, _, _ := cl.readLine()
					if l != x.expect {
						t.Fatalf("after %q: got %q, want %q", x.send, l, x.expect)
					}
				}
			}
			r := cl.response()
			if r.status != tc.status || r.code != tc.code || len(r.lines) != 0 {
				t.Fatalf("got %s, want %s (%s) and no capability block", r.raw, tc.status, tc.code)
			}
			// The session goes on either way.
			cl.send("NOOP")
			if r := cl.response(); r.status != "OK" {
				t.Fatalf("NOOP after AUTHENTICATE: %s", r.raw)
			}
		})
	}
}

func TestAuthBackendUnavailable(t *testing.T) {
	e := newEnv(t)
	e.users.down = true
	cl := e.greeted()
	runSteps(t, cl, []step{{cmd: `AUTHENTICATE "PLAIN" "` + b64("\x00alice@example.org\x00secret") + `"`, status: "NO", code: CodeTryLater}})
}

func TestEncryptNeeded(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *storage.Config) {
		o.AllowPlaintext = false
		o.TLSConfig = serverTLS(t)
	})
	cl := e.greeted()
	login := `AUTHENTICATE "PLAIN" "` + b64("\x00alice@example.org\x00secret") + `"`
	runSteps(t, cl, []step{
		{cmd: login, status: "NO", code: CodeEncryptNeeded},
		{cmd: login, status: "NO", code: CodeEncryptNeeded},
	})
	// A client that cannot STARTTLS is not left looping.
	cl.send(login)
	if r := cl.response(); r.status != "BYE" {
		t.Fatalf("after 3 refused plaintext logins: %s", r.raw)
	}
}

func TestStartTLS(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *storage.Config) {
		o.AllowPlaintext = false
		o.TLSConfig = serverTLS(t)
	})
	cl := e.greeted()
	// Pipelined plaintext after STARTTLS must be discarded, not executed
	// inside the TLS session.
	cl.sendRaw("STARTTLS\r\nLOGOUT\r\n")
	if r := cl.response(); r.status != "OK" {
		t.Fatalf("STARTTLS: %s", r.raw)
	}
	tc := tls.Client(cl.c, e.tls)
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if v := tc.ConnectionState().Version; v < tls.VersionTLS12 {
		t.Errorf("TLS version %x", v)
	}
	cl.c = tc
	cl.br.Reset(tc)
	// The capability block again, unsolicited, without STARTTLS and now
	// with the plaintext mechanisms.
	r := cl.response()
	want := []string{`"IMPLEMENTATION" "sieved"`, sieveCapa(), `"SASL" "PLAIN LOGIN"`, `"UNAUTHENTICATE"`, `"VERSION" "1.0"`}
	if r.status != "OK" || !slices.Equal(r.lines, want) {
		t.Fatalf("after STARTTLS:\n%s", r.raw)
	}
	// sieve-connect's resynchronisation.
	cl.send(`NOOP "STARTTLS-RESYNC-CAPA"`)
	if r := cl.response(); r.last != tagged {
		t.Errorf("NOOP tag: %q", r.last)
	}
	runSteps(t, cl, []step{
		{cmd: "STARTTLS", status: "NO", text: "already active"},
		{cmd: `AUTHENTICATE "PLAIN" "` + b64("\x00alice@example.org\x00secret") + `"`, status: "OK"},
		{cmd: `PUTSCRIPT "s" "keep;"`, status: "OK"},
	})
}

func TestImplicitTLSAndMinVersion(t *testing.T) {
	cfg := serverTLS(t)
	e := newEnv(t, func(o *Options, _ *storage.Config) {
		o.AllowPlaintext = false
		o.TLSConfig = cfg
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.srv.ServeTLS(l)
	old := e.tls.Clone()
	old.MaxVersion = tls.VersionTLS11
	if c, err := tls.Dial("tcp", l.Addr().String(), old); err == nil {
		c.Close()
		t.Errorf("TLS 1.1 handshake succeeded")
	}
	c, err := tls.Dial("tcp", l.Addr().String(), e.tls)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	cl := &client{t: t, c: c}
	cl.br = bufio.NewReader(c)
	r := cl.response()
	if !slices.Contains(r.lines, `"SASL" "PLAIN LOGIN"`) || slices.Contains(r.lines, `"STARTTLS"`) {
		t.Errorf("implicit TLS greeting:\n%s", r.raw)
	}
}

func TestLimits(t *testing.T) {
	t.Run("long line before login", func(t *testing.T) {
		e := newEnv(t)
		cl := e.greeted()
		runSteps(t, cl, []step{
			{cmd: `NOOP "` + strings.Repeat("a", 9000) + `"`, status: "NO", text: "Line too long"},
			{cmd: "NOOP", status: "OK"},
		})
	})
	t.Run("endless line disconnects", func(t *testing.T) {
		e := newEnv(t)
		cl := e.greeted()
		go cl.sendRaw("NOOP " + strings.Repeat("a", maxDrainLogin+20000))
		r := cl.response()
		if r.status != "BYE" {
			t.Fatalf("got %s", r.raw)
		}
		cl.expectClosed()
	})
	t.Run("literal too large before login", func(t *testing.T) {
		e := newEnv(t)
		cl := e.greeted()
		// Announced, never sent: the server must refuse at once instead
		// of waiting for (or buffering) the data.
		cl.send(`AUTHENTICATE "PLAIN" {100000000+}`)
		if r := cl.response(); r.status != "BYE" {
			t.Fatalf("got %s", r.raw)
		}
		cl.expectClosed()
	})
	t.Run("chained literals before login", func(t *testing.T) {
		// Each literal within the pre-login limit, but together 320 KB:
		// the server must stop buffering and disconnect, not answer
		// after holding it all in memory.
		e := newEnv(t)
		cl := e.greeted()
		chunk := "{8000+}\r\n" + strings.Repeat("a", 8000) + " "
		go cl.sendRaw("NOOP " + strings.Repeat(chunk, 40) + "\r\n")
		if r := cl.response(); r.status != "BYE" || !strings.Contains(r.text, "Command too large") {
			t.Fatalf("got %s", r.raw)
		}
		cl.expectClosed()
	})
	t.Run("chained literals after login", func(t *testing.T) {
		e := newEnv(t, func(o *Options, _ *storage.Config) { o.MaxScriptBytes = 1000; o.MaxLine = 2000 })
		cl := e.login()
		chunk := lit(strings.Repeat("a", 1000)) + " "
		runSteps(t, cl, []step{
			{cmd: "NOOP " + strings.Repeat(chunk, 10), status: "NO", text: "Command too large"},
			{cmd: "NOOP", status: "OK"},
		})
	})
	t.Run("script literal too large is drained", func(t *testing.T) {
		e := newEnv(t, func(o *Options, _ *storage.Config) { o.MaxScriptBytes = 1000 })
		cl := e.login()
		runSteps(t, cl, []step{
			{cmd: `PUTSCRIPT "a" ` + lit(strings.Repeat("#", 5000)), status: "NO", code: CodeQuotaMaxSize},
			{cmd: `PUTSCRIPT "a" "keep;"`, status: "OK"},
		})
	})
	t.Run("script literal beyond drain disconnects", func(t *testing.T) {
		e := newEnv(t)
		cl := e.login()
		cl.send(`PUTSCRIPT "a" {999999999+}`)
		if r := cl.response(); r.status != "BYE" || r.code != CodeQuotaMaxSize {
			t.Fatalf("got %s", r.raw)
		}
		cl.expectClosed()
	})
	t.Run("invalid UTF-8", func(t *testing.T) {
		e := newEnv(t)
		cl := e.login()
		runSteps(t, cl, []step{
			{cmd: "PUTSCRIPT \"a\xff\" \"keep;\"", status: "NO", text: "UTF-8"},
			{cmd: "PUTSCRIPT \"a\" {2+}\r\n\xc3\x28", status: "NO", text: "UTF-8"},
			{cmd: "NOOP", status: "OK"},
		})
	})
	t.Run("bad commands before login", func(t *testing.T) {
		e := newEnv(t)
		cl := e.greeted()
		for i := 0; i < 2; i++ {
			cl.send("FOO")
			if r := cl.response(); r.status != "NO" {
				t.Fatalf("bad command %d: %s", i, r.raw)
			}
		}
		cl.send("FOO")
		if r := cl.response(); r.status != "BYE" {
			t.Fatalf("third bad command: %s, want BYE", r.raw)
		}
		cl.expectClosed()
		// The server goes on serving others.
		e.greeted()
	})
	t.Run("bad commands after login", func(t *testing.T) {
		e := newEnv(t)
		cl := e.login()
		for i := 0; i < 20; i++ {
			cl.send("PUTSCRIPT")
			if r := cl.response(); r.status != "NO" {
				t.Fatalf("bad command %d: %s", i, r.raw)
			}
		}
		cl.send(`"junk`)
		if r := cl.response(); r.status != "BYE" {
			t.Fatalf("no BYE at the 21st bad command: %s", r.raw)
		}
	})
	t.Run("login timeout", func(t *testing.T) {
		e := newEnv(t, func(o *Options, _ *storage.Config) { o.LoginTimeout = 50 * time.Millisecond })
		cl := e.greeted()
		if r := cl.response(); r.status != "BYE" || !strings.Contains(r.text, "inactivity") {
			t.Fatalf("got %s", r.raw)
		}
		cl.expectClosed()
	})
	t.Run("connections per IP", func(t *testing.T) {
		e := newEnv(t, func(o *Options, _ *storage.Config) { o.MaxConnectionsPerIP = 2 })
		a, b := e.greeted(), e.greeted()
		c := e.dial()
		if r := c.response(); r.status != "BYE" || r.code != CodeTryLater {
			t.Fatalf("third connection: %s", r.raw)
		}
		a.send("LOGOUT")
		a.response()
		a.expectClosed()
		// The slot is freed once the session ends.
		deadline := time.Now().Add(5 * time.Second)
		for {
			d := e.dial()
			if r := d.response(); r.status == "OK" {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("slot never freed: %s", r.raw)
			}
			time.Sleep(10 * time.Millisecond)
		}
		_ = b
	})
	t.Run("connections overall", func(t *testing.T) {
		e := newEnv(t, func(o *Options, _ *storage.Config) { o.MaxConnections = 1 })
		e.greeted()
		c := e.dial()
		if r := c.response(); r.status != "BYE" || r.code != CodeTryLater {
			t.Fatalf("second connection: %s", r.raw)
		}
	})
	t.Run("failed logins", func(t *testing.T) {
		e := newEnv(t)
		cl := e.greeted()
		bad := `AUTHENTICATE "PLAIN" "` + b64("\x00alice@example.org\x00wrong") + `"`
		for i := 0; i < maxAuthFailures-1; i++ {
			cl.send(bad)
			if r := cl.response(); r.status != "NO" {
				t.Fatalf("attempt %d: %s", i, r.raw)
			}
		}
		cl.send(bad)
		cl.response()
		if r := cl.response(); r.status != "BYE" {
			t.Fatalf("no BYE after %d failures: %s", maxAuthFailures, r.raw)
		}
	})
}

func TestFailureDelay(t *testing.T) {
	var f failureTracker
	f.init(time.Second, 10*time.Second)
	var got []time.Duration
	for i := 0; i < 6; i++ {
		got = append(got, f.fail("192.0.2.1"))
	}
	want := []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("delays %v, want %v", got, want)
	}
	if d := f.fail("192.0.2.2"); d != time.Second {
		t.Errorf("other IP delayed %v", d)
	}
	f.succeed("192.0.2.1")
	if d := f.fail("192.0.2.1"); d != time.Second {
		t.Errorf("after success: %v", d)
	}
	var off failureTracker
	off.init(-1, 0)
	if d := off.fail("x"); d != 0 {
		t.Errorf("disabled tracker delays %v", d)
	}
}

func TestGracefulShutdown(t *testing.T) {
	e := newEnv(t)
	idle := e.login()
	busy := e.greeted()
	release := make(chan struct{})
	e.users.mu.Lock()
	e.users.block = release
	e.users.mu.Unlock()
	busy.send(`AUTHENTICATE "PLAIN" "` + b64("\x00alice@example.org\x00secret") + `"`)
	// Wait until the command is in flight (the server is past reading it).
	deadline := time.Now().Add(5 * time.Second)
	for {
		inFlight := 0
		e.srv.mu.Lock()
		for s := range e.srv.sessions {
			s.mu.Lock()
			if !s.idle && s.user == nil {
				inFlight++
			}
			s.mu.Unlock()
		}
		e.srv.mu.Unlock()
		if inFlight > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("command never in flight")
		}
		time.Sleep(5 * time.Millisecond)
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- e.srv.Shutdown(ctx)
	}()
	// The idle session is told to come back later.
	if r := idle.response(); r.status != "BYE" || r.code != CodeTryLater {
		t.Fatalf("idle session: %s", r.raw)
	}
	idle.expectClosed()
	// New connections are refused.
	if c, err := net.DialTimeout("tcp", e.addr, time.Second); err == nil {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 100)
		n, _ := c.Read(buf)
		if strings.HasPrefix(string(buf[:n]), `"IMPLEMENTATION"`) {
			t.Errorf("new connection served during shutdown")
		}
		c.Close()
	}
	// The in-flight login finishes with OK, then BYE.
	close(release)
	if r := busy.response(); r.status != "OK" {
		t.Fatalf("in-flight command: %s", r.raw)
	}
	if r := busy.response(); r.status != "BYE" || r.code != CodeTryLater {
		t.Fatalf("after in-flight command: %s", r.raw)
	}
	busy.expectClosed()
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-e.done; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
	e.done <- ErrServerClosed // for the cleanup
}

// syncBuf is a goroutine-safe log sink.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// One log line per login, upload and activation; never a password or a
// script body.
func TestLogging(t *testing.T) {
	var logs syncBuf
	e := newEnv(t, func(o *Options, _ *storage.Config) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	cl := e.greeted()
	runSteps(t, cl, []step{
		{cmd: `AUTHENTICATE "PLAIN" "` + b64("\x00alice@example.org\x00wrongpass") + `"`, status: "NO"},
		{cmd: `AUTHENTICATE "LOGIN" "` + b64("alice@example.org") + `"` + "\r\n\"" + b64("secret") + `"`, status: "OK"},
		{cmd: `PUTSCRIPT "s" ` + lit("# BODYMARKER\r\nkeep;"), status: "OK"},
		{cmd: `PUTSCRIPT "t" ` + lit("# BODYMARKER\r\nfrob;"), status: "NO"},
		{cmd: `SETACTIVE "s"`, status: "OK"},
	})
	cl.send("LOGOUT")
	cl.response()
	cl.expectClosed()
	out := logs.String()
	for _, secret := range []string{"secret", "wrongpass", b64("secret"), "BODYMARKER"} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{"msg=\"login failed\"", "msg=login ", "msg=upload ", "msg=\"upload refused\"", "msg=activation "} {
		if strings.Count(out, want) != 1 {
			t.Errorf("want one %s line:\n%s", want, out)
		}
	}
}

// Many sessions of one user upload and activate at once: every command
// gets its answer and "active" always names a complete script.
func TestConcurrentSessions(t *testing.T) {
	e := newEnv(t)
	const n = 8
	errs := make(chan error, n)
	stop := make(chan struct{})
	active := filepath.Join(e.root, "example.org", "alice", "active")
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if b, err := os.ReadFile(active); err == nil && !strings.HasSuffix(string(b), "keep;\n") {
				errs <- errors.New("active resolves to a partial script: " + string(b))
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := e.login()
			name := "s" + strconv.Itoa(i)
			body := strings.Repeat("# padding\r\n", 200*i) + "keep;\r\n"
			for j := 0; j < 5; j++ {
				for _, cmd := range []string{`PUTSCRIPT "` + name + `" ` + lit(body), `SETACTIVE "` + name + `"`, "LISTSCRIPTS"} {
					cl.send(cmd)
					if r := cl.response(); r.status != "OK" {
						errs <- errors.New(cmd + ": " + r.raw)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}
