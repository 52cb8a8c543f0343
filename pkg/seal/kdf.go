package seal

import (
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/crypto/argon2"
)

// KDFParams are the Argon2id parameters used to stretch a password. They are
// stored (with the salt) by the provider and fetched before login, so
// [KDFParams.Validate] bounds them in both directions.
type KDFParams struct {
	Time      uint32 `json:"t"`    // Argon2id passes
	MemoryKiB uint32 `json:"m"`    // Argon2id memory in KiB
	Threads   uint8  `json:"p"`    // Argon2id parallelism (lanes)
	Salt      []byte `json:"salt"` // 16..64 random bytes; base64 in JSON
}

// Product defaults: Argon2id with 6 passes over 256 MiB in 2 lanes. Measured
// with BenchmarkDerivePasswordKeysDefault at 0.55–0.83 s (median 0.66 s) per
// DerivePasswordKeys on a shared 2-core AMD EPYC VM (see docs/formats.md).
const (
	defaultTime      = 6
	defaultMemoryKiB = 256 * 1024
	defaultThreads   = 2

	saltSize = 16

	minTime      = 1
	maxTime      = 16
	minMemoryKiB = 8 * 1024
	maxMemoryKiB = 2 * 1024 * 1024 // 2 GiB
	minThreads   = 1
	maxThreads   = 16
	minSaltSize  = 16
	maxSaltSize  = 64

	labelSRP = "bitmask/v1/srp-x"
	labelKEK = "bitmask/v1/kek"
)

// The floor of the Argon2id parameters a client accepts from a provider
// ([MinKDFParams]): 3 passes over 64 MiB. That is RFC 9106's second
// recommended option (section 4; its 4 lanes aside, which are not
// strength), and above OWASP's Password Storage Cheat Sheet minimum for
// Argon2id (19 MiB, 2 passes) in both memory and passes, with more memory
// than any of the options it lists as equivalent (up to 46 MiB at 1 pass).
// It costs an eighth of the product default (6 passes over 256 MiB, the
// only default the repository has used), so accounts made with it pass.
const (
	MinKDFTime      = 3
	MinKDFMemoryKiB = 64 * 1024
)

// MinKDFParams returns the floor: t=3, m=65536 KiB (p=1 and no salt,
// which [KDFParams.AtLeast] does not compare).
func MinKDFParams() KDFParams {
	return KDFParams{Time: MinKDFTime, MemoryKiB: MinKDFMemoryKiB, Threads: 1}
}

// ErrWeakKDF is wrapped by the errors of [KDFParams.AtLeast].
var ErrWeakKDF = errors.New("seal: kdf weaker than the minimum")

// AtLeast reports whether p is at least as strong as floor: an error
// wrapping ErrWeakKDF when p has fewer passes or less memory than floor, or
// a salt shorter than the required 16 bytes. Lanes do not count as strength
// (more lanes only finish sooner on more cores), so they are not compared,
// nor is the salt's value. AtLeast does not check the ceilings; see
// [KDFParams.Validate].
func (p KDFParams) AtLeast(floor KDFParams) error {
	switch {
	case p.Time < floor.Time:
		return fmt.Errorf("%w: %d passes, at least %d required", ErrWeakKDF, p.Time, floor.Time)
	case p.MemoryKiB < floor.MemoryKiB:
		return fmt.Errorf("%w: %d KiB of memory, at least %d KiB required", ErrWeakKDF, p.MemoryKiB, floor.MemoryKiB)
	case len(p.Salt) < minSaltSize:
		return fmt.Errorf("%w: a salt of %d bytes, at least %d required", ErrWeakKDF, len(p.Salt), minSaltSize)
	}
	return nil
}

// DefaultKDFParams returns the product default parameters with a fresh random
// 16-byte salt. Use it when creating an account or changing a password.
func DefaultKDFParams() (KDFParams, error) {
	return newKDFParams(defaultTime, defaultMemoryKiB, defaultThreads)
}

// FastKDFParams returns the cheapest parameters Validate accepts (t=1,
// m=8192 KiB, p=1) with a fresh random 16-byte salt. They are below
// [MinKDFParams] and meant for tests; do not use them for real accounts.
func FastKDFParams() (KDFParams, error) {
	return newKDFParams(minTime, minMemoryKiB, minThreads)
}

func newKDFParams(t, m uint32, p uint8) (KDFParams, error) {
	salt := make([]byte, saltSize)
	if _, err := rand.Read(salt); err != nil {
		return KDFParams{}, fmt.Errorf("seal: reading randomness: %w", err)
	}
	return KDFParams{Time: t, MemoryKiB: m, Threads: p, Salt: salt}, nil
}

// Validate reports whether p is within the accepted bounds: 1 <= t <= 16,
// 8192 <= m <= 2097152 KiB (8 MiB to 2 GiB), 1 <= p <= 16 and a salt of 16 to
// 64 bytes. The ceilings exist because the parameters come from the provider:
// a hostile provider must not be able to make the client allocate absurdly.
// These lower bounds are only what the format allows; a client also holds
// the provider's parameters to [MinKDFParams] with [KDFParams.AtLeast].
func (p KDFParams) Validate() error {
	switch {
	case p.Time < minTime || p.Time > maxTime:
		return fmt.Errorf("seal: kdf time %d out of range [%d, %d]", p.Time, minTime, maxTime)
	case p.MemoryKiB < minMemoryKiB || p.MemoryKiB > maxMemoryKiB:
		return fmt.Errorf("seal: kdf memory %d KiB out of range [%d, %d]", p.MemoryKiB, minMemoryKiB, maxMemoryKiB)
	case p.Threads < minThreads || p.Threads > maxThreads:
		return fmt.Errorf("seal: kdf threads %d out of range [%d, %d]", p.Threads, minThreads, maxThreads)
	case len(p.Salt) < minSaltSize || len(p.Salt) > maxSaltSize:
		return fmt.Errorf("seal: kdf salt length %d out of range [%d, %d]", len(p.Salt), minSaltSize, maxSaltSize)
	}
	return nil
}

// PasswordKeys are the two values derived from a password.
type PasswordKeys struct {
	// SRPSecret is the 32-byte SRP private value x. The SRP verifier
	// computed from it is what the provider stores.
	SRPSecret []byte
	// KEK is the key-encryption key that wraps the storage secret
	// (see WrapSecret). It never leaves the client.
	KEK [32]byte
}

// DerivePasswordKeys stretches password once with Argon2id under p (after
// validating p) and splits the result with HKDF-SHA256 into the SRP secret
// (label "bitmask/v1/srp-x") and the KEK (label "bitmask/v1/kek").
func DerivePasswordKeys(password []byte, p KDFParams) (PasswordKeys, error) {
	if err := p.Validate(); err != nil {
		return PasswordKeys{}, err
	}
	stretched := argon2.IDKey(password, p.Salt, p.Time, p.MemoryKiB, p.Threads, keySize)
	defer clear(stretched)
	srp, err := hkdfKey(stretched, nil, labelSRP)
	if err != nil {
		return PasswordKeys{}, err
	}
	kek, err := hkdfKey(stretched, nil, labelKEK)
	if err != nil {
		return PasswordKeys{}, err
	}
	return PasswordKeys{SRPSecret: srp[:], KEK: kek}, nil
}
