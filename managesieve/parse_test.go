package managesieve

import (
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func testReader(in string, maxLine int, maxLiteral int64) *reader {
	return newReader(strings.NewReader(in), maxLine, 1<<16, func(cmd string, i int) (int64, string) {
		if cmd == "PUTSCRIPT" && i == 1 {
			return maxLiteral, CodeQuotaMaxSize
		}
		return maxLiteral, ""
	})
}

func TestParseCommand(t *testing.T) {
	type tok struct {
		kind tokenKind
		val  string
	}
	for _, tc := range []struct {
		name string
		in   string
		cmd  string
		args []tok
		err  string // substring of the parse error
		code string
	}{
		{name: "bare", in: "capability\r\n", cmd: "CAPABILITY"},
		{name: "bare LF", in: "Logout\n", cmd: "LOGOUT"},
		{name: "skips empty lines", in: "\r\n\r\nNOOP\r\n", cmd: "NOOP"},
		{name: "quoted", in: `GETSCRIPT "a b"` + "\r\n", cmd: "GETSCRIPT", args: []tok{{tokString, "a b"}}},
		{name: "escapes", in: `GETSCRIPT "a\"b\\c"` + "\r\n", cmd: "GETSCRIPT", args: []tok{{tokString, `a"b\c`}}},
		{name: "empty string", in: `SETACTIVE ""` + "\r\n", cmd: "SETACTIVE", args: []tok{{tokString, ""}}},
		{name: "extra spaces", in: `RENAMESCRIPT  "a"   "b" ` + "\r\n", cmd: "RENAMESCRIPT", args: []tok{{tokString, "a"}, {tokString, "b"}}},
		{name: "number", in: `HAVESPACE "a" 1234` + "\r\n", cmd: "HAVESPACE", args: []tok{{tokString, "a"}, {tokAtom, "1234"}}},
		{name: "nonsync literal", in: "PUTSCRIPT \"s\" {6+}\r\nkeep;\n\r\n", cmd: "PUTSCRIPT", args: []tok{{tokString, "s"}, {tokString, "keep;\n"}}},
		{name: "sync literal", in: "PUTSCRIPT \"s\" {5}\r\nkeep;\r\n", cmd: "PUTSCRIPT", args: []tok{{tokString, "s"}, {tokString, "keep;"}}},
		{name: "literal name then quoted", in: "PUTSCRIPT {4+}\r\nnäm \"keep;\"\r\n", cmd: "PUTSCRIPT", args: []tok{{tokString, "näm"}, {tokString, "keep;"}}},
		{name: "empty literal", in: "NOOP {0+}\r\n\r\n", cmd: "NOOP", args: []tok{{tokString, ""}}},
		{name: "literal with CRLF inside", in: "CHECKSCRIPT {6+}\r\na\r\nb\r\n\r\n", cmd: "CHECKSCRIPT", args: []tok{{tokString, "a\r\nb\r\n"}}},
		{name: "UTF-8 quoted", in: "GETSCRIPT \"ünï\"\r\n", cmd: "GETSCRIPT", args: []tok{{tokString, "ünï"}}},

		{name: "string first", in: "\"NOOP\"\r\n", err: "command name"},
		{name: "bad escape", in: `GETSCRIPT "a\nb"` + "\r\n", err: "escaped"},
		{name: "unterminated", in: "GETSCRIPT \"abc\r\n", err: "Unterminated"},
		{name: "invalid UTF-8 quoted", in: "GETSCRIPT \"\xff\"\r\n", err: "UTF-8"},
		{name: "invalid UTF-8 literal", in: "GETSCRIPT {1+}\r\n\xff\r\n", err: "UTF-8"},
		{name: "NUL", in: "GETSCRIPT \"a\x00\"\r\n", err: "NUL"},
		{name: "literal not at end of line", in: "GETSCRIPT {1+} x\r\n", err: "CRLF after literal"},
		{name: "literal without size", in: "GETSCRIPT {+}\r\n", err: "Invalid literal"},
		{name: "literal size overflow", in: "GETSCRIPT {99999999999}\r\n", err: "out of range"},
		{name: "literal too large", in: "PUTSCRIPT \"a\" {200+}\r\n" + strings.Repeat("x", 200) + "\r\n", err: "too large", code: CodeQuotaMaxSize},
		{name: "line too long", in: "NOOP \"" + strings.Repeat("x", 200) + "\"\r\n", err: "Line too long"},
		{name: "CR without LF", in: "NOOP\rX\r\n", err: "LF after CR"},
		{name: "parenthesis", in: "NOOP (x)\r\n", err: "Unexpected character"},
		// sievelib sends names with an unescaped quote; the literal that
		// follows must not be read as commands.
		{name: "refused line with literal", in: "PUTSCRIPT \"we\"ird\" {8+}\r\nNOOP\r\nX\r\n", err: "Unexpected character"},
		{name: "refused line with two literals", in: "PUTSCRIPT \"a\\x\" {3+}\r\nabc {2}\r\nxy\r\n", err: "escaped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testReader(tc.in, 100, 100)
			cmd, err := r.readCommand()
			for cmd == nil && err == nil { // empty lines
				cmd, err = r.readCommand()
			}
			if tc.err != "" {
				var pe *parseError
				if !errors.As(err, &pe) || !strings.Contains(pe.msg, tc.err) || pe.code != tc.code || pe.fatal {
					t.Fatalf("got %+v, %v; want parse error %q (%s)", cmd, err, tc.err, tc.code)
				}
				// The rest of the line was consumed: the next command
				// parses.
				r2 := r.br
				rest, _ := io.ReadAll(r2)
				if len(rest) != 0 {
					t.Errorf("left unread after error: %q", rest)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if cmd.name != tc.cmd || len(cmd.args) != len(tc.args) {
				t.Fatalf("got %+v, want %s %v", cmd, tc.cmd, tc.args)
			}
			for i, a := range tc.args {
				if cmd.args[i].kind != a.kind || cmd.args[i].val != a.val {
					t.Errorf("arg %d = %+v, want %+v", i, cmd.args[i], a)
				}
			}
			if _, err := r.readCommand(); err != io.EOF {
				t.Errorf("after the command: %v, want EOF", err)
			}
		})
	}
}

// An oversized literal beyond the drain limit is refused before any of it
// is read.
func TestParseLiteralNotBuffered(t *testing.T) {
	in := &countingReader{r: strings.NewReader("PUTSCRIPT \"a\" {100000+}\r\n" + strings.Repeat("x", 100000) + "\r\n")}
	r := newReader(in, 100, 1000, func(string, int) (int64, string) { return 10, "" })
	_, err := r.readCommand()
	var pe *parseError
	if !errors.As(err, &pe) || !pe.fatal {
		t.Fatalf("got %v, want a fatal parse error", err)
	}
	if in.n > 4096 {
		t.Errorf("read %d bytes of a refused literal", in.n)
	}
}

// Literals each within their limit cannot be chained into a command of
// unbounded size: the command as a whole is bounded too.
func TestParseCommandBudget(t *testing.T) {
	chunk := "{50+}\r\n" + strings.Repeat("x", 50) + " "
	for _, tc := range []struct {
		name   string
		in     string
		budget int64
		err    string
		fatal  bool
	}{
		{name: "within", in: "NOOP " + chunk + chunk + "\r\n", budget: 200},
		{name: "beyond", in: "NOOP " + strings.Repeat(chunk, 5) + "\r\nNOOP\r\n", budget: 200, err: "Command too large"},
		{name: "beyond drain", in: "NOOP " + strings.Repeat(chunk, 100) + "\r\n", budget: 200, err: "Command too large", fatal: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReader(strings.NewReader(tc.in), 100, 1000, func(string, int) (int64, string) { return 100, "" })
			r.maxCommand = tc.budget
			cmd, err := r.readCommand()
			if tc.err == "" {
				if err != nil || len(cmd.args) != 2 {
					t.Fatalf("got %+v, %v", cmd, err)
				}
				return
			}
			var pe *parseError
			if !errors.As(err, &pe) || !strings.Contains(pe.msg, tc.err) || pe.fatal != tc.fatal {
				t.Fatalf("got %+v, %v; want parse error %q fatal=%v", cmd, err, tc.err, tc.fatal)
			}
			if !tc.fatal {
				if cmd, err := r.readCommand(); err != nil || cmd.name != "NOOP" {
					t.Fatalf("after the refused command: %+v, %v", cmd, err)
				}
			}
		})
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestParseNumber(t *testing.T) {
	for _, tc := range []struct {
		in string
		n  int64
		ok bool
	}{
		{"0", 0, true}, {"4294967295", 4294967295, true}, {"4294967296", 0, false},
		{"", 0, false}, {"-1", 0, false}, {"1a", 0, false}, {"99999999999", 0, false},
	} {
		n, ok := parseNumber(tc.in)
		if n != tc.n || ok != tc.ok {
			t.Errorf("parseNumber(%q) = %d, %v", tc.in, n, ok)
		}
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":       `""`,
		"a":      `"a"`,
		`a"b\c`:  `"a\"b\\c"`,
		"ünï":    `"ünï"`,
		"a\r\nb": `"a` + "\r\n" + `b"`, // quote never decides; see quotable
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]bool{"ok": true, "two\nlines": false, "\xff": false, strings.Repeat("x", 2000): false} {
		if quotable(in) != want {
			t.Errorf("quotable(%q) = %v", in, !want)
		}
	}
}

// FuzzParse feeds arbitrary client input to the command reader: it must
// never panic, never return invalid UTF-8 or an over-limit literal, and
// always make progress.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"CAPABILITY\r\n",
		"AUTHENTICATE \"PLAIN\" {24+}\r\nAGFsaWNlAHNlY3JldHNlY3I=\r\n",
		"PUTSCRIPT \"s\" {6+}\r\nkeep;\n\r\nLISTSCRIPTS\r\n",
		"NOOP \"a\\\"b\"\r\n",
		"HAVESPACE \"x\" 4294967295\r\n",
		"GETSCRIPT {3}\r\nabc\r\n",
		"NOOP {0+}\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newReader(strings.NewReader(string(data)), 256, 512, func(string, int) (int64, string) { return 128, "" })
		r.maxCommand = 400
		for i := 0; i <= len(data); i++ {
			cmd, err := r.readCommand()
			var pe *parseError
			if errors.As(err, &pe) {
				if pe.fatal {
					return
				}
				continue
			}
			if err != nil {
				return // EOF or unexpected EOF
			}
			if cmd == nil {
				continue // empty line
			}
			if cmd.name == "" || cmd.name != strings.ToUpper(cmd.name) {
				t.Fatalf("bad command name %q", cmd.name)
			}
			total := 0
			for _, a := range cmd.args {
				if a.literal {
					total += len(a.val)
				}
				if total > 400 {
					t.Fatalf("command holds %d bytes of literals, over the 400-byte budget", total)
				}
				if !utf8.ValidString(a.val) {
					t.Fatalf("invalid UTF-8 argument %q", a.val)
				}
				if a.literal && len(a.val) > 128 {
					t.Fatalf("literal of %d bytes over the limit", len(a.val))
				}
			}
		}
		t.Fatalf("no progress: more commands than input bytes")
	})
}
