package pgpmime

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/pkg/pgpkey"
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
			pub, err := pgpkey.ArmorPublic(k)
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

// A part after the signature of a multipart/signed is shown by some
// clients and signed by no one: the signature is partial.
func TestPartAfterSignature(t *testing.T) {
	k := testKey(t, "a@example.org")
	signed, err := Sign(crlf("From: a@example.org\nContent-Type: text/plain\n\nsigned text\n"), k, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, _ := Process(signed, nil, list(publicOnly(t, k)), time.Now())
	if res.Signature != SigValid || len(res.SignatureOutside) != 0 {
		t.Fatalf("genuine: %s %q", res.Signature, res.SignatureOutside)
	}
	// Insert a third part before the close delimiter.
	i := bytes.LastIndex(signed, []byte("\r\n--pgpmime-"))
	j := bytes.Index(signed[i+2:], []byte("--\r\n")) + i + 2
	boundary := string(signed[i+4 : j])
	extra := append(append([]byte{}, signed[:i]...), "\r\n--"+boundary+"\r\nContent-Type: text/plain\r\n\r\nunsigned addition\r\n--"+boundary+"--\r\n"...)
	res, _ = Process(extra, nil, list(publicOnly(t, k)), time.Now())
	if res.Signature != SigValid || !slices.Equal(res.SignatureOutside, []string{"a text part"}) {
		t.Fatalf("extra part: %s %q\n%s", res.Signature, res.SignatureOutside, extra)
	}
}

func TestStripNamePrefix(t *testing.T) {
	msg := crlf("X-Leap-Signature: valid\nSubject: s\nx-leap-encryption: decrypted;\n folded\nContent-Type: multipart/mixed; boundary=b\n\n" +
		"--b\nContent-Type: text/plain\nX-Leap-Part: kept (a part header is no message header)\n\nX-Leap-Signature: in a body stays\n" +
		"--b\nContent-Type: message/rfc822\n\nX-Leap-Signature: valid\nSubject: inner\nContent-Type: multipart/signed; protocol=\"application/pgp-signature\"; boundary=c\n\n" +
		"--c\nContent-Type: message/rfc822\n\nX-LEAP-Trust: high\nFrom: x@y\n\ndeepest\n--c\nContent-Type: application/pgp-signature\n\nsig\n--c--\n" +
		"--b--\n")
	want := crlf("Subject: s\nContent-Type: multipart/mixed; boundary=b\n\n" +
		"--b\nContent-Type: text/plain\nX-Leap-Part: kept (a part header is no message header)\n\nX-Leap-Signature: in a body stays\n" +
		"--b\nContent-Type: message/rfc822\n\nSubject: inner\nContent-Type: multipart/signed; protocol=\"application/pgp-signature\"; boundary=c\n\n" +
		"--c\nContent-Type: message/rfc822\n\nFrom: x@y\n\ndeepest\n--c\nContent-Type: application/pgp-signature\n\nsig\n--c--\n" +
		"--b--\n")
	if got := StripNamePrefix(msg, "X-Leap-"); !bytes.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	plain := crlf("Subject: s\n\nbody\n")
	if got := StripNamePrefix(plain, "X-Leap-"); !bytes.Equal(got, plain) {
		t.Errorf("unchanged message changed:\n%s", got)
	}
	// A header the MIME parser refuses is still cleaned.
	bad := crlf("X-Leap-Signature: valid\nnot a field\nSubject: s\n\nbody\n")
	if got := StripNamePrefix(bad, "X-Leap-"); bytes.Contains(got, []byte("X-Leap")) {
		t.Errorf("malformed header:\n%s", got)
	}
}
