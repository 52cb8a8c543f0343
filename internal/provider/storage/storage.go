// Package storage is leapd's persistence: accounts, sessions, invites, the
// per-user encrypted document store with its change sequence, blobs and
// the nicknym key directory. Store is the interface the provider builds on;
// Bolt (bbolt) is the embedded default. A provider that outgrows one
// machine implements Store on another engine.
//
// Nothing in here is secret from the provider's point of view: documents
// and blobs are ciphertext made on the user's devices, verifiers are SRP
// verifiers, and session tokens are kept only as SHA-256 hashes.
package storage

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// Errors a Store returns.
var (
	ErrNotFound      = errors.New("storage: not found")
	ErrExists        = errors.New("storage: already exists")
	ErrInviteInvalid = errors.New("storage: invite code invalid or used")
)

// MaxBlobSize is the largest blob a store takes: a 64 MiB message,
// encrypted, with room.
const MaxBlobSize = 96 << 20

// User is an account.
type User struct {
	Login         string         `json:"login"`
	SRPSalt       []byte         `json:"srp_salt"`
	SRPVerifier   []byte         `json:"srp_verifier"`
	KDF           seal.KDFParams `json:"kdf"`
	WrappedSecret []byte         `json:"wrapped_secret"`
	Created       time.Time      `json:"created"`
}

// Session is a login session; the token itself is never stored.
type Session struct {
	TokenHash []byte    `json:"-"`
	Login     string    `json:"login"`
	Expires   time.Time `json:"expires"`
	// The device the session belongs to (account.go): the id and name it
	// gave at login ("" for a client that gave none), when it logged in
	// (kept across renewals) and when it last pulled or pushed.
	DeviceID   string    `json:"device_id,omitempty"`
	DeviceName string    `json:"device_name,omitempty"`
	Created    time.Time `json:"created,omitzero"`
	LastSync   time.Time `json:"last_sync,omitzero"`
}

// Store is leapd's storage. Every per-user method takes the login of the
// authenticated user; an implementation never lets one user's call reach
// another user's data.
type Store interface {
	// The account-life parts, each in its own file: recovery codes
	// (recovery.go), devices and account deletion (account.go); what
	// several instances share (cluster.go); per-user usage for quotas
	// (quota.go).
	RecoveryStore
	AccountStore
	ClusterStore
	QuotaStore

	// CreateUser stores a new account. With a non-empty invite code the
	// code is checked first (ErrInviteInvalid, whether the login is taken
	// or not) and consumed in the same transaction, also when the login
	// is taken (ErrExists): a taken login costs the code a signup costs,
	// so invites bound how many logins can be tried.
	CreateUser(ctx context.Context, u *User, invite string) error
	User(ctx context.Context, login string) (*User, error)
	// UpdateCredentials replaces verifier, KDF parameters and wrapped
	// secret atomically and ends every session of the user but keep.
	UpdateCredentials(ctx context.Context, login string, c providerapi.Credentials, keep []byte) error

	AddInvite(ctx context.Context, code string) error

	CreateSession(ctx context.Context, s *Session) error
	Session(ctx context.Context, tokenHash []byte) (*Session, error)
	DeleteSession(ctx context.Context, tokenHash []byte) error
	// ExpireSessions removes sessions that expired before now.
	ExpireSessions(ctx context.Context, now time.Time) error

	// PushDocs applies a batch in one transaction: each document whose
	// base revision is current is stored, the others are conflicts.
	PushDocs(ctx context.Context, login string, docs []providerapi.DocPush) ([]providerapi.PushResult, error)
	// Changes returns the latest revision of each document changed
	// after since, at most limit of them, in sequence order.
	Changes(ctx context.Context, login string, since uint64, limit int) (changes []providerapi.Doc, lastSeq uint64, more bool, err error)
	Doc(ctx context.Context, login, id string) (*providerapi.Doc, error)
	LastSeq(ctx context.Context, login string) (uint64, error)

	// PutBlob stores an immutable blob of size bytes read from r;
	// storing an existing id again is a no-op (r is not read). A reader
	// that fails or ends before size bytes stores nothing and returns
	// an error. Blob returns the blob's reader and size; the caller
	// closes it.
	PutBlob(ctx context.Context, login, id string, r io.Reader, size int64) error
	Blob(ctx context.Context, login, id string) (io.ReadCloser, int64, error)

	// PutIncoming appends an encrypted message to the user's incoming
	// queue and returns the queue's new counter; it is durable when it
	// returns.
	PutIncoming(ctx context.Context, login string, data []byte) (id string, counter uint64, err error)
	ListIncoming(ctx context.Context, login string, limit int) ([]providerapi.IncomingItem, bool, error)
	Incoming(ctx context.Context, login, id string) ([]byte, error)
	DeleteIncoming(ctx context.Context, login, id string) error
	IncomingCounter(ctx context.Context, login string) (uint64, error)

	PutKey(ctx context.Context, address string, armored []byte) error
	Key(ctx context.Context, address string) ([]byte, error)

	Close() error

	// The outbound queue (outq.go): mail submitted for other
	// providers, readable, kept only until delivered or bounced.

	// PutOutbound stores a new item with its message and sets its ID;
	// it is durable when it returns.
	PutOutbound(ctx context.Context, item *OutboundItem) error
	// ListDueOutbound returns up to limit items due at now (NextAttempt
	// not after it), earliest first, without their messages.
	ListDueOutbound(ctx context.Context, now time.Time, limit int) ([]*OutboundItem, error)
	// OutboundMessage is the message of an item.
	OutboundMessage(ctx context.Context, id string) ([]byte, error)
	// UpdateOutbound stores an item's new state (not its message).
	UpdateOutbound(ctx context.Context, item *OutboundItem) error
	// DeleteOutbound removes an item and its message.
	DeleteOutbound(ctx context.Context, id string) error
}
