package pgpmime

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/bitmask-go/bitmask/pkg/pgpkey"
)

var (
	keyMu    sync.Mutex
	keyCache = map[string]*openpgp.Entity{}
)

// testKey returns a private key for addr made by pkg/pgpkey (v4
// Ed25519 + Cv25519), cached per address.
func testKey(t testing.TB, addr string) *openpgp.Entity {
	t.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	if e, ok := keyCache[addr]; ok {
		return e
	}
	e, err := pgpkey.Generate(addr, 0, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	keyCache[addr] = e
	return e
}

// publicOnly returns a public-key-only copy of e, as a sender's key
// would be known.
func publicOnly(t testing.TB, e *openpgp.Entity) *openpgp.Entity {
	t.Helper()
	var b bytes.Buffer
	if err := e.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	el, err := openpgp.ReadKeyRing(&b)
	if err != nil || len(el) != 1 {
		t.Fatalf("read back public key: %v (%d)", err, len(el))
	}
	return el[0]
}

func list(es ...*openpgp.Entity) openpgp.EntityList { return openpgp.EntityList(es) }

// crlf turns a test literal written with \n into a CRLF message.
func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

const sampleMsg = `From: Alice <alice@example.org>
To: Bob <bob@example.net>
Cc: carol@example.com
Bcc: secret-bcc@example.com
Subject: Quarterly numbers
Date: Mon, 02 Jan 2006 15:04:05 -0700
Message-ID: <123@example.org>
In-Reply-To: <100@example.net>
References: <100@example.net>
User-Agent: pgpmime-test
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Hello Bob,

the numbers are good.
-- 
Alice
`

// headerOf and bodyOf split a message.
func headerOf(t testing.TB, msg []byte) []field {
	t.Helper()
	e, err := parseEntity(msg)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, msg)
	}
	return e.header
}

func bodyOf(t testing.TB, msg []byte) []byte {
	t.Helper()
	e, err := parseEntity(msg)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return e.body
}

// armoredPart extracts the armored OpenPGP message of a multipart/encrypted message.
func armoredPart(t testing.TB, msg []byte) []byte {
	t.Helper()
	i := bytes.Index(msg, []byte(beginMessage))
	j := bytes.Index(msg, []byte(endMessage))
	if i < 0 || j < 0 {
		t.Fatalf("no armored message in\n%s", msg)
	}
	return msg[i : j+len(endMessage)]
}

// pkeskIDs lists the key IDs of the PKESK packets of an armored message.
func pkeskIDs(t testing.TB, armored []byte) []uint64 {
	t.Helper()
	blk, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		t.Fatal(err)
	}
	r := packet.NewReader(blk.Body)
	var ids []uint64
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch p := p.(type) {
		case *packet.EncryptedKey:
			ids = append(ids, p.KeyId)
		case *packet.SymmetricallyEncrypted, *packet.AEADEncrypted:
			return ids
		}
	}
	return ids
}

// encryptArmored makes an armored OpenPGP message of plain for to, signed by signer (optional).
func encryptArmored(t testing.TB, plain []byte, to openpgp.EntityList, signer *openpgp.Entity, cfg *packet.Config) []byte {
	t.Helper()
	var b bytes.Buffer
	aw, err := armor.Encode(&b, "PGP MESSAGE", nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := openpgp.Encrypt(aw, to, signer, &openpgp.FileHints{IsBinary: true}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := aw.Close(); err != nil {
		t.Fatal(err)
	}
	b.WriteString("\n")
	return b.Bytes()
}

// wrapEncrypted builds a multipart/encrypted message around an armored
// OpenPGP message, as RFC 3156 §4 shows.
func wrapEncrypted(outerHeader string, armored []byte) []byte {
	var b bytes.Buffer
	b.WriteString(outerHeader)
	b.WriteString("MIME-Version: 1.0\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"foo\"\n\n")
	b.WriteString("--foo\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n\n--foo\nContent-Type: application/octet-stream\n\n")
	b.Write(bytes.ReplaceAll(armored, []byte("\r\n"), []byte("\n")))
	b.WriteString("\n--foo--\n")
	return bytes.ReplaceAll(b.Bytes(), []byte("\n"), []byte("\r\n"))
}

func armorEncode(w io.Writer) (io.WriteCloser, error) { return armor.Encode(w, "PGP MESSAGE", nil) }
