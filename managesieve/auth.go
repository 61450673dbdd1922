package managesieve

import (
	"context"
	"errors"
	"fmt"

	"github.com/sieved/sieved/auth"
)

// AuthBackend is the Authenticator backed by an auth.Backend (Dovecot
// passwd-file, IMAP login).
type AuthBackend struct {
	Backend auth.Backend
}

// Authenticate implements Authenticator, adding the managesieve sentinel
// that matches the auth error.
func (a AuthBackend) Authenticate(ctx context.Context, username, password string) (Identity, error) {
	id, err := a.Backend.Authenticate(ctx, username, password)
	switch {
	case err == nil:
		return Identity{User: id.User, Domain: id.Domain}, nil
	case errors.Is(err, auth.ErrInvalidCredentials):
		return Identity{}, fmt.Errorf("%w: %w", ErrInvalidCredentials, err)
	case errors.Is(err, auth.ErrUnavailable):
		return Identity{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return Identity{}, err
}
