package pgpmime

import (
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/keys"
)

// A multipart with a close delimiter and no part ("--b--" alone), at the
// top and inside a forwarded message, once panicked Sign and EncryptSign
// (and so the outbox at every start). Every entry point must survive it.
func TestZeroPartMultipart(t *testing.T) {
	k := testKey(t, "a@example.org")
	msgs := map[string][]byte{
		"top":     crlf("From: a@example.org\nTo: c@example.net\nContent-Type: multipart/mixed; boundary=b\n\n--b--\n"),
		"rfc822":  crlf("From: a@example.org\nTo: c@example.net\nContent-Type: message/rfc822\n\nContent-Type: multipart/mixed; boundary=b\n\n--b--\n"),
		"nested":  crlf("From: a@example.org\nContent-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: multipart/alternative; boundary=b\n\n--b--\n--o--\n"),
		"signed0": crlf("From: a@example.org\nContent-Type: multipart/signed; protocol=\"application/pgp-signature\"; boundary=b\n\n--b--\n"),
		"enc0":    crlf("From: a@example.org\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=b\n\n--b--\n"),
	}
	for name, msg := range msgs {
		t.Run(name, func(t *testing.T) {
			if _, err := Sign(msg, k, nil); err != nil {
				t.Errorf("Sign: %v", err)
			}
			if _, err := EncryptSign(msg, list(k), k, nil); err != nil {
				t.Errorf("EncryptSign: %v", err)
			}
			pub, err := keys.ArmorPublic(k)
			if err != nil {
				t.Fatal(err)
			}
			// AttachKey refuses a signed or encrypted message with an
			// error; it must not panic.
			_, _ = AttachKey(msg, pub, "k.asc")
			res, err := Process(msg, list(k), nil, time.Time{})
			if err != nil {
				t.Errorf("Process: %v", err)
			}
			if res.Signature == SigValid {
				t.Errorf("Process: signature %s", res.Signature)
			}
			IsEncrypted(msg)
			KeysFromMessage(msg)
		})
	}
}
