package providerclient

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/pkg/seal"
	"github.com/bitmask-go/bitmask/pkg/srp"
)

// The account flows of docs/design.md, "Accounts and secrets": the password is
// stretched here with Argon2id, HKDF splits the stretch into the SRP
// secret x and the key-encryption key, and only the SRP verifier, the
// salts and the wrapped storage secret ever leave the device.

// ErrWrongPassword is returned when the provider rejects the SRP proof or
// the wrapped secret does not open with the password.
var ErrWrongPassword = errors.New("wrong username or password")

// wrapAD binds a wrapped secret to its account.
func wrapAD(login string) []byte { return []byte("bitmask-secret-v1\x00" + login) }

// NewCredentials derives the verifier and wraps secret for password.
func NewCredentials(login string, password, secret []byte, kdf seal.KDFParams) (*providerapi.Credentials, error) {
	pk, err := seal.DerivePasswordKeys(password, kdf)
	if err != nil {
		return nil, fmt.Errorf("deriving the password keys: %w", err)
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("making the SRP salt: %w", err)
	}
	wrapped, err := seal.WrapSecret(&pk.KEK, secret, wrapAD(login))
	if err != nil {
		return nil, fmt.Errorf("wrapping the storage secret: %w", err)
	}
	return &providerapi.Credentials{
		SRPSalt:       salt,
		SRPVerifier:   srp.DefaultParams().Verifier(pk.SRPSecret),
		KDF:           kdf,
		WrappedSecret: wrapped,
	}, nil
}

// SignupAccount creates the account with a fresh storage secret and
// returns it.
// The provider answers with a first session token.
func (c *Client) SignupAccount(ctx context.Context, login string, password []byte, kdf seal.KDFParams, invite string) (secret []byte, cr *providerapi.Credentials, token string, expires time.Time, err error) {
	secret, err = seal.NewStorageSecret()
	if err != nil {
		return nil, nil, "", time.Time{}, fmt.Errorf("making the storage secret: %w", err)
	}
	cr, err = NewCredentials(login, password, secret, kdf)
	if err != nil {
		return nil, nil, "", time.Time{}, err
	}
	resp, err := c.Signup(ctx, &providerapi.SignupRequest{
		Login: login, SRPSalt: cr.SRPSalt, SRPVerifier: cr.SRPVerifier,
		KDF: cr.KDF, WrappedSecret: cr.WrappedSecret, InviteCode: invite,
		Device: c.Device(),
	})
	if err != nil {
		return nil, nil, "", time.Time{}, err
	}
	return secret, cr, resp.Token, resp.Expires, nil
}

// Session is the outcome of a login.
type Session struct {
	Token         string
	Expires       time.Time
	Address       string
	KDF           seal.KDFParams
	WrappedSecret []byte
	Secret        []byte // the unwrapped storage secret
}

// Login runs SRP-6a against the provider, verifies the provider's proof,
// and unwraps the storage secret. On success the client carries the
// session token.
//
// Login holds the provider's Argon2id parameters only to the bounds of
// the format ([seal.KDFParams.Validate]), which the cheap parameters of
// tests meet. bitmaskd logs in with [Client.LoginAtLeast].
func (c *Client) Login(ctx context.Context, login string, password []byte) (*Session, error) {
	return c.login(ctx, login, password, func(seal.KDFParams) error { return nil })
}

// LoginAtLeast is Login that refuses the provider's Argon2id parameters
// when they are weaker (fewer passes, less memory, or a short salt; see
// [seal.KDFParams.AtLeast]) than floor, which is [seal.MinKDFParams] for
// real accounts, or than stored, the parameters this device kept for the
// account (nil if it kept none). It refuses after the provider's first
// answer and before anything is derived from the password, so no proof
// is sent. The error wraps [seal.ErrWeakKDF] and says that the provider
// asked for weaker password hashing than allowed.
func (c *Client) LoginAtLeast(ctx context.Context, login string, password []byte, floor seal.KDFParams, stored *seal.KDFParams) (*Session, error) {
	return c.login(ctx, login, password, func(k seal.KDFParams) error {
		if err := k.AtLeast(floor); err != nil {
			return fmt.Errorf("login refused: the provider asked for weaker password hashing than allowed (%w); nothing derived from the password was sent", err)
		}
		if stored != nil {
			if err := k.AtLeast(*stored); err != nil {
				return fmt.Errorf("login refused: the provider asked for weaker password hashing than allowed, weaker than this device kept for the account (%w); nothing derived from the password was sent", err)
			}
		}
		return nil
	})
}

// login is Login after check has accepted the provider's parameters.
func (c *Client) login(ctx context.Context, login string, password []byte, check func(seal.KDFParams) error) (*Session, error) {
	p := srp.DefaultParams()
	cl, err := srp.StartClient(p, []byte(login))
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	start, err := c.LoginStart(ctx, login, cl.A())
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	if err := check(start.KDF); err != nil {
		return nil, err
	}
	if err := start.KDF.Validate(); err != nil {
		return nil, fmt.Errorf("login: provider sent unacceptable key derivation parameters: %w", err)
	}
	pk, err := seal.DerivePasswordKeys(password, start.KDF)
	if err != nil {
		return nil, fmt.Errorf("login: deriving the password keys: %w", err)
	}
	m1, err := cl.RespondX(pk.SRPSecret, start.SRPSalt, start.B)
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	fin, err := c.LoginFinish(ctx, start.Handshake, m1)
	if err != nil {
		if IsCode(err, providerapi.CodeUnauthorized) {
			return nil, ErrWrongPassword
		}
		return nil, fmt.Errorf("login: %w", err)
	}
	if err := cl.VerifyServer(fin.M2); err != nil {
		return nil, errors.New("login: the provider could not prove it knows the verifier; refusing the session")
	}
	secret, err := seal.UnwrapSecret(&pk.KEK, fin.WrappedSecret, wrapAD(login))
	if err != nil {
		return nil, fmt.Errorf("login: unwrapping the storage secret: %w", err)
	}
	c.SetToken(fin.Token)
	return &Session{
		Token: fin.Token, Expires: fin.Expires, Address: fin.Address,
		KDF: start.KDF, WrappedSecret: fin.WrappedSecret, Secret: secret,
	}, nil
}

// UnwrapOffline opens a locally kept wrapped secret with the password: the
// offline login.
func UnwrapOffline(login string, password []byte, kdf seal.KDFParams, wrapped []byte) ([]byte, error) {
	pk, err := seal.DerivePasswordKeys(password, kdf)
	if err != nil {
		return nil, fmt.Errorf("deriving the password keys: %w", err)
	}
	secret, err := seal.UnwrapSecret(&pk.KEK, wrapped, wrapAD(login))
	if errors.Is(err, seal.ErrDecrypt) {
		return nil, ErrWrongPassword
	}
	if err != nil {
		return nil, fmt.Errorf("unwrapping the storage secret: %w", err)
	}
	return secret, nil
}
