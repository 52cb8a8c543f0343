package httpapi

import (
	"context"
	"errors"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
)

// ErrInvalidToken is what CheckToken returns for a token that names no
// live session.
var ErrInvalidToken = errors.New("provider: invalid or expired session token")

// CheckToken returns the login of the session token belongs to, as the
// API's bearer authentication does: the token is looked up by its
// SHA-256 hash and must not have expired. Services outside the HTTPS API
// (the submission server's AUTH PLAIN) use it. It returns
// ErrInvalidToken for an unknown, malformed or expired token and another
// error when the store fails.
func (s *Server) CheckToken(ctx context.Context, token string) (login string, err error) {
	if token == "" || len(token) > 256 {
		return "", ErrInvalidToken
	}
	se, err := s.store.Session(ctx, hashToken(token))
	if errors.Is(err, storage.ErrNotFound) {
		return "", ErrInvalidToken
	} else if err != nil {
		return "", err
	}
	if time.Now().After(se.Expires) {
		return "", ErrInvalidToken
	}
	return se.Login, nil
}
