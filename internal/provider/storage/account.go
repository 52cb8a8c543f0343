package storage

import (
	"context"
	"time"
)

// AccountStore is the life of an account beyond its credentials: the
// devices that log in to it and its deletion (issue 13).
//
// A device is what its sessions say: each Session carries the device id
// and name given at login, when it was made and when it last synced. A
// session that is ended on purpose (a revoked device, a deleted account)
// leaves a record of why until it would have expired, so the device's
// next request learns the reason instead of a bare "invalid token".
type AccountStore interface {
	// Sessions are the live sessions of login.
	Sessions(ctx context.Context, login string) ([]Session, error)
	// TouchSession sets the LastSync of a live session; an unknown
	// session is ErrNotFound.
	TouchSession(ctx context.Context, tokenHash []byte, t time.Time) error
	// EndSessions ends, in one transaction, every live session of login
	// for which match is true, keeping for each the reason it ended
	// (EndedSession) until it would have expired. It returns the ended
	// sessions.
	EndSessions(ctx context.Context, login string, match func(*Session) bool, reason string) ([]Session, error)
	// EndedSession is the reason a session was ended on purpose, or
	// ErrNotFound.
	EndedSession(ctx context.Context, tokenHash []byte) (string, error)
	// RenewSession swaps the live session old for se in one
	// transaction. If old is no longer live (a revocation or a deletion
	// ended it after the request was authenticated) or se's login has
	// no account, it is ErrNotFound and nothing is written: a renewal
	// racing a revocation never leaves the revoked device a session.
	RenewSession(ctx context.Context, old []byte, se *Session) error

	// DeleteAccount removes everything of login in one transaction: the
	// account, its documents, blobs and incoming queue, the public key
	// published for keyAddress, its queued outbound mail, its sessions
	// (ended with reason), and what the recovery store keeps. It keeps a
	// tombstone so that the login cannot be signed up again. An unknown
	// login is ErrNotFound and changes nothing.
	DeleteAccount(ctx context.Context, login, keyAddress, reason string) (DeletedCounts, error)
	// Tombstone is when login was deleted, or ErrNotFound.
	Tombstone(ctx context.Context, login string) (time.Time, error)
}

// DeletedCounts says how much DeleteAccount removed (for the log), and
// which sessions it ended.
type DeletedCounts struct {
	Docs, Blobs, Incoming, Outbound int
	Key                             bool
	Ended                           []Session
}
