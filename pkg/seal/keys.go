package seal

import (
	"crypto/rand"
	"fmt"
)

// StorageSecret and key schedule labels.
const (
	secretSize = 32

	labelDoc        = "bitmask/v1/doc"
	labelDocID      = "bitmask/v1/doc-id"
	labelBlob       = "bitmask/v1/blob"
	labelBlobMAC    = "bitmask/v1/blob-mac"
	labelLocal      = "bitmask/v1/local"
	labelLocalIndex = "bitmask/v1/local-index"
)

// NewStorageSecret returns a fresh 32-byte random storage secret, the root of
// the key schedule (see DeriveKeys). It is created once per account and
// stored at the provider only wrapped (see WrapSecret).
func NewStorageSecret() ([]byte, error) {
	s := make([]byte, secretSize)
	if _, err := rand.Read(s); err != nil {
		return nil, fmt.Errorf("seal: reading randomness: %w", err)
	}
	return s, nil
}

// WrapSecret encrypts secret under kek (a KEK from DerivePasswordKeys or a
// key derived from a recovery code) with a fresh random nonce. ad is
// authenticated but not encrypted; Bitmask passes the username so a wrapped
// secret cannot be moved to another account.
//
// Format: version byte 1 || 24-byte nonce || XChaCha20-Poly1305(kek, nonce,
// secret, ad).
func WrapSecret(kek *[32]byte, secret, ad []byte) ([]byte, error) {
	nonce, err := randomNonce()
	if err != nil {
		return nil, err
	}
	return wrapSecretWithNonce(kek, nonce, secret, ad)
}

func wrapSecretWithNonce(kek *[32]byte, nonce *[xNonceSize]byte, secret, ad []byte) ([]byte, error) {
	return xSeal(kek, nonce, secret, ad)
}

// UnwrapSecret reverses WrapSecret. It returns ErrDecrypt if authentication
// fails, typically because the password (and so the KEK) or ad is wrong.
func UnwrapSecret(kek *[32]byte, wrapped, ad []byte) ([]byte, error) {
	return xOpen(kek, wrapped, ad, "wrapped secret")
}

// Keys are the data keys derived from the storage secret. Each is used for
// exactly one purpose.
type Keys struct {
	Doc        [32]byte // encrypts documents (SealDoc/OpenDoc)
	DocID      [32]byte // derives ids of named documents (DocID)
	Blob       [32]byte // encrypts blobs (SealBlob/OpenBlob)
	BlobMAC    [32]byte // content-addresses blobs (BlobID)
	Local      [32]byte // encrypts local database values (SealValue/OpenValue)
	LocalIndex [32]byte // derives local database keys (IndexKey)
}

// DeriveKeys derives the key schedule from a 32-byte storage secret: each key
// is HKDF-SHA256(ikm=secret, salt=empty, info=label) with labels
// "bitmask/v1/doc", "bitmask/v1/doc-id", "bitmask/v1/blob",
// "bitmask/v1/blob-mac", "bitmask/v1/local" and "bitmask/v1/local-index".
func DeriveKeys(secret []byte) (*Keys, error) {
	if len(secret) != secretSize {
		return nil, fmt.Errorf("seal: storage secret is %d bytes, want %d", len(secret), secretSize)
	}
	k := new(Keys)
	for _, d := range []struct {
		dst   *[32]byte
		label string
	}{
		{&k.Doc, labelDoc},
		{&k.DocID, labelDocID},
		{&k.Blob, labelBlob},
		{&k.BlobMAC, labelBlobMAC},
		{&k.Local, labelLocal},
		{&k.LocalIndex, labelLocalIndex},
	} {
		key, err := hkdfKey(secret, nil, d.label)
		if err != nil {
			return nil, err
		}
		*d.dst = key
	}
	return k, nil
}
