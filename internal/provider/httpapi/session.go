package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
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

// --- devices (issue 13): what a session keeps of its device, the
// requests in flight per session, and the answer to an ended session.

// validDevice checks the device a login or signup names, if any, and
// answers 400 when it is malformed.
func validDevice(w http.ResponseWriter, d *providerapi.Device) bool {
	if d == nil {
		return true
	}
	if err := d.Validate(); err != nil {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, err.Error())
		return false
	}
	return true
}

// deviceOf is the device part of a new session for d (nil: none given).
func deviceOf(d *providerapi.Device) storage.Session {
	if d == nil {
		return storage.Session{}
	}
	return storage.Session{DeviceID: d.ID, DeviceName: d.Name}
}

// renewed is the device part of the session that replaces se: the same
// device, made when se's device logged in, last synced when it did.
func renewed(se *storage.Session) storage.Session {
	return storage.Session{DeviceID: se.DeviceID, DeviceName: se.DeviceName, Created: se.Created, LastSync: se.LastSync}
}

// renew makes the session that replaces a's, for the same device, and
// ends a's in the same transaction; ErrNotFound when a's session was
// ended (revoked, account deleted) after the request was authenticated,
// so a renewal racing a revocation cannot keep the revoked device in.
func (s *Server) renew(ctx context.Context, a authed) (string, *storage.Session, error) {
	tok := make([]byte, 32)
	if _, err := rand.Read(tok); err != nil {
		return "", nil, err
	}
	token := hex.EncodeToString(tok)
	se := renewed(a.session)
	se.TokenHash, se.Login, se.Expires = hashToken(token), a.login, time.Now().Add(s.cfg.SessionTTL).UTC()
	if se.Created.IsZero() {
		se.Created = time.Now().UTC()
	}
	if err := s.store.RenewSession(ctx, a.tokenHash, &se); err != nil {
		return "", nil, err
	}
	return token, &se, nil
}

// syncInterval is how often a session's LastSync is written at most.
const syncInterval = time.Minute

// seen records that se's device synced, when r pulls changes or pushes
// documents, at most once a minute per session, so syncing costs no
// write per request.
func (s *Server) seen(ctx context.Context, r *http.Request, se *storage.Session) {
	v := "/" + providerapi.Version
	syncing := r.Method == http.MethodPost && r.URL.Path == v+"/docs" ||
		r.Method == http.MethodGet && r.URL.Path == v+"/docs/changes"
	now := time.Now()
	if !syncing || now.Sub(se.LastSync) < syncInterval {
		return
	}
	if err := s.store.TouchSession(ctx, se.TokenHash, now); err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.log.Warn("provider: recording a sync", "err", err)
	}
	se.LastSync = now
}

// unauthorized answers a request whose session is not live: 401, with
// the reason when the session was ended on purpose (a revoked device, a
// deleted account), so the device can tell its user.
func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request, tokenHash []byte) {
	reason, err := s.store.EndedSession(r.Context(), tokenHash)
	switch {
	case err == nil && reason == providerapi.CodeSessionRevoked:
		writeErr(w, http.StatusUnauthorized, reason, "this device was revoked; log in again to use it")
	case err == nil && reason == providerapi.CodeAccountDeleted:
		writeErr(w, http.StatusUnauthorized, reason, "this account was deleted")
	default:
		writeErr(w, http.StatusUnauthorized, providerapi.CodeUnauthorized, "invalid or expired session")
	}
}

// liveSessions are the authenticated requests in flight, by session, so
// that ending a session also ends its long polls and event streams.
type liveSessions struct {
	mu   sync.Mutex
	reqs map[string]map[*liveReq]struct{}
}

type liveReq struct{ cancel context.CancelCauseFunc }

// errSessionEnded is the cause of a request cancelled by endSessions.
var errSessionEnded = errors.New("provider: the session was ended")

// track registers a request of the session tokenHash; done unregisters
// it.
func (l *liveSessions) track(ctx context.Context, tokenHash []byte) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	q := &liveReq{cancel: cancel}
	k := string(tokenHash)
	l.mu.Lock()
	if l.reqs == nil {
		l.reqs = map[string]map[*liveReq]struct{}{}
	}
	if l.reqs[k] == nil {
		l.reqs[k] = map[*liveReq]struct{}{}
	}
	l.reqs[k][q] = struct{}{}
	l.mu.Unlock()
	return ctx, func() {
		l.mu.Lock()
		delete(l.reqs[k], q)
		if len(l.reqs[k]) == 0 {
			delete(l.reqs, k)
		}
		l.mu.Unlock()
		cancel(nil)
	}
}

// cancel ends the requests in flight of the sessions.
func (l *liveSessions) cancel(sessions []storage.Session) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, se := range sessions {
		for q := range l.reqs[string(se.TokenHash)] {
			q.cancel(errSessionEnded)
		}
	}
}

// endSessions ends login's sessions that match, for reason, and the
// requests they have in flight (an event stream closes).
func (s *Server) endSessions(ctx context.Context, login string, match func(*storage.Session) bool, reason string) ([]storage.Session, error) {
	ended, err := s.store.EndSessions(ctx, login, match, reason)
	if err != nil {
		return nil, err
	}
	s.live.cancel(ended)
	return ended, nil
}
