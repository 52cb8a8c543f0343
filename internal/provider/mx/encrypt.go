package mx

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// maxKeySize bounds an armored key read from the key directory (nicknym
// takes at most 256 KiB).
const maxKeySize = 1 << 20

// parseKey reads the one public key of a recipient and checks that it
// can be encrypted to now (not expired, not revoked, with an encryption
// subkey).
func parseKey(armored []byte, now time.Time) (e *openpgp.Entity, err error) {
	defer func() {
		if p := recover(); p != nil {
			e, err = nil, fmt.Errorf("key parser failed: %v", p)
		}
	}()
	if len(armored) == 0 || len(armored) > maxKeySize {
		return nil, errors.New("key missing or too large")
	}
	el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(armored))
	if err != nil {
		return nil, err
	}
	if len(el) != 1 {
		return nil, fmt.Errorf("expected one key, found %d", len(el))
	}
	if _, ok := el[0].EncryptionKey(now); !ok {
		return nil, errors.New("no valid encryption key (expired or revoked?)")
	}
	return el[0], nil
}

// encrypt makes one binary OpenPGP message to e alone from the
// concatenation of parts: a literal data packet (binary, no file name),
// compressed with ZLIB when the key's preferences allow it, not signed.
// It uses SEIPDv2 (RFC 9580 AEAD) when the key says it supports it,
// else SEIPDv1 with MDC, which every OpenPGP implementation reads.
func encrypt(e *openpgp.Entity, now time.Time, parts ...[]byte) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("encryption failed: %v", p)
		}
	}()
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	var buf bytes.Buffer
	buf.Grow(size/2 + 4096)
	cfg := &packet.Config{
		DefaultCompressionAlgo: packet.CompressionZLIB,
		CompressionConfig:      &packet.CompressionConfig{Level: packet.DefaultCompression},
		AEADConfig:             &packet.AEADConfig{},
		Time:                   func() time.Time { return now },
	}
	w, err := openpgp.Encrypt(&buf, []*openpgp.Entity{e}, nil, &openpgp.FileHints{IsBinary: true}, cfg)
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
