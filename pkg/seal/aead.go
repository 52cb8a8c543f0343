package seal

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

// ErrDecrypt is returned when a ciphertext fails authentication: the key,
// the associated data (user, id, revision, ...) or the ciphertext itself is
// not what it was when the value was sealed. For [UnwrapSecret] under a
// password-derived KEK it usually means a wrong password.
var ErrDecrypt = errors.New("seal: message authentication failed")

const (
	// formatVersion is the first byte of every ciphertext this package
	// produces.
	formatVersion = 1

	keySize    = 32
	xNonceSize = chacha20poly1305.NonceSizeX // 24
	tagSize    = chacha20poly1305.Overhead   // 16

	// xHeaderSize is version byte || 24-byte nonce.
	xHeaderSize = 1 + xNonceSize
)

// hkdfKey returns 32 bytes of HKDF-SHA256(ikm, salt, info).
func hkdfKey(ikm, salt []byte, info string) ([keySize]byte, error) {
	var k [keySize]byte
	if _, err := io.ReadFull(hkdf.New(sha256.New, ikm, salt, []byte(info)), k[:]); err != nil {
		return k, fmt.Errorf("seal: hkdf: %w", err)
	}
	return k, nil
}

// randomNonce returns a fresh random XChaCha20-Poly1305 nonce.
func randomNonce() (*[xNonceSize]byte, error) {
	var n [xNonceSize]byte
	if _, err := rand.Read(n[:]); err != nil {
		return nil, fmt.Errorf("seal: reading randomness: %w", err)
	}
	return &n, nil
}

// newX returns an XChaCha20-Poly1305 instance for key.
func newX(key *[keySize]byte) (cipher.AEAD, error) {
	if key == nil {
		return nil, errors.New("seal: nil key")
	}
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return aead, nil
}

// xSeal returns version || nonce || XChaCha20-Poly1305(key, nonce, plaintext, ad).
func xSeal(key *[keySize]byte, nonce *[xNonceSize]byte, plaintext, ad []byte) ([]byte, error) {
	aead, err := newX(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, xHeaderSize, xHeaderSize+len(plaintext)+tagSize)
	out[0] = formatVersion
	copy(out[1:], nonce[:])
	return aead.Seal(out, nonce[:], plaintext, ad), nil
}

// xOpen reverses xSeal. what names the format in error messages.
func xOpen(key *[keySize]byte, ct, ad []byte, what string) ([]byte, error) {
	if key == nil {
		return nil, errors.New("seal: nil key")
	}
	if len(ct) < xHeaderSize+tagSize {
		return nil, fmt.Errorf("seal: %s too short", what)
	}
	if ct[0] != formatVersion {
		return nil, fmt.Errorf("seal: unsupported %s version %d", what, ct[0])
	}
	aead, err := newX(key)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, ct[1:xHeaderSize], ct[xHeaderSize:], ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}
