package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/emersion/go-sasl"
)

// Mechanism names as advertised in the SASL capability.
const (
	Plain = sasl.Plain // "PLAIN"
	Login = sasl.Login // "LOGIN"
)

// LoginAuthenticator checks the credentials a LOGIN exchange collected.
type LoginAuthenticator func(username, password string) error

type loginServer struct {
	auth     LoginAuthenticator
	state    int
	username string
}

// NewLoginServer returns a server for the LOGIN mechanism
// (draft-murchison-sasl-login), which go-sasl ships only as a client:
// the server challenges "Username:" then "Password:" (base64 on the wire,
// as every ManageSieve SASL exchange) and calls auth. An initial response,
// if the client sends one, is the user name (Thunderbird and others do).
//
// As for every go-sasl Server, response is nil for "no initial response".
func NewLoginServer(auth LoginAuthenticator) sasl.Server {
	return &loginServer{auth: auth}
}

func (s *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch s.state {
	case 0:
		s.state = 1
		if len(response) == 0 {
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		s.username = string(response)
		s.state = 2
		return []byte("Password:"), false, nil
	case 2:
		s.state = 3
		return nil, true, s.auth(s.username, string(response))
	}
	return nil, false, sasl.ErrUnexpectedClientResponse
}

// ErrAuthzDenied: the client asked to act as another user (a PLAIN
// authorization identity other than its own login).
var ErrAuthzDenied = errors.New("auth: authorization identity differs from authentication identity")

// NewPlainServer wires go-sasl's PLAIN server (RFC 4616) to b. An
// authorization identity other than empty or the login name is refused
// (ErrAuthzDenied): nobody may act for another user. On success, ok is
// called with the identity before the exchange completes.
func NewPlainServer(ctx context.Context, b Backend, ok func(Identity)) sasl.Server {
	return sasl.NewPlainServer(func(authzid, username, password string) error {
		if authzid != "" && authzid != username {
			return fmt.Errorf("auth: plain: %q for %q: %w", sanitize(username), sanitize(authzid), ErrAuthzDenied)
		}
		id, err := b.Authenticate(ctx, username, password)
		if err != nil {
			return err
		}
		ok(id)
		return nil
	})
}

// NewLoginServerFor is NewLoginServer checking against b, calling ok with
// the identity on success.
func NewLoginServerFor(ctx context.Context, b Backend, ok func(Identity)) sasl.Server {
	return NewLoginServer(func(username, password string) error {
		id, err := b.Authenticate(ctx, username, password)
		if err != nil {
			return err
		}
		ok(id)
		return nil
	})
}
