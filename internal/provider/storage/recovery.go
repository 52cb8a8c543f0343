package storage

import (
	"context"
	"time"

	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// Recovery is what the provider keeps of an account's recovery code
// (docs/formats.md, "Recovery code"): a second SRP salt and verifier,
// the code's Argon2id parameters, and the storage secret wrapped under
// the key derived from the code. None of it reveals the code; guessing
// it offline costs an Argon2id per guess over 160 bits.
type Recovery struct {
	SRPSalt       []byte         `json:"srp_salt"`
	SRPVerifier   []byte         `json:"srp_verifier"`
	KDF           seal.KDFParams `json:"kdf"`
	WrappedSecret []byte         `json:"wrapped_secret"`
	Updated       time.Time      `json:"updated"`
	// Failures counts the recovery proofs that failed since the code
	// was set; LastFailure is the latest one's time.
	Failures    uint64    `json:"failures"`
	LastFailure time.Time `json:"last_failure,omitzero"`
}

// RecoveryStore keeps what lets a user who forgot the password recover
// the account with a recovery code (issue 13).
type RecoveryStore interface {
	// SetRecovery stores the recovery data of an existing account,
	// replacing (and so voiding) any earlier code's, with the failure
	// count reset. ErrNotFound if the account does not exist.
	SetRecovery(ctx context.Context, login string, c providerapi.Credentials, now time.Time) error
	// Recovery is the account's recovery data; ErrNotFound when the
	// account has none (or does not exist).
	Recovery(ctx context.Context, login string) (*Recovery, error)
	// RecoveryFailed counts a failed recovery proof and returns the new
	// count; ErrNotFound when the account has no recovery data.
	RecoveryFailed(ctx context.Context, login string, at time.Time) (uint64, error)
	// DeleteRecovery removes the account's recovery data (an account's
	// deletion); no error when there is none.
	DeleteRecovery(ctx context.Context, login string) error
}
