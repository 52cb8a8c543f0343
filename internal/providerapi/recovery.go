package providerapi

import (
	"time"

	"github.com/bitmask-go/bitmask/pkg/seal"
)

// The recovery code's wire types (docs/provider-api.md §4.7). Setting
// the recovery data (PUT /1/users/self/recovery) sends Credentials: the
// SRP salt and verifier, Argon2id parameters and wrapped storage secret
// derived from the recovery code instead of the password.

// RecoveryStatus is GET /1/users/self/recovery.
type RecoveryStatus struct {
	Enabled     bool      `json:"enabled"`
	Updated     time.Time `json:"updated,omitzero"`
	Failures    uint64    `json:"failures"`
	LastFailure time.Time `json:"last_failure,omitzero"`
}

// RecoveryStartRequest is POST /1/recovery: the first SRP message,
// against the account's recovery verifier.
type RecoveryStartRequest struct {
	Login string `json:"login"`
	A     []byte `json:"A"`
}

// RecoveryStartResponse carries the recovery verifier's SRP salt, the
// server's B and the recovery code's Argon2id parameters.
type RecoveryStartResponse struct {
	Handshake string         `json:"handshake"`
	SRPSalt   []byte         `json:"srp_salt"`
	B         []byte         `json:"B"`
	KDF       seal.KDFParams `json:"kdf"`
}

// RecoveryFinishRequest is POST /1/recovery/{handshake}: the proof.
type RecoveryFinishRequest struct {
	M1 []byte `json:"M1"`
}

// RecoveryFinishResponse answers a correct proof: the server's proof,
// the storage secret wrapped under the recovery key, and a one-time
// reset token that sets new credentials (PUT /1/recovery/credentials)
// until Expires.
type RecoveryFinishResponse struct {
	M2            []byte    `json:"M2"`
	WrappedSecret []byte    `json:"wrapped_secret"`
	ResetToken    string    `json:"reset_token"`
	Expires       time.Time `json:"expires"`
}

// RecoveryResetRequest is PUT /1/recovery/credentials: the new
// password's credentials, and the device the new session belongs to.
type RecoveryResetRequest struct {
	Credentials
	Device *Device `json:"device,omitempty"`
}

// RecoveryResetResponse answers PUT /1/recovery/credentials: the new
// credentials are in place, every earlier session ended, and this is the
// account's one session.
type RecoveryResetResponse struct {
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
	Address string    `json:"address"`
}
