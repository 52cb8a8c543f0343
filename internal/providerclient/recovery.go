package providerclient

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/pkg/seal"
	"github.com/bitmask-go/bitmask/pkg/srp"
)

// The recovery code's flows (docs/provider-api.md §4.7): the code is
// stretched here with Argon2id, HKDF splits the stretch into the
// recovery SRP secret and the recovery KEK, and only the recovery
// verifier, the salts and the storage secret wrapped under that KEK
// leave the device.

// ErrWrongRecoveryCode is returned when the provider rejects the proof
// of a recovery code: a wrong code, a code of another account, an
// account without a code, or an unknown account (which look the same).
var ErrWrongRecoveryCode = errors.New("wrong address or recovery code")

// recoveryAD binds a secret wrapped under a recovery code to its account.
func recoveryAD(login string) []byte { return []byte("bitmask-recovery-v1\x00" + login) }

// NewRecoveryCredentials derives the recovery verifier from code and
// wraps secret under the code's key, with kdf's parameters and salt.
func NewRecoveryCredentials(login string, code seal.RecoveryCode, secret []byte, kdf seal.KDFParams) (*providerapi.Credentials, error) {
	rk, err := seal.DeriveRecoveryKeys(code, kdf)
	if err != nil {
		return nil, fmt.Errorf("deriving the recovery keys: %w", err)
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("making the SRP salt: %w", err)
	}
	wrapped, err := seal.WrapSecret(&rk.KEK, secret, recoveryAD(login))
	if err != nil {
		return nil, fmt.Errorf("wrapping the storage secret: %w", err)
	}
	return &providerapi.Credentials{
		SRPSalt:       salt,
		SRPVerifier:   srp.DefaultParams().Verifier(rk.SRPSecret),
		KDF:           kdf,
		WrappedSecret: wrapped,
	}, nil
}

// SetRecovery stores the account's recovery data, replacing (voiding)
// the earlier code's (PUT /1/users/self/recovery).
func (c *Client) SetRecovery(ctx context.Context, cr *providerapi.Credentials) error {
	return c.do(ctx, c.hc, http.MethodPut, "/users/self/recovery", cr, nil)
}

// RecoveryStatus says whether the account has a recovery code and how
// many proofs of it failed (GET /1/users/self/recovery).
func (c *Client) RecoveryStatus(ctx context.Context) (*providerapi.RecoveryStatus, error) {
	var out providerapi.RecoveryStatus
	if err := c.do(ctx, c.hc, http.MethodGet, "/users/self/recovery", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Recover sets a new password with the recovery code: it proves the
// code with SRP against the recovery verifier, checks the provider's
// proof, unwraps the storage secret with the code's key, and sets
// credentials for newPassword (newKDF) with the one-time reset token.
// The provider then ends every other session of the account; the client
// carries the new one. floor bounds the provider's Argon2id parameters
// for the code as [Client.LoginAtLeast] does the password's: they are
// checked before anything is derived from the code.
func (c *Client) Recover(ctx context.Context, login string, code seal.RecoveryCode, floor seal.KDFParams, newPassword []byte, newKDF seal.KDFParams) (*Session, error) {
	p := srp.DefaultParams()
	cl, err := srp.StartClient(p, []byte(login))
	if err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	var start providerapi.RecoveryStartResponse
	if err := c.do(ctx, c.hc, http.MethodPost, "/recovery", &providerapi.RecoveryStartRequest{Login: login, A: cl.A()}, &start); err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	if err := start.KDF.Validate(); err != nil {
		return nil, fmt.Errorf("recovery: provider sent unacceptable key derivation parameters: %w", err)
	}
	if err := start.KDF.AtLeast(floor); err != nil {
		return nil, fmt.Errorf("recovery refused: the provider asked for weaker hashing of the recovery code than allowed (%w); nothing derived from the code was sent", err)
	}
	if len(start.Handshake) > 64 || strings.ContainsAny(start.Handshake, "/?#") {
		return nil, errors.New("recovery: malformed handshake id from provider")
	}
	rk, err := seal.DeriveRecoveryKeys(code, start.KDF)
	if err != nil {
		return nil, fmt.Errorf("recovery: deriving the recovery keys: %w", err)
	}
	m1, err := cl.RespondX(rk.SRPSecret, start.SRPSalt, start.B)
	if err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	var fin providerapi.RecoveryFinishResponse
	if err := c.do(ctx, c.hc, http.MethodPost, "/recovery/"+url.PathEscape(start.Handshake), &providerapi.RecoveryFinishRequest{M1: m1}, &fin); err != nil {
		if IsCode(err, providerapi.CodeUnauthorized) {
			return nil, ErrWrongRecoveryCode
		}
		return nil, fmt.Errorf("recovery: %w", err)
	}
	if err := cl.VerifyServer(fin.M2); err != nil {
		return nil, errors.New("recovery: the provider could not prove it knows the recovery verifier; stopping")
	}
	secret, err := seal.UnwrapSecret(&rk.KEK, fin.WrappedSecret, recoveryAD(login))
	if err != nil {
		return nil, fmt.Errorf("recovery: unwrapping the storage secret: %w", err)
	}
	cr, err := NewCredentials(login, newPassword, secret, newKDF)
	if err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	c.SetToken(fin.ResetToken)
	var reset providerapi.RecoveryResetResponse
	err = c.do(ctx, c.hc, http.MethodPut, "/recovery/credentials", &providerapi.RecoveryResetRequest{Credentials: *cr, Device: c.Device()}, &reset)
	c.SetToken("")
	if err != nil {
		return nil, fmt.Errorf("recovery: setting the new password: %w", err)
	}
	c.SetToken(reset.Token)
	return &Session{
		Token: reset.Token, Expires: reset.Expires, Address: reset.Address,
		KDF: cr.KDF, WrappedSecret: cr.WrappedSecret, Secret: secret,
	}, nil
}
