package seal

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

const (
	labelBlobStream = "bitmask/v1/blob-stream"

	blobSaltSize   = 16
	blobHeaderSize = 1 + blobSaltSize // version byte || nonce salt
	blobChunkSize  = 64 << 10         // plaintext bytes per chunk
	streamNonceLen = chacha20poly1305.NonceSize
)

// BlobID returns the content address of a blob under macKey (Keys.BlobMAC):
// the 64 lowercase hex characters of HMAC-SHA256(macKey, plaintext). Equal
// plaintexts of the same account get equal ids, so blobs deduplicate, but the
// id reveals nothing about the content to anyone without the key.
func BlobID(macKey *[32]byte, plaintext []byte) string {
	h := NewBlobIDHasher(macKey)
	h.Write(plaintext)
	return hex.EncodeToString(h.Sum(nil))
}

// NewBlobIDHasher returns a hash.Hash computing BlobID incrementally: the id
// is the lowercase hex encoding of its Sum.
func NewBlobIDHasher(macKey *[32]byte) hash.Hash {
	return hmac.New(sha256.New, macKey[:])
}

// blobAEAD returns the ChaCha20-Poly1305 instance keyed with the per-blob
// stream key HKDF-SHA256(ikm=key, salt=salt, info="bitmask/v1/blob-stream" || id).
func blobAEAD(key *[32]byte, salt []byte, id string) (cipher.AEAD, error) {
	if key == nil {
		return nil, errors.New("seal: nil key")
	}
	sk, err := hkdfKey(key[:], salt, labelBlobStream+id)
	if err != nil {
		return nil, err
	}
	defer clear(sk[:])
	aead, err := chacha20poly1305.New(sk[:])
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return aead, nil
}

// streamNonce returns the STREAM nonce for chunk counter: an 11-byte
// big-endian counter followed by the last-chunk flag byte.
func streamNonce(nonce *[streamNonceLen]byte, counter uint64, last bool) {
	clear(nonce[:])
	binary.BigEndian.PutUint64(nonce[3:11], counter)
	if last {
		nonce[11] = 1
	}
}

// SealBlob encrypts the plaintext read from src under key (Keys.Blob) and
// writes the ciphertext to dst. id is the blob's id (normally
// BlobID(Keys.BlobMAC, plaintext)); it is bound to the ciphertext, so
// OpenBlob with any other id fails.
//
// Format: version byte 1 || 16-byte random nonce salt || chunks. The
// plaintext is split into 64 KiB chunks, the last of which may be shorter
// (an empty blob is a single empty chunk) and each chunk is sealed with
// ChaCha20-Poly1305 under the per-blob stream key
// HKDF-SHA256(ikm=key, salt=nonce salt, info="bitmask/v1/blob-stream" || id)
// with nonce 11-byte big-endian chunk counter || last flag (1 for the final
// chunk, 0 otherwise). See docs/formats.md.
func SealBlob(dst io.Writer, key *[32]byte, id string, src io.Reader) error {
	var salt [blobSaltSize]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return fmt.Errorf("seal: reading randomness: %w", err)
	}
	return sealBlob(dst, key, id, src, &salt, blobChunkSize)
}

// sealBlob is SealBlob with an injected nonce salt and chunk size (tests use
// small chunks to exercise multi-chunk logic cheaply).
func sealBlob(dst io.Writer, key *[32]byte, id string, src io.Reader, salt *[blobSaltSize]byte, chunkSize int) error {
	aead, err := blobAEAD(key, salt[:], id)
	if err != nil {
		return err
	}
	var header [blobHeaderSize]byte
	header[0] = formatVersion
	copy(header[1:], salt[:])
	if _, err := dst.Write(header[:]); err != nil {
		return fmt.Errorf("seal: writing blob: %w", err)
	}

	// buf holds one chunk plus one byte of look-ahead: a chunk is the last
	// one exactly when the reader cannot fill the look-ahead byte.
	buf := make([]byte, chunkSize+1)
	out := make([]byte, 0, chunkSize+tagSize)
	var nonce [streamNonceLen]byte
	var counter uint64
	n := 0
	for {
		m, err := io.ReadFull(src, buf[n:])
		n += m
		last := false
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			last = true
		default:
			return fmt.Errorf("seal: reading blob plaintext: %w", err)
		}
		if last {
			streamNonce(&nonce, counter, true)
			if _, err := dst.Write(aead.Seal(out[:0], nonce[:], buf[:n], nil)); err != nil {
				return fmt.Errorf("seal: writing blob: %w", err)
			}
			return nil
		}
		streamNonce(&nonce, counter, false)
		if _, err := dst.Write(aead.Seal(out[:0], nonce[:], buf[:chunkSize], nil)); err != nil {
			return fmt.Errorf("seal: writing blob: %w", err)
		}
		buf[0] = buf[chunkSize]
		n = 1
		if counter++; counter == 0 {
			return errors.New("seal: blob too large")
		}
	}
}

// OpenBlob decrypts a blob sealed by SealBlob under the same key and id,
// reading the ciphertext from src until EOF and writing the plaintext to dst.
//
// Each chunk is authenticated before any of its plaintext is written to dst,
// but a stream that fails part-way (truncated, reordered, extended, or
// tampered with) may already have had earlier, authentic chunks written:
// if OpenBlob returns an error, the caller must discard everything written
// to dst. Authentication failures, including truncation and extension,
// return an error wrapping ErrDecrypt.
func OpenBlob(dst io.Writer, key *[32]byte, id string, src io.Reader) error {
	return openBlob(dst, key, id, src, blobChunkSize)
}

func openBlob(dst io.Writer, key *[32]byte, id string, src io.Reader, chunkSize int) error {
	var header [blobHeaderSize]byte
	if _, err := io.ReadFull(src, header[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return errors.New("seal: blob too short")
		}
		return fmt.Errorf("seal: reading blob: %w", err)
	}
	if header[0] != formatVersion {
		return fmt.Errorf("seal: unsupported blob version %d", header[0])
	}
	aead, err := blobAEAD(key, header[1:], id)
	if err != nil {
		return err
	}

	encSize := chunkSize + tagSize
	buf := make([]byte, encSize+1) // one sealed chunk plus one byte of look-ahead
	out := make([]byte, 0, chunkSize)
	var nonce [streamNonceLen]byte
	var counter uint64
	n := 0
	for {
		m, err := io.ReadFull(src, buf[n:])
		n += m
		last := false
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			last = true
		default:
			return fmt.Errorf("seal: reading blob: %w", err)
		}
		if last {
			if n < tagSize {
				return fmt.Errorf("%w (blob truncated)", ErrDecrypt)
			}
			streamNonce(&nonce, counter, true)
			pt, err := aead.Open(out[:0], nonce[:], buf[:n], nil)
			if err != nil {
				return ErrDecrypt
			}
			if len(pt) == 0 && counter > 0 {
				return errors.New("seal: malformed blob: empty final chunk")
			}
			if _, err := dst.Write(pt); err != nil {
				return fmt.Errorf("seal: writing blob plaintext: %w", err)
			}
			return nil
		}
		streamNonce(&nonce, counter, false)
		pt, err := aead.Open(out[:0], nonce[:], buf[:encSize], nil)
		if err != nil {
			return ErrDecrypt
		}
		if _, err := dst.Write(pt); err != nil {
			return fmt.Errorf("seal: writing blob plaintext: %w", err)
		}
		buf[0] = buf[encSize]
		n = 1
		if counter++; counter == 0 {
			return errors.New("seal: blob too large")
		}
	}
}

// sealedBlobSize returns the ciphertext size of an n-byte blob.
func sealedBlobSize(n, chunkSize int) int {
	chunks := (n + chunkSize - 1) / chunkSize
	if chunks == 0 {
		chunks = 1
	}
	return blobHeaderSize + n + chunks*tagSize
}

// SealBlobBytes is SealBlob for a plaintext held in memory, sealed chunk
// by chunk straight into the result.
func SealBlobBytes(key *[32]byte, id string, plaintext []byte) ([]byte, error) {
	var salt [blobSaltSize]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, fmt.Errorf("seal: reading randomness: %w", err)
	}
	return sealBlobBytes(key, id, plaintext, &salt, blobChunkSize)
}

// sealBlobBytes is sealBlob over a byte slice: the same chunks (a chunk is
// the last one exactly when no more than chunkSize bytes remain), without
// the stream's buffers.
func sealBlobBytes(key *[32]byte, id string, pt []byte, salt *[blobSaltSize]byte, chunkSize int) ([]byte, error) {
	aead, err := blobAEAD(key, salt[:], id)
	if err != nil {
		return nil, err
	}
	out := make([]byte, blobHeaderSize, sealedBlobSize(len(pt), chunkSize))
	out[0] = formatVersion
	copy(out[1:], salt[:])
	var nonce [streamNonceLen]byte
	for counter := uint64(0); ; counter++ {
		if len(pt) <= chunkSize {
			streamNonce(&nonce, counter, true)
			return aead.Seal(out, nonce[:], pt, nil), nil
		}
		streamNonce(&nonce, counter, false)
		out = aead.Seal(out, nonce[:], pt[:chunkSize], nil)
		pt = pt[chunkSize:]
	}
}

// OpenBlobBytes is OpenBlob for a ciphertext held in memory, opened chunk
// by chunk straight into the result (reading a 10 KB message allocates
// its plaintext, not the stream's two 64 KiB buffers). On error it
// returns no plaintext.
func OpenBlobBytes(key *[32]byte, id string, ct []byte) ([]byte, error) {
	return openBlobBytes(key, id, ct, blobChunkSize)
}

// openBlobBytes is openBlob over a byte slice, with the same checks and
// errors: a chunk is the last one exactly when no more than a sealed
// chunk remains.
func openBlobBytes(key *[32]byte, id string, ct []byte, chunkSize int) ([]byte, error) {
	if len(ct) < blobHeaderSize {
		return nil, errors.New("seal: blob too short")
	}
	if ct[0] != formatVersion {
		return nil, fmt.Errorf("seal: unsupported blob version %d", ct[0])
	}
	aead, err := blobAEAD(key, ct[1:blobHeaderSize], id)
	if err != nil {
		return nil, err
	}
	body := ct[blobHeaderSize:]
	encSize := chunkSize + tagSize
	chunks := max(1, (len(body)+encSize-1)/encSize)
	out := make([]byte, 0, max(0, len(body)-chunks*tagSize))
	var nonce [streamNonceLen]byte
	for counter := uint64(0); ; counter++ {
		if len(body) <= encSize {
			if len(body) < tagSize {
				return nil, fmt.Errorf("%w (blob truncated)", ErrDecrypt)
			}
			streamNonce(&nonce, counter, true)
			n := len(out)
			out, err = aead.Open(out, nonce[:], body, nil)
			if err != nil {
				return nil, ErrDecrypt
			}
			if len(out) == n && counter > 0 {
				return nil, errors.New("seal: malformed blob: empty final chunk")
			}
			return out, nil
		}
		streamNonce(&nonce, counter, false)
		if out, err = aead.Open(out, nonce[:], body[:encSize], nil); err != nil {
			return nil, ErrDecrypt
		}
		body = body[encSize:]
	}
}
