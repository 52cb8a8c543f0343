package seal

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
)

const (
	docADPrefix  = "bitmask-doc-v1"
	docIDPrefix  = "bitmask-docid-v1\x00"
	docIDHexLen  = 32
	docLenSize   = 4          // big-endian plaintext length inside the padding
	minDocBucket = 256        // smallest padded size
	maxPow2      = 64 << 10   // padded sizes are powers of two up to here...
	bucketStep   = 64 << 10   // ...then multiples of this
	maxDocBody   = 1<<30 - 64 // keeps every size well inside int32 and uint32
)

// docBucket returns the padded size for n bytes of length-prefixed plaintext
// (n = 4 + len(body)): 256 bytes minimum, then powers of two up to 64 KiB,
// then multiples of 64 KiB.
func docBucket(n int) int {
	if n <= minDocBucket {
		return minDocBucket
	}
	if n <= maxPow2 {
		b := minDocBucket
		for b < n {
			b <<= 1
		}
		return b
	}
	return (n + bucketStep - 1) / bucketStep * bucketStep
}

// docAD builds the associated data binding a document ciphertext to its
// place: "bitmask-doc-v1" || u32(len(user)) || user || u32(len(id)) || id ||
// u64(rev) || deleted (one byte, 0 or 1), integers big-endian.
func docAD(user, id string, rev uint64, deleted bool) ([]byte, error) {
	if uint64(len(user)) > math.MaxUint32 || uint64(len(id)) > math.MaxUint32 {
		return nil, errors.New("seal: document user or id too long")
	}
	ad := make([]byte, 0, len(docADPrefix)+4+len(user)+4+len(id)+8+1)
	ad = append(ad, docADPrefix...)
	ad = binary.BigEndian.AppendUint32(ad, uint32(len(user)))
	ad = append(ad, user...)
	ad = binary.BigEndian.AppendUint32(ad, uint32(len(id)))
	ad = append(ad, id...)
	ad = binary.BigEndian.AppendUint64(ad, rev)
	if deleted {
		ad = append(ad, 1)
	} else {
		ad = append(ad, 0)
	}
	return ad, nil
}

// padDoc returns u32(len(body)) || body || zeros, padded to docBucket.
func padDoc(body []byte) ([]byte, error) {
	if len(body) > maxDocBody {
		return nil, fmt.Errorf("seal: document body of %d bytes too large (max %d)", len(body), maxDocBody)
	}
	padded := make([]byte, docBucket(docLenSize+len(body)))
	binary.BigEndian.PutUint32(padded, uint32(len(body)))
	copy(padded[docLenSize:], body)
	return padded, nil
}

// unpadDoc reverses padDoc, insisting on the canonical encoding: a sane
// length, the exact bucket size for that length, and all-zero padding.
func unpadDoc(padded []byte) ([]byte, error) {
	if len(padded) < docLenSize {
		return nil, errors.New("seal: malformed document padding")
	}
	n := binary.BigEndian.Uint32(padded)
	if uint64(n) > uint64(len(padded)-docLenSize) || n > maxDocBody {
		return nil, errors.New("seal: malformed document padding: bad length")
	}
	end := docLenSize + int(n)
	if docBucket(end) != len(padded) {
		return nil, errors.New("seal: malformed document padding: wrong size")
	}
	var acc byte
	for _, b := range padded[end:] {
		acc |= b
	}
	if acc != 0 {
		return nil, errors.New("seal: malformed document padding: nonzero")
	}
	return padded[docLenSize:end:end], nil
}

// SealDoc encrypts a document body under key (Keys.Doc) with a fresh random
// nonce. user, id, rev and deleted are authenticated (see docs/formats.md),
// so OpenDoc fails unless it is given exactly the same values: the provider
// cannot move a ciphertext to another user or id, replay it under another
// revision, or flip its deletion flag.
//
// Format: version byte 1 || 24-byte nonce || XChaCha20-Poly1305(key, nonce,
// padded body, ad). The padded body is the 4-byte big-endian body length,
// the body and zero bytes up to the bucket size: at least 256 bytes, then
// powers of two up to 64 KiB, then multiples of 64 KiB.
func SealDoc(key *[32]byte, user, id string, rev uint64, deleted bool, body []byte) ([]byte, error) {
	nonce, err := randomNonce()
	if err != nil {
		return nil, err
	}
	return sealDocWithNonce(key, nonce, user, id, rev, deleted, body)
}

func sealDocWithNonce(key *[32]byte, nonce *[xNonceSize]byte, user, id string, rev uint64, deleted bool, body []byte) ([]byte, error) {
	ad, err := docAD(user, id, rev, deleted)
	if err != nil {
		return nil, err
	}
	if len(body) > maxDocBody {
		return nil, fmt.Errorf("seal: document body of %d bytes too large (max %d)", len(body), maxDocBody)
	}
	aead, err := newX(key)
	if err != nil {
		return nil, err
	}
	// Pad in place inside the output buffer and seal over it.
	size := docBucket(docLenSize + len(body))
	out := make([]byte, xHeaderSize+size, xHeaderSize+size+tagSize)
	out[0] = formatVersion
	copy(out[1:], nonce[:])
	padded := out[xHeaderSize:]
	binary.BigEndian.PutUint32(padded, uint32(len(body)))
	copy(padded[docLenSize:], body)
	return aead.Seal(out[:xHeaderSize], nonce[:], padded, ad), nil
}

// OpenDoc decrypts a document sealed by SealDoc. It returns ErrDecrypt if the
// key, user, id, rev or deleted differ from those used to seal, or if the
// ciphertext was modified.
func OpenDoc(key *[32]byte, user, id string, rev uint64, deleted bool, ct []byte) ([]byte, error) {
	ad, err := docAD(user, id, rev, deleted)
	if err != nil {
		return nil, err
	}
	padded, err := xOpen(key, ct, ad, "document")
	if err != nil {
		return nil, err
	}
	return unpadDoc(padded)
}

// DocID returns the deterministic opaque id of the document called name,
// under key (Keys.DocID): the first 32 lowercase hex characters (16 bytes) of
// HMAC-SHA256(key, "bitmask-docid-v1" || 0x00 || name). Use it for
// well-known documents (settings, address book, ...) whose id every device
// must find without a lookup.
func DocID(key *[32]byte, name string) string {
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(docIDPrefix))
	m.Write([]byte(name))
	return hex.EncodeToString(m.Sum(nil))[:docIDHexLen]
}

// RandomDocID returns a fresh random document id: 16 random bytes as 32
// lowercase hex characters, the same shape as DocID.
func RandomDocID() (string, error) {
	var b [docIDHexLen / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("seal: reading randomness: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
