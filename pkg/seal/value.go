package seal

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
)

// indexKeySize is the length of the keys returned by IndexKey.
const indexKeySize = 16

// SealValue encrypts a value for the local database under key (Keys.Local)
// with a fresh random nonce. ad is authenticated but not stored; callers
// should pass something that identifies the slot the value lives in (for
// example the bucket name and database key) so values cannot be swapped.
//
// Format: version byte 1 || 24-byte nonce || XChaCha20-Poly1305(key, nonce,
// plaintext, ad). There is no padding.
func SealValue(key *[32]byte, ad, plaintext []byte) ([]byte, error) {
	nonce, err := randomNonce()
	if err != nil {
		return nil, err
	}
	return sealValueWithNonce(key, nonce, ad, plaintext)
}

func sealValueWithNonce(key *[32]byte, nonce *[xNonceSize]byte, ad, plaintext []byte) ([]byte, error) {
	return xSeal(key, nonce, plaintext, ad)
}

// OpenValue reverses SealValue. It returns ErrDecrypt if authentication fails.
func OpenValue(key *[32]byte, ad, ct []byte) ([]byte, error) {
	return xOpen(key, ct, ad, "value")
}

// IndexKey returns an opaque 16-byte database key for the tuple parts under
// key (Keys.LocalIndex): the first 16 bytes of HMAC-SHA256(key, enc(parts)),
// where enc concatenates, for each part, its length as a 4-byte big-endian
// integer followed by its bytes. The encoding is injective, so distinct
// tuples never collide by construction (only by chance, with probability
// about 2^-128 per pair).
func IndexKey(key *[32]byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key[:])
	var n [4]byte
	for _, p := range parts {
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		m.Write(n[:])
		m.Write([]byte(p))
	}
	return m.Sum(nil)[:indexKeySize]
}
