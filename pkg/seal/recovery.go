package seal

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// A recovery code is the second way to unwrap the storage secret, for a
// user who forgot the password (docs/formats.md, "Recovery code"). It is
// 160 random bits written as 32 Crockford base32 characters followed by 3
// check characters, in 7 groups of 5 joined by dashes:
//
//	7K3QM-0RW5T-…-XXCHK
//
// The check characters are the first 15 bits of
// SHA-256("bitmask-recovery-check-v1" || 0x00 || entropy), so a typo is
// caught on the device (with probability 1 − 2^−15) before anything is
// sent. Reading is case-insensitive, ignores spaces and dashes, and takes
// O for 0 and I or L for 1, as Crockford's alphabet intends.
const (
	recoveryEntropySize = 20 // 160 bits
	recoveryDataChars   = 32 // 160 / 5
	recoveryCheckChars  = 3  // 15 bits
	recoveryChars       = recoveryDataChars + recoveryCheckChars
	recoveryGroup       = 5

	crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

	labelRecoveryCheck = "bitmask-recovery-check-v1"
	labelRecoverySRP   = "bitmask/v1/recovery-srp-x"
	labelRecoveryKEK   = "bitmask/v1/recovery-kek"
)

// ErrRecoveryCode is wrapped by every error of [ParseRecoveryCode]: the
// text is not a well-formed recovery code (a wrong length, a character
// outside the alphabet, or check characters that do not match, which
// means a typo).
var ErrRecoveryCode = errors.New("seal: not a valid recovery code")

// RecoveryCode is a parsed recovery code: its 160 random bits.
type RecoveryCode struct {
	entropy [recoveryEntropySize]byte
}

// NewRecoveryCode returns a fresh random recovery code.
func NewRecoveryCode() (RecoveryCode, error) {
	var c RecoveryCode
	if _, err := rand.Read(c.entropy[:]); err != nil {
		return RecoveryCode{}, fmt.Errorf("seal: reading randomness: %w", err)
	}
	return c, nil
}

// RecoveryCodeFromEntropy makes the code of 20 given bytes (test vectors).
func RecoveryCodeFromEntropy(b []byte) (RecoveryCode, error) {
	var c RecoveryCode
	if len(b) != recoveryEntropySize {
		return c, fmt.Errorf("%w: %d bytes of entropy, want %d", ErrRecoveryCode, len(b), recoveryEntropySize)
	}
	copy(c.entropy[:], b)
	return c, nil
}

// Entropy is the code's 20 random bytes, the input of its stretch.
func (c RecoveryCode) Entropy() []byte { return append([]byte(nil), c.entropy[:]...) }

// recoveryCheck is the 15-bit check of entropy.
func recoveryCheck(entropy []byte) uint16 {
	h := sha256.New()
	h.Write([]byte(labelRecoveryCheck))
	h.Write([]byte{0})
	h.Write(entropy)
	s := h.Sum(nil)
	return (uint16(s[0])<<8 | uint16(s[1])) >> 1
}

// String is the code as shown to the user: 35 characters of Crockford
// base32 (uppercase), in 7 groups of 5 joined by '-'.
func (c RecoveryCode) String() string {
	var chars [recoveryChars]byte
	// The 160 bits, 5 at a time, most significant first.
	for i := 0; i < recoveryDataChars; i++ {
		bit := i * 5
		var v int
		for j := 0; j < 5; j++ {
			b := bit + j
			v = v<<1 | int(c.entropy[b/8]>>(7-b%8)&1)
		}
		chars[i] = crockford[v]
	}
	chk := recoveryCheck(c.entropy[:])
	for i := 0; i < recoveryCheckChars; i++ {
		chars[recoveryDataChars+i] = crockford[chk>>(10-5*i)&31]
	}
	var sb strings.Builder
	for i := 0; i < recoveryChars; i += recoveryGroup {
		if i > 0 {
			sb.WriteByte('-')
		}
		sb.Write(chars[i : i+recoveryGroup])
	}
	return sb.String()
}

// crockfordValue is the value of one character, with Crockford's
// readings of look-alikes; -1 if it is not one.
func crockfordValue(r rune) int {
	switch r {
	case 'o', 'O':
		return 0
	case 'i', 'I', 'l', 'L':
		return 1
	}
	if r >= 'a' && r <= 'z' {
		r -= 'a' - 'A'
	}
	if r > 0x7f {
		return -1
	}
	return strings.IndexByte(crockford, byte(r))
}

// ParseRecoveryCode reads a code as a person typed it: any case, with or
// without spaces and dashes between characters. An error wraps
// [ErrRecoveryCode] and says what is wrong (length, a character, or a
// typo the check characters caught).
func ParseRecoveryCode(s string) (RecoveryCode, error) {
	var vals [recoveryChars]int
	n := 0
	for _, r := range s {
		switch r {
		case ' ', '-', '\t', '\n', '\r':
			continue
		}
		v := crockfordValue(r)
		if v < 0 {
			return RecoveryCode{}, fmt.Errorf("%w: %q is not one of its letters or digits (0-9 and A-Z without U)", ErrRecoveryCode, r)
		}
		if n < recoveryChars {
			vals[n] = v
		}
		n++
	}
	if n != recoveryChars {
		return RecoveryCode{}, fmt.Errorf("%w: it has %d letters and digits, a recovery code has %d (7 groups of 5)", ErrRecoveryCode, n, recoveryChars)
	}
	var c RecoveryCode
	for i := 0; i < recoveryDataChars; i++ {
		for j := 0; j < 5; j++ {
			b := i*5 + j
			if vals[i]>>(4-j)&1 == 1 {
				c.entropy[b/8] |= 1 << (7 - b%8)
			}
		}
	}
	var chk uint16
	for i := 0; i < recoveryCheckChars; i++ {
		chk = chk<<5 | uint16(vals[recoveryDataChars+i])
	}
	if chk != recoveryCheck(c.entropy[:]) {
		return RecoveryCode{}, fmt.Errorf("%w: its check letters do not match, so a character was mistyped; compare it with the written code", ErrRecoveryCode)
	}
	return c, nil
}

// DeriveRecoveryKeys stretches the code's entropy once with Argon2id
// under p (after validating p) and splits the result with HKDF-SHA256
// into the SRP secret of the recovery verifier (label
// "bitmask/v1/recovery-srp-x") and the recovery KEK, which wraps the
// storage secret with [WrapSecret] (label "bitmask/v1/recovery-kek").
// The labels differ from the password's, so a code and a password never
// give related keys.
func DeriveRecoveryKeys(c RecoveryCode, p KDFParams) (PasswordKeys, error) {
	if err := p.Validate(); err != nil {
		return PasswordKeys{}, err
	}
	stretched := argon2.IDKey(c.entropy[:], p.Salt, p.Time, p.MemoryKiB, p.Threads, keySize)
	defer clear(stretched)
	srp, err := hkdfKey(stretched, nil, labelRecoverySRP)
	if err != nil {
		return PasswordKeys{}, err
	}
	kek, err := hkdfKey(stretched, nil, labelRecoveryKEK)
	if err != nil {
		return PasswordKeys{}, err
	}
	return PasswordKeys{SRPSecret: srp[:], KEK: kek}, nil
}
