package pgpmime

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/bitmask-go/bitmask/pkg/pgpkey"
)

// The fuzz seeds in testdata/fuzz/FuzzProcess include real encrypted and
// signed messages made with the fixed keys in testdata/fuzzkeys.asc
// (bob@example.net is the recipient, alice@example.org the sender), so
// the fuzzer starts from inputs that reach the decryption and
// verification code. Regenerate both with
//
//	PGPMIME_WRITE_TESTDATA=1 go test -run TestWriteFuzzTestdata ./pkg/pgpmime/

var fuzzKeys struct {
	once    sync.Once
	own     openpgp.EntityList
	senders openpgp.EntityList
	now     time.Time
	err     error
}

func loadFuzzKeys(tb testing.TB) (openpgp.EntityList, openpgp.EntityList, time.Time) {
	fuzzKeys.once.Do(func() {
		data, err := os.ReadFile(filepath.Join("testdata", "fuzzkeys.asc"))
		if err != nil {
			fuzzKeys.err = err
			return
		}
		var el openpgp.EntityList
		for _, blk := range strings.SplitAfter(string(data), "-----END PGP PRIVATE KEY BLOCK-----") {
			if !strings.Contains(blk, "-----BEGIN") {
				continue
			}
			k, err := openpgp.ReadArmoredKeyRing(strings.NewReader(blk))
			if err != nil {
				fuzzKeys.err = err
				return
			}
			el = append(el, k...)
		}
		for _, e := range el {
			switch pgpkey.Addresses(e)[0] {
			case "bob@example.net":
				fuzzKeys.own = append(fuzzKeys.own, e)
				fuzzKeys.now = e.PrimaryKey.CreationTime.Add(time.Hour)
			case "alice@example.org":
				var b bytes.Buffer
				e.Serialize(&b)
				pub, _ := openpgp.ReadKeyRing(&b)
				fuzzKeys.senders = append(fuzzKeys.senders, pub...)
			}
		}
		if len(fuzzKeys.own) != 1 || len(fuzzKeys.senders) != 1 {
			fuzzKeys.err = fmt.Errorf("testdata/fuzzkeys.asc: want bob and alice")
		}
	})
	if fuzzKeys.err != nil {
		tb.Fatal(fuzzKeys.err)
	}
	return fuzzKeys.own, fuzzKeys.senders, fuzzKeys.now
}

func FuzzProcess(f *testing.F) {
	own, senders, now := loadFuzzKeys(f)
	f.Add([]byte(sampleMsg))
	f.Add([]byte("Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=b\r\n\r\n--b\r\n\r\nVersion: 1\r\n--b\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nwcBMA\r\n-----END PGP MESSAGE-----\r\n--b--\r\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		res, err := Process(msg, own, senders, now)
		if err != nil {
			t.Fatalf("internal error: %v", err)
		}
		if res == nil || res.Message == nil && msg != nil {
			t.Fatal("message lost")
		}
		switch res.Signature {
		case SigNone, SigValid, SigInvalid, SigUnknownKey:
		default:
			t.Fatalf("signature status %q", res.Signature)
		}
		if !res.Encrypted || !res.Decrypted {
			if !bytes.Equal(res.Message, msg) {
				t.Fatal("message changed without decryption")
			}
		}
		if res.Encrypted && !res.Decrypted && res.DecryptErr == nil {
			t.Fatal("no DecryptErr")
		}
		if res.Decrypted && !res.Encrypted {
			t.Fatal("decrypted but not encrypted")
		}
		if res.Signature == SigValid && (res.SignerFingerprint == "" || res.Signer == nil) {
			t.Fatal("valid signature without its signer")
		}
		if len(res.SignatureOutside) > 0 && (res.Signature != SigValid || !errors.Is(res.SignatureErr, ErrPartialSignature)) {
			t.Fatalf("outside %q with %s %v", res.SignatureOutside, res.Signature, res.SignatureErr)
		}
		if len(res.EncryptionOutside) > 0 && !res.Decrypted {
			t.Fatalf("encryption outside %q without decryption", res.EncryptionOutside)
		}
		// Whatever Sign accepts must verify: canonicalization and the
		// byte-exact multipart/signed handling agree.
		if signed, err := Sign(msg, own[0], &Options{Config: packetConfigAt(now)}); err == nil {
			res, _ := Process(signed, nil, own, now)
			if res.Signature != SigValid || len(res.SignatureOutside) > 0 {
				t.Fatalf("Sign output does not verify as a whole: %s %v %q\n%q", res.Signature, res.SignatureErr, res.SignatureOutside, signed)
			}
		}
		// The helpers must not panic on anything either.
		IsEncrypted(msg)
		KeysFromMessage(msg)
		StripHeaders(msg, "Subject")
		StripNamePrefix(msg, "X-Leap-")
		SetHeaders(msg, "X-Test", "1")
	})
}

func TestFuzzSeedsDecrypt(t *testing.T) {
	own, senders, now := loadFuzzKeys(t)
	want := map[string]struct {
		decrypted bool
		sig       SigStatus
	}{
		"pgpmime-encrypted-signed":  {true, SigValid},
		"pgpmime-hidden-recipients": {true, SigValid},
		"pgpmime-encapsulated":      {true, SigValid},
		"pgpmime-signed":            {false, SigValid},
		"inline-encrypted":          {true, SigValid},
		"inline-clearsigned":        {false, SigValid},
		"protected-legacy-part":     {true, SigValid},
	}
	for name, w := range want {
		data, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzProcess", name))
		if err != nil {
			t.Fatal(err)
		}
		s := string(data)
		i, j := strings.Index(s, "[]byte("), strings.LastIndex(s, ")")
		msg, err := unquoteSeed(s[i+len("[]byte(") : j])
		if err != nil {
			t.Fatal(err)
		}
		res, _ := Process(msg, own, senders, now)
		if res.Decrypted != w.decrypted || res.Signature != w.sig {
			t.Errorf("%s: Decrypted=%v (%v) Signature=%s (%v)", name, res.Decrypted, res.DecryptErr, res.Signature, res.SignatureErr)
		}
	}
}

// TestWriteFuzzTestdata regenerates testdata/fuzzkeys.asc and the fuzz
// seeds; it only runs with PGPMIME_WRITE_TESTDATA=1.
func TestWriteFuzzTestdata(t *testing.T) {
	if os.Getenv("PGPMIME_WRITE_TESTDATA") == "" {
		t.Skip("set PGPMIME_WRITE_TESTDATA=1 to regenerate the fuzz testdata")
	}
	created := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	alice, err := pgpkey.Generate("alice@example.org", 100*365*24*time.Hour, created)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := pgpkey.Generate("bob@example.net", 100*365*24*time.Hour, created)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := pgpkey.ArmorPrivate(alice)
	b, _ := pgpkey.ArmorPrivate(bob)
	if err := os.WriteFile(filepath.Join("testdata", "fuzzkeys.asc"), []byte(a+b), 0o644); err != nil {
		t.Fatal(err)
	}
	fuzzKeys.once = sync.Once{}
	at := created.Add(time.Minute)
	opts := &Options{Config: packetConfigAt(at)}
	hidden := &Options{Config: packetConfigAt(at), HiddenRecipients: true}
	to := list(publicOnly(t, bob), publicOnly(t, alice))

	seeds := map[string][]byte{}
	msg := crlf(sampleMsg)
	if seeds["pgpmime-encrypted-signed"], err = EncryptSign(msg, to, alice, opts); err != nil {
		t.Fatal(err)
	}
	if seeds["pgpmime-hidden-recipients"], err = EncryptSign(msg, to, alice, hidden); err != nil {
		t.Fatal(err)
	}
	if seeds["pgpmime-signed"], err = Sign(msg, alice, opts); err != nil {
		t.Fatal(err)
	}
	signed := seeds["pgpmime-signed"]
	if seeds["pgpmime-encapsulated"], err = EncryptSign(signed, to, alice, opts); err != nil {
		t.Fatal(err)
	}
	armored := encryptArmored(t, []byte("inline secret\n"), to, alice, packetConfigAt(at))
	seeds["inline-encrypted"] = crlf("From: alice@example.org\nSubject: inline\nContent-Type: text/plain\n\n" + string(armored))
	seeds["inline-clearsigned"] = crlf("From: alice@example.org\nSubject: cs\n\n" + clearsignTextCfg(t, alice, "signed text\n", packetConfigAt(at)))
	legacy := crlf("Content-Type: multipart/mixed; boundary=\"i\"; protected-headers=\"v1\"\n\n--i\nContent-Type: text/rfc822-headers; protected-headers=\"v1\"\n\nSubject: real\n\n--i\nContent-Type: text/plain\n\nbody\n--i--\n")
	seeds["protected-legacy-part"] = wrapEncrypted("From: alice@example.org\nSubject: ...\n", encryptArmored(t, legacy, to, alice, packetConfigAt(at)))
	seeds["garbage"] = []byte("\x00\xff\r\n\r\n--\r\n")

	dir := filepath.Join("testdata", "fuzz", "FuzzProcess")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, m := range seeds {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", m)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func packetConfigAt(at time.Time) *packet.Config {
	return &packet.Config{DefaultHash: crypto.SHA256, Time: func() time.Time { return at }}
}

func unquoteSeed(s string) ([]byte, error) {
	u, err := strconv.Unquote(s)
	return []byte(u), err
}
