package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testMessage = "Return-Path: <alice@example.com>\r\n" +
	"From: Alice <alice@example.com>\r\n" +
	"To: bob@example.org\r\n" +
	"Subject: Quarterly report\r\n" +
	"\r\n" +
	"Numbers are up.\r\n"

// sievectl runs the command in-process with files written to a temp dir.
// files maps names to contents; args may name them.
func sievectl(t *testing.T, stdin string, files map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, a := range args {
		if _, ok := files[a]; ok {
			args[i] = filepath.Join(dir, a)
		}
	}
	var out, errb bytes.Buffer
	code = run(context.Background(), &stdio{in: strings.NewReader(stdin), out: &out, err: &errb}, args)
	return code, out.String(), errb.String()
}

func TestTest(t *testing.T) {
	tests := []struct {
		name   string
		script string
		args   []string // before SCRIPT MESSAGE
		code   int
		want   []string // substrings of stdout, in order
		not    []string
	}{
		{
			name:   "implicit keep",
			script: "# nothing\n",
			code:   exitOK,
			want:   []string{"Envelope: from <alice@example.com> (from the Return-Path header), to <bob@example.org> (from the To header)", "1. implicit keep: store into INBOX"},
			not:    []string{"No implicit keep"},
		},
		{
			name:   "fileinto with flags cancels implicit keep",
			script: "require [\"fileinto\", \"imap4flags\"];\nif header :contains \"subject\" \"report\" {\n  addflag \"\\\\Seen\";\n  fileinto \"Reports\";\n}\n",
			code:   exitOK,
			want:   []string{`1. store into folder "Reports" with flags \Seen`, "No implicit keep"},
			not:    []string{"implicit keep: store"},
		},
		{
			name:   "implicit keep keeps flags",
			script: "require \"imap4flags\";\naddflag [\"\\\\Flagged\", \"$Work\"];\n",
			code:   exitOK,
			want:   []string{"implicit keep: store into INBOX with flags"},
		},
		{
			name:   "copy and redirect",
			script: "require [\"copy\", \"fileinto\"];\nfileinto :copy \"A\";\nredirect \"carol@example.org\";\n",
			code:   exitOK,
			want:   []string{`store into folder "A" (:copy`, "redirect to <carol@example.org>", "No implicit keep"},
		},
		{
			name:   "reject",
			script: "require \"reject\";\nreject \"not here\";\n",
			code:   exitOK,
			want:   []string{`reject the message (bounce to the sender) with reason "not here"`},
		},
		{
			name:   "discard",
			script: "discard;\n",
			code:   exitOK,
			want:   []string{"discard: the message is silently dropped", "No implicit keep"},
		},
		{
			name:   "explicit envelope",
			script: "require \"envelope\";\nif envelope :is \"from\" \"x@example.net\" { discard; }\n",
			args:   []string{"--from", "x@example.net", "--to", "bob+tag@example.org"},
			code:   exitOK,
			want:   []string{"from <x@example.net> (--from), to <bob+tag@example.org> (--to)", "discard"},
		},
		{
			name:   "vacation reply would be sent",
			script: "require \"vacation\";\nvacation :days 3 :subject \"Away\" \"I am away.\";\n",
			code:   exitOK,
			want: []string{`1. vacation reply (every 3 days per sender, handle "default-`, `subject "Away"): "I am away."`,
				"-> a reply would be sent to <alice@example.com> from bob@example.org (MAIL FROM <>), unless <alice@example.com> was already answered in the last 3 days",
				"2. implicit keep: store into INBOX"},
			not: []string{"No implicit keep"},
		},
		{
			name:   "vacation reply skipped, with the rule",
			script: "require \"vacation\";\nvacation \"I am away.\";\n",
			args:   []string{"--from", "<>"},
			code:   exitOK,
			want:   []string{"1. vacation reply (every 7 days per sender", "-> no reply would be sent: envelope sender is <> (no reply to bounces) (rule null-sender)", "2. implicit keep"},
			not:    []string{"a reply would be sent"},
		},
		{
			name:   "vacation reply skipped: not addressed to the user",
			script: "require \"vacation\";\nvacation \"I am away.\";\n",
			args:   []string{"--to", "carol@example.org"},
			code:   exitOK,
			want:   []string{"-> no reply would be sent: none of To, Cc, Bcc", "(rule not-addressed)"},
		},
		{
			name:   "compile error falls back to INBOX",
			script: "require \"fileinto\";\nif true {\n  fileinto \"A\"\n",
			code:   exitCompile,
			want:   []string{"script: line ", ": error: ", "script: error: validation failed.", "FAILED: the script does not compile.", "fall back to implicit keep", "INBOX"},
		},
		{
			name:   "runtime error falls back to INBOX",
			script: "require [\"reject\", \"fileinto\"];\nfileinto \"A\";\nreject \"no\";\n",
			code:   exitRuntime,
			want:   []string{"FAILED: the script failed at run time", "Delivery would fall back to implicit keep: the message would be stored into INBOX."},
			not:    []string{"Actions"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"test"}, tt.args...)
			args = append(args, "script.sieve", "msg.eml")
			code, out, errOut := sievectl(t, "", map[string]string{"script.sieve": tt.script, "msg.eml": testMessage}, args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
			rest := out
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Errorf("stdout lacks %q (in order)\n%s", w, out)
					break
				}
				rest = rest[i+len(w):]
			}
			for _, n := range tt.not {
				if strings.Contains(out, n) {
					t.Errorf("stdout has %q\n%s", n, out)
				}
			}
		})
	}
}

func TestTestJSON(t *testing.T) {
	script := "require [\"fileinto\", \"imap4flags\", \"copy\"];\nfileinto :copy :flags \"\\\\Seen\" \"A\";\nredirect :copy \"c@example.org\";\n"
	// Flags after the positional arguments, message on stdin.
	code, out, errOut := sievectl(t, testMessage, map[string]string{"s.sieve": script}, "test", "s.sieve", "-", "--json", "--to", "bob@example.org")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Script   string
		Compiled bool
		Envelope struct{ From, To string }
		Actions  []actionReport
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Script != "s" || !rep.Compiled || rep.Envelope.From != "alice@example.com" || rep.Envelope.To != "bob@example.org" {
		t.Errorf("report header: %+v", rep)
	}
	var kinds []string
	for _, a := range rep.Actions {
		kinds = append(kinds, a.Action)
	}
	if strings.Join(kinds, ",") != "fileinto,redirect,keep" {
		t.Fatalf("actions %v\n%s", kinds, out)
	}
	if a := rep.Actions[0]; a.Mailbox != "A" || !a.Copy || len(a.Flags) != 1 || a.Flags[0] != `\Seen` {
		t.Errorf("fileinto: %+v", a)
	}
	if a := rep.Actions[1]; a.Address != "c@example.org" || !a.Copy {
		t.Errorf("redirect: %+v", a)
	}
	if a := rep.Actions[2]; !a.Implicit || a.Mailbox != "INBOX" {
		t.Errorf("keep: %+v", a)
	}
}

func TestTestJSONCompileError(t *testing.T) {
	code, out, _ := sievectl(t, "", map[string]string{"s.sieve": "keep;\n\nfrobnicate;\n", "m.eml": testMessage}, "test", "--json", "s.sieve", "m.eml")
	if code != exitCompile {
		t.Fatalf("exit %d", code)
	}
	var rep struct {
		Compiled  bool
		Error     string
		ErrorLine int `json:"error_line"`
		Fallback  *fallbackReport
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Compiled || rep.ErrorLine != 3 || rep.Fallback == nil || rep.Fallback.Mailbox != "INBOX" {
		t.Errorf("%+v\n%s", rep, out)
	}
}

func TestCheck(t *testing.T) {
	good := "require \"fileinto\";\nfileinto \"A\";\n"
	bad := "keep;\nfrobnicate;\n"
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"ok", []string{"good.sieve"}, exitOK, []string{"good: OK"}},
		{"quiet", []string{"-q", "good.sieve"}, exitOK, nil},
		{"error", []string{"bad.sieve"}, exitCompile, []string{"bad: line 2: error: ", "bad: error: validation failed."}},
		{"several", []string{"good.sieve", "bad.sieve"}, exitCompile, []string{"good: OK", "bad: line 2: error: "}},
		{"missing file", []string{"nope.sieve"}, exitNoInput, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := sievectl(t, "", map[string]string{"good.sieve": good, "bad.sieve": bad}, append([]string{"check"}, tt.args...)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tt.code, out, errOut)
			}
			if tt.want == nil && out != "" {
				t.Errorf("unexpected output %q", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestCheckStdin(t *testing.T) {
	code, out, _ := sievectl(t, "if true {\n", nil, "check", "-")
	if code != exitCompile || !strings.HasPrefix(out, "stdin: line ") {
		t.Errorf("exit %d, output %q", code, out)
	}
}

func TestUsageAndConfig(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		args  []string
		code  int
		inOut string // expected in stdout
		inErr string // expected in stderr
	}{
		{name: "no args", args: nil, code: exitUsage, inErr: "Usage: sievectl"},
		{name: "help", args: []string{"--help"}, code: exitOK, inOut: "Exit codes:"},
		{name: "command help", args: []string{"test", "--help"}, code: exitOK, inOut: "Usage: sievectl test"},
		{name: "help command", args: []string{"help", "check"}, code: exitOK, inOut: "Usage: sievectl check"},
		{name: "unknown command", args: []string{"frob"}, code: exitUsage, inErr: `unknown command "frob"`},
		{name: "bad flag", args: []string{"test", "--nope", "a", "b"}, code: exitUsage, inErr: "flag provided but not defined"},
		{name: "test one arg", args: []string{"test", "a"}, code: exitUsage, inErr: "want SCRIPT and MESSAGE"},
		{name: "both stdin", args: []string{"test", "-", "-"}, code: exitUsage, inErr: "cannot both"},
		{name: "no message file", files: map[string]string{"s.sieve": "keep;"}, args: []string{"test", "s.sieve", "none.eml"}, code: exitNoInput, inErr: "message"},
		{name: "missing config", files: map[string]string{"s.sieve": "keep;"}, args: []string{"check", "--config", "/nonexistent/sieved.toml", "s.sieve"}, code: exitNoInput},
		{name: "invalid config", files: map[string]string{"s.sieve": "keep;", "c.toml": "[engine]\nno_such_key = 1\n"}, args: []string{"check", "--config", "c.toml", "s.sieve"}, code: exitConfig, inErr: "no_such_key"},
		{name: "config limits apply", files: map[string]string{"s.sieve": "keep; keep; keep;\n", "c.toml": "[engine]\nmax_script_bytes = 5\n"}, args: []string{"check", "--config", "c.toml", "s.sieve"}, code: exitCompile},
		{name: "extensions", args: []string{"extensions"}, code: exitOK, inOut: "fileinto\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := sievectl(t, "", tt.files, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
			if !strings.Contains(out, tt.inOut) {
				t.Errorf("stdout lacks %q:\n%s", tt.inOut, out)
			}
			if !strings.Contains(errOut, tt.inErr) {
				t.Errorf("stderr lacks %q:\n%s", tt.inErr, errOut)
			}
		})
	}
}

func TestScriptName(t *testing.T) {
	for in, want := range map[string]string{"a/b/filter.sieve": "filter", "x": "x", "-": "stdin", "dir/x.txt": "x.txt"} {
		if got := scriptName(in); got != want {
			t.Errorf("scriptName(%q) = %q, want %q", in, got, want)
		}
	}
}
