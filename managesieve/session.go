package managesieve

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxDrain bounds how much of an oversized literal or line the server reads
// and throws away to keep the connection in sync; beyond it, BYE.
const (
	maxDrainLogin = 64 << 10
	maxDrainAuth  = 16 << 20
	// maxNameBytes bounds a script-name literal: 256 characters of up to
	// 4 bytes each.
	maxNameBytes = 1024
	// maxAuthFailures per connection, then BYE.
	maxAuthFailures = 5
)

// session is one client connection.
type session struct {
	srv *Server
	id  string
	ip  string

	baseLog *slog.Logger // session and remote address
	log     *slog.Logger // baseLog plus the user once logged in

	mu          sync.Mutex // guards c and idle against Shutdown
	c           net.Conn
	idle        bool
	interrupted bool

	r   *reader
	w   writer
	tls bool

	user    *Identity
	scripts Scripts

	bad          int
	authFailures int
}

func newSession(srv *Server, c net.Conn, ip string, implicitTLS bool) *session {
	id := strconv.FormatUint(srv.nextID.Add(1), 10)
	s := &session{
		srv: srv,
		id:  id,
		ip:  ip,
		c:   c,
		tls: implicitTLS,
	}
	s.baseLog = srv.log.With("session", id, "remote", c.RemoteAddr().String())
	s.log = s.baseLog
	return s
}

func (s *session) conn() net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

// interruptIdle wakes a session waiting for its next command so that it
// can say BYE; a session in the middle of a command is left to finish it.
func (s *session) interruptIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.interrupted = true
	if s.idle {
		s.c.SetReadDeadline(time.Now())
	}
}

func (s *session) setConn(c net.Conn) {
	s.mu.Lock()
	s.c = c
	s.mu.Unlock()
	s.r = newReader(c, 0, 0, s.literalLimit)
	s.applyLimits()
	s.w = writer{bw: bufio.NewWriterSize(c, 4096)}
}

// applyLimits sets the reader's limits for the current state. A command
// may hold at most one literal at its limit (a script after login, a SASL
// response before it) plus line segments: maxCommand bounds what a client
// can make the server buffer for one command, however many literals it
// chains.
func (s *session) applyLimits() {
	o := &s.srv.opts
	if s.user == nil {
		s.r.maxLine, s.r.maxDrain = o.MaxLineLogin, maxDrainLogin
		s.r.maxCommand = 2 * int64(o.MaxLineLogin)
		return
	}
	s.r.maxLine, s.r.maxDrain = o.MaxLine, maxDrainAuth
	s.r.maxCommand = o.MaxScriptBytes + maxNameBytes + 2*int64(o.MaxLine)
}

// literalLimit is checked before a literal is read (see reader).
func (s *session) literalLimit(cmd string, argIndex int) (int64, string) {
	if s.user == nil {
		// Before login only AUTHENTICATE carries data worth a literal.
		return int64(s.srv.opts.MaxLineLogin), ""
	}
	switch {
	case cmd == "PUTSCRIPT" && argIndex == 1, cmd == "CHECKSCRIPT" && argIndex == 0:
		return s.srv.opts.MaxScriptBytes, CodeQuotaMaxSize
	case cmd == "PUTSCRIPT", cmd == "GETSCRIPT", cmd == "SETACTIVE", cmd == "DELETESCRIPT",
		cmd == "RENAMESCRIPT", cmd == "HAVESPACE":
		return maxNameBytes, ""
	}
	return int64(s.srv.opts.MaxLine), ""
}

func (s *session) flush() error {
	s.conn().SetWriteDeadline(time.Now().Add(s.srv.opts.WriteTimeout))
	return s.w.flush()
}

func (s *session) close() {
	s.conn().Close()
}

// run serves the connection until LOGOUT, an error, a limit or shutdown.
func (s *session) run() {
	defer s.close()
	s.log.Debug("connected")
	if s.tls {
		tc := tls.Server(s.c, s.srv.tlsCfg)
		if err := s.handshake(tc); err != nil {
			s.log.Info("TLS handshake failed", "err", err)
			return
		}
		s.setConn(tc)
	} else {
		s.setConn(s.c)
	}
	// The greeting is the capability block and OK, in one write: some
	// clients break when it arrives in pieces.
	s.writeCapabilities()
	s.w.ok("", s.srv.opts.Implementation+" ready.")
	if s.flush() != nil {
		return
	}
	for {
		cmd, err := s.next()
		if err != nil {
			s.endOnError(err)
			return
		}
		if cmd == nil {
			continue // an empty line, or a refused command already answered
		}
		quit := s.dispatch(cmd)
		if err := s.flush(); err != nil || quit {
			return
		}
	}
}

// next waits for and reads the next command. It returns (nil, nil) for an
// empty line and for a command the parser refused (answered here).
func (s *session) next() (*command, error) {
	timeout := s.srv.opts.LoginTimeout
	if s.user != nil {
		timeout = s.srv.opts.IdleTimeout
	}
	s.mu.Lock()
	if s.interrupted {
		s.mu.Unlock()
		return nil, errShutdown
	}
	s.c.SetReadDeadline(time.Now().Add(timeout))
	s.idle = true
	s.mu.Unlock()

	_, err := s.r.br.Peek(1)

	s.mu.Lock()
	s.idle = false
	interrupted := s.interrupted
	s.mu.Unlock()
	if interrupted {
		// Shutdown began while we waited; a command that arrived in
		// the same instant is not started.
		return nil, errShutdown
	}
	if err != nil {
		return nil, err
	}
	cmd, err := s.r.readCommand()
	var pe *parseError
	if errors.As(err, &pe) {
		if pe.fatal {
			s.w.bye(pe.code, pe.msg)
			s.flush()
			s.log.Warn("disconnected", "reason", pe.msg)
			return nil, errQuit
		}
		s.w.no(pe.code, pe.msg)
		if s.countBad() {
			return nil, errQuit
		}
		if err := s.flush(); err != nil {
			return nil, err
		}
		return nil, nil
	}
	return cmd, err
}

var (
	errShutdown = errors.New("shutdown")
	errQuit     = errors.New("quit")
)

// endOnError says goodbye the way the error calls for.
func (s *session) endOnError(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, errQuit):
	case errors.Is(err, errShutdown):
		s.w.bye(CodeTryLater, "Server shutting down.")
		s.flush()
		s.log.Debug("disconnected", "reason", "shutdown")
	case errors.As(err, &ne) && ne.Timeout():
		s.w.bye("", "Disconnected for inactivity.")
		s.flush()
		s.log.Info("disconnected", "reason", "idle timeout")
	case errors.Is(err, io.EOF):
		s.log.Debug("disconnected", "reason", "client closed the connection")
	default:
		s.log.Debug("disconnected", "reason", err.Error())
	}
}

// countBad records a bad command; at the limit it answers BYE instead
// and reports that the session must end.
func (s *session) countBad() bool {
	s.bad++
	limit := s.srv.opts.MaxBadCommandsLogin
	if s.user != nil {
		limit = s.srv.opts.MaxBadCommands
	}
	if s.bad >= limit {
		// Like Pigeonhole, the last bad command gets the BYE instead of
		// its NO: drop the unsent NO (anything earlier in the command,
		// such as SASL challenges, was already flushed).
		s.w.bw.Reset(s.conn())
		s.w.bye("", "Too many invalid commands.")
		s.flush()
		s.log.Warn("disconnected", "reason", "too many invalid commands")
		return true
	}
	return false
}

// Command states (RFC 5804 section 2: which commands are valid when).
type cmdState int

const (
	stateAny cmdState = iota
	stateNotAuth
	stateAuth
)

type handler struct {
	state cmdState
	fn    func(s *session, args []token) result
}

// result of one command: answered OK/NO, refused as bad (counted towards
// the limit), or the session must end.
type result int

const (
	resDone result = iota
	resBad
	resQuit
)

var handlers map[string]handler

func init() {
	handlers = map[string]handler{
		"AUTHENTICATE":   {stateNotAuth, (*session).cmdAuthenticate},
		"STARTTLS":       {stateNotAuth, (*session).cmdStartTLS},
		"LOGOUT":         {stateAny, (*session).cmdLogout},
		"CAPABILITY":     {stateAny, (*session).cmdCapability},
		"NOOP":           {stateAny, (*session).cmdNoop},
		"HAVESPACE":      {stateAuth, (*session).cmdHaveSpace},
		"PUTSCRIPT":      {stateAuth, (*session).cmdPutScript},
		"LISTSCRIPTS":    {stateAuth, (*session).cmdListScripts},
		"SETACTIVE":      {stateAuth, (*session).cmdSetActive},
		"GETSCRIPT":      {stateAuth, (*session).cmdGetScript},
		"DELETESCRIPT":   {stateAuth, (*session).cmdDeleteScript},
		"RENAMESCRIPT":   {stateAuth, (*session).cmdRenameScript},
		"CHECKSCRIPT":    {stateAuth, (*session).cmdCheckScript},
		"UNAUTHENTICATE": {stateAuth, (*session).cmdUnauthenticate},
	}
}

// dispatch runs one command; it returns true when the session must end.
func (s *session) dispatch(cmd *command) bool {
	h, ok := handlers[cmd.name]
	var res result
	switch {
	case !ok:
		s.w.no("", "Unknown command.")
		res = resBad
	case h.state == stateAuth && s.user == nil:
		s.w.no("", "Authenticate first.")
		res = resBad
	case h.state == stateNotAuth && s.user != nil:
		s.w.no("", "Already authenticated.")
		res = resBad
	default:
		res = h.fn(s, cmd.args)
	}
	switch res {
	case resQuit:
		return true
	case resBad:
		return s.countBad()
	}
	return false
}

// ctx is the context of one command: cancelled only when a shutdown gives
// up waiting.
func (s *session) ctx() context.Context { return s.srv.ctx }

// strArgs checks that args are exactly n strings and returns them.
func strArgs(args []token, n int) ([]string, bool) {
	if len(args) != n {
		return nil, false
	}
	out := make([]string, n)
	for i, a := range args {
		if a.kind != tokString {
			return nil, false
		}
		out[i] = a.val
	}
	return out, true
}

// syntax answers a command with wrong arguments.
func (s *session) syntax(usage string) result {
	s.w.no("", "Syntax: "+usage)
	return resBad
}

// writeCapabilities writes the capability block for the current state, in
// Pigeonhole's order (before login IMPLEMENTATION, SIEVE, NOTIFY, SASL,
// STARTTLS, VERSION; after it MAXREDIRECTS follows SIEVE and SASL and
// STARTTLS go), our additions OWNER and UNAUTHENTICATE before VERSION. Names and values are quoted strings, never literals
// (Roundcube ignores literal values).
func (s *session) writeCapabilities() {
	o := &s.srv.opts
	capa := func(name string, value ...string) {
		line := quote(name)
		if len(value) > 0 {
			line += " " + quote(value[0])
		}
		s.w.line(line)
	}
	capa("IMPLEMENTATION", o.Implementation)
	exts := o.Compiler.Extensions()
	capa("SIEVE", strings.Join(exts, " "))
	if s.user != nil && o.MaxRedirects > 0 {
		capa("MAXREDIRECTS", strconv.Itoa(o.MaxRedirects))
	}
	if slices.Contains(exts, "enotify") {
		capa("NOTIFY", "mailto")
	}
	if s.user == nil {
		capa("SASL", strings.Join(s.mechanisms(), " "))
		if s.srv.tlsCfg != nil && !s.tls {
			capa("STARTTLS")
		}
	} else {
		capa("OWNER", s.user.String())
	}
	capa("UNAUTHENTICATE")
	capa("VERSION", "1.0")
}

// plaintextAllowed reports whether PLAIN and LOGIN may be used now.
func (s *session) plaintextAllowed() bool {
	o := &s.srv.opts
	return s.tls || o.AllowPlaintext || (o.AllowPlaintextLoopback && isLoopback(s.ip))
}

// handshake runs a TLS handshake bounded by the login timeout.
func (s *session) handshake(tc *tls.Conn) error {
	ctx, cancel := context.WithTimeout(s.srv.ctx, s.srv.opts.LoginTimeout)
	defer cancel()
	return tc.HandshakeContext(ctx)
}
