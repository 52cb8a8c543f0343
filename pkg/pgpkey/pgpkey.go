// Package pgpkey makes and reads the OpenPGP keys of bitmaskd (docs/design.md,
// "Keys"): the user's own key, generated at signup as a v4 Curve25519 key
// (EdDSA primary for signing, ECDH subkey for encryption) with an expiry,
// so it works with GnuPG and other OpenPGP mail. The private key is kept in
// the encrypted document store, so every device of the user has it; the
// public key is published to the provider's nicknym directory.
package pgpkey

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// DefaultLifetime of the user's key; it is replaced before it expires.
const DefaultLifetime = 2 * 365 * 24 * time.Hour

// Generate makes a key for address, valid for lifetime from now.
func Generate(address string, lifetime time.Duration, now time.Time) (*openpgp.Entity, error) {
	if lifetime <= 0 {
		lifetime = DefaultLifetime
	}
	cfg := &packet.Config{
		Algorithm:       packet.PubKeyAlgoEdDSA,
		Curve:           packet.Curve25519,
		DefaultHash:     crypto.SHA256,
		KeyLifetimeSecs: uint32(lifetime / time.Second),
		Time:            func() time.Time { return now },
	}
	e, err := openpgp.NewEntity("", "", address, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgpkey: generating the key: %w", err)
	}
	return e, nil
}

// ArmorPublic returns the armored public key.
func ArmorPublic(e *openpgp.Entity) (string, error) {
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		return "", fmt.Errorf("pgpkey: armoring the public key: %w", err)
	}
	if err := e.Serialize(w); err != nil {
		return "", fmt.Errorf("pgpkey: serialising the public key: %w", err)
	}
	if err := w.Close(); err != nil {
		return "", fmt.Errorf("pgpkey: armoring the public key: %w", err)
	}
	return buf.String() + "\n", nil
}

// ArmorPrivate returns the armored private key (unprotected: it is only
// ever kept inside the encrypted store or handed to the user on export).
func ArmorPrivate(e *openpgp.Entity) (string, error) {
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PrivateKeyType, nil)
	if err != nil {
		return "", fmt.Errorf("pgpkey: armoring the private key: %w", err)
	}
	if err := e.SerializePrivateWithoutSigning(w, nil); err != nil {
		return "", fmt.Errorf("pgpkey: serialising the private key: %w", err)
	}
	if err := w.Close(); err != nil {
		return "", fmt.Errorf("pgpkey: armoring the private key: %w", err)
	}
	return buf.String() + "\n", nil
}

// ReadArmored reads exactly one key from armored text.
func ReadArmored(s string) (*openpgp.Entity, error) {
	el, err := openpgp.ReadArmoredKeyRing(strings.NewReader(s))
	if err != nil {
		return nil, fmt.Errorf("pgpkey: reading the armored key: %w", err)
	}
	if len(el) != 1 {
		return nil, fmt.Errorf("pgpkey: expected one key, got %d", len(el))
	}
	return el[0], nil
}

// Fingerprint is the key's fingerprint as uppercase hex.
func Fingerprint(e *openpgp.Entity) string {
	return strings.ToUpper(fmt.Sprintf("%x", e.PrimaryKey.Fingerprint))
}

// Expires is when the primary key expires (zero: never).
func Expires(e *openpgp.Entity) time.Time {
	sig, _ := e.PrimarySelfSignature()
	if sig == nil || sig.KeyLifetimeSecs == nil || *sig.KeyLifetimeSecs == 0 {
		return time.Time{}
	}
	return e.PrimaryKey.CreationTime.Add(time.Duration(*sig.KeyLifetimeSecs) * time.Second)
}

// Addresses are the email addresses of the key's user IDs.
func Addresses(e *openpgp.Entity) []string {
	var out []string
	for _, id := range e.Identities {
		if id.UserId != nil && id.UserId.Email != "" {
			out = append(out, strings.ToLower(id.UserId.Email))
		}
	}
	return out
}

// ErrNoKey is returned when an account has no key yet.
var ErrNoKey = errors.New("pgpkey: no key")
