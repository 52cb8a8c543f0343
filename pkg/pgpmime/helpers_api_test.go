package pgpmime

import (
	"bytes"
	"io"
	"mime/quotedprintable"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/bitmask-go/bitmask/pkg/pgpkey"
)

func TestStripHeaders(t *testing.T) {
	msg := []byte("Received: from a\r\n\tby b\r\nX-Leap-Encryption: decrypted\r\nSubject: hi\r\nx-leap-signature: valid;\r\n  folded\r\nTo: bob@example.net\r\n\r\nX-Leap-Encryption: in body stays\r\n")
	got := StripHeaders(msg, "X-Leap-Encryption", "X-Leap-Signature")
	want := []byte("Received: from a\r\n\tby b\r\nSubject: hi\r\nTo: bob@example.net\r\n\r\nX-Leap-Encryption: in body stays\r\n")
	if !bytes.Equal(got, want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	if got := StripHeaders(msg, "Nope"); !bytes.Equal(got, msg) {
		t.Error("nothing to strip must return the message unchanged")
	}
	lf := []byte("A: 1\nB: 2\n\nbody\n")
	if got := StripHeaders(lf, "a"); string(got) != "B: 2\n\nbody\n" {
		t.Errorf("LF: %q", got)
	}
	// Header without body.
	if got := StripHeaders([]byte("A: 1\r\nB: 2"), "B"); string(got) != "A: 1\r\n" {
		t.Errorf("header-only: %q", got)
	}
}

func TestSetHeaders(t *testing.T) {
	msg := []byte("X-Leap-Signature: forged\r\nSubject: hi\r\n\r\nbody\r\n")
	got := SetHeaders(msg, "X-Leap-Encryption", "decrypted", "X-Leap-Signature", "valid\r\nInjected: yes", "Dangling")
	want := "Subject: hi\r\nX-Leap-Encryption: decrypted\r\nX-Leap-Signature: valid Injected: yes\r\n\r\nbody\r\n"
	if string(got) != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	lf := SetHeaders([]byte("Subject: hi\n\nbody\n"), "X-A", "ü")
	if string(lf) != "Subject: hi\nX-A: =?utf-8?q?=C3=BC?=\n\nbody\n" {
		t.Errorf("LF/non-ASCII: %q", lf)
	}
	if got := SetHeaders([]byte("Subject: hi"), "X-A", "1"); string(got) != "Subject: hi\r\nX-A: 1\r\n\r\n" {
		t.Errorf("no body: %q", got)
	}
}

func TestSplitMultipart(t *testing.T) {
	body := []byte("preamble\r\n--b\r\nA: 1\r\n\r\none\r\n--b  \r\n\r\ntwo\r\n\r\n--b--\r\nepilogue\r\n")
	mp, ok := splitMultipart(body, "b")
	if !ok || len(mp.parts) != 2 || !mp.closed {
		t.Fatalf("ok=%v %+v", ok, mp)
	}
	if got := string(body[mp.parts[0].start:mp.parts[0].end]); got != "A: 1\r\n\r\none" {
		t.Errorf("part 0 %q", got)
	}
	if got := string(body[mp.parts[1].start:mp.parts[1].end]); got != "\r\ntwo\r\n" {
		t.Errorf("part 1 %q", got)
	}
	out := mp.rebuild(body, map[int][]byte{1: []byte("X")}, nil)
	if string(out) != "preamble\r\n--b\r\nA: 1\r\n\r\none\r\n--b  \r\nX\r\n--b--\r\nepilogue\r\n" {
		t.Errorf("rebuild %q", out)
	}
	out = mp.rebuild(body, nil, map[int]bool{0: true})
	if string(out) != "preamble\r\n--b  \r\n\r\ntwo\r\n\r\n--b--\r\nepilogue\r\n" {
		t.Errorf("drop %q", out)
	}
	// A longer line starting with the boundary is not a delimiter.
	if mp, _ := splitMultipart([]byte("--b\r\nx\r\n--bc\r\n--b--"), "b"); len(mp.parts) != 1 {
		t.Errorf("prefix boundary split: %d parts", len(mp.parts))
	}
	if _, ok := splitMultipart([]byte("no delimiters"), "b"); ok {
		t.Error("split without delimiters")
	}
	// Only blanks pad a delimiter: a CR among them makes the line part
	// of the content (the IMAP indexer reads it more loosely).
	if mp, _ := splitMultipart([]byte("--b\r\nx\r\n--b \r \r\ny\r\n--b--\r\n"), "b"); len(mp.parts) != 1 || mp.parts[0].end != 17 {
		t.Errorf("CR in padding: %+v", mp)
	}
	if _, ok := splitMultipart([]byte("--b--\r\n--b\r\nx\r\n"), "b"); ok {
		t.Error("split after a close delimiter with no part")
	}
}

func TestEncodeQP(t *testing.T) {
	in := "From the top \t\n.dot\n" + strings.Repeat("é", 60) + " From x\nend=\n" + strings.Repeat("a", 74) + "From y"
	enc := encodeQP([]byte(in), "\r\n")
	lines(enc, func(l []byte) bool {
		if len(l) > 76 || bytes.HasPrefix(l, []byte("From ")) || bytes.HasPrefix(l, []byte(".")) || bytes.HasSuffix(l, []byte(" ")) || !is7bit(l) {
			t.Errorf("bad line %q", l)
		}
		return true
	})
	dec, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(enc)))
	if err != nil {
		t.Fatal(err)
	}
	if string(dec) != strings.ReplaceAll(in, "\n", "\r\n") {
		t.Errorf("round trip:\n%q\n%q", dec, in)
	}
}

func TestIsEncrypted(t *testing.T) {
	cases := map[string]bool{
		"Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=x\n\n": true,
		"Content-Type: multipart/encrypted; protocol=\"application/x-other\"; boundary=x\n\n":       true,
		"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\n\nMIAG":                   true,
		"Subject: x\n\n-----BEGIN PGP MESSAGE-----\n\nhQ\n-----END PGP MESSAGE-----\n":              true,
		"Subject: x\n\n> -----BEGIN PGP MESSAGE-----\n":                                             false,
		"Subject: x\n\nplain text\n": false,
		"Subject: x\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\nLS0tLS1CRUdJTiBQR1AgTUVTU0FHRS0tLS0tCg==\n":                                                             true,
		"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nhello\n--b\nContent-Type: text/plain\nContent-Disposition: attachment; filename=x.asc\n\n-----BEGIN PGP MESSAGE-----\n--b--\n": false,
		"not a message": false,
	}
	for msg, want := range cases {
		if got := IsEncrypted([]byte(msg)); got != want {
			t.Errorf("IsEncrypted(%q) = %v", msg, got)
		}
	}
}

func TestAttachKeyAndKeysFromMessage(t *testing.T) {
	alice := testKey(t, "alice@example.org")
	pub, err := pgpkey.ArmorPublic(alice)
	if err != nil {
		t.Fatal(err)
	}
	single := crlf("From: alice@example.org\nSubject: key\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nhere is my key ✓\n")
	withKey, err := AttachKey(single, pub, "alice.asc")
	if err != nil {
		t.Fatal(err)
	}
	if mt, _ := mediaType(headerOf(t, withKey)); mt != "multipart/mixed" {
		t.Fatalf("not wrapped: %s\n%s", mt, withKey)
	}
	if getValue(headerOf(t, withKey), "Subject") != "key" {
		t.Error("Subject lost")
	}
	if !bytes.Contains(withKey, []byte("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nhere is my key ✓\r\n")) {
		t.Errorf("original body entity changed:\n%s", withKey)
	}
	got := KeysFromMessage(withKey)
	if len(got) != 1 {
		t.Fatalf("%d keys", len(got))
	}
	el, err := openpgp.ReadArmoredKeyRing(strings.NewReader(got[0]))
	if err != nil || len(el) != 1 || fingerprint(el[0]) != fingerprint(alice) || el[0].PrivateKey != nil {
		t.Fatalf("key read back: %v", err)
	}

	// Adding to an existing multipart/mixed keeps its bytes.
	mixed := crlf("Subject: m\nContent-Type: multipart/mixed; boundary=\"zz\"\n\n--zz\nContent-Type: text/plain\n\nhi\n--zz--\n")
	withKey2, err := AttachKey(mixed, pub, "")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(withKey2, mixed[:bytes.Index(mixed, []byte("--zz--"))]) || !bytes.HasSuffix(withKey2, []byte("--zz--\r\n")) {
		t.Errorf("mixed:\n%s", withKey2)
	}
	if len(KeysFromMessage(withKey2)) != 1 || !bytes.Contains(withKey2, []byte(`filename="publickey.asc"`)) {
		t.Error("key not found in extended multipart/mixed")
	}

	// A signed message and a private key are refused.
	signed, _ := Sign(single, alice, nil)
	if _, err := AttachKey(signed, pub, "k.asc"); err != ErrProtected {
		t.Errorf("signed: %v", err)
	}
	priv, _ := pgpkey.ArmorPrivate(alice)
	if _, err := AttachKey(single, priv, "k.asc"); err != ErrNotPublicKey {
		t.Errorf("private key: %v", err)
	}
	// KeysFromMessage skips private keys sent as pgp-keys.
	leak := crlf("Content-Type: application/pgp-keys\n\n" + priv)
	if n := len(KeysFromMessage(leak)); n != 0 {
		t.Errorf("private key returned (%d)", n)
	}
	// Binary key, base64 encoded.
	var bin bytes.Buffer
	publicOnly(t, alice).Serialize(&bin)
	b64 := "Content-Type: application/pgp-keys\r\nContent-Transfer-Encoding: base64\r\n\r\n" + string(encodeBase64(bin.Bytes(), "\r\n"))
	if got := KeysFromMessage([]byte(b64)); len(got) != 1 || !strings.HasPrefix(got[0], "-----BEGIN PGP PUBLIC KEY BLOCK-----") {
		t.Errorf("binary key: %v", got)
	}

	// The key attachment survives signing and encryption.
	bob := testKey(t, "bob@example.net")
	enc, err := EncryptSign(withKey, list(publicOnly(t, bob)), alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, _ := Process(enc, list(bob), list(publicOnly(t, alice)), time.Now())
	if !res.Decrypted || len(KeysFromMessage(res.Message)) != 1 {
		t.Errorf("after encryption: Decrypted=%v keys=%d", res.Decrypted, len(KeysFromMessage(res.Message)))
	}
}
