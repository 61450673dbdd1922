package managesieve

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// One function per RFC 5804 command, in the order of section 2.

// cmdAuthenticate: RFC 5804 section 2.1.
//
//	authenticate = "AUTHENTICATE" SP auth-type [SP string] *(CRLF string)
//	auth-type    = string
func (s *session) cmdAuthenticate(args []token) result {
	if len(args) < 1 || len(args) > 2 || args[0].kind != tokString || (len(args) == 2 && args[1].kind != tokString) {
		return s.syntax(`AUTHENTICATE "mechanism" ["initial response"]`)
	}
	return s.authenticate(strings.ToUpper(args[0].val), args[1:])
}

// cmdStartTLS: RFC 5804 section 2.2. After the handshake the server sends
// the capability block again, unsolicited (Roundcube waits for it;
// sieve-connect resynchronises with NOOP and copes either way).
func (s *session) cmdStartTLS(args []token) result {
	if len(args) != 0 {
		return s.syntax("STARTTLS")
	}
	if s.srv.tlsCfg == nil {
		s.w.no("", "TLS is not available.")
		return resDone
	}
	if s.tls {
		s.w.no("", "TLS is already active.")
		return resDone
	}
	s.w.ok("", "Begin TLS negotiation now.")
	if err := s.flush(); err != nil {
		return resQuit
	}
	// Bytes the client pipelined before the handshake are plaintext a
	// man in the middle could have injected: drop them.
	if n := s.r.br.Buffered(); n > 0 {
		s.r.br.Discard(n)
		s.log.Warn("discarded plaintext sent before the TLS handshake", "bytes", n)
	}
	tc := tls.Server(s.conn(), s.srv.tlsCfg)
	if err := s.handshake(tc); err != nil {
		s.log.Info("STARTTLS handshake failed", "err", err)
		return resQuit
	}
	s.tls = true
	s.setConn(tc)
	s.writeCapabilities()
	s.w.ok("", "TLS negotiation successful.")
	return resDone
}

// cmdLogout: RFC 5804 section 2.3.
func (s *session) cmdLogout(args []token) result {
	s.w.ok("", "Logout completed.")
	return resQuit
}

// cmdCapability: RFC 5804 section 2.4.
func (s *session) cmdCapability(args []token) result {
	if len(args) != 0 {
		return s.syntax("CAPABILITY")
	}
	s.writeCapabilities()
	s.w.ok("", "Capability completed.")
	return resDone
}

// cmdHaveSpace: RFC 5804 section 2.5.
//
//	havespace = "HAVESPACE" SP script-name SP number
func (s *session) cmdHaveSpace(args []token) result {
	if len(args) != 2 || args[0].kind != tokString || args[1].kind != tokAtom {
		return s.syntax(`HAVESPACE "name" size`)
	}
	size, ok := parseNumber(args[1].val)
	if !ok {
		return s.syntax(`HAVESPACE "name" size`)
	}
	name := args[0].val
	if !s.validName(name) {
		return resDone
	}
	if size > s.srv.opts.MaxScriptBytes {
		s.tooLarge()
		return resDone
	}
	if err := s.scripts.CheckSpace(s.ctx(), name, size); err != nil {
		s.storeError("havespace", name, err)
		return resDone
	}
	s.w.ok("", "Putscript would succeed.")
	return resDone
}

// cmdPutScript: RFC 5804 section 2.6. The script is compiled with the
// delivery engine first, so a broken upload never replaces a stored script.
//
//	putscript = "PUTSCRIPT" SP script-name SP sieve-script
func (s *session) cmdPutScript(args []token) result {
	a, ok := strArgs(args, 2)
	if !ok {
		return s.syntax(`PUTSCRIPT "name" {size+} script`)
	}
	name, script := a[0], []byte(a[1])
	if !s.validName(name) {
		return resDone
	}
	if int64(len(script)) > s.srv.opts.MaxScriptBytes {
		s.tooLarge()
		return resDone
	}
	if err := s.scripts.CheckSpace(s.ctx(), name, int64(len(script))); err != nil {
		s.storeError("putscript", name, err)
		return resDone
	}
	errs, warnings := s.srv.opts.Compiler.Check(name, script)
	if errs != "" {
		s.log.Info("upload refused", "script", name, "reason", "compile error")
		s.w.no("", errs)
		return resDone
	}
	if err := s.scripts.Put(s.ctx(), name, script); err != nil {
		s.storeError("putscript", name, err)
		return resDone
	}
	s.log.Info("upload", "script", name, "bytes", len(script))
	s.okWarnings(warnings, "PUTSCRIPT completed.")
	return resDone
}

// cmdListScripts: RFC 5804 section 2.7. Names are always quoted strings
// (Roundcube drops literal names) with " and \ escaped.
func (s *session) cmdListScripts(args []token) result {
	if len(args) != 0 {
		return s.syntax("LISTSCRIPTS")
	}
	list, err := s.scripts.List(s.ctx())
	if err != nil {
		s.storeError("listscripts", "", err)
		return resDone
	}
	for _, sc := range list {
		if sc.Active {
			s.w.line(quote(sc.Name) + " ACTIVE")
		} else {
			s.w.line(quote(sc.Name))
		}
	}
	s.w.ok("", "Listscripts completed.")
	return resDone
}

// cmdSetActive: RFC 5804 section 2.8. SETACTIVE "" deactivates and is OK
// even when nothing was active. The script is compiled again before it
// goes live: the engine may have changed since the upload.
func (s *session) cmdSetActive(args []token) result {
	a, ok := strArgs(args, 1)
	if !ok {
		return s.syntax(`SETACTIVE "name"`)
	}
	name := a[0]
	warnings := ""
	if name != "" {
		if !s.validName(name) {
			return resDone
		}
		script, err := s.scripts.Get(s.ctx(), name)
		if err != nil {
			s.storeError("setactive", name, err)
			return resDone
		}
		var errs string
		errs, warnings = s.srv.opts.Compiler.Check(name, script)
		if errs != "" {
			s.log.Info("activation refused", "script", name, "reason", "compile error")
			s.w.no("", errs)
			return resDone
		}
	}
	if err := s.scripts.SetActive(s.ctx(), name); err != nil {
		s.storeError("setactive", name, err)
		return resDone
	}
	s.log.Info("activation", "script", name)
	if name == "" {
		s.w.ok("", "Active script is now deactivated.")
		return resDone
	}
	s.okWarnings(warnings, "Setactive completed.")
	return resDone
}

// cmdGetScript: RFC 5804 section 2.9. Always a literal (Roundcube expects
// one); the store keeps LF line endings and the wire gets CRLF (RFC 5228
// section 2.2), the literal length counted after the conversion.
func (s *session) cmdGetScript(args []token) result {
	a, ok := strArgs(args, 1)
	if !ok {
		return s.syntax(`GETSCRIPT "name"`)
	}
	name := a[0]
	if !s.validName(name) {
		return resDone
	}
	script, err := s.scripts.Get(s.ctx(), name)
	if err != nil {
		s.storeError("getscript", name, err)
		return resDone
	}
	s.w.literal(string(toCRLF(script)))
	s.w.line("")
	s.w.ok("", "Getscript completed.")
	return resDone
}

// cmdDeleteScript: RFC 5804 section 2.10. The active script cannot be
// deleted: NO (ACTIVE).
func (s *session) cmdDeleteScript(args []token) result {
	a, ok := strArgs(args, 1)
	if !ok {
		return s.syntax(`DELETESCRIPT "name"`)
	}
	name := a[0]
	if !s.validName(name) {
		return resDone
	}
	if err := s.scripts.Delete(s.ctx(), name); err != nil {
		s.storeError("deletescript", name, err)
		return resDone
	}
	s.log.Info("delete", "script", name)
	s.w.ok("", "Deletescript completed.")
	return resDone
}

// cmdRenameScript: RFC 5804 section 2.11. The active script stays active.
func (s *session) cmdRenameScript(args []token) result {
	a, ok := strArgs(args, 2)
	if !ok {
		return s.syntax(`RENAMESCRIPT "old" "new"`)
	}
	if !s.validName(a[0]) || !s.validName(a[1]) {
		return resDone
	}
	if err := s.scripts.Rename(s.ctx(), a[0], a[1]); err != nil {
		s.storeError("renamescript", a[0], err)
		return resDone
	}
	s.log.Info("rename", "script", a[0], "new", a[1])
	s.w.ok("", "Renamescript completed.")
	return resDone
}

// cmdCheckScript: RFC 5804 section 2.12.
func (s *session) cmdCheckScript(args []token) result {
	a, ok := strArgs(args, 1)
	if !ok {
		return s.syntax(`CHECKSCRIPT {size+} script`)
	}
	errs, warnings := s.srv.opts.Compiler.Check(checkScriptName, []byte(a[0]))
	if errs != "" {
		s.w.no("", errs)
		return resDone
	}
	s.okWarnings(warnings, "Script checked successfully.")
	return resDone
}

// checkScriptName names a CHECKSCRIPT script in compile reports: none,
// as with Pigeonhole ("line 3: error: ...").
const checkScriptName = ""

// cmdNoop: RFC 5804 section 2.13. A tag is echoed on the OK line:
// sieve-connect resynchronises after STARTTLS by waiting for it.
func (s *session) cmdNoop(args []token) result {
	switch {
	case len(args) == 0:
		s.w.ok("", "NOOP Completed")
	case len(args) == 1 && args[0].kind == tokString:
		tag := args[0].val
		if quotable(tag) {
			s.w.ok(codeWithString(CodeTag, tag), "Done")
		} else {
			// A tag with CR, LF or NUL (sent as a literal) cannot be
			// quoted: echoed inside quotes it would end the response
			// line early and let the client forge response lines. The
			// grammar allows a literal here (resp-code "TAG" SP string).
			s.w.ok(CodeTag+" {"+strconv.Itoa(len(tag))+"}\r\n"+tag, "Done")
		}
	default:
		return s.syntax(`NOOP ["tag"]`)
	}
	return resDone
}

// cmdUnauthenticate: RFC 5804 section 2.14. Back to the non-authenticated
// state; TLS stays.
func (s *session) cmdUnauthenticate(args []token) result {
	if len(args) != 0 {
		return s.syntax("UNAUTHENTICATE")
	}
	s.log.Info("unauthenticate")
	s.user, s.scripts = nil, nil
	s.log = s.baseLog
	s.bad = 0
	s.applyLimits()
	s.w.ok("", "Unauthenticate completed.")
	return resDone
}

// tooLarge refuses a script over the server's own size limit.
func (s *session) tooLarge() {
	s.w.no(CodeQuotaMaxSize, fmt.Sprintf("Script is too large (max %d bytes).", s.srv.opts.MaxScriptBytes))
}

// okWarnings answers OK, with (WARNINGS) and the report when there is one.
func (s *session) okWarnings(warnings, text string) {
	if warnings != "" {
		s.w.ok(CodeWarnings, warnings)
		return
	}
	s.w.ok("", text)
}

// validName answers NO and returns false for a name the store refuses.
func (s *session) validName(name string) bool {
	if err := s.scripts.ValidateName(name); err != nil {
		s.w.no("", "Invalid script name.")
		return false
	}
	return true
}

// storeError maps a store error to its response code, in one place.
// The error text itself may hold paths: it is logged, never sent.
func (s *session) storeError(op, name string, err error) {
	switch {
	case errors.Is(err, ErrNonexistent):
		s.w.no(CodeNonexistent, "Sieve script `"+name+"' not found")
	case errors.Is(err, ErrActive):
		s.w.no(CodeActive, "Cannot delete the active Sieve script.")
	case errors.Is(err, ErrAlreadyExists):
		s.w.no(CodeAlreadyExists, "A sieve script with that name already exists.")
	case errors.Is(err, ErrInvalidName):
		s.w.no("", "Invalid script name.")
	case errors.Is(err, ErrQuotaMaxSize):
		s.w.no(CodeQuotaMaxSize, "Script is too large.")
	case errors.Is(err, ErrQuotaMaxScripts):
		s.w.no(CodeQuotaMaxScripts, "Too many scripts.")
	case errors.Is(err, ErrQuota):
		s.w.no(CodeQuota, "Quota exceeded.")
	case errors.Is(err, ErrUnavailable), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		s.log.Warn("store unavailable", "op", op, "script", name, "err", err)
		s.w.no(CodeTryLater, "Temporary failure, try again later.")
	default:
		s.log.Error("store error", "op", op, "script", name, "err", err)
		s.w.no("", "Internal error, see the server log (session "+s.id+").")
	}
}

// toCRLF turns bare LF into CRLF.
func toCRLF(b []byte) []byte {
	n := bytes.Count(b, []byte("\n"))
	if n == 0 {
		return b
	}
	out := make([]byte, 0, len(b)+n)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}
