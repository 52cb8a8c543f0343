package providerclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/pkg/seal"
	"github.com/bitmask-go/bitmask/pkg/srp"
)

// Devices and account deletion (docs/provider-api.md §4.8, §4.9).

// SetDevice sets the device named in the next logins and signups.
func (c *Client) SetDevice(d providerapi.Device) {
	c.mu.Lock()
	c.device = &d
	c.mu.Unlock()
}

// Device is the device set with SetDevice, or nil.
func (c *Client) Device() *providerapi.Device {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.device
}

// OnSessionEnded sets fn to be told when the provider answers 401 with
// the reason the session was ended on purpose:
// providerapi.CodeSessionRevoked or CodeAccountDeleted. fn runs on the
// goroutine of the request and must not block on it.
func (c *Client) OnSessionEnded(fn func(code string)) {
	c.mu.Lock()
	c.onEnded = fn
	c.mu.Unlock()
}

func (c *Client) sessionEnded(code string) {
	if code != providerapi.CodeSessionRevoked && code != providerapi.CodeAccountDeleted {
		return
	}
	c.mu.Lock()
	fn := c.onEnded
	c.mu.Unlock()
	if fn != nil {
		fn(code)
	}
}

// Devices lists the account's devices.
func (c *Client) Devices(ctx context.Context) (*providerapi.DevicesResponse, error) {
	var out providerapi.DevicesResponse
	if err := c.do(ctx, c.hc, http.MethodGet, "/devices", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeDevice ends every session of the device id.
func (c *Client) RevokeDevice(ctx context.Context, id string) (*providerapi.RevokeResponse, error) {
	var out providerapi.RevokeResponse
	if err := c.do(ctx, c.hc, http.MethodDelete, "/devices/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteAccount deletes the account at the provider, with a fresh proof
// of the password: an SRP handshake for login whose proof goes with the
// deletion instead of making a session. The provider's Argon2id
// parameters are held to floor and stored (the parameters this device
// kept), as at login ([Client.LoginAtLeast]), before anything is derived
// from the password. A wrong password is ErrWrongPassword and deletes
// nothing.
func (c *Client) DeleteAccount(ctx context.Context, login string, password []byte, floor seal.KDFParams, stored *seal.KDFParams) error {
	p := srp.DefaultParams()
	cl, err := srp.StartClient(p, []byte(login))
	if err != nil {
		return fmt.Errorf("deletion: %w", err)
	}
	start, err := c.LoginStart(ctx, login, cl.A())
	if err != nil {
		return fmt.Errorf("deletion: %w", err)
	}
	if err := start.KDF.AtLeast(floor); err != nil {
		return fmt.Errorf("deletion refused: the provider asked for weaker password hashing than allowed (%w); nothing derived from the password was sent", err)
	}
	if stored != nil {
		if err := start.KDF.AtLeast(*stored); err != nil {
			return fmt.Errorf("deletion refused: the provider asked for weaker password hashing than this device kept for the account (%w); nothing derived from the password was sent", err)
		}
	}
	if err := start.KDF.Validate(); err != nil {
		return fmt.Errorf("deletion: provider sent unacceptable key derivation parameters: %w", err)
	}
	pk, err := seal.DerivePasswordKeys(password, start.KDF)
	if err != nil {
		return fmt.Errorf("deletion: deriving the password keys: %w", err)
	}
	m1, err := cl.RespondX(pk.SRPSecret, start.SRPSalt, start.B)
	if err != nil {
		return fmt.Errorf("deletion: %w", err)
	}
	var out providerapi.DeleteAccountResponse
	err = c.do(ctx, c.hc, http.MethodDelete, "/users/self", &providerapi.DeleteAccountRequest{Handshake: start.Handshake, M1: m1}, &out)
	if IsCode(err, providerapi.CodeWrongPassword) {
		return ErrWrongPassword
	} else if err != nil {
		return fmt.Errorf("deletion: %w", err)
	}
	if err := cl.VerifyServer(out.M2); err != nil {
		return errors.New("deletion: the provider answered without proving it knew the verifier")
	}
	return nil
}
