package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	stdtextproto "net/textproto"
	"os"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	message "github.com/emersion/go-message"
	"github.com/emersion/go-message/charset" // registers ISO-8859-x, Windows-125x, ... with go-message
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"github.com/foxcpp/go-sieve/interp"
)

// Message is a RFC 5322 message as a Sieve script sees it. It implements
// go-sieve's interp.Message and interp.BodyMessage.
//
// The original bytes are read from a spool: NewMessage makes one (in
// memory up to MessageOptions.MemoryLimit, else an unlinked temporary
// file); NewMessageAt uses the caller's (the delivery agent's file in the
// Maildir's tmp/), so a large message is not copied twice. Either way the
// delivery agent can deliver exactly what it received (Open, WriteTo) while
// memory stays bounded for large messages: only the top-level header
// (MessageOptions.MaxHeaderBytes) and the decoded body parts a body test
// asks for (Limits.MaxBodyBytes in total) are ever held in memory; the rest
// is read from the spool as a stream.
//
// Header values are RFC 2047-decoded before comparison (RFC 5228 section
// 2.7.2). The MIME structure is walked at most once, on the first body test,
// in one linear pass bounded by Limits.MaxMIMEDepth and Limits.MaxMIMEParts.
//
// A Message is safe for concurrent use. Close releases the spool.
type Message struct {
	src       io.ReaderAt // the original bytes: *bytes.Reader, our *os.File or the caller's spool
	mem       []byte      // the original bytes when kept in memory
	fileName  string      // spool file still to remove on Close ("" once unlinked)
	file      *os.File    // non-nil when spooled to disk (closed by its finalizer if leaked)
	size      int64
	header    textproto.Header
	hdrEnd    int64 // offset of the blank line ending the header
	bodyStart int64 // offset of the first body byte
	hasBody   bool  // a blank line separates header and body
	hdrTrunc  bool  // the header exceeded MaxHeaderBytes; later fields are ignored
	limits    Limits
	maxHeader int64
	maxPartHd int

	mu       sync.Mutex
	closed   bool
	decoded  map[string][]string // canonical key -> decoded values
	walked   bool
	ents     []*entity
	buffered int64 // decoded body bytes held in memory (<= limits.MaxBodyBytes)
}

// MessageOptions configure NewMessage and NewMessageAt. The zero value is
// usable.
type MessageOptions struct {
	// TempDir is where NewMessage spools a message larger than
	// MemoryLimit; "" means os.TempDir(). The file is unlinked as soon as
	// it is created. NewMessageAt ignores it.
	TempDir string
	// MemoryLimit is the largest message NewMessage keeps in memory
	// instead of a temporary file. 0 means 256 KiB; a negative value
	// always spools. NewMessageAt ignores it.
	MemoryLimit int64
	// MaxHeaderBytes bounds the top-level header kept in memory. Fields
	// past the bound are ignored by tests (the bytes are still delivered).
	// 0 means 1 MiB.
	MaxHeaderBytes int64
	// Limits supplies MaxMIMEDepth, MaxMIMEParts and MaxBodyBytes. Zero
	// fields take DefaultLimits' values.
	Limits Limits
}

const (
	defaultMemoryLimit    = 256 << 10
	defaultMaxHeaderBytes = 1 << 20
	maxPartHeaderBytes    = 64 << 10 // a MIME part's header is only read for Content-Type & co.
	lineBufSize           = 32 << 10
)

// ReadMessage reads a message from r with default options (see NewMessage).
func ReadMessage(r io.Reader) (*Message, error) {
	return NewMessage(r, MessageOptions{})
}

// NewMessage reads the whole message from r, spooling it, and parses its
// header. It returns an error only when r or the spool fails: a malformed
// header is parsed leniently (unparseable lines are skipped), since the
// message must be delivered anyway. The caller must Close the Message.
func NewMessage(r io.Reader, opt MessageOptions) (*Message, error) {
	if opt.MemoryLimit == 0 {
		opt.MemoryLimit = defaultMemoryLimit
	}
	m := newMessage(opt)

	// Read up to MemoryLimit+1 bytes; a message that fits stays in memory.
	var buf bytes.Buffer
	if opt.MemoryLimit > 0 {
		n, err := buf.ReadFrom(io.LimitReader(r, opt.MemoryLimit+1))
		if err != nil {
			return nil, fmt.Errorf("engine: read message: %w", err)
		}
		if n <= opt.MemoryLimit {
			m.mem = buf.Bytes()
			m.src = bytes.NewReader(m.mem)
			m.size = n
		}
	}
	if m.src == nil {
		f, name, err := spoolFile(opt.TempDir)
		if err != nil {
			return nil, err
		}
		m.file, m.fileName = f, name
		n, err := io.Copy(f, io.MultiReader(&buf, r))
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("engine: spool message: %w", err)
		}
		buf = bytes.Buffer{}
		m.src, m.size = f, n
	}

	if err := m.readTopHeader(m.maxHeader); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// NewMessageAt is NewMessage for a message the caller has already spooled:
// the size bytes at the start of r. It parses the header and serves body
// tests, Open and WriteTo straight from r, with the same bounds as
// NewMessage; it makes no copy of its own, in memory or on disk
// (opt.TempDir and opt.MemoryLimit are ignored).
//
// r must hold at least size bytes, must not change while the Message is in
// use and must allow concurrent ReadAt calls (as io.ReaderAt promises and
// *os.File does). The caller keeps ownership of r: Close does not close it,
// and r must stay open until the Message is closed.
//
// It returns an error only when r cannot be read or is shorter than size.
func NewMessageAt(r io.ReaderAt, size int64, opt MessageOptions) (*Message, error) {
	if r == nil || size < 0 {
		return nil, fmt.Errorf("engine: read message: invalid spool (size %d)", size)
	}
	// Check the last byte now: a short spool would otherwise look like a
	// complete, shorter message to every test and to WriteTo.
	if size > 0 {
		var b [1]byte
		// A ReaderAt may return io.EOF along with the last byte.
		if n, err := r.ReadAt(b[:], size-1); n != 1 {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("engine: read message: %w", err)
		}
	}
	m := newMessage(opt)
	m.src, m.size = r, size
	if err := m.readTopHeader(m.maxHeader); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func newMessage(opt MessageOptions) *Message {
	if opt.MaxHeaderBytes <= 0 {
		opt.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	return &Message{limits: fillLimits(opt.Limits), maxPartHd: maxPartHeaderBytes, maxHeader: opt.MaxHeaderBytes}
}

// NewMessage is NewMessage with the engine's limits when opt.Limits is zero.
func (e *Engine) NewMessage(r io.Reader, opt MessageOptions) (*Message, error) {
	if opt.Limits == (Limits{}) {
		opt.Limits = e.cfg.Limits
	}
	return NewMessage(r, opt)
}

// NewMessageAt is NewMessageAt with the engine's limits when opt.Limits is
// zero.
func (e *Engine) NewMessageAt(r io.ReaderAt, size int64, opt MessageOptions) (*Message, error) {
	if opt.Limits == (Limits{}) {
		opt.Limits = e.cfg.Limits
	}
	return NewMessageAt(r, size, opt)
}

func spoolFile(dir string) (*os.File, string, error) {
	f, err := os.CreateTemp(dir, "sieve-msg-*")
	if err != nil {
		return nil, "", fmt.Errorf("engine: spool message: %w", err)
	}
	// Unlink at once: nothing is left behind if the process dies. Where
	// the OS refuses to unlink an open file, Close removes it.
	name := ""
	if err := os.Remove(f.Name()); err != nil {
		name = f.Name()
	}
	return f, name, nil
}

// Close releases the spool (a caller's spool given to NewMessageAt is left
// open). Open and body tests fail afterwards.
func (m *Message) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	if m.file == nil {
		return nil
	}
	err := m.file.Close()
	if m.fileName != "" {
		if rerr := os.Remove(m.fileName); err == nil {
			err = rerr
		}
	}
	return err
}

var errClosed = errors.New("engine: message is closed")

// Size returns the size of the original message in bytes.
func (m *Message) Size() int64 { return m.size }

// MessageSize implements interp.Message.
func (m *Message) MessageSize() int { return int(m.size) }

// Open returns a reader over the exact original bytes. Readers are
// independent of each other; they fail once the Message is closed.
func (m *Message) Open() (*io.SectionReader, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	return io.NewSectionReader(m.src, 0, m.size), nil
}

// WriteTo writes the exact original bytes to w.
func (m *Message) WriteTo(w io.Writer) (int64, error) {
	r, err := m.Open()
	if err != nil {
		return 0, err
	}
	return io.Copy(w, r)
}

// Header returns the parsed top-level header with raw (undecoded) values.
// It must not be modified.
func (m *Message) Header() textproto.Header { return m.header }

// HeaderTruncated reports whether the header was longer than
// MessageOptions.MaxHeaderBytes, so that later fields are invisible to tests.
func (m *Message) HeaderTruncated() bool { return m.hdrTrunc }

// HeaderRaw returns the undecoded values of the field key, in order,
// unfolded the way Pigeonhole does before comparing: line breaks removed,
// a tab that starts a continuation line turned into a space, white space
// around the value trimmed; any other white space is kept.
func (m *Message) HeaderRaw(key string) []string {
	var out []string
	fs := m.header.FieldsByKey(key)
	for fs.Next() {
		raw, err := fs.Raw()
		if err != nil {
			out = append(out, fs.Value())
			continue
		}
		out = append(out, unfold(raw))
	}
	return out
}

func unfold(field []byte) string {
	v := field[bytes.IndexByte(field, ':')+1:]
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\r' && i+1 < len(v) && v[i+1] == '\n':
		case c == '\n':
			if i+1 < len(v) && v[i+1] == '\t' {
				b.WriteByte(' ')
				i++
			}
		default:
			b.WriteByte(c)
		}
	}
	return strings.Trim(b.String(), " \t")
}

// HeaderGet implements interp.Message: the values of the field key, unfolded
// and RFC 2047-decoded to UTF-8. Encoded words in an unknown charset are
// left as they are (RFC 5228 section 2.7.2 allows that). For address fields
// the decoded value is only used when it still parses to the same addresses;
// otherwise decoded display names that contain specials are quoted, so the
// address test keeps working. The returned slice must not be modified.
func (m *Message) HeaderGet(key string) ([]string, error) {
	ck := stdtextproto.CanonicalMIMEHeaderKey(key)
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.decoded[ck]; ok {
		return v, nil
	}
	raw := m.HeaderRaw(ck)
	var out []string
	if len(raw) > 0 {
		out = make([]string, len(raw))
		addr := addressHeaders[strings.ToLower(ck)]
		for i, v := range raw {
			if addr {
				out[i] = decodeAddressValue(v)
			} else {
				out[i] = decodeHeaderValue(v)
			}
		}
	}
	if m.decoded == nil {
		m.decoded = make(map[string][]string)
	}
	m.decoded[ck] = out
	return out, nil
}

// StripMboxFrom returns a reader over r without a leading mbox "From "
// separator line (as written by some MTAs in front of the message on a
// delivery agent's stdin). Only the first line is looked at; ">From "
// quoting inside the body is left alone, since the delivery agent must store
// what it received.
func StripMboxFrom(r io.Reader) io.Reader {
	br := bufio.NewReader(r)
	if p, err := br.Peek(5); err == nil && string(p) == "From " {
		for {
			_, err := br.ReadSlice('\n')
			if err != bufio.ErrBufferFull {
				break
			}
		}
	}
	return br
}

// --- header decoding (RFC 2047) -------------------------------------------

// wordDecoder decodes like Pigeonhole: a word in an unknown charset gives
// its bytes as they are, and invalid UTF-8 becomes U+FFFD, so that one odd
// word does not hide the rest of the field from the comparison.
var wordDecoder = &mime.WordDecoder{CharsetReader: func(cs string, in io.Reader) (io.Reader, error) {
	if r, err := charset.Reader(cs, in); err == nil {
		return r, nil
	}
	return in, nil
}}

func decodeHeaderValue(v string) string {
	if !strings.Contains(v, "=?") {
		return v
	}
	d, err := wordDecoder.DecodeHeader(v)
	if err != nil {
		return v
	}
	if d != v && !utf8.ValidString(d) {
		d = strings.ToValidUTF8(d, "\uFFFD")
	}
	return d
}

// addressHeaders are the fields go-sieve's address test accepts.
var addressHeaders = map[string]bool{
	"from": true, "to": true, "cc": true, "bcc": true, "sender": true,
	"resent-from": true, "resent-to": true, "reply-to": true,
	"resent-reply-to": true, "resent-sender": true, "resent-cc": true,
	"resent-bcc": true, "for-approval": true, "for-handling": true,
	"for-comment": true, "apparently-to": true, "errors-to": true,
	"delivered-to": true, "return-receipt-to": true, "x-admin": true,
	"read-receipt-to": true, "x-confirm-reading-to": true,
	"return-receipt-requested": true, "registered-mail-reply-requested-by": true,
	"mail-followup-to": true, "mail-reply-to": true, "abuse-reports-to": true,
	"x-complaints-to": true, "x-report-abuse-to": true, "x-beenthere": true,
	"x-original-from": true, "x-original-to": true,
}

// decodeAddressValue decodes an address field without breaking what the
// address test parses: `=?utf-8?q?Doe,_John?= <j@x>` decodes to
// `"Doe, John" <j@x>`, not to the unparseable `Doe, John <j@x>`.
func decodeAddressValue(raw string) string {
	dec := decodeHeaderValue(raw)
	if dec == raw {
		return raw
	}
	ra, rawErr := mail.ParseAddressList(raw)
	if da, err := mail.ParseAddressList(dec); err == nil && (rawErr != nil || sameAddresses(ra, da)) {
		return dec
	}
	q := decodeQuoted(raw)
	if qa, err := mail.ParseAddressList(q); err == nil && (rawErr != nil || sameAddresses(ra, qa)) {
		return q
	}
	if rawErr == nil {
		return raw
	}
	return dec
}

func sameAddresses(a, b []*mail.Address) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Address != b[i].Address {
			return false
		}
	}
	return true
}

var encodedWordRE = regexp.MustCompile(`=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=`)

// decodeQuoted decodes runs of encoded words outside quoted strings and
// quotes a decoded run that contains RFC 5322 specials.
func decodeQuoted(raw string) string {
	var b strings.Builder
	i := 0
	for i < len(raw) {
		c := raw[i]
		if c == '"' { // copy a quoted string verbatim
			j := i + 1
			for j < len(raw) && raw[j] != '"' {
				if raw[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(raw))
			b.WriteString(raw[i:j])
			i = j
			continue
		}
		loc := encodedWordRE.FindStringIndex(raw[i:])
		if loc == nil || loc[0] != 0 {
			b.WriteByte(c)
			i++
			continue
		}
		// Extend the run over encoded words separated by white space only.
		end := i + loc[1]
		for {
			k := end
			for k < len(raw) && (raw[k] == ' ' || raw[k] == '\t' || raw[k] == '\r' || raw[k] == '\n') {
				k++
			}
			next := encodedWordRE.FindStringIndex(raw[k:])
			if k == end || next == nil || next[0] != 0 {
				break
			}
			end = k + next[1]
		}
		run := raw[i:end]
		dec, err := wordDecoder.DecodeHeader(run)
		if err != nil {
			dec = run
		}
		if strings.ContainsAny(dec, "()<>[]:;@\\,.\"") {
			dec = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(dec) + `"`
		}
		b.WriteString(dec)
		i = end
	}
	return b.String()
}

// --- spool reading ----------------------------------------------------------

// lineReader reads lines from the spool, tracking offsets. Lines longer
// than its buffer come in fragments; only the first fragment of a line has
// start set. An in-memory message is sliced directly, without copying.
type lineReader struct {
	br    *bufio.Reader
	mem   []byte // the rest of an in-memory message, instead of br
	pos   int64  // offset of the next byte
	start bool   // the next fragment begins a line
}

func (m *Message) lines(off, end int64) *lineReader {
	if m.mem != nil {
		return &lineReader{mem: m.mem[off:end], pos: off, start: true}
	}
	return &lineReader{
		br:    bufio.NewReaderSize(io.NewSectionReader(m.src, off, end-off), lineBufSize),
		pos:   off,
		start: true,
	}
}

// next returns the next fragment, its offset and whether it starts a line.
// The slice is valid until the next call. It returns io.EOF at the end.
func (lr *lineReader) next() (frag []byte, off int64, lineStart bool, err error) {
	if lr.br == nil {
		if len(lr.mem) == 0 {
			return nil, lr.pos, lr.start, io.EOF
		}
		n := bytes.IndexByte(lr.mem, '\n') + 1
		if n == 0 {
			n = len(lr.mem)
		}
		frag, lr.mem = lr.mem[:n:n], lr.mem[n:]
	} else {
		frag, err = lr.br.ReadSlice('\n')
		if len(frag) == 0 {
			if err == nil || err == bufio.ErrBufferFull {
				err = io.ErrNoProgress
			}
			return nil, lr.pos, lr.start, err
		}
		if err == bufio.ErrBufferFull || err == io.EOF {
			err = nil
		}
	}
	off, lineStart = lr.pos, lr.start
	lr.pos += int64(len(frag))
	lr.start = frag[len(frag)-1] == '\n'
	return frag, off, lineStart, err
}

func isBlankLine(b []byte) bool {
	return (len(b) == 1 && b[0] == '\n') || (len(b) == 2 && b[0] == '\r' && b[1] == '\n')
}

func eolLen(b []byte) int64 {
	switch {
	case bytes.HasSuffix(b, []byte("\r\n")):
		return 2
	case bytes.HasSuffix(b, []byte("\n")):
		return 1
	}
	return 0
}

// headerCollector gathers header bytes up to a bound.
type headerCollector struct {
	buf   []byte
	max   int
	trunc bool
}

func (h *headerCollector) add(frag []byte) {
	if h.trunc || len(h.buf)+len(frag) > h.max {
		h.trunc = true
		return
	}
	h.buf = append(h.buf, frag...)
}

func (m *Message) readTopHeader(max int64) error {
	lr := m.lines(0, m.size)
	hc := headerCollector{max: int(max)}
	m.hdrEnd, m.bodyStart = m.size, m.size
	for {
		frag, off, start, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("engine: read message header: %w", err)
		}
		if start && isBlankLine(frag) {
			m.hdrEnd, m.bodyStart, m.hasBody = off, off+int64(len(frag)), true
			break
		}
		hc.add(frag)
	}
	m.header = parseHeaderBlock(hc.buf)
	m.hdrTrunc = hc.trunc
	return nil
}

// parseHeaderBlock parses header lines leniently: a line that is neither a
// "name: value" field nor a continuation is skipped with its continuations
// (go-message's ReadHeader stops at the first such line).
func parseHeaderBlock(b []byte) textproto.Header {
	var fields [][]byte
	var cur []byte
	valid := false
	flush := func() {
		if valid && len(cur) > 0 {
			fields = append(fields, cur)
		}
		cur, valid = nil, false
	}
	for len(b) > 0 {
		n := bytes.IndexByte(b, '\n') + 1
		if n == 0 {
			n = len(b)
		}
		line := b[:n:n]
		b = b[n:]
		if line[0] == ' ' || line[0] == '\t' {
			if cur != nil {
				cur = append(cur, line...)
			}
			continue
		}
		flush()
		cur = line
		valid = validFieldStart(line)
	}
	flush()
	var h textproto.Header
	for i := len(fields) - 1; i >= 0; i-- { // AddRaw inserts at the top
		h.AddRaw(fields[i])
	}
	return h
}

func validFieldStart(line []byte) bool {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return false
	}
	name := bytes.TrimRight(line[:colon], " \t")
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

// --- MIME structure ---------------------------------------------------------

type entityKind int

const (
	kindLeaf      entityKind = iota
	kindMultipart            // preamble/epilogue are content, children follow
	kindMessage              // message/rfc822: the nested header is content
	kindOpaque               // beyond the depth bound: not examined
)

// entity is one MIME entity located in the spool by offsets; nothing of
// its content is kept.
type entity struct {
	kind      entityKind
	ct        string // lower-case type/subtype, defaulted per RFC 2045
	ctRaw     string // Content-Type as written, for charset decoding
	cte       string // Content-Transfer-Encoding
	depth     int
	start     int64 // first header byte
	hdrEnd    int64 // end of the header (start of the blank line)
	bodyStart int64
	end       int64 // end of the body (the CRLF before a delimiter excluded)

	boundary      string
	preambleEnd   int64
	epilogueStart int64
	sawDelim      bool
	closed        bool // close delimiter seen
	nested        *entity

	decoded []byte // cached decoded content (leaf)
	tried   bool   // decoding into the cache was attempted
}

func (e *entity) setHeader(h textproto.Header, parent *entity) {
	e.ctRaw = h.Get("Content-Type")
	e.cte = strings.TrimSpace(h.Get("Content-Transfer-Encoding"))
	mt, params, err := mime.ParseMediaType(e.ctRaw)
	switch {
	case e.ctRaw == "" || err != nil || !strings.Contains(mt, "/"):
		// RFC 2045 section 5.2: absent or invalid means text/plain;
		// RFC 2046 section 5.1.5: in multipart/digest, message/rfc822.
		e.ctRaw = ""
		e.ct = "text/plain"
		if parent != nil && parent.ct == "multipart/digest" {
			e.ct = "message/rfc822"
		}
	default:
		e.ct = mt
		e.boundary = params["boundary"]
	}
	switch {
	case strings.HasPrefix(e.ct, "multipart/"):
		e.kind = kindMultipart
	case e.ct == "message/rfc822" || e.ct == "message/global":
		e.kind = kindMessage
	default:
		e.kind = kindLeaf
	}
}

// walker parses the MIME structure in one pass over the spool. Open
// multiparts are kept on a stack; a delimiter line of any of them ends
// every entity nested deeper (RFC 2046 section 5.1.1). Work per line is
// bounded by the stack depth, itself bounded by MaxMIMEDepth.
type walker struct {
	ents  []*entity
	stack []*entity // open multiparts, outermost first
	open  []*entity // open entities, outermost first
	hdr   *entity   // entity whose header is being read, or nil
	hc    headerCollector
	lim   Limits
	maxHd int
}

func (m *Message) walk(ctx context.Context) ([]*entity, error) {
	top := &entity{start: 0, hdrEnd: m.hdrEnd, bodyStart: m.bodyStart}
	top.setHeader(m.header, nil)
	w := &walker{lim: m.limits, maxHd: m.maxPartHd}
	w.ents = append(w.ents, top)
	w.open = append(w.open, top)
	if !m.hasBody {
		top.end = m.size
		if top.kind != kindLeaf {
			top.kind = kindOpaque
		}
		return w.ents, nil
	}
	w.enterBody(top)

	lr := m.lines(m.bodyStart, m.size)
	var prevEOL int64
	for n := 0; ; n++ {
		if n&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if w.hdr == nil && (len(w.stack) == 0 || w.stack[0].closed) {
			break // a single part, or the final epilogue: nothing more to find
		}
		frag, off, start, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("engine: read message body: %w", err)
		}
		eol := eolLen(frag)
		if start && len(frag) > 2 && frag[0] == '-' && frag[1] == '-' && len(w.stack) > 0 {
			if w.delimiter(frag, off, off-prevEOL) {
				prevEOL = eol
				continue
			}
		}
		if w.hdr != nil {
			if start && isBlankLine(frag) {
				w.endHeader(off, off+int64(len(frag)))
			} else {
				w.hc.add(frag)
			}
		}
		prevEOL = eol
	}
	w.abortHeader(m.size)
	w.closeAbove(-1, m.size)
	return w.ents, nil
}

// delimiter handles a line starting with "--" at off; cut is where the
// content before it ends. It reports whether the line was a delimiter.
func (w *walker) delimiter(line []byte, off, cut int64) bool {
	cand := bytes.TrimRight(line[2:], " \t\r\n")
	for i := len(w.stack) - 1; i >= 0; i-- {
		mp := w.stack[i]
		var isClose bool
		switch {
		case string(cand) == mp.boundary:
		case len(cand) == len(mp.boundary)+2 && bytes.HasSuffix(cand, []byte("--")) && string(cand[:len(cand)-2]) == mp.boundary:
			isClose = true
		default:
			continue
		}
		if mp.closed {
			return false // in the epilogue delimiters are just text
		}
		w.abortHeader(cut)
		// End everything nested in mp: its open child and descendants.
		idx := 0
		for j, e := range w.open {
			if e == mp {
				idx = j
			}
		}
		w.closeAbove(idx, cut)
		w.stack = w.stack[:i+1]
		if !mp.sawDelim {
			mp.sawDelim = true
			mp.preambleEnd = max(cut, mp.bodyStart)
		}
		next := off + int64(len(line))
		if isClose {
			mp.closed = true
			mp.epilogueStart = next
			return true
		}
		w.begin(next, mp.depth+1, mp)
		return true
	}
	return false
}

// closeAbove ends the open entities above index idx (all when idx < 0) at cut.
func (w *walker) closeAbove(idx int, cut int64) {
	for j := len(w.open) - 1; j > idx; j-- {
		e := w.open[j]
		e.end = max(cut, e.bodyStart)
		if e.kind == kindMultipart {
			if !e.sawDelim {
				e.preambleEnd = e.end
			}
			if !e.closed {
				e.epilogueStart = e.end
			}
			e.epilogueStart = min(e.epilogueStart, e.end)
			for k := len(w.stack) - 1; k >= 0; k-- {
				if w.stack[k] == e {
					w.stack = w.stack[:k]
					break
				}
			}
		}
	}
	if idx < 0 {
		w.open = w.open[:0]
	} else {
		w.open = w.open[:idx+1]
	}
}

// begin starts a new entity (a part or a nested message) at off, if the
// bounds allow; otherwise its content is skipped.
func (w *walker) begin(off int64, depth int, parent *entity) {
	if depth > w.lim.MaxMIMEDepth || len(w.ents) >= w.lim.MaxMIMEParts {
		return
	}
	e := &entity{start: off, depth: depth}
	w.ents = append(w.ents, e)
	w.open = append(w.open, e)
	w.hdr = e
	w.hc = headerCollector{max: w.maxHd, buf: w.hc.buf[:0]}
	e.ct = parent.ct // remembered until the header is parsed (digest default)
}

func (w *walker) endHeader(hdrEnd, bodyStart int64) {
	e := w.hdr
	w.hdr = nil
	parent := &entity{ct: e.ct}
	e.setHeader(parseHeaderBlock(w.hc.buf), parent)
	e.hdrEnd, e.bodyStart = hdrEnd, bodyStart
	w.enterBody(e)
}

// abortHeader ends a header that a delimiter or the end of the message
// interrupted: the entity has no body.
func (w *walker) abortHeader(cut int64) {
	e := w.hdr
	if e == nil {
		return
	}
	w.hdr = nil
	e.setHeader(parseHeaderBlock(w.hc.buf), &entity{ct: e.ct})
	e.hdrEnd = max(cut, e.start)
	e.bodyStart = e.hdrEnd
	if e.kind != kindLeaf {
		e.kind = kindOpaque
	}
}

func (w *walker) enterBody(e *entity) {
	switch e.kind {
	case kindMultipart:
		if e.depth+1 > w.lim.MaxMIMEDepth {
			e.kind = kindOpaque
			return
		}
		if e.boundary == "" {
			return // nothing delimits parts: the whole body is preamble (as Pigeonhole)
		}
		w.stack = append(w.stack, e)
	case kindMessage:
		if e.depth+1 > w.lim.MaxMIMEDepth || len(w.ents) >= w.lim.MaxMIMEParts {
			e.kind = kindOpaque
			return
		}
		w.begin(e.bodyStart, e.depth+1, e)
		e.nested = w.ents[len(w.ents)-1]
	}
}

// --- body access (RFC 5173) -------------------------------------------------

var (
	_ interp.Message     = (*Message)(nil)
	_ interp.BodyMessage = (*Message)(nil)
)

// BodyRaw implements interp.BodyMessage: the undecoded body (:raw).
func (m *Message) BodyRaw(ctx context.Context) (io.Reader, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	if !m.hasBody {
		return nil, nil
	}
	return bufio.NewReader(&ctxReader{ctx: ctx, r: io.NewSectionReader(m.src, m.bodyStart, m.size-m.bodyStart)}), nil
}

func (m *Message) entities(ctx context.Context) ([]*entity, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	if !m.walked {
		ents, err := m.walk(ctx)
		if err != nil {
			return nil, err // not cached: a later run may have more time
		}
		m.ents, m.walked = ents, true
	}
	return m.ents, nil
}

// BodyParts implements interp.BodyMessage (:content and :text). Following
// RFC 5173 section 5.2: a matching multipart yields its preamble and
// epilogue, a matching message/rfc822 its nested header, any other
// matching part its content with transfer encoding and charset decoded.
// Parts are returned in document order.
func (m *Message) BodyParts(ctx context.Context, contentTypes []string) ([]interp.BodyPart, error) {
	ents, err := m.entities(ctx)
	if err != nil {
		return nil, err
	}
	var out []interp.BodyPart
	for _, e := range ents {
		if e.kind == kindOpaque || !interp.ContentTypeMatches(e.ct, contentTypes) {
			continue
		}
		switch e.kind {
		case kindMessage:
			if e.nested == nil {
				continue
			}
		case kindLeaf:
			if e.end <= e.bodyStart {
				continue
			}
		}
		out = append(out, &bodyPart{m: m, e: e})
	}
	return out, nil
}

type bodyPart struct {
	m *Message
	e *entity
}

func (p *bodyPart) ContentType() string { return p.e.ct }

// Open returns the part's content as the body test compares it.
func (p *bodyPart) Open(ctx context.Context) (io.ReadCloser, error) {
	m, e := p.m, p.e
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	switch e.kind {
	case kindMultipart:
		return io.NopCloser(bufio.NewReader(&ctxReader{ctx: ctx, r: io.MultiReader(
			io.NewSectionReader(m.src, e.bodyStart, e.preambleEnd-e.bodyStart),
			strings.NewReader("\r\n"),
			io.NewSectionReader(m.src, e.epilogueStart, e.end-e.epilogueStart),
		)})), nil
	case kindMessage:
		n := e.nested
		return io.NopCloser(bufio.NewReader(&ctxReader{ctx: ctx, r: io.NewSectionReader(m.src, n.start, n.hdrEnd-n.start)})), nil
	}
	if e.decoded != nil {
		return io.NopCloser(bytes.NewReader(e.decoded)), nil
	}
	raw := e.end - e.bodyStart
	if !e.tried && raw <= m.limits.MaxBodyBytes-m.buffered {
		// Decode once into memory within the budget: a body test opens a
		// part once per key. Decoding can grow text (a single-byte charset
		// to UTF-8), so the read is bounded by the budget as well.
		e.tried = true
		left := m.limits.MaxBodyBytes - m.buffered
		b, err := io.ReadAll(io.LimitReader(&ctxReader{ctx: ctx, r: p.decoder()}, left+1))
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// Any other error is broken base64 or quoted-printable: like
		// Pigeonhole, the test sees what could be decoded.
		_ = err
		if int64(len(b)) <= left {
			if b == nil {
				b = []byte{}
			}
			e.decoded = b
			m.buffered += int64(len(b))
			return io.NopCloser(bytes.NewReader(b)), nil
		}
	}
	return io.NopCloser(bufio.NewReader(&ctxReader{ctx: ctx, r: p.decoder()})), nil
}

// decoder streams the decoded content of a leaf from the spool.
func (p *bodyPart) decoder() io.Reader {
	e := p.e
	var h message.Header
	if e.ctRaw != "" {
		h.Set("Content-Type", e.ctRaw)
	}
	if e.cte != "" {
		h.Set("Content-Transfer-Encoding", e.cte)
	}
	// An unknown transfer encoding or charset leaves the content as it is
	// (the error says so); the test then sees the bytes as written.
	ent, _ := message.New(h, io.NewSectionReader(p.m.src, e.bodyStart, e.end-e.bodyStart))
	return ent.Body
}

// ctxReader stops reading when the run's context ends (go-sieve itself
// does not look at it while matching).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
