package interop

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"
)

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
// user@domain live in <dir>/sieve/<domain>/<user>/, sieved's layout.
func startDovecotManageSieve(t *testing.T, passwd string, tc *msCerts, q dovecotQuota) *msServer {
	t.Helper()
	dovecot := requirePeer(t, "/usr/sbin/dovecot")
	requirePeer(t, "/usr/lib/dovecot/managesieve")
	requirePeer(t, "/usr/lib/dovecot/managesieve-login")
	// The mail processes run as "mail": they must reach their homes
	// through the temp directory chain.
	dir, uid, gid := mailUserDir(t, "Dovecot managesieved")
	home := filepath.Join(dir, "home")
	sieveRoot := filepath.Join(dir, "sieve")
	for _, d := range []string{home, sieveRoot} {
		mustMkdir(t, d)
		chownTree(t, d, uid, gid)
	}

	port := freePort(t)
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "managesieve", "dovecot.conf.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	var conf bytes.Buffer
	err = tmpl.Execute(&conf, struct {
		Dir, SieveRoot, Cert, Key, Passwd, User string
		Port                                    int
		dovecotQuota
	}{dir, sieveRoot, tc.certFile, tc.keyFile, passwd, peerMailUser, port, q})
	if err != nil {
		t.Fatal(err)
	}
	confFile := filepath.Join(dir, "dovecot.conf")
	mustWrite(t, confFile, conf.String())

	cmd := exec.Command(dovecot, "-F", "-c", confFile)
	var out msSyncBuffer
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
		name:      "dovecot",
		port:      port,
		crlfGet:   false, // Pigeonhole stores and returns the uploaded bytes
		sieveRoot: sieveRoot,
		uid:       uid, gid: gid,
		scriptDir: func(userName string) string {
			return filepath.Join(sieveRoot, msDomain(userName), msLocal(userName))
		},
	}
}

// The side-by-side comparison: the sessions of
// testdata/managesieve/session.txt run against Dovecot and sieved, and
// each step's result must match, except for the deliberate differences
// listed in managesieve_known_differences.txt.

const (
	greetingMarker  = "\x00greeting\x00"
	tlsMarker       = "\x00tls\x00"
	challengeMarker = "\x00challenge\x00"
	quietSuffix     = "\x00quiet\x00"
	pendingMarker   = "\x00pending\x00"
)

type msStep struct {
	session, name string
	expect        string
	command       *template.Template
	line          int
}

func (s msStep) key() string { return s.session + "/" + s.name }

// msSessionFuncs are the template functions of session.txt.
var msSessionFuncs = template.FuncMap{
	"greeting":  func() string { return greetingMarker },
	"tls":       func() string { return tlsMarker },
	"challenge": func() string { return challengeMarker },
	// tlsthen is tls, but the command is sent right after the handshake,
	// before the server's capability block is read (Thunderbird does
	// this); pending reads a response without sending anything.
	"tlsthen": func(cmd string) string { return tlsMarker + cmd },
	"pending": func() string { return pendingMarker },
	// quiet: only the status of a greeting or post-STARTTLS block counts
	// (the main session compares the capabilities once).
	"quiet": func(marker string) string { return marker + quietSuffix },
	"b64":   func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
	"plain": func(authz, user, pass string) string { return authz + "\x00" + user + "\x00" + pass },
	// lit is a non-synchronizing literal, synclit a synchronizing one
	// (sent at once: ManageSieve servers send no continuation).
	"lit":     func(s string) string { return fmt.Sprintf("{%d+}\r\n%s", len(s), s) },
	"synclit": func(s string) string { return fmt.Sprintf("{%d}\r\n%s", len(s), s) },
	"q": func(s string) string {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
	},
	"crlf":   func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") },
	"repeat": strings.Repeat,
	// script is a valid script of exactly n bytes (n >= 8), LF only so
	// that both servers count the same size.
	"script": func(n int) string { return "keep;\n#" + strings.Repeat("x", n-8) + "\n" },
}

// readMSSessions parses session.txt.
func readMSSessions(t *testing.T) (names []string, profiles map[string]string, steps map[string][]msStep) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "managesieve", "session.txt"))
	if err != nil {
		t.Fatal(err)
	}
	steps = map[string][]msStep{}
	profiles = map[string]string{}
	seen := map[string]bool{}
	cur := ""
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if head, ok := strings.CutPrefix(line, "=== "); ok {
			name, profile, _ := strings.Cut(head, " @")
			cur = strings.TrimSpace(name)
			if _, dup := profiles[cur]; dup {
				t.Fatalf("session.txt:%d: session %s twice", i+1, cur)
			}
			names = append(names, cur)
			profiles[cur] = strings.TrimSpace(profile)
			continue
		}
		parts := strings.SplitN(line, "|", 3)
		if len(parts) != 3 || cur == "" {
			t.Fatalf("session.txt:%d: want \"name | expect | command\" inside a === session: %q", i+1, line)
		}
		st := msStep{session: cur, name: strings.TrimSpace(parts[0]), expect: strings.TrimSpace(parts[1]), line: i + 1}
		if seen[st.key()] {
			t.Fatalf("session.txt:%d: duplicate step %s", i+1, st.key())
		}
		seen[st.key()] = true
		st.command, err = template.New(st.name).Funcs(msSessionFuncs).Parse(strings.TrimSpace(parts[2]))
		if err != nil {
			t.Fatalf("session.txt:%d: %v", i+1, err)
		}
		steps[cur] = append(steps[cur], st)
	}
	return names, profiles, steps
}

// msSessionData is what the session templates see.
type msSessionData struct {
	User, Password string
	Good, Broken   string // LF line endings
}

// msResponse is one server response: data items line by line, then the
// status line.
type msResponse struct {
	data   [][]msItem
	status string   // OK, NO, BYE; "" when the connection closed
	code   []msItem // inside the parentheses
	text   string
	// textLit: the text came as a literal (a multi-line text must; a
	// one-line text should stay quoted).
	textLit bool
}

// msItem is one token of a response line: an atom, or a string (quoted
// or literal), or a parenthesised list (a response code).
type msItem struct {
	atom, str string
	isStr     bool
	isLit     bool // the string came as a literal (clients want some quoted)
	list      []msItem
	isList    bool
}

func (it msItem) String() string {
	switch {
	case it.isList:
		var s []string
		for _, x := range it.list {
			s = append(s, x.String())
		}
		return "(" + strings.Join(s, " ") + ")"
	case it.isLit:
		return "{literal}" + strconv.Quote(it.str)
	case it.isStr:
		return strconv.Quote(it.str)
	}
	return it.atom
}

// msClient speaks raw ManageSieve.
type msClient struct {
	conn  net.Conn
	r     *bufio.Reader
	tc    *msCerts
	trace *strings.Builder // the wire, both directions, for failure reports
}

func (m *msClient) send(s string) error {
	fmt.Fprintf(m.trace, "C: %s\n", traceQuote(s))
	_, err := io.WriteString(m.conn, s)
	return err
}

func dialManageSieve(srv *msServer, tc *msCerts) (*msClient, error) {
	// From 127.0.0.2: Dovecot treats a client whose address equals its
	// own as secure and would offer PLAIN before STARTTLS.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", srv.addr())
	if err != nil {
		return nil, fmt.Errorf("dial %s from 127.0.0.2: %w", srv.name, err)
	}
	return &msClient{conn: c, r: bufio.NewReader(c), tc: tc, trace: &strings.Builder{}}, nil
}

// traceQuote quotes s for a wire trace, eliding the middle of long data.
func traceQuote(s string) string {
	if len(s) > 600 {
		return fmt.Sprintf("%q ...(%d bytes)... %q", s[:300], len(s)-600, s[len(s)-300:])
	}
	return strconv.Quote(s)
}

// readLine reads one response line, literals included, as items.
func (m *msClient) readLine() ([]msItem, error) {
	var items []msItem
	var stack [][]msItem
	for {
		line, err := m.r.ReadString('\n')
		if err != nil {
			fmt.Fprintf(m.trace, "S: %q (%v)\n", line, err)
			return nil, err
		}
		fmt.Fprintf(m.trace, "S: %q\n", line)
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		i := 0
		literal := -1
		for i < len(line) {
			switch c := line[i]; {
			case c == ' ':
				i++
			case c == '(':
				stack = append(stack, items)
				items = nil
				i++
			case c == ')':
				if len(stack) == 0 {
					return nil, fmt.Errorf("unbalanced ')' in %q", line)
				}
				inner := items
				items = append(stack[len(stack)-1], msItem{list: inner, isList: true})
				stack = stack[:len(stack)-1]
				i++
			case c == '"':
				var b strings.Builder
				j := i + 1
				for ; j < len(line) && line[j] != '"'; j++ {
					if line[j] == '\\' && j+1 < len(line) {
						j++
					}
					b.WriteByte(line[j])
				}
				if j >= len(line) {
					return nil, fmt.Errorf("unterminated quoted string in %q", line)
				}
				items = append(items, msItem{str: b.String(), isStr: true})
				i = j + 1
			case c == '{' && strings.HasSuffix(line, "}") && !strings.Contains(line[i:], " "):
				n, err := strconv.Atoi(strings.TrimSuffix(line[i+1:len(line)-1], "+"))
				if err != nil {
					return nil, fmt.Errorf("bad literal in %q", line)
				}
				literal = n
				i = len(line)
			default:
				j := i
				for j < len(line) && line[j] != ' ' && line[j] != ')' && line[j] != '(' {
					j++
				}
				items = append(items, msItem{atom: line[i:j]})
				i = j
			}
		}
		if literal < 0 {
			if len(stack) != 0 {
				return nil, fmt.Errorf("unbalanced '(' in %q", line)
			}
			return items, nil
		}
		buf := make([]byte, literal)
		if _, err := io.ReadFull(m.r, buf); err != nil {
			return nil, err
		}
		fmt.Fprintf(m.trace, "S: %s\n", traceQuote(string(buf)))
		items = append(items, msItem{str: string(buf), isStr: true, isLit: true})
		// The line goes on after the literal (often just CRLF).
	}
}

// readResponse reads data lines up to the status line.
func (m *msClient) readResponse() msResponse {
	var resp msResponse
	for {
		items, err := m.readLine()
		if err != nil {
			return resp // status "": the connection closed
		}
		if len(items) > 0 && !items[0].isStr && !items[0].isList {
			switch st := strings.ToUpper(items[0].atom); st {
			case "OK", "NO", "BYE":
				resp.status = st
				rest := items[1:]
				if len(rest) > 0 && rest[0].isList {
					resp.code = rest[0].list
					rest = rest[1:]
				}
				if len(rest) > 0 && rest[0].isStr {
					resp.text, resp.textLit = rest[0].str, rest[0].isLit
				}
				return resp
			}
		}
		resp.data = append(resp.data, items)
	}
}

// step runs one step and returns its result: "STATUS (CODE) extras".
func (m *msClient) step(st msStep, data msSessionData) string {
	var cmd strings.Builder
	if err := st.command.Execute(&cmd, data); err != nil {
		return fmt.Sprintf("session.txt:%d: template: %v", st.line, err)
	}
	fmt.Fprintf(m.trace, "--- %s\n", st.name)
	return m.exchange(cmd.String())
}

// exchange sends one command (with the markers of session.txt) and
// returns the summarised response.
func (m *msClient) exchange(c string) string {
	_ = m.conn.SetDeadline(time.Now().Add(15 * time.Second))
	c, quiet := strings.CutSuffix(c, quietSuffix)
	var extra []string
	switch {
	case c == greetingMarker:
	case strings.HasPrefix(c, pendingMarker):
		c = strings.TrimPrefix(c, pendingMarker)
	case strings.HasPrefix(c, tlsMarker):
		then := strings.TrimPrefix(c, tlsMarker)
		c = tlsMarker
		tc := tls.Client(m.conn, m.tc.clientConfig())
		if err := tc.Handshake(); err != nil {
			// EOF or a reset, as the race goes: the detail is no result.
			fmt.Fprintf(m.trace, "TLS handshake: %v\n", err)
			return "TLS handshake failed"
		}
		m.conn = tc
		m.r = bufio.NewReader(tc)
		_ = m.conn.SetDeadline(time.Now().Add(15 * time.Second))
		if then != "" {
			if err := m.send(then + "\r\n"); err != nil {
				return "closed"
			}
		}
	default:
		parts := strings.Split(c, challengeMarker)
		for i, p := range parts {
			if i > 0 {
				// One server challenge: a string on its own line; or the
				// final response if the server ended the exchange early.
				items, err := m.readLine()
				if err != nil {
					return "closed"
				}
				if len(items) != 1 || !items[0].isStr {
					var s []string
					for _, it := range items {
						s = append(s, it.String())
					}
					return "no challenge but: " + strings.Join(s, " ")
				}
				extra = append(extra, fmt.Sprintf("challenge=%q", items[0].str))
			}
			if err := m.send(p + "\r\n"); err != nil {
				return "closed"
			}
		}
	}
	resp := m.readResponse()
	verb := msVerb(c)
	if quiet {
		verb = ""
	}
	return msSummarize(verb, resp, extra)
}

// sortedValues returns the distinct values of m, sorted.
func sortedValues(m map[string]string) []string {
	set := map[string]bool{}
	for _, v := range m {
		set[v] = true
	}
	return slices.Sorted(maps.Keys(set))
}

func msVerb(cmd string) string {
	switch cmd {
	case greetingMarker, tlsMarker:
		return "CAPABILITY"
	}
	v, _, _ := strings.Cut(cmd, " ")
	v, _, _ = strings.Cut(v, challengeMarker)
	return strings.ToUpper(v)
}

var (
	msLineRE = regexp.MustCompile(`line (\d+)`)
	// One line of a Pigeonhole compile report:
	// "[<script name>: ][line <N>: ]error|warning: <message>".
	msReportLineRE = regexp.MustCompile(`^(?:(.*?): )?(?:line \d+: )?(?:error|warning): \S.*$`)
)

// msErrorShape summarises the form of a compile report, the part webmails
// show users: "report=pigeonhole(prefix=<name>)" when every line has
// Pigeonhole's form with the same script-name prefix, else
// "report=other".
func msErrorShape(text string) string {
	prefixes := map[string]bool{}
	for _, l := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if l == "" {
			continue
		}
		m := msReportLineRE.FindStringSubmatch(l)
		if m == nil {
			return "report=other"
		}
		if msLineRE.MatchString(m[1]) && strings.HasPrefix(m[1], "line ") {
			m[1] = "" // no script name, only the line number
		}
		prefixes[m[1]] = true
	}
	if len(prefixes) != 1 {
		return "report=other"
	}
	for p := range prefixes {
		return "report=pigeonhole(prefix=" + p + ")"
	}
	return ""
}

// msSummarize turns a response into the comparable result of a step.
func msSummarize(verb string, resp msResponse, extra []string) string {
	if resp.status == "" {
		return "closed"
	}
	out := resp.status
	if len(resp.code) > 0 {
		// The code atom, uppercased; arguments only for TAG (the echo is
		// the point of NOOP), not for free-form ones.
		code := strings.ToUpper(resp.code[0].atom)
		if code == "TAG" && len(resp.code) > 1 {
			code += " " + resp.code[1].String()
		}
		out += " (" + code + ")"
	}
	if resp.status != "OK" {
		if m := msLineRE.FindStringSubmatch(resp.text); m != nil {
			extra = append(extra, "line="+m[1])
		}
		// Pigeonhole's format: one "...: error: ..." line per error (at
		// most 5) plus a summary line without a line number.
		if n := len(msLineRE.FindAllString(resp.text, -1)); n > 1 {
			extra = append(extra, fmt.Sprintf("errors=%d", n))
		}
		if msLineRE.MatchString(resp.text) {
			extra = append(extra, msErrorShape(resp.text))
		}
		if multi := strings.ContainsAny(strings.TrimRight(resp.text, "\r\n"), "\r\n"); resp.textLit != multi {
			extra = append(extra, fmt.Sprintf("text-form=odd(literal=%v,multi-line=%v)", resp.textLit, multi))
		}
	}
	switch verb {
	case "": // quiet: the status only
	case "CAPABILITY":
		if resp.status == "OK" {
			var caps []string
			for _, l := range resp.data {
				if len(l) == 0 || !l[0].isStr {
					caps = append(caps, "?")
					continue
				}
				name := strings.ToUpper(l[0].str)
				if name == "SASL" || name == "VERSION" {
					v := ""
					if len(l) > 1 {
						v = l[1].str
					}
					name += fmt.Sprintf("=%q", v)
				}
				// Roundcube ignores a capability sent as a literal.
				for _, it := range l {
					if it.isLit || !it.isStr {
						name += "(not quoted)"
						break
					}
				}
				caps = append(caps, name)
			}
			sort.Strings(caps)
			extra = append(extra, "caps="+strings.Join(caps, ","))
		}
	case "LISTSCRIPTS":
		if resp.status == "OK" {
			var names []string
			for _, l := range resp.data {
				if len(l) == 0 || !l[0].isStr {
					names = append(names, "?")
					continue
				}
				n := l[0].str
				if l[0].isLit {
					n += "(literal)" // Roundcube drops such names
				}
				if len(l) > 1 && strings.EqualFold(l[1].atom, "ACTIVE") {
					n += "*"
				}
				names = append(names, n)
			}
			sort.Strings(names)
			extra = append(extra, "list=["+strings.Join(names, " ")+"]")
		}
	case "GETSCRIPT":
		if resp.status == "OK" {
			// Always a literal: Roundcube expects one.
			if len(resp.data) == 1 && len(resp.data[0]) == 1 && resp.data[0][0].isLit {
				// Line endings differ by design (see msServer.crlfGet).
				extra = append(extra, "get="+strconv.Quote(strings.ReplaceAll(resp.data[0][0].str, "\r\n", "\n")))
			} else {
				extra = append(extra, "get=malformed")
			}
		}
	default:
		if len(resp.data) > 0 {
			extra = append(extra, fmt.Sprintf("data=%v", resp.data))
		}
	}
	if len(extra) > 0 {
		out += " " + strings.Join(extra, " ")
	}
	return out
}

// msMatchesExpectation: status and code exactly, the rest as a substring.
func msMatchesExpectation(result, expect string) bool {
	head := func(s string) (string, string) {
		st, rest, _ := strings.Cut(s, " ")
		if strings.HasPrefix(rest, "(") {
			if i := strings.Index(rest, ")"); i >= 0 {
				return st + " " + rest[:i+1], strings.TrimSpace(rest[i+1:])
			}
		}
		return st, rest
	}
	rh, rrest := head(result)
	eh, erest := head(expect)
	return rh == eh && strings.Contains(rrest, erest)
}

// msKnownDifference is one line of managesieve_known_differences.txt.
type msKnownDifference struct {
	dovecot, sieved, reason string
	line                    int
}

func readMSKnownDifferences(t *testing.T) map[string]msKnownDifference {
	t.Helper()
	b, err := os.ReadFile("managesieve_known_differences.txt")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]msKnownDifference{}
	for i, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, " | ")
		if len(parts) != 4 || strings.TrimSpace(parts[3]) == "" {
			t.Fatalf("managesieve_known_differences.txt:%d: want \"session/step | dovecot result | sieved result | reason\": %q", i+1, line)
		}
		key := strings.TrimSpace(parts[0])
		if _, dup := known[key]; dup {
			t.Fatalf("managesieve_known_differences.txt:%d: %s listed twice", i+1, key)
		}
		known[key] = msKnownDifference{
			dovecot: strings.TrimSpace(parts[1]), sieved: strings.TrimSpace(parts[2]),
			reason: strings.TrimSpace(parts[3]), line: i + 1,
		}
	}
	return known
}

func TestManageSieveSideBySide(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certs := msMakeCerts(t, dir)
	const userName, password = "side@example.org", "side secret"
	passwd := filepath.Join(dir, "passwd")
	msWritePasswd(t, passwd, map[string]string{userName: password})
	names, profiles, steps := readMSSessions(t)
	known := readMSKnownDifferences(t)

	type server struct {
		srv     *msServer
		results map[string]string
		traces  map[string]string // session -> wire trace
	}
	dv := server{results: map[string]string{}, traces: map[string]string{}}
	sv := server{results: map[string]string{}, traces: map[string]string{}}
	data := msSessionData{User: userName, Password: password, Good: msGoodScript, Broken: msBrokenScript}
	// One server pair per profile; the sessions of a profile run in file
	// order, Dovecot and sieved in parallel.
	var mu sync.Mutex
	for _, profile := range sortedValues(profiles) {
		var dsrv, ssrv *msServer
		switch profile {
		case "":
			dsrv = startDovecotManageSieve(t, passwd, certs, dovecotQuota{})
			ssrv = startSieved(t, passwd, certs)
		case "quota":
			dsrv = startDovecotManageSieve(t, passwd, certs, dovecotQuota{MaxScriptSize: 1000, MaxScripts: 3, MaxStorage: 2500})
			conf := filepath.Join(dir, "sieved-quota.toml")
			mustWrite(t, conf, "[storage]\nmax_script_size = 1000\nmax_scripts = 3\nmax_total_bytes = 2500\n")
			ssrv = startSieved(t, passwd, certs, "-config", conf)
		default:
			t.Fatalf("session.txt: unknown server profile @%s", profile)
		}
		var wg sync.WaitGroup
		for _, p := range []struct {
			s   *server
			srv *msServer
		}{{&dv, dsrv}, {&sv, ssrv}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, name := range names {
					if profiles[name] != profile {
						continue
					}
					c, err := dialManageSieve(p.srv, certs)
					res := map[string]string{}
					for _, st := range steps[name] {
						if err != nil {
							res[st.key()] = "dial failed: " + err.Error()
							continue
						}
						res[st.key()] = c.step(st, data)
					}
					mu.Lock()
					maps.Copy(p.s.results, res)
					if c != nil {
						p.s.traces[name] = c.trace.String()
						c.conn.Close()
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}

	var transcript strings.Builder
	used := map[string]bool{}
	for _, name := range names {
		bad := false
		fail := func(format string, args ...any) {
			t.Helper()
			bad = true
			t.Errorf(format, args...)
		}
		for _, st := range steps[name] {
			k := st.key()
			d, s := dv.results[k], sv.results[k]
			fmt.Fprintf(&transcript, "%-40s dovecot: %s\n%-40s sieved:  %s\n", k, d, "", s)
			if !msMatchesExpectation(d, st.expect) {
				fail("session.txt:%d %s: Dovecot answered %q, the session expects %q", st.line, k, d, st.expect)
			}
			kd, listed := known[k]
			used[k] = listed
			switch {
			case d == s && listed:
				fail("%s: listed as a known difference (managesieve_known_differences.txt:%d) but both servers now answer %q; remove the entry", k, kd.line, d)
			case d != s && !listed:
				fail("%s: unlisted difference:\n\tdovecot: %s\n\tsieved:  %s", k, d, s)
			case d != s && (kd.dovecot != d || kd.sieved != s):
				fail("%s: differs otherwise than listed (managesieve_known_differences.txt:%d):\n\tdovecot: %s (listed %s)\n\tsieved:  %s (listed %s)", k, kd.line, d, kd.dovecot, s, kd.sieved)
			}
		}
		if bad {
			t.Logf("session %s, Dovecot's wire:\n%s\nsession %s, sieved's wire:\n%s", name, dv.traces[name], name, sv.traces[name])
		}
	}
	for k, kd := range known {
		if !used[k] {
			t.Errorf("managesieve_known_differences.txt:%d: %s is no step of session.txt", kd.line, k)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("side-by-side transcript:\n%s", transcript.String())
	}
}

// Issue 3: "Existing directories written by Dovecot Pigeonhole (same
// <name>.sieve + active convention) are read as they are." Dovecot's
// managesieved writes a user's scripts and activates one; sieved, started
// on that very directory tree, must list, return and keep them active, and
// Dovecot must read back what sieved then changed (a migration in both
// directions, with both servers running as the same user).
func TestManageSieveReadsDovecotStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certs := msMakeCerts(t, dir)
	const userName, password = "move@example.org", "move secret"
	passwd := filepath.Join(dir, "passwd")
	msWritePasswd(t, passwd, map[string]string{userName: password})
	plain := "AUTHENTICATE \"PLAIN\" \"" + base64.StdEncoding.EncodeToString([]byte("\x00"+userName+"\x00"+password)) + "\""
	lit := func(s string) string { return fmt.Sprintf("{%d+}\r\n%s", len(s), s) }
	crlfGood := strings.ReplaceAll(msGoodScript, "\n", "\r\n")

	type exchange struct{ cmd, want string }
	run := func(srv *msServer, steps []exchange) {
		t.Helper()
		c, err := dialManageSieve(srv, certs)
		if err != nil {
			t.Fatal(err)
		}
		defer c.conn.Close()
		login := []exchange{
			{greetingMarker + quietSuffix, "OK"},
			{"STARTTLS", "OK"},
			{tlsMarker + quietSuffix, "OK"},
			{plain, "OK"},
		}
		for _, e := range append(append(login, steps...), exchange{"LOGOUT", "OK"}) {
			if got := c.exchange(e.cmd); got != e.want {
				t.Errorf("%s, %s: got %s, want %s\nwire:\n%s", srv.name, strings.TrimSuffix(e.cmd, quietSuffix), got, e.want, c.trace)
				return
			}
		}
	}

	dv := startDovecotManageSieve(t, passwd, certs, dovecotQuota{})
	wantGet := "get=" + strconv.Quote(msGoodScript)
	run(dv, []exchange{
		{`PUTSCRIPT "main" ` + lit(crlfGood), "OK"},
		{`PUTSCRIPT "Köln ✓" ` + lit(msGoodScript), "OK"},
		{`PUTSCRIPT "spare" ` + lit("keep;\r\n"), "OK"},
		{`SETACTIVE "main"`, "OK"},
	})
	userDir := dv.scriptDir(userName)
	if link, err := os.Readlink(filepath.Join(userDir, "active")); err != nil || filepath.IsAbs(link) {
		t.Fatalf("Dovecot's active link: %q, %v; want a relative symlink (the layout this test relies on)", link, err)
	}

	sv := startSievedOn(t, dv.sieveRoot, passwd, certs)
	run(sv, []exchange{
		{"LISTSCRIPTS", "OK list=[Köln ✓ main* spare]"},
		{`GETSCRIPT "main"`, "OK " + wantGet},
		{`GETSCRIPT "Köln ✓"`, "OK " + wantGet},
		{`DELETESCRIPT "main"`, "NO (ACTIVE)"},
		{`DELETESCRIPT "spare"`, "OK"},
		{`PUTSCRIPT "new" ` + lit(crlfGood), "OK"},
		{`SETACTIVE "Köln ✓"`, "OK"},
		{`RENAMESCRIPT "main" "old"`, "OK"},
		{"LISTSCRIPTS", "OK list=[Köln ✓* new old]"},
	})

	// Back to Dovecot: both servers would run as one user in a
	// migration; here sieved ran as root, so hand the files over.
	chownTree(t, userDir, dv.uid, dv.gid)
	run(dv, []exchange{
		{"LISTSCRIPTS", "OK list=[Köln ✓* new old]"},
		{`GETSCRIPT "new"`, "OK " + wantGet},
		{`GETSCRIPT "old"`, "OK " + wantGet},
		{`DELETESCRIPT "Köln ✓"`, "NO (ACTIVE)"},
	})
}
