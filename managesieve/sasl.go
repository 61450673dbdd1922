package managesieve

import (
	"encoding/base64"
	"errors"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/sieved/sieved/auth"
)

// SASL mechanism names.
const (
	mechPlain = sasl.Plain
	mechLogin = auth.Login
)

// mechanisms lists what may be used right now: the plaintext mechanisms
// only over TLS unless configured otherwise (Dovecot then says SASL "").
func (s *session) mechanisms() []string {
	if s.plaintextAllowed() {
		return []string{mechPlain, mechLogin}
	}
	return []string{}
}

var errAuthzid = errors.New("managesieve: authorization identity differs from the user")

// authenticate runs the SASL exchange of RFC 5804 section 2.1. Challenges
// go out as quoted base64 strings; responses may be quoted or literals
// (including {0+}); "*" aborts. Success is a bare OK: a capability block
// after AUTHENTICATE broke Thunderbird and sieve-connect elsewhere.
func (s *session) authenticate(mech string, initial []token) result {
	if mech != mechPlain && mech != mechLogin {
		s.w.no("", "Unsupported authentication mechanism.")
		return resBad
	}
	if !s.plaintextAllowed() {
		// Counted as bad, as Dovecot does: a client that cannot
		// STARTTLS is disconnected instead of looping.
		s.w.no(CodeEncryptNeeded, "Plaintext authentication is only allowed over TLS: use STARTTLS.")
		return resBad
	}
	var (
		id      Identity
		authErr error
		tried   bool
	)
	check := func(authzid, username, password string) error {
		tried = true
		if authzid != "" && authzid != username {
			authErr = errAuthzid
			return authErr
		}
		id, authErr = s.srv.opts.Auth.Authenticate(s.ctx(), username, password)
		return authErr
	}
	var srv sasl.Server
	if mech == mechPlain {
		srv = sasl.NewPlainServer(check)
	} else {
		srv = auth.NewLoginServer(func(u, p string) error { return check("", u, p) })
	}

	var resp []byte // nil: no initial response
	if len(initial) == 1 {
		var err error
		if resp, err = base64.StdEncoding.DecodeString(initial[0].val); err != nil {
			s.w.no("", "Invalid base64 in the initial response.")
			return resBad
		}
	}
	for {
		chal, done, err := srv.Next(resp)
		if err != nil || done {
			if err == nil && authErr == nil && tried {
				return s.loginOK(id, mech, chal)
			}
			return s.loginFailed(mech, authErr, err)
		}
		s.w.line(quote(base64.StdEncoding.EncodeToString(chal)))
		if err := s.flush(); err != nil {
			return resQuit
		}
		toks, err := s.r.readLine("AUTHENTICATE")
		var pe *parseError
		if errors.As(err, &pe) {
			if pe.fatal {
				s.w.bye(pe.code, pe.msg)
				return resQuit
			}
			s.w.no("", pe.msg)
			return resBad
		}
		if err != nil {
			return resQuit
		}
		if len(toks) != 1 {
			s.w.no("", "Expected one SASL response string.")
			return resBad
		}
		if toks[0].val == "*" {
			s.w.no("", "Authentication aborted by client.")
			return resDone
		}
		if resp, err = base64.StdEncoding.DecodeString(toks[0].val); err != nil {
			s.w.no("", "Invalid base64 in the SASL response.")
			return resBad
		}
		if resp == nil {
			resp = []byte{}
		}
	}
}

func (s *session) loginOK(id Identity, mech string, final []byte) result {
	scripts, err := s.srv.opts.Store.User(s.ctx(), id)
	if err != nil {
		s.log.Error("login: cannot open the script store", "user", id.String(), "err", err)
		s.w.no(CodeTryLater, "Cannot open your script storage, try again later.")
		return resDone
	}
	s.srv.failures.succeed(s.ip)
	s.user, s.scripts = &id, scripts
	s.bad, s.authFailures = 0, 0
	s.applyLimits()
	s.log = s.baseLog.With("user", id.String())
	s.log.Info("login", "mechanism", mech, "tls", s.tls)
	if len(final) > 0 {
		s.w.ok(codeWithString(CodeSASL, base64.StdEncoding.EncodeToString(final)), "Logged in.")
	} else {
		s.w.ok("", "Logged in.")
	}
	return resDone
}

// loginFailed answers a failed exchange after the per-IP delay.
func (s *session) loginFailed(mech string, authErr, saslErr error) result {
	if errors.Is(authErr, ErrUnavailable) {
		s.log.Warn("login failed", "mechanism", mech, "reason", "backend unavailable", "err", authErr)
		s.w.no(CodeTryLater, "Authentication service unavailable, try again later.")
		return resDone
	}
	reason := "invalid credentials"
	switch {
	case authErr == nil:
		reason = "malformed SASL exchange"
	case errors.Is(authErr, errAuthzid):
		reason = "authorization identity refused"
	case !errors.Is(authErr, ErrInvalidCredentials):
		reason = "backend error"
	}
	delay := s.srv.failures.fail(s.ip)
	s.log.Info("login failed", "mechanism", mech, "reason", reason, "delay", delay)
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.srv.ctx.Done():
			t.Stop()
		}
	}
	s.w.no("", "Authentication failed.")
	s.authFailures++
	if s.authFailures >= maxAuthFailures {
		s.w.bye("", "Too many failed authentication attempts.")
		return resQuit
	}
	return resDone
}
