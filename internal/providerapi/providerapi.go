// Package providerapi holds the wire types of the provider API that leapd serves
// and bitmaskd speaks. docs/provider-api.md describes every endpoint; the
// JSON field names here are that document's.
//
// Binary values ([]byte) travel as standard base64, which is what
// encoding/json does with them.
package providerapi

import (
	"time"

	"github.com/bitmask-go/bitmask/pkg/seal"
)

// Version is the api_version leapd serves and bitmaskd speaks; paths are
// prefixed with "/" + Version.
const Version = "1"

// ProviderJSON is https://DOMAIN/provider.json, with LEAP's field names.
type ProviderJSON struct {
	Domain            string            `json:"domain"`
	Name              map[string]string `json:"name"`
	Description       map[string]string `json:"description,omitempty"`
	Languages         []string          `json:"languages,omitempty"`
	DefaultLanguage   string            `json:"default_language,omitempty"`
	APIURI            string            `json:"api_uri"`
	APIVersion        string            `json:"api_version"`
	CACertURI         string            `json:"ca_cert_uri"`
	CACertFingerprint string            `json:"ca_cert_fingerprint"` // "SHA256: <lowercase hex>"
	Services          []string          `json:"services"`
	// Submission is host:port of the provider's mail submission service
	// (STARTTLS; AUTH PLAIN with login and session token). Not a LEAP
	// field.
	Submission       string `json:"submission,omitempty"`
	EnrollmentPolicy string `json:"enrollment_policy"` // open, invite, closed
}

// Enrollment policies.
const (
	EnrollOpen   = "open"
	EnrollInvite = "invite"
	EnrollClosed = "closed"
)

// SignupRequest is POST /1/users.
type SignupRequest struct {
	Login         string         `json:"login"`
	SRPSalt       []byte         `json:"srp_salt"`
	SRPVerifier   []byte         `json:"srp_verifier"`
	KDF           seal.KDFParams `json:"kdf"`
	WrappedSecret []byte         `json:"wrapped_secret"`
	InviteCode    string         `json:"invite_code,omitempty"`
	// Device names the device the first session belongs to (devices.go).
	Device *Device `json:"device,omitempty"`
}

// SignupResponse answers a signup.
// The account's first session comes with it, so signing up needs no
// second password stretch.
type SignupResponse struct {
	Login   string    `json:"login"`
	Address string    `json:"address"`
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

// LoginStartRequest is POST /1/sessions: the first SRP message.
type LoginStartRequest struct {
	Login string `json:"login"`
	A     []byte `json:"A"`
}

// LoginStartResponse carries the SRP salt, the server's B and the Argon2id
// parameters (with their salt) the device needs to compute x.
type LoginStartResponse struct {
	Handshake string         `json:"handshake"`
	SRPSalt   []byte         `json:"srp_salt"`
	B         []byte         `json:"B"`
	KDF       seal.KDFParams `json:"kdf"`
}

// LoginFinishRequest is POST /1/sessions/{handshake}: the client's proof.
type LoginFinishRequest struct {
	M1 []byte `json:"M1"`
	// Device names the device the session belongs to (devices.go).
	Device *Device `json:"device,omitempty"`
}

// LoginFinishResponse is returned once the client proved the password.
type LoginFinishResponse struct {
	M2            []byte    `json:"M2"`
	Token         string    `json:"token"`
	Expires       time.Time `json:"expires"`
	Address       string    `json:"address"`
	WrappedSecret []byte    `json:"wrapped_secret"`
}

// RenewResponse is POST /1/sessions/current/renew: a fresh session that
// replaces the one the request was made with.
type RenewResponse struct {
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

// Credentials replaces a user's verifier and wrapped secret in one step
// (PUT /1/users/self).
type Credentials struct {
	SRPSalt       []byte         `json:"srp_salt"`
	SRPVerifier   []byte         `json:"srp_verifier"`
	KDF           seal.KDFParams `json:"kdf"`
	WrappedSecret []byte         `json:"wrapped_secret"`
}

// SecretResponse is GET /1/users/self/secret.
type SecretResponse struct {
	KDF           seal.KDFParams `json:"kdf"`
	WrappedSecret []byte         `json:"wrapped_secret"`
}

// Doc is a document as the provider sees it: an opaque id, a revision, a
// tombstone flag and ciphertext. Seq is the change sequence at which this
// revision landed (set by the provider).
type Doc struct {
	ID         string `json:"id"`
	Rev        uint64 `json:"rev"`
	Deleted    bool   `json:"deleted,omitempty"`
	Ciphertext []byte `json:"ciphertext"`
	Seq        uint64 `json:"seq,omitempty"`
}

// DocPush is one document of a batch push: the new revision must be
// BaseRev+1 and BaseRev must be the provider's current revision (0 for a
// new document), else the push of this document is a conflict.
type DocPush struct {
	ID         string `json:"id"`
	BaseRev    uint64 `json:"base_rev"`
	Rev        uint64 `json:"rev"`
	Deleted    bool   `json:"deleted,omitempty"`
	Ciphertext []byte `json:"ciphertext"`
}

// PushRequest is POST /1/docs.
type PushRequest struct {
	Docs []DocPush `json:"docs"`
}

// Push result statuses.
const (
	PushOK       = "ok"
	PushConflict = "conflict"
)

// PushResult is the outcome of one document of a push. On a conflict,
// Current is the provider's current revision of the document.
type PushResult struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Rev     uint64 `json:"rev"`
	Seq     uint64 `json:"seq,omitempty"`
	Current *Doc   `json:"current,omitempty"`
}

// PushResponse answers a push, one result per pushed document, in order.
type PushResponse struct {
	Results []PushResult `json:"results"`
}

// ChangesResponse is GET /1/docs/changes?since=N&limit=M: the latest
// revision of each document changed after sequence N, in sequence order.
type ChangesResponse struct {
	Changes []Doc  `json:"changes"`
	LastSeq uint64 `json:"last_seq"`
	More    bool   `json:"more"`
	// Head is the user's current sequence, so a device can show how far
	// a long sync has come.
	Head uint64 `json:"head,omitempty"`
}

// Event is what the notification stream (GET /1/events, server-sent
// events) carries: the user's latest change sequence and incoming-queue
// counter. A device acts when either is ahead of what it has seen.
type Event struct {
	Seq      uint64 `json:"seq"`
	Incoming uint64 `json:"incoming"`
}

// IncomingItem is a message the MX accepted for the user, encrypted to
// the user's OpenPGP key, waiting for a device to take it.
type IncomingItem struct {
	ID       string    `json:"id"`
	Size     int       `json:"size"`
	Received time.Time `json:"received"`
}

// IncomingList is GET /1/incoming: the oldest items first.
type IncomingList struct {
	Items []IncomingItem `json:"items"`
	More  bool           `json:"more"`
}

// KeyRequest publishes the caller's public key (PUT /1/keys).
type KeyRequest struct {
	OpenPGP string `json:"openpgp"`
}

// KeyResponse is GET /1/keys?address=ADDR (nicknym).
type KeyResponse struct {
	Address string `json:"address"`
	OpenPGP string `json:"openpgp"`
}

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"`
}

// Error codes a client can act on.
const (
	CodeBadRequest   = "bad_request"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeNotFound     = "not_found"
	CodeExists       = "exists"
	CodeRateLimited  = "rate_limited"
	CodeTooLarge     = "too_large"
	CodeEnrollment   = "enrollment_closed"
	CodeInternal     = "internal"
	// CodeQuota (HTTP 507): the write would take the account past its
	// storage quota; smaller or deleted documents make room.
	CodeQuota = "quota_exceeded"
)
