package managesieve

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// RFC 5804 section 4, the parts of the grammar the reader implements:
//
//	command        = command-name *(SP argument) CRLF
//	string         = quoted / literal-c2s
//	quoted         = DQUOTE *QUOTED-CHAR DQUOTE
//	QUOTED-CHAR    = SAFE-UTF8-CHAR / "\" QUOTED-SPECIALS
//	QUOTED-SPECIALS = DQUOTE / "\"
//	literal-c2s    = "{" number "+}" CRLF *OCTET
//	number         = 1*DIGIT   ; 0 <= number <= 4,294,967,295
//
// Clients also send synchronizing "{n}" literals; since the server never
// sends continuation requests, both forms are read the same way: the data
// follows the CRLF at once.

// tokenKind tells an atom (command name, number, bare word) from a string.
type tokenKind int

const (
	tokAtom tokenKind = iota
	tokString
)

// token is one argument of a command line.
type token struct {
	kind    tokenKind
	val     string
	literal bool // the string came as a literal
}

// command is one parsed client command.
type command struct {
	name string // upper case
	args []token
}

// maxNumber is the largest number RFC 5804 allows.
const maxNumber = 4294967295

// parseError is a command the reader refused. The rest of its line has
// already been consumed (or the connection must close: fatal).
type parseError struct {
	msg   string
	code  string // response code, "" for none
	fatal bool   // the stream cannot be resynchronised: BYE and close
}

func (e *parseError) Error() string { return e.msg }

// literalLimitFunc returns the largest literal accepted as argument
// argIndex (0-based) of the command cmd ("" while reading a SASL
// continuation line), and the response code for one that is too large.
type literalLimitFunc func(cmd string, argIndex int) (limit int64, code string)

// reader reads command lines with bounded memory: a line (without its
// literals) may not exceed maxLine bytes, a literal is checked against
// its limit before a byte of it is read, and the whole command (every
// line segment and literal together) against maxCommand, so that a client
// cannot grow one command without end by chaining literals, each within
// its own limit.
type reader struct {
	br         *bufio.Reader
	maxLine    int
	maxDrain   int64 // largest oversized literal or line drained instead of disconnecting
	maxCommand int64 // bytes of one command with its literals; 0: no limit
	limit      literalLimitFunc

	used  int   // bytes of the current line segment read so far (literals excluded)
	total int64 // bytes of the current command before that segment
}

func newReader(r io.Reader, maxLine int, maxDrain int64, limit literalLimitFunc) *reader {
	return &reader{br: bufio.NewReaderSize(r, 4096), maxLine: maxLine, maxDrain: maxDrain, limit: limit}
}

var errLineTooLong = errors.New("line too long")

func (r *reader) readByte() (byte, error) {
	if r.used >= r.maxLine {
		return 0, errLineTooLong
	}
	b, err := r.br.ReadByte()
	if err != nil {
		return 0, err
	}
	r.used++
	return b, nil
}

// readCommand reads one command line. An empty line gives (nil, nil): the
// caller ignores it (clients send a stray CRLF after literals) and waits
// for the next command as idle. An I/O error is returned as is; a protocol
// error as *parseError.
func (r *reader) readCommand() (*command, error) {
	toks, err := r.readLine("")
	if err != nil || len(toks) == 0 {
		return nil, err
	}
	if toks[0].kind != tokAtom {
		return nil, &parseError{msg: "Expected a command name."}
	}
	return &command{name: strings.ToUpper(toks[0].val), args: toks[1:]}, nil
}

// readLine reads the tokens of one line up to and including its CRLF (a
// bare LF is accepted too). cmd names the command the line continues
// (AUTHENTICATE continuations) for the literal limit; when cmd is "" the
// first atom is taken as the command name.
func (r *reader) readLine(cmd string) ([]token, error) {
	r.used, r.total = 0, 0
	var toks []token
	name := cmd
	argIndex := func() int {
		if cmd == "" {
			return len(toks) - 1
		}
		return len(toks)
	}
	for {
		b, err := r.readByte()
		if err != nil {
			return nil, r.lineError(err)
		}
		switch {
		case b == ' ':
			continue
		case b == '\n':
			return toks, nil
		case b == '\r':
			b, err = r.readByte()
			if err != nil {
				return nil, r.lineError(err)
			}
			if b != '\n' {
				return nil, r.skip("Expected LF after CR.")
			}
			return toks, nil
		case b == '"':
			s, perr := r.readQuoted()
			if perr != nil {
				return nil, perr
			}
			toks = append(toks, token{kind: tokString, val: s})
		case b == '{':
			s, perr := r.readLiteral(name, argIndex())
			if perr != nil {
				return nil, perr
			}
			toks = append(toks, token{kind: tokString, val: s, literal: true})
		case isAtomChar(b):
			a, perr := r.readAtom(b)
			if perr != nil {
				return nil, perr
			}
			if name == "" && len(toks) == 0 {
				name = strings.ToUpper(a)
			}
			toks = append(toks, token{kind: tokAtom, val: a})
		default:
			return nil, r.skip(fmt.Sprintf("Unexpected character %q.", b))
		}
	}
}

// isAtomChar: printable ASCII except the characters with a meaning.
func isAtomChar(b byte) bool {
	return b > ' ' && b < 0x7f && b != '"' && b != '{' && b != '}' && b != '(' && b != ')' && b != '\\'
}

func (r *reader) readAtom(first byte) (string, error) {
	var sb strings.Builder
	sb.WriteByte(first)
	for {
		p, err := r.br.Peek(1)
		if err != nil {
			return "", r.lineError(err)
		}
		if !isAtomChar(p[0]) {
			if p[0] == ' ' || p[0] == '\r' || p[0] == '\n' {
				return sb.String(), nil
			}
			return "", r.skip(fmt.Sprintf("Unexpected character %q.", p[0]))
		}
		b, err := r.readByte()
		if err != nil {
			return "", r.lineError(err)
		}
		sb.WriteByte(b)
	}
}

func (r *reader) readQuoted() (string, error) {
	var sb strings.Builder
	for {
		b, err := r.readByte()
		if err != nil {
			return "", r.lineError(err)
		}
		switch b {
		case '"':
			s := sb.String()
			if !utf8.ValidString(s) {
				return "", r.skip("String is not valid UTF-8.")
			}
			return s, nil
		case '\\':
			b, err = r.readByte()
			if err != nil {
				return "", r.lineError(err)
			}
			if b != '"' && b != '\\' {
				return "", r.skip(`Only \" and \\ may be escaped in a quoted string.`)
			}
			sb.WriteByte(b)
		case '\r', '\n':
			if b == '\n' {
				return "", &parseError{msg: "Unterminated quoted string."}
			}
			return "", r.skip("Unterminated quoted string.")
		case 0:
			return "", r.skip("NUL in quoted string.")
		default:
			sb.WriteByte(b)
		}
	}
}

// readLiteral reads "{n}" or "{n+}" CRLF and the n octets after it; the
// opening brace is already consumed.
func (r *reader) readLiteral(cmd string, argIndex int) (string, error) {
	var n int64
	digits := 0
	for {
		b, err := r.readByte()
		if err != nil {
			return "", r.lineError(err)
		}
		if b >= '0' && b <= '9' {
			digits++
			n = n*10 + int64(b-'0')
			if n > maxNumber {
				return "", r.skip("Literal size out of range.")
			}
			continue
		}
		if b == '+' && digits > 0 {
			b, err = r.readByte()
			if err != nil {
				return "", r.lineError(err)
			}
		}
		if b != '}' || digits == 0 {
			if b == '\n' {
				return "", &parseError{msg: "Invalid literal."}
			}
			return "", r.skip("Invalid literal.")
		}
		break
	}
	// The literal announcement ends its line.
	b, err := r.readByte()
	if err == nil && b == '\r' {
		b, err = r.readByte()
	}
	if err != nil {
		return "", r.lineError(err)
	}
	if b != '\n' {
		return "", r.skip("Expected CRLF after literal size.")
	}
	limit, code := r.limit(cmd, argIndex)
	msg := fmt.Sprintf("Literal of %d bytes is too large (limit %d).", n, limit)
	if n <= limit && r.maxCommand > 0 && r.total+int64(r.used)+n > r.maxCommand {
		limit, code = -1, ""
		msg = fmt.Sprintf("Command too large (limit %d bytes with its literals).", r.maxCommand)
	}
	if n > limit {
		if n > r.maxDrain {
			return "", &parseError{msg: msg, code: code, fatal: true}
		}
		if _, err := io.CopyN(io.Discard, r.br, n); err != nil {
			return "", err
		}
		return "", r.skip(msg, code)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r.br, buf); err != nil {
		return "", err
	}
	// The rest of the line is a new segment for the line-length limit;
	// the command's total goes on counting.
	r.total += int64(r.used) + n
	r.used = 0
	if !utf8.Valid(buf) {
		return "", r.skip("String is not valid UTF-8.")
	}
	return string(buf), nil
}

// lineError turns a line-length overflow into a parseError after draining
// the line; other errors (I/O) pass through.
func (r *reader) lineError(err error) error {
	if errors.Is(err, errLineTooLong) {
		return r.skip("Line too long.")
	}
	return err
}

// skip discards the rest of the current line and returns a parseError
// with msg. A rest longer than maxDrain makes the error fatal.
func (r *reader) skip(msg string, code ...string) error {
	pe := &parseError{msg: msg}
	if len(code) > 0 {
		pe.code = code[0]
	}
	var drained int64
	var tail []byte // the last bytes of the line, to spot a literal
	for {
		chunk, err := r.br.ReadSlice('\n')
		drained += int64(len(chunk))
		tail = append(tail, chunk...)
		if len(tail) > 32 {
			tail = tail[len(tail)-32:]
		}
		if drained > r.maxDrain {
			pe.fatal = true
			return pe
		}
		if err == nil {
			// A refused line that announces a literal is followed by
			// the literal's data, then the rest of the command: skip
			// those too, or the data would be read as commands.
			n, ok := trailingLiteral(tail)
			if !ok {
				return pe
			}
			if drained+n > r.maxDrain {
				pe.fatal = true
				return pe
			}
			if _, err := io.CopyN(io.Discard, r.br, n); err != nil {
				return err
			}
			drained += n
			tail = tail[:0]
			continue
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err // I/O error: the connection is gone anyway
		}
	}
}

// trailingLiteral reports whether line ends with "{n}" or "{n+}" and CRLF
// (or LF), and n.
func trailingLiteral(line []byte) (int64, bool) {
	s := strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r")
	if !strings.HasSuffix(s, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(s, '{')
	if i < 0 {
		return 0, false
	}
	return parseNumber(strings.TrimSuffix(s[i+1:len(s)-1], "+"))
}

// parseNumber parses an RFC 5804 number.
func parseNumber(s string) (int64, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > maxNumber {
		return 0, false
	}
	return n, true
}
