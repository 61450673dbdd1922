package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var ldaBin string

// TestMain builds the real binary once; the tests exec it the way an MTA
// does.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sieve-lda-bin-")
	if err != nil {
		panic(err)
	}
	ldaBin = filepath.Join(dir, "sieve-lda")
	out, err := exec.Command("go", "build", "-o", ldaBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build sieve-lda: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type site struct {
	t                *testing.T
	dir, mail, sieve string
	cfg              string
	sendmailLog      string
	logFile          string
	extraEnv         []string
}

// newSite makes a sieve root and a mail root (with alice's Maildir unless
// mailRoot is given), a config file and a recording sendmail.
func newSite(t *testing.T, mailRoot string) *site {
	t.Helper()
	s := &site{t: t, dir: t.TempDir()}
	s.sieve = filepath.Join(s.dir, "sieve")
	s.mail = mailRoot
	if s.mail == "" {
		s.mail = filepath.Join(s.dir, "mail")
		if err := os.MkdirAll(filepath.Join(s.mail, "example.org", "alice"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	s.sendmailLog = filepath.Join(s.dir, "sent")
	sendmail := filepath.Join(s.dir, "sendmail")
	os.WriteFile(sendmail, []byte("#!/bin/sh\necho \"$@\" >> "+s.sendmailLog+"\ncat >> "+s.sendmailLog+"\n"), 0o755)
	s.cfg = filepath.Join(s.dir, "sieved.toml")
	s.logFile = filepath.Join(s.dir, "lda.log")
	cfg := fmt.Sprintf("[storage]\nroot = %q\n[lda]\nmail_dir = %q\nlog_file = %q\n[sender]\nsendmail_path = %q\n",
		s.sieve, filepath.Join(s.mail, "{domain}", "{user}"), s.logFile, sendmail)
	if err := os.WriteFile(s.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *site) script(src string) {
	s.t.Helper()
	udir := filepath.Join(s.sieve, "example.org", "alice")
	os.MkdirAll(udir, 0o700)
	if err := os.WriteFile(filepath.Join(udir, "main.sieve"), []byte(src), 0o600); err != nil {
		s.t.Fatal(err)
	}
	os.Remove(filepath.Join(udir, "active"))
	if err := os.Symlink("main.sieve", filepath.Join(udir, "active")); err != nil {
		s.t.Fatal(err)
	}
}

// run execs sieve-lda with args (the config first) and msg on stdin.
func (s *site) run(msg string, args ...string) (code int, stderr string) {
	s.t.Helper()
	cmd := exec.Command(ldaBin, append([]string{"-c", s.cfg}, args...)...)
	cmd.Stdin = strings.NewReader(msg)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, s.extraEnv...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), errb.String()
	} else if err != nil {
		s.t.Fatal(err)
	}
	return 0, errb.String()
}

// messages returns the contents of every message file in alice's new/ and
// cur/ directories (all folders), keyed by path relative to the Maildir.
func (s *site) messages() map[string]string {
	s.t.Helper()
	root := filepath.Join(s.mail, "example.org", "alice")
	out := map[string]string{}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if sub := filepath.Base(filepath.Dir(p)); sub == "new" || sub == "cur" {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(root, p)
			out[rel] = string(b)
		}
		return nil
	})
	return out
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

const msg = "From: bob@example.net\nTo: alice@example.org\nSubject: test\nMessage-ID: <1@example.net>\n\nHello.\n"

func TestHelp(t *testing.T) {
	out, err := exec.Command(ldaBin, "--help").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-d RECIPIENT", "driver = pipe", "message_prefix =", "temp_errors = 64 : 69 : 70 : 71 : 72 : 73 : 74 : 75 : 78",
		"local_part_suffix = +* : -*", "$domain_data", "mailbox_command", "argv=/usr/local/bin/sieve-lda",
		"log_defer_output", "null_sender= "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

func TestExitCodes(t *testing.T) {
	s := newSite(t, "")
	s.script(`require "reject"; if header :is "subject" "reject me" { reject "Go away."; }`)
	for _, tc := range []struct {
		name   string
		args   []string
		env    []string
		msg    string
		code   int
		stderr string // substring of the last stderr line
	}{
		{"delivered", []string{"-d", "alice@example.org", "-f", "bob@example.net"}, nil, msg, 0, ""},
		{"no recipient", nil, nil, msg, 64, "no recipient"},
		{"bad flag", []string{"-x"}, nil, msg, 64, "flag provided but not defined"},
		{"stray argument", []string{"-d", "alice@example.org", "extra"}, nil, msg, 64, "unexpected argument"},
		{"unknown user", []string{"-d", "nobody@example.org"}, nil, msg, 67, "unknown user nobody@example.org"},
		{"unknown domain", []string{"-d", "alice@example.com"}, nil, msg, 67, "unknown user"},
		{"path in user", []string{"-d", "../../etc@example.org"}, nil, msg, 67, "unknown user"},
		{"missing -p file", []string{"-d", "alice@example.org", "-p", "/nonexistent/msg"}, nil, msg, 66, "no such file"},
		{"reject with -e", []string{"-d", "alice@example.org", "-f", "bob@example.net", "-e"}, nil,
			strings.Replace(msg, "Subject: test", "Subject: reject me", 1), 77, "Go away."},
		{"recipient from the environment", nil, []string{"RECIPIENT=alice+x@example.org", "SENDER="}, msg, 0, ""},
		{"dovecot-lda -r, -o and -k accepted", []string{"-r", "alice@example.org", "-o", "lda_mailbox_autocreate=yes", "-k"}, nil, msg, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.extraEnv = tc.env
			code, stderr := s.run(tc.msg, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			if tc.stderr != "" && !strings.Contains(strings.ToLower(lastLine(stderr)), strings.ToLower(tc.stderr)) {
				t.Errorf("last stderr line %q lacks %q", lastLine(stderr), tc.stderr)
			}
			// With logs in a file, stderr (what the MTA logs and bounces
			// with) is the one-line reason and nothing else.
			if n := strings.Count(stderr, "\n"); (tc.code == 0 && n != 0) || (tc.code != 0 && n != 1) {
				t.Errorf("stderr has %d lines, want the reason only:\n%s", n, stderr)
			}
		})
	}
	// -e prints the reason alone, for the MTA's bounce.
	s.extraEnv = nil
	_, stderr := s.run(strings.Replace(msg, "Subject: test", "Subject: reject me", 1), "-d", "alice@example.org", "-e")
	if stderr != "Go away.\n" {
		t.Errorf("-e stderr last line = %q", lastLine(stderr))
	}
}

// An unusable configuration defers (75, as dovecot-lda): Postfix bounces
// on any other code, so a typo must not bounce all mail until it is fixed.
func TestBadConfig(t *testing.T) {
	for name, cfg := range map[string]string{
		"unknown key":          "[lda]\nmail_dirr = \"x\"\n",
		"unwritable log file":  "[lda]\nlog_file = \"/nonexistent/dir/lda.log\"\n",
		"bad sender method":    "[sender]\nmethod = \"pigeon\"\n",
		"missing config file?": "",
	} {
		t.Run(name, func(t *testing.T) {
			s := newSite(t, "")
			if cfg == "" {
				os.Remove(s.cfg)
			} else {
				os.WriteFile(s.cfg, []byte(cfg), 0o600)
			}
			code, stderr := s.run(msg, "-d", "alice@example.org")
			if code != 75 {
				t.Fatalf("exit %d, want 75\n%s", code, stderr)
			}
			if n := strings.Count(stderr, "\n"); n != 1 || !strings.HasPrefix(stderr, "sieve-lda: ") {
				t.Errorf("stderr %q, want one line with the reason", stderr)
			}
		})
	}
}

func TestDeliveryAndBrokenScript(t *testing.T) {
	s := newSite(t, "")
	s.script(`require ["fileinto", "envelope", "subaddress"]; if envelope :detail "to" "lists" { fileinto "Lists/Go"; }`)
	if code, stderr := s.run("From bob@example.net Mon Jan  1 00:00:00 2024\n"+msg, "-d", "alice+lists@example.org", "-f", "bob@example.net"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	s.script(`require "fileinto"; if header :is "subject" { fileinto "x"; `) // broken
	code, stderr := s.run(msg, "-d", "alice@example.org", "-f", "bob@example.net")
	if code != 0 {
		t.Fatalf("broken script: exit %d: %s", code, stderr)
	}
	if logs, _ := os.ReadFile(s.logFile); !strings.Contains(string(logs), "does not compile") {
		t.Errorf("no log line about the broken script:\n%s", logs)
	}
	got := s.messages()
	var inLists, inInbox int
	for p, body := range got {
		if body != msg {
			t.Errorf("%s = %q, want the message (mbox From line stripped)", p, body)
		}
		switch {
		case strings.HasPrefix(p, ".Lists.Go/new/"):
			inLists++
		case strings.HasPrefix(p, "new/"):
			inInbox++
		}
	}
	if inLists != 1 || inInbox != 1 || len(got) != 2 {
		t.Errorf("messages = %v", keys(got))
	}
}

func TestRedirectThroughSendmail(t *testing.T) {
	s := newSite(t, "")
	s.script(`redirect "carol@example.com";`)
	if code, stderr := s.run(msg, "-d", "alice@example.org", "-f", "bob@example.net"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	sent, _ := os.ReadFile(s.sendmailLog)
	if !strings.HasPrefix(string(sent), "-i -f bob@example.net -- carol@example.com\nX-Sieve-Redirected-By: alice@example.org\n"+msg) {
		t.Errorf("sendmail got %q", sent)
	}
	if got := s.messages(); len(got) != 0 {
		t.Errorf("redirected message also stored: %v", keys(got))
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// mountTmpfs mounts a small tmpfs (root only); the test is skipped where
// mounting is not permitted.
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// A full disk: exit 75 so the MTA retries, and nothing visible in new/ or
// cur/, nothing left in tmp/.
func TestFullDisk(t *testing.T) {
	mnt := mountTmpfs(t, "size=64k")
	os.MkdirAll(filepath.Join(mnt, "example.org", "alice"), 0o700)
	s := newSite(t, mnt)
	big := msg + strings.Repeat("x", 200<<10) + "\n"
	code, stderr := s.run(big, "-d", "alice@example.org", "-f", "bob@example.net")
	if code != 75 {
		t.Fatalf("exit %d, want 75\n%s", code, stderr)
	}
	if !strings.Contains(lastLine(stderr), "no space left") {
		t.Errorf("reason %q does not say why", lastLine(stderr))
	}
	if got := s.messages(); len(got) != 0 {
		t.Errorf("partial messages visible: %v", keys(got))
	}
	if ents, _ := os.ReadDir(filepath.Join(mnt, "example.org", "alice", "tmp")); len(ents) != 0 {
		t.Errorf("tmp/ not cleaned: %d files", len(ents))
	}
	// Once there is room again the same message is delivered.
	small := msg
	if code, stderr := s.run(small, "-d", "alice@example.org", "-f", "bob@example.net"); code != 0 {
		t.Fatalf("small message after a full disk: exit %d\n%s", code, stderr)
	}
}

// A read-only mailbox (root ignores permission bits, so a read-only file
// system): exit 75, nothing written.
func TestReadOnlyMailbox(t *testing.T) {
	mnt := mountTmpfs(t, "size=1m")
	for _, d := range []string{"tmp", "new", "cur"} {
		os.MkdirAll(filepath.Join(mnt, "example.org", "alice", d), 0o700)
	}
	if out, err := exec.Command("mount", "-o", "remount,ro", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot remount read-only: %v %s", err, out)
	}
	s := newSite(t, mnt)
	code, stderr := s.run(msg, "-d", "alice@example.org", "-f", "bob@example.net")
	if code != 75 {
		t.Fatalf("exit %d, want 75\n%s", code, stderr)
	}
	if !strings.Contains(lastLine(stderr), "read-only") {
		t.Errorf("reason %q does not say why", lastLine(stderr))
	}
	if got := s.messages(); len(got) != 0 {
		t.Errorf("messages visible: %v", keys(got))
	}
}

// Killing sieve-lda at random points (while it reads a slow stdin, runs the
// script, creates folders or links copies) never leaves a partial message
// visible in new/ or cur/: every visible file is the complete message.
func TestKillAtRandomPoints(t *testing.T) {
	s := newSite(t, "")
	s.script(`require ["fileinto", "imap4flags", "copy"];
fileinto :copy :flags "\\Seen" "A";
fileinto :copy "B/C";
keep;`)
	body := msg + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", 16<<10) // ~1 MB
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	killed, completed := 0, 0
	for i := 0; i < 25; i++ {
		cmd := exec.Command(ldaBin, "-c", s.cfg, "-d", "alice@example.org", "-f", "bob@example.net")
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Slow stdin: the message arrives in chunks; we kill after a random
		// delay, sometimes while reading, sometimes after the whole message.
		killAfter := time.Duration(rng.Intn(120)) * time.Millisecond
		pause := time.Duration(rng.Intn(3)) * time.Millisecond
		timer := time.AfterFunc(killAfter, func() { cmd.Process.Signal(syscall.SIGKILL) })
		go func() {
			defer stdin.Close()
			for off := 0; off < len(body); off += 128 << 10 {
				end := min(off+128<<10, len(body))
				if _, err := io.WriteString(stdin, body[off:end]); err != nil {
					return
				}
				time.Sleep(pause)
			}
		}()
		err = cmd.Wait()
		timer.Stop()
		if err == nil {
			completed++
		} else {
			killed++
		}
		for p, b := range s.messages() {
			if b != body {
				t.Fatalf("iteration %d: %s holds %d bytes, want the complete %d", i, p, len(b), len(body))
			}
		}
	}
	t.Logf("%d runs killed, %d completed", killed, completed)
	// After all that, delivery still works (no stale lock blocks it).
	start := time.Now()
	if code, stderr := s.run(msg, "-d", "alice@example.org", "-f", "bob@example.net"); code != 0 {
		t.Fatalf("delivery after kills: exit %d\n%s", code, stderr)
	}
	if time.Since(start) > 20*time.Second {
		t.Errorf("delivery after kills took %s", time.Since(start))
	}
}

// A stalled MTA (stdin open, no data) ends in exit 75 at the configured
// deadline, with nothing visible in the mailbox.
func TestStalledInputTimesOut(t *testing.T) {
	s := newSite(t, "")
	cfg, _ := os.ReadFile(s.cfg)
	os.WriteFile(s.cfg, []byte(strings.Replace(string(cfg), "[lda]\n", "[lda]\ntimeout_seconds = 1\n", 1)), 0o600)
	cmd := exec.Command(ldaBin, "-c", s.cfg, "-d", "alice@example.org", "-f", "bob@example.net")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	io.WriteString(stdin, msg[:20]) // part of the header, then silence
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 75 {
			t.Fatalf("exit %v, want 75\n%s", err, errb.String())
		}
	case <-time.After(8 * time.Second):
		cmd.Process.Kill()
		t.Fatal("sieve-lda did not give up on a stalled stdin at its deadline")
	}
	if got := s.messages(); len(got) != 0 {
		t.Errorf("messages visible: %v", keys(got))
	}
	if !strings.Contains(errb.String(), "deadline") {
		t.Errorf("reason %q does not mention the deadline", errb.String())
	}
}

// SIGTERM (an MTA shutting down) during a delivery ends it with 75 and
// nothing visible.
func TestSIGTERM(t *testing.T) {
	s := newSite(t, "")
	cmd := exec.Command(ldaBin, "-c", s.cfg, "-d", "alice@example.org", "-f", "bob@example.net")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	io.WriteString(stdin, msg[:20])
	time.Sleep(200 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 75 {
		t.Fatalf("exit %v, want 75", err)
	}
	if got := s.messages(); len(got) != 0 {
		t.Errorf("messages visible: %v", keys(got))
	}
}

// A message that fits on the mail file system once but not twice (the
// mailbox nearly full): the script still runs on it and the message goes
// where the script says, read from stdin or from -p FILE, the mbox "From "
// line stripped. (A second, engine-side copy used to fail here with
// ENOSPC, skipping the script and delivering to INBOX.)
func TestLargeMessageOnNearlyFullDisk(t *testing.T) {
	big := msg + strings.Repeat(strings.Repeat("y", 63)+"\n", 700<<10/64) + "needle\n"
	for _, viaFile := range []bool{false, true} {
		t.Run(fmt.Sprintf("p=%v", viaFile), func(t *testing.T) {
			mnt := mountTmpfs(t, "size=1m")
			os.MkdirAll(filepath.Join(mnt, "example.org", "alice"), 0o700)
			s := newSite(t, mnt)
			s.script(`require ["fileinto", "body"];
if allof (header :contains "subject" "test", body :text :contains "needle") { fileinto "Big"; }`)
			in := "From bob@example.net Mon Jan  1 00:00:00 2024\n" + big
			args := []string{"-d", "alice@example.org", "-f", "bob@example.net"}
			if viaFile {
				p := filepath.Join(s.dir, "msg.eml")
				if err := os.WriteFile(p, []byte(in), 0o600); err != nil {
					t.Fatal(err)
				}
				args, in = append(args, "-p", p), ""
			}
			if code, stderr := s.run(in, args...); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got := s.messages()
			if len(got) != 1 {
				t.Fatalf("messages = %v", keys(got))
			}
			for p, body := range got {
				if !strings.HasPrefix(p, ".Big/new/") || body != big {
					logs, _ := os.ReadFile(s.logFile)
					t.Errorf("%s: %d bytes, want the %d-byte message in .Big/new/\n%s", p, len(body), len(big), logs)
				}
			}
			if ents, _ := os.ReadDir(filepath.Join(mnt, "example.org", "alice", "tmp")); len(ents) != 0 {
				t.Errorf("tmp/ not cleaned: %d files", len(ents))
			}
		})
	}
}

// The [engine] section must reach delivery: a script that sieved would
// refuse under the configured limits must not run differently in sieve-lda.
func TestEngineLimitsFromConfig(t *testing.T) {
	for _, tc := range []struct {
		name, engineSection string
		wantFolder          string
	}{
		{"defaults run the script", "", ".A/new/"},
		{"max_script_bytes refuses it", "[engine]\nmax_script_bytes = 20\n", "new/"},
		{"max_actions refuses two copies", "[engine]\nmax_actions = 1\n", "new/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t, "")
			if tc.engineSection != "" {
				f, err := os.OpenFile(s.cfg, os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.WriteString(tc.engineSection)
				f.Close()
			}
			s.script(`require ["fileinto", "copy"]; fileinto :copy "B"; fileinto "A";`)
			if code, stderr := s.run(msg, "-d", "alice@example.org", "-f", "bob@example.net"); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got := s.messages()
			found := false
			for p := range got {
				if strings.HasPrefix(p, tc.wantFolder) {
					found = true
				}
			}
			if !found {
				t.Errorf("messages %v, want one in %s", keys(got), tc.wantFolder)
			}
		})
	}
}

// With the default log_file = "syslog" and no syslog daemon (containers),
// stderr, which the MTA logs (first line) and puts into bounces, must still
// carry only the one-line reason: nothing on success, one line on failure.
func TestNoSyslogKeepsStderrOneLine(t *testing.T) {
	s := newSite(t, "")
	cfg := fmt.Sprintf("[storage]\nroot = %q\n[lda]\nmail_dir = %q\n",
		s.sieve, filepath.Join(s.mail, "{domain}", "{user}"))
	if err := os.WriteFile(s.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// A broken script logs why it fell back to INBOX.
	s.script(`require "fileinto"; fileinto "A"`)
	old := dialSyslog
	dialSyslog = func() (io.WriteCloser, error) { return nil, fmt.Errorf("no syslog daemon") }
	t.Cleanup(func() { dialSyslog = old })

	for _, tc := range []struct {
		name   string
		rcpt   string
		code   int
		stderr string
	}{
		{"delivered to INBOX", "alice@example.org", 0, ""},
		{"unknown user", "nobody@example.org", 67, "sieve-lda: unknown user nobody@example.org\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errb bytes.Buffer
			code := run([]string{"-c", s.cfg, "-d", tc.rcpt, "-f", "bob@example.net"}, strings.NewReader(msg), &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, errb.String())
			}
			if errb.String() != tc.stderr {
				t.Errorf("stderr = %q, want %q", errb.String(), tc.stderr)
			}
		})
	}
	if got := s.messages(); len(got) != 1 {
		t.Errorf("messages = %v, want one in INBOX", keys(got))
	}
}
