// Package localtoken is the local token: what a mail client uses as the
// password of an account on 127.0.0.1 (IMAP and SMTP). bitmaskd makes it
// on the device at the account's first login and it never leaves the
// device. It is also a key: account.json keeps the storage secret wrapped
// under a key derived from the token (HKDF-SHA256, then
// XChaCha20-Poly1305 bound to the address), so after a restart of
// bitmaskd a mail client's own login unlocks the account without the
// account password.
//
// This package holds the pure parts: making a token, its key, and the
// wrapping of the secret. The daemon keeps the token in the account's
// encrypted store.
package localtoken

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"

	"golang.org/x/crypto/hkdf"

	"github.com/bitmask-go/bitmask/pkg/seal"
)

// New makes a token: 16 random bytes as 32 lowercase hex characters.
func New() (string, error) {
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("making a local token: %w", err)
	}
	return hex.EncodeToString(raw), nil
}

// Equal compares a token a mail client gave with the account's, in
// constant time.
func Equal(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// KEK is the key-encryption key derived from token.
func KEK(token string) (*[32]byte, error) {
	var k [32]byte
	r := hkdf.New(sha256.New, []byte(token), nil, []byte("bitmask/v1/local-token-kek"))
	if _, err := io.ReadFull(r, k[:]); err != nil {
		return nil, fmt.Errorf("deriving the local token's key: %w", err)
	}
	return &k, nil
}

// wrapAD binds a wrapped secret to its account.
func wrapAD(address string) []byte { return []byte("bitmask-local-v1\x00" + address) }

// Wrap wraps the storage secret of address under token's key.
func Wrap(token, address string, secret []byte) ([]byte, error) {
	kek, err := KEK(token)
	if err != nil {
		return nil, err
	}
	w, err := seal.WrapSecret(kek, secret, wrapAD(address))
	if err != nil {
		return nil, fmt.Errorf("wrapping the secret under the local token: %w", err)
	}
	return w, nil
}

// Unwrap opens what Wrap made with the same token and address; a wrong
// token fails.
func Unwrap(token, address string, wrapped []byte) ([]byte, error) {
	kek, err := KEK(token)
	if err != nil {
		return nil, err
	}
	secret, err := seal.UnwrapSecret(kek, wrapped, wrapAD(address))
	if err != nil {
		return nil, fmt.Errorf("unwrapping the secret with the local token: %w", err)
	}
	return secret, nil
}
