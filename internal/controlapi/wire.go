package controlapi

import "time"

// The bodies of the control API's requests and answers. Field names and
// JSON keys are the wire contract of docs/control-api.md: a change here
// is a change of the API.

// ProviderRef says where an account's provider is: a domain or URL
// (default: the address's domain) and optionally the CA fingerprint the
// user was given.
type ProviderRef struct {
	URL         string `json:"provider,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

// CreateRequest is POST /v1/users: sign up at the provider.
type CreateRequest struct {
	Address  string `json:"address"`
	Password string `json:"password"`
	ProviderRef
	Invite string `json:"invite,omitempty"`
}

// LoginRequest is POST /v1/login.
type LoginRequest struct {
	Address  string `json:"address"`
	Password string `json:"password"`
	ProviderRef
}

// AddressRequest names one account (POST /v1/logout).
type AddressRequest struct {
	Address string `json:"address"`
}

// PasswdRequest is POST /v1/passwd.
type PasswdRequest struct {
	Address string `json:"address"`
	Old     string `json:"old_password"`
	New     string `json:"new_password"`
}

// StatusResponse is GET /v1/status: every logged-in account, and those
// whose login is in its first sync.
type StatusResponse struct {
	Accounts []AccountStatus `json:"accounts"`
	// TLSFingerprint is the local certificate's SHA-256 (lowercase hex),
	// as in MailConfig.
	TLSFingerprint string `json:"tls_sha256,omitempty"`
}

// AccountStatus is one account in `bitmaskctl status`, and the answer
// of a signup or login.
type AccountStatus struct {
	Address  string     `json:"address"`
	State    string     `json:"state"` // "ready", or "logging in" during the first sync
	Online   bool       `json:"online"`
	Provider string     `json:"provider"`
	Sync     SyncStatus `json:"sync"`
	Key      string     `json:"key_fingerprint,omitempty"`
}

// SyncStatus is where an account's sync with the provider stands.
type SyncStatus struct {
	LastSeq   uint64    `json:"last_seq"`
	Head      uint64    `json:"head"` // the provider's sequence, as last seen
	Pending   int       `json:"pending"`
	LastSync  time.Time `json:"last_sync,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	Rejected  int       `json:"rejected"`
	Pulled    int       `json:"pulled"` // documents applied by the sync in progress
	Syncing   bool      `json:"syncing"`
	Online    bool      `json:"online"`
}

// KeyInfo is one key in GET /v1/keys: the account's own keys (Level
// "own"), then the contacts' keys it keeps.
type KeyInfo struct {
	Address     string    `json:"address"`
	Fingerprint string    `json:"fingerprint"`
	Created     time.Time `json:"created"`
	Expires     time.Time `json:"expires,omitzero"`
	Own         bool      `json:"own"`
	Private     bool      `json:"private"`
	Level       string    `json:"validation"`
}

// ExportResponse is GET /v1/keys/export: the account's newest key,
// armored (public, or private with secret=1).
type ExportResponse struct {
	Address     string `json:"address"`
	Fingerprint string `json:"fingerprint"`
	Armored     string `json:"armored"`
}

// ErrorResponse is the body of every error answer from the API's own
// handlers.
type ErrorResponse struct {
	Error string `json:"error"`
}

// ContactRequest names a contact's key for an account (POST
// /v1/keys/fetch and /v1/keys/trust).
type ContactRequest struct {
	Address     string `json:"address,omitempty"` // the account (optional with one account)
	Contact     string `json:"contact"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

// ContactKey is a contact's key as bitmaskctl shows it.
type ContactKey struct {
	Address     string    `json:"address"`
	Fingerprint string    `json:"fingerprint"`
	Level       string    `json:"validation"`
	Source      string    `json:"source"`
	Created     time.Time `json:"created"`
	Expires     time.Time `json:"expires,omitzero"`
	Updated     time.Time `json:"updated"`
}

// MailConfig is what to type into a mail client (GET /v1/mail/config,
// format json).
type MailConfig struct {
	Address        string `json:"address"`
	Username       string `json:"username"`
	Password       string `json:"password"` // the local token
	IMAPHost       string `json:"imap_host"`
	IMAPPort       int    `json:"imap_port"`
	SMTPHost       string `json:"smtp_host"`
	SMTPPort       int    `json:"smtp_port"`
	Security       string `json:"security"` // "STARTTLS"
	TLSFingerprint string `json:"tls_sha256,omitempty"`
}

// Formats of GET /v1/mail/config.
const (
	FormatJSON        = "json"        // MailConfig, the default
	FormatText        = "text"        // for people
	FormatThunderbird = "thunderbird" // Mozilla autoconfig XML, without the token
	FormatApple       = "apple"       // an Apple .mobileconfig profile, with the token
)
