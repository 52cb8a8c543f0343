package autocrypt

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/bitmask-go/bitmask/pkg/pgpkey"
)

func genKey(t *testing.T, addr string) *openpgp.Entity {
	t.Helper()
	e, err := pgpkey.Generate(addr, 0, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func fpr(e *openpgp.Entity) string { return pgpkey.Fingerprint(e) }

// keydata returns the base64 of e's public key, folded as a client would.
func keydata(t *testing.T, e *openpgp.Entity) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	if err := e.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	enc := base64.StdEncoding.EncodeToString(b.Bytes())
	var folded strings.Builder
	for len(enc) > 0 {
		n := min(64, len(enc))
		folded.WriteString("\r\n " + enc[:n])
		enc = enc[n:]
	}
	return folded.String(), b.Bytes()
}

func TestParseExamples(t *testing.T) {
	alice := genKey(t, "alice@autocrypt.example")
	kd, raw := keydata(t, alice)
	cases := []struct {
		name   string
		value  string
		addr   string
		prefer string
		err    error
	}{
		{"minimal", "addr=alice@autocrypt.example; keydata=" + kd, "alice@autocrypt.example", "", nil},
		{"mutual", "addr=alice@autocrypt.example; prefer-encrypt=mutual; keydata=" + kd, "alice@autocrypt.example", "mutual", nil},
		{"nopreference", "addr=alice@autocrypt.example; prefer-encrypt=nopreference; keydata=" + kd, "alice@autocrypt.example", "", nil},
		{"unknown prefer value", "addr=alice@autocrypt.example; prefer-encrypt=always; keydata=" + kd, "alice@autocrypt.example", "", nil},
		{"non-critical attribute", "addr=alice@autocrypt.example; _client=bitmask 1.0; prefer-encrypt=mutual; keydata=" + kd, "alice@autocrypt.example", "mutual", nil},
		{"extra spaces and folding", "  addr = alice@autocrypt.example ;\r\n\tprefer-encrypt=mutual;\r\n keydata=" + kd + " ", "alice@autocrypt.example", "mutual", nil},
		{"upper-case attribute names", "Addr=alice@autocrypt.example; KEYDATA=" + kd, "alice@autocrypt.example", "", nil},
		{"trailing semicolon", "addr=alice@autocrypt.example; keydata=" + kd + ";", "alice@autocrypt.example", "", nil},
		{"unknown critical attribute", "addr=alice@autocrypt.example; version=2; keydata=" + kd, "", "", ErrCritical},
		{"missing addr", "prefer-encrypt=mutual; keydata=" + kd, "", "", ErrInvalid},
		{"missing keydata", "addr=alice@autocrypt.example; prefer-encrypt=mutual", "", "", ErrInvalid},
		{"empty keydata", "addr=alice@autocrypt.example; keydata=", "", "", ErrInvalid},
		{"bad base64", "addr=alice@autocrypt.example; keydata=!!!notbase64!!!", "", "", ErrInvalid},
		{"duplicate addr", "addr=alice@autocrypt.example; addr=eve@example.com; keydata=" + kd, "", "", ErrInvalid},
		{"attribute without value", "addr=alice@autocrypt.example; mutual; keydata=" + kd, "", "", ErrInvalid},
		{"addr not an address", "addr=alice; keydata=" + kd, "", "", ErrInvalid},
		{"too large", "addr=alice@autocrypt.example; _pad=" + strings.Repeat("x", MaxHeaderSize) + "; keydata=" + kd, "", "", ErrInvalid},
		{"empty", "", "", "", ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := Parse(c.value)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Addr != c.addr || h.PreferEncrypt != c.prefer || !bytes.Equal(h.KeyData, raw) {
				t.Errorf("got addr=%q prefer=%q keydata %d bytes", h.Addr, h.PreferEncrypt, len(h.KeyData))
			}
		})
	}
}

func countPackets(t *testing.T, data []byte) map[string]int {
	t.Helper()
	r := packet.NewReader(bytes.NewReader(data))
	n := map[string]int{}
	for {
		p, err := r.Next()
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		switch p := p.(type) {
		case *packet.PublicKey:
			if p.IsSubkey {
				n["subkey"]++
			} else {
				n["primary"]++
			}
		case *packet.UserId:
			n["userid"]++
		case *packet.Signature:
			n["sig"]++
		case *packet.PrivateKey:
			n["private"]++
		default:
			n["other"]++
		}
	}
}

func TestRoundTrip(t *testing.T) {
	e := genKey(t, "bob@example.net")
	// Make the key less minimal: another user ID and another encryption subkey.
	if err := e.AddUserId("Bob", "work", "bob@work.example", nil); err != nil {
		t.Fatal(err)
	}
	if err := e.AddEncryptionSubkey(&packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Curve: packet.Curve25519}); err != nil {
		t.Fatal(err)
	}
	h, err := New("Bob@Example.net", e, true)
	if err != nil {
		t.Fatal(err)
	}
	// Minimal key (Level 1 §2.1.1): exactly five packets.
	n := countPackets(t, h.KeyData)
	if n["primary"] != 1 || n["userid"] != 1 || n["subkey"] != 1 || n["sig"] != 2 || n["private"] != 0 || n["other"] != 0 {
		t.Errorf("key data packets: %v", n)
	}

	s := h.String()
	if !strings.HasPrefix(s, "addr=Bob@Example.net; prefer-encrypt=mutual; keydata=\r\n ") {
		t.Errorf("header starts %q", s[:60])
	}
	for i, l := range strings.Split(s, "\r\n") {
		if len(l) > 77 || i > 0 && !strings.HasPrefix(l, " ") {
			t.Errorf("line %d badly folded: %q", i, l)
		}
	}
	p, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	if p.Addr != h.Addr || p.PreferEncrypt != "mutual" || !bytes.Equal(p.KeyData, h.KeyData) {
		t.Fatal("Parse(String()) differs")
	}
	pub, err := p.Entity()
	if err != nil {
		t.Fatal(err)
	}
	if fpr(pub) != fpr(e) || pub.PrivateKey != nil || len(pub.Identities) != 1 || len(pub.Subkeys) != 1 {
		t.Fatalf("entity: fpr %s ids %d subkeys %d", fpr(pub), len(pub.Identities), len(pub.Subkeys))
	}
	if got := pgpkey.Addresses(pub); len(got) != 1 || got[0] != "bob@example.net" {
		t.Errorf("addresses %v", got)
	}
	// The newest encryption subkey was chosen, and it works.
	want, _ := e.EncryptionKey(time.Now())
	got, ok := pub.EncryptionKey(time.Now())
	if !ok || got.PublicKey.KeyId != want.PublicKey.KeyId {
		t.Fatal("encryption subkey missing or not the current one")
	}
	var ct bytes.Buffer
	w, err := openpgp.Encrypt(&ct, openpgp.EntityList{pub}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("hi"))
	w.Close()
	md, err := openpgp.ReadMessage(&ct, openpgp.EntityList{e}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(md.UnverifiedBody); string(b) != "hi" {
		t.Error("decryption with the original key failed")
	}

	if _, err := New("nobody@example.net", e, false); err == nil {
		t.Error("New for an address without user ID")
	}
	if h, _ := New("bob@example.net", e, false); h.PreferEncrypt != "" || strings.Contains(h.String(), "prefer-encrypt") {
		t.Error("prefer-encrypt without preferMutual")
	}
}

func TestEntityRejects(t *testing.T) {
	e := genKey(t, "carol@example.com")
	var priv bytes.Buffer
	if err := e.SerializePrivateWithoutSigning(&priv, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Header{Addr: "carol@example.com", KeyData: priv.Bytes()}).Entity(); err == nil {
		t.Error("secret key accepted")
	}
	var two bytes.Buffer
	e.Serialize(&two)
	genKey(t, "dave@example.com").Serialize(&two)
	if _, err := (&Header{Addr: "carol@example.com", KeyData: two.Bytes()}).Entity(); err == nil {
		t.Error("two keys accepted")
	}
	if _, err := (&Header{Addr: "carol@example.com", KeyData: []byte("garbage")}).Entity(); err == nil {
		t.Error("garbage accepted")
	}
}

func TestFromMessage(t *testing.T) {
	alice := genKey(t, "alice@example.org")
	mallory := genKey(t, "mallory@example.com")
	ha, _ := New("alice@example.org", alice, true)
	hm, _ := New("mallory@example.com", mallory, false)
	msg := func(header string) []byte {
		return []byte(strings.ReplaceAll(header, "\n", "\r\n") + "\r\nbody\r\n")
	}
	a := "Autocrypt: " + ha.String() + "\n"
	m := "Autocrypt: " + hm.String() + "\n"

	// The header matching From is picked; one for another address is ignored.
	h, err := FromMessage(msg("From: Alice <Alice@Example.ORG>\nTo: bob@example.net\n" + m + a + "Subject: hi\n"))
	if err != nil || h == nil {
		t.Fatalf("h=%v err=%v", h, err)
	}
	if pub, err := h.Entity(); err != nil || fpr(pub) != fpr(alice) || h.PreferEncrypt != "mutual" {
		t.Fatalf("wrong header picked: %v", err)
	}
	// Invalid headers (unknown critical attribute) do not count.
	bad := "Autocrypt: addr=alice@example.org; future=1; keydata=AAAA\n"
	if h, err := FromMessage(msg("From: alice@example.org\n" + bad + a)); err != nil || h == nil {
		t.Errorf("with an invalid header: h=%v err=%v", h, err)
	}
	// Several valid headers: all discarded, as an error.
	if h, err := FromMessage(msg("From: alice@example.org\n" + a + a)); h != nil || !errors.Is(err, ErrMultipleHeaders) {
		t.Errorf("two valid headers: h=%v err=%v", h, err)
	}
	// None, or only for another address.
	for name, hdr := range map[string]string{
		"none":          "From: alice@example.org\nSubject: x\n",
		"other address": "From: alice@example.org\n" + m,
		"auto-replied":  "From: alice@example.org\nAuto-Submitted: auto-replied\n" + a,
		"report":        "From: alice@example.org\nContent-Type: multipart/report; report-type=delivery-status; boundary=x\n" + a,
		"two From":      "From: alice@example.org, bob@example.net\n" + a,
		"no From":       "Subject: x\n" + a,
	} {
		if h, err := FromMessage(msg(hdr)); h != nil || err != nil {
			t.Errorf("%s: h=%v err=%v", name, h, err)
		}
	}
	// Auto-Submitted: auto-generated is not a reason to ignore.
	if h, _ := FromMessage(msg("From: alice@example.org\nAuto-Submitted: auto-generated\n" + a)); h == nil {
		t.Error("auto-generated message ignored")
	}
	if _, err := FromMessage([]byte(" broken\r\n\r\n")); err == nil {
		t.Error("malformed header accepted")
	}
}
