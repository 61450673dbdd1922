package interop

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode"
)

// The conformance corpus (testdata/conformance, format in its README) is
// run through Pigeonhole's sieve-test and through `sievectl test`; each
// tool's normalized actions must equal the case's expectation unless the
// pair (case, tool) is listed in conformance_known_differences.txt. A
// listed pair that no longer differs fails too, so the list stays honest.

const (
	conformanceDir   = "../testdata/conformance"
	knownDiffsFile   = "conformance_known_differences.txt"
	toolSievectl     = "sievectl"
	toolPigeonhole   = "sieve-test"
	defaultCaseFrom  = "alice@example.com"
	defaultCaseTo    = "bob+lists@example.org"
	conformanceProcs = 6 // cases run at once (each runs two short processes, mostly waiting)
)

type confCase struct {
	name    string
	desc    string
	from    string
	to      string
	script  string
	message string
	expect  []string
}

// parseCase reads one .case file: header lines ("# description",
// "from: ", "to: ", "message: FILE"), then "-- script --", optionally
// "-- message --", and "-- expect --" sections.
func parseCase(name, text, msgDir string) (confCase, error) {
	c := confCase{name: name, from: defaultCaseFrom, to: defaultCaseTo}
	sections := map[string]*strings.Builder{}
	var cur *strings.Builder
	msgFile := ""
	for _, line := range strings.SplitAfter(text, "\n") {
		trim := strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(trim, "-- ") && strings.HasSuffix(trim, " --") && len(trim) > 6 {
			sec := strings.TrimSpace(trim[3 : len(trim)-3])
			if _, dup := sections[sec]; dup {
				return c, fmt.Errorf("%s: duplicate section %q", name, sec)
			}
			cur = &strings.Builder{}
			sections[sec] = cur
			continue
		}
		if cur != nil {
			cur.WriteString(line)
			continue
		}
		switch {
		case trim == "":
		case strings.HasPrefix(trim, "#"):
			c.desc += strings.TrimSpace(strings.TrimPrefix(trim, "#")) + " "
		case strings.HasPrefix(trim, "from:"):
			c.from = strings.TrimSpace(strings.TrimPrefix(trim, "from:"))
		case strings.HasPrefix(trim, "to:"):
			c.to = strings.TrimSpace(strings.TrimPrefix(trim, "to:"))
		case strings.HasPrefix(trim, "message:"):
			msgFile = strings.TrimSpace(strings.TrimPrefix(trim, "message:"))
		default:
			return c, fmt.Errorf("%s: unexpected header line %q", name, trim)
		}
	}
	for sec := range sections {
		if sec != "script" && sec != "message" && sec != "expect" {
			return c, fmt.Errorf("%s: unknown section %q", name, sec)
		}
	}
	s, ok := sections["script"]
	if !ok {
		return c, fmt.Errorf("%s: no script section", name)
	}
	c.script = s.String()
	switch m, inline := sections["message"]; {
	case inline && msgFile != "":
		return c, fmt.Errorf("%s: both a message section and a message: file", name)
	case inline:
		c.message = m.String()
	case msgFile != "":
		b, err := os.ReadFile(filepath.Join(msgDir, msgFile))
		if err != nil {
			return c, fmt.Errorf("%s: %w", name, err)
		}
		c.message = string(b)
	default:
		return c, fmt.Errorf("%s: no message", name)
	}
	e, ok := sections["expect"]
	if !ok {
		return c, fmt.Errorf("%s: no expect section", name)
	}
	for _, l := range strings.Split(e.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			c.expect = append(c.expect, l)
		}
	}
	if len(c.expect) == 0 {
		return c, fmt.Errorf("%s: empty expect section", name)
	}
	sort.Strings(c.expect)
	return c, nil
}

func loadConformanceCases(t testing.TB) []confCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(conformanceDir, "cases", "*.case"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []confCase
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseCase(strings.TrimSuffix(filepath.Base(f), ".case"), string(b), filepath.Join(conformanceDir, "messages"))
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	return cases
}

// knownDiffs maps case name -> tool -> reason.
type knownDiffs map[string]map[string]string

func loadKnownDiffs(t testing.TB) knownDiffs {
	t.Helper()
	b, err := os.ReadFile(knownDiffsFile)
	if err != nil {
		t.Fatal(err)
	}
	kd := knownDiffs{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 || (f[1] != toolSievectl && f[1] != toolPigeonhole) {
			t.Fatalf("%s:%d: want \"<case> sievectl|sieve-test <reason>\", got %q", knownDiffsFile, i+1, line)
		}
		if kd[f[0]] == nil {
			kd[f[0]] = map[string]string{}
		}
		if _, dup := kd[f[0]][f[1]]; dup {
			t.Fatalf("%s:%d: %s %s listed twice", knownDiffsFile, i+1, f[0], f[1])
		}
		kd[f[0]][f[1]] = strings.Join(f[2:], " ")
	}
	return kd
}

// TestConformanceCorpus checks the corpus itself (no peer needed): it
// parses, is big enough, and every supported extension is exercised.
func TestConformanceCorpus(t *testing.T) {
	cases := loadConformanceCases(t)
	if len(cases) < 150 {
		t.Errorf("corpus has %d cases, want at least 150", len(cases))
	}
	broken := 0
	required := map[string]bool{}
	reqRE := regexp.MustCompile(`require\s*(\[[^\]]*\]|"[^"]*")`)
	strRE := regexp.MustCompile(`"([^"]*)"`)
	for _, c := range cases {
		if strings.HasPrefix(c.expect[0], "compile-error line ") {
			broken++
			continue
		}
		for _, m := range reqRE.FindAllStringSubmatch(c.script, -1) {
			for _, s := range strRE.FindAllStringSubmatch(m[1], -1) {
				required[s[1]] = true
			}
		}
		for _, e := range c.expect {
			if !validExpectation(e) {
				t.Errorf("%s: bad expectation %q", c.name, e)
			}
		}
	}
	if broken < 40 {
		t.Errorf("corpus has %d broken scripts, want at least 40", broken)
	}
	// Every extension sievectl (and so sieved) advertises needs a case;
	// i;octet and i;ascii-casemap are always available and need no require.
	out, err := exec.Command(binary(t, "sievectl"), "extensions").Output()
	if err != nil {
		t.Fatalf("sievectl extensions: %v", err)
	}
	exts := strings.Fields(string(out))
	if len(exts) < 14 {
		t.Fatalf("sievectl extensions lists only %q", exts)
	}
	for _, ext := range exts {
		if ext == "comparator-i;octet" || ext == "comparator-i;ascii-casemap" {
			continue
		}
		if !required[ext] {
			t.Errorf("no working case requires %q: add cases to %s", ext, conformanceDir)
		}
	}
	kd := loadKnownDiffs(t)
	names := map[string]bool{}
	for _, c := range cases {
		names[c.name] = true
	}
	for n := range kd {
		if !names[n] {
			t.Errorf("%s lists unknown case %q", knownDiffsFile, n)
		}
	}
}

var expectRE = regexp.MustCompile(`^(implicit-keep( flags .+)?|store .+|redirect \S+|reject.*|ereject.*|discard|runtime-error|compile-error line \d+|vacation.*)$`)

func validExpectation(e string) bool { return expectRE.MatchString(e) }

// TestConformance runs every case through Pigeonhole's sieve-test and
// `sievectl test` and compares both with the expectation.
func TestConformance(t *testing.T) {
	sieveTest := requirePeer(t, "sieve-test")
	ctl := binary(t, "sievectl")
	cases := loadConformanceCases(t)
	kd := loadKnownDiffs(t)
	ph := newPigeonhole(t, sieveTest, ctl)

	// Run both tools on every case with a bounded pool (the processes
	// mostly wait, so this beats t.Parallel's GOMAXPROCS limit), then
	// report one subtest per case.
	type result struct {
		got  map[string][]string
		errs []error
	}
	results := make([]result, len(cases))
	sem := make(chan struct{}, conformanceProcs)
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := result{got: map[string][]string{}}
			dir, err := ph.caseDir(c)
			if err != nil {
				r.errs = append(r.errs, err)
				results[i] = r
				return
			}
			var e1, e2 error
			r.got[toolPigeonhole], e1 = ph.run(dir, c)
			r.got[toolSievectl], e2 = runSievectl(ctl, dir, c)
			for _, e := range []error{e1, e2} {
				if e != nil {
					r.errs = append(r.errs, e)
				}
			}
			results[i] = r
		}()
	}
	wg.Wait()

	t.Run("cases", func(t *testing.T) {
		for i, c := range cases {
			r := results[i]
			t.Run(c.name, func(t *testing.T) {
				for _, err := range r.errs {
					t.Error(err)
				}
				if len(r.errs) > 0 {
					return
				}
				for _, tool := range []string{toolPigeonhole, toolSievectl} {
					differs := !slices.Equal(r.got[tool], c.expect)
					reason, known := kd[c.name][tool]
					switch {
					case differs && !known:
						t.Errorf("%s differs from the expectation (%s)\n script:\n%s\n want: %q\n got:  %q\n other tool: %q",
							tool, strings.TrimSpace(c.desc), indent(c.script), c.expect, r.got[tool], r.got[other(tool)])
					case !differs && known:
						t.Errorf("%s now agrees with the expectation: remove \"%s %s\" (%s) from %s",
							tool, c.name, tool, reason, knownDiffsFile)
					case differs:
						t.Logf("known difference (%s): want %q, got %q", reason, c.expect, r.got[tool])
					}
				}
			})
		}
	})
}

func other(tool string) string {
	if tool == toolSievectl {
		return toolPigeonhole
	}
	return toolSievectl
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// pigeonhole runs sieve-test with a private, minimal Dovecot configuration.
type pigeonhole struct {
	bin, conf, root string
	exts            string
}

func newPigeonhole(t *testing.T, bin, ctl string) *pigeonhole {
	t.Helper()
	root := t.TempDir()
	ph := &pigeonhole{bin: bin, root: root, conf: filepath.Join(root, "dovecot.conf")}
	// As root, Dovecot refuses to run mail code as root: it drops to the
	// unprivileged "mail" user, which must reach the case files.
	privDrop := ""
	if os.Getuid() == 0 {
		u, err := user.Lookup("mail")
		if err != nil {
			u, err = user.Lookup("nobody")
		}
		if err != nil {
			t.Fatalf("no unprivileged user for sieve-test: %v", err)
		}
		privDrop = fmt.Sprintf("mail_uid = %s\nmail_gid = %s\n", u.Uid, u.Gid)
		for d := root; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(root, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(t, ph.conf, fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = /dev/stderr
ssl = no
mail_location = maildir:%[1]s/mail
first_valid_uid = 1
first_valid_gid = 1
%[2]s`, root, privDrop))
	// Offer Pigeonhole exactly the extensions sievectl supports, so a
	// script requiring anything else is refused by both.
	out, err := exec.Command(ctl, "extensions").Output()
	if err != nil {
		t.Fatalf("sievectl extensions: %v", err)
	}
	ph.exts = strings.Join(strings.Fields(string(out)), " ")
	return ph
}

func (ph *pigeonhole) caseDir(c confCase) (string, error) {
	dir := filepath.Join(ph.root, c.name)
	if err := os.Mkdir(dir, 0o777); err != nil {
		return "", err
	}
	// Despite the umask: sieve-test (perhaps as "mail") saves its binary here.
	if err := os.Chmod(dir, 0o777); err != nil {
		return "", err
	}
	for name, content := range map[string]string{"script.sieve": c.script, "message.eml": c.message} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}

var (
	phErrLineRE = regexp.MustCompile(`(?m)^script: line (\d+): error:`)
	phItemRE    = regexp.MustCompile(`^\s\*\s(.*)$`)
	phFlagsRE   = regexp.MustCompile(`^\s+\+ add IMAP flags: (.*)$`)
	phVacRE     = regexp.MustCompile(`^\s+=> (\w+)\s*: (.*)$`)
)

func (ph *pigeonhole) run(dir string, c confCase) ([]string, error) {
	args := []string{"-c", ph.conf, "-C", "-x", ph.exts}
	// sieve-test refuses an empty -f; without -f it reads the sender from
	// Return-Path, so a null-sender case carries "Return-Path: <>".
	if c.from != "<>" {
		args = append(args, "-f", c.from)
	}
	args = append(args, "-a", c.to, "-r", c.to,
		filepath.Join(dir, "script.sieve"), filepath.Join(dir, "message.eml"))
	cmd := exec.Command(ph.bin, args...)
	cmd.Env = []string{"HOME=" + ph.root, "PATH=/usr/bin:/bin"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		return nil, fmt.Errorf("sieve-test: %w", err)
	}
	errText := stderr.String()
	switch {
	case strings.Contains(errText, "failed to compile sieve script"):
		m := phErrLineRE.FindStringSubmatch(errText)
		if m == nil {
			return []string{"compile-error line 0"}, nil
		}
		return []string{"compile-error line " + m[1]}, nil
	case strings.Contains(errText, "final result: failed"):
		return []string{"runtime-error"}, nil
	case code != 0:
		return nil, fmt.Errorf("sieve-test exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), errText)
	}
	acts := parsePigeonholeActions(stdout.String())
	if acts == nil {
		return nil, fmt.Errorf("sieve-test printed no actions:\n%s\nstderr:\n%s", stdout.String(), errText)
	}
	return acts, nil
}

// parsePigeonholeActions normalizes sieve-test's "Performed actions" and
// "Implicit keep" listing.
func parsePigeonholeActions(out string) []string {
	var acts []string
	var flags [][]string
	section := ""
	var vac *vacationSummary
	var vacBody []string
	inBody := false
	endVacation := func() {
		if vac != nil {
			vac.reason = strings.Join(vacBody, "\n")
			acts[len(acts)-1] = vac.String()
			vac, vacBody = nil, nil
		}
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if vac != nil {
			switch {
			case line == "START MESSAGE":
				inBody = true
				continue
			case line == "END MESSAGE":
				inBody = false
				endVacation()
				continue
			case inBody:
				vacBody = append(vacBody, line)
				continue
			}
			if m := phVacRE.FindStringSubmatch(line); m != nil {
				switch m[1] {
				case "seconds":
					vac.seconds, _ = strconv.ParseInt(m[2], 10, 64)
				case "subject":
					vac.subject = m[2]
				}
				continue
			}
		}
		switch strings.TrimSpace(line) {
		case "Performed actions:":
			section = "performed"
			continue
		case "Implicit keep:":
			section = "implicit"
			continue
		}
		if m := phItemRE.FindStringSubmatch(line); m != nil {
			item := m[1]
			var a string
			switch {
			case strings.HasPrefix(item, "store message in folder: "):
				if section == "implicit" {
					a = "implicit-keep"
				} else {
					a = "store " + strings.TrimPrefix(item, "store message in folder: ")
				}
			case strings.HasPrefix(item, "redirect message to: "):
				a = "redirect " + strings.Trim(strings.TrimPrefix(item, "redirect message to: "), "<>")
			case strings.HasPrefix(item, "reject message with reason: "):
				a = joinNonEmpty("reject", normReason(strings.TrimPrefix(item, "reject message with reason: ")))
			case item == "discard":
				a = "discard"
			case item == "send vacation message:":
				vac = &vacationSummary{}
				a = "vacation"
			default:
				a = "unknown " + item
			}
			acts = append(acts, a)
			flags = append(flags, nil)
			continue
		}
		if m := phFlagsRE.FindStringSubmatch(line); m != nil && len(acts) > 0 {
			flags[len(flags)-1] = append(flags[len(flags)-1], strings.Fields(m[1])...)
		}
	}
	endVacation()
	for i := range acts {
		acts[i] += flagSuffix(flags[i])
	}
	sort.Strings(acts)
	return acts
}

// vacationSummary is the comparable part of a vacation action: the period,
// an explicit subject and the reason text.
type vacationSummary struct {
	seconds int64
	subject string
	reason  string
}

func (v *vacationSummary) String() string {
	s := fmt.Sprintf("vacation seconds %d", v.seconds)
	if v.subject != "" {
		s += " subject " + v.subject
	}
	return joinNonEmpty(s+" reason", normReason(v.reason))
}

func flagSuffix(flags []string) string {
	if len(flags) == 0 {
		return ""
	}
	seen := map[string]bool{}
	var out []string
	for _, f := range flags {
		f = strings.ToLower(f)
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return " flags " + strings.Join(out, " ")
}

// normReason makes reasons comparable: Pigeonhole prints control
// characters (the CRLF of a multi-line reason) as '?'.
func normReason(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '?' || unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

func joinNonEmpty(a, b string) string {
	if b == "" {
		return a
	}
	return a + " " + b
}

// sievectlReport is the part of `sievectl test --json` the test reads.
type sievectlReport struct {
	Compiled  bool   `json:"compiled"`
	Error     string `json:"error"`
	ErrorLine int    `json:"error_line"`
	Actions   []struct {
		Action   string   `json:"action"`
		Implicit bool     `json:"implicit"`
		Mailbox  string   `json:"mailbox"`
		Flags    []string `json:"flags"`
		Address  string   `json:"address"`
		Reason   string   `json:"reason"`
		Text     string   `json:"text"`
		Value    struct {
			Period  int64 // time.Duration
			Subject string
			Reason  string
		} `json:"value"`
	} `json:"actions"`
}

func runSievectl(ctl, dir string, c confCase) ([]string, error) {
	cmd := exec.Command(ctl, "test", "--json", "--from", nullSender(c.from), "--to", c.to,
		filepath.Join(dir, "script.sieve"), filepath.Join(dir, "message.eml"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		return nil, fmt.Errorf("sievectl: %w", err)
	}
	if code > 2 {
		return nil, fmt.Errorf("sievectl test exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	var rep sievectlReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		return nil, fmt.Errorf("sievectl test --json: %w\n%s", err, stdout.String())
	}
	if !rep.Compiled {
		if code != 1 {
			return nil, fmt.Errorf("sievectl test exit %d for a script that does not compile, want 1", code)
		}
		return []string{"compile-error line " + strconv.Itoa(rep.ErrorLine)}, nil
	}
	if rep.Error != "" {
		if code != 2 {
			return nil, fmt.Errorf("sievectl test exit %d for a run-time error, want 2", code)
		}
		return []string{"runtime-error"}, nil
	}
	if code != 0 {
		return nil, fmt.Errorf("sievectl test exit %d for a successful run, want 0", code)
	}
	var acts []string
	for _, a := range rep.Actions {
		var s string
		switch a.Action {
		case "keep":
			if a.Implicit {
				s = "implicit-keep"
			} else {
				s = "store INBOX"
			}
		case "fileinto":
			s = "store " + a.Mailbox
		case "redirect":
			s = "redirect " + a.Address
		case "reject", "ereject":
			s = joinNonEmpty(a.Action, normReason(a.Reason))
		case "discard":
			s = "discard"
		case "vacation":
			v := vacationSummary{seconds: a.Value.Period / 1e9, subject: a.Value.Subject, reason: a.Value.Reason}
			s = v.String()
		default:
			s = a.Action + " " + a.Text
		}
		acts = append(acts, s+flagSuffix(a.Flags))
	}
	sort.Strings(acts)
	return acts, nil
}

func nullSender(from string) string {
	if from == "" {
		return "<>"
	}
	return from
}
