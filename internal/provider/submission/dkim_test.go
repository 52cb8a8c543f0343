package submission

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
)

func TestFieldsToSign(t *testing.T) {
	msg := []byte("Received: x\r\nFrom: a@b\r\nTo: c@d\r\nTo: e@f\r\nSubject: s\r\nX-Other: y\r\nautocrypt: addr=a@b; keydata=AA\r\n\r\nFrom: not a header\r\n")
	got := strings.Join(fieldsToSign(msg), ",")
	if want := "From,Subject,To,To,Autocrypt"; got != want {
		t.Fatalf("signed fields %s, want %s", got, want)
	}
	if got := strings.Join(fieldsToSign([]byte("Subject: no from\r\n\r\n")), ","); got != "From,Subject" {
		t.Fatalf("without From: %s", got)
	}
}

// TestDKIMBothKeys: the data directory gets an ed25519 and an RSA-2048
// key at first start, the same ones at the next, and a message signed
// with both carries two signatures that a verifier, served the two TXT
// records, finds valid; a changed body fails both.
func TestDKIMBothKeys(t *testing.T) {
	dir := t.TempDir()
	keys, err := LoadOrCreateDKIMKeys(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].Selector != "bitmask" || keys[1].Selector != "bitmask-rsa" {
		t.Fatalf("keys %+v", keys)
	}
	if _, ok := keys[0].Signer.(ed25519.PrivateKey); !ok {
		t.Fatalf("first key %T, want ed25519", keys[0].Signer)
	}
	if rk, ok := keys[1].Signer.(*rsa.PrivateKey); !ok || rk.N.BitLen() != 2048 {
		t.Fatalf("second key %T, want RSA-2048", keys[1].Signer)
	}
	for _, f := range []string{DKIMKeyFile, DKIMRSAKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, fi, err)
		}
	}
	again, err := LoadOrCreateDKIMKeys(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	var recs []DKIMRecord
	for i, k := range again {
		r1, err := keys[i].Record("Example.Test.")
		if err != nil {
			t.Fatal(err)
		}
		r2, err := k.Record("example.test")
		if err != nil || r1 != r2 {
			t.Fatalf("key %d changed at the second start: %v %v (%v)", i, r1, r2, err)
		}
		recs = append(recs, r1)
	}
	if recs[0].Name != "bitmask._domainkey.example.test" || !strings.HasPrefix(recs[0].Value, "v=DKIM1; k=ed25519; p=") ||
		recs[1].Name != "bitmask-rsa._domainkey.example.test" || !strings.HasPrefix(recs[1].Value, "v=DKIM1; k=rsa; p=") {
		t.Fatalf("records %+v", recs)
	}

	msg := "From: alice@example.test\r\nTo: bob@remote.test\r\nSubject: both\r\n\r\nHello.\r\n"
	sigs, err := dkimSignatures([]byte(msg), "example.test", keys)
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(q string) ([]string, error) {
		for _, r := range recs {
			if strings.EqualFold(strings.TrimSuffix(q, "."), r.Name) {
				return []string{r.Value}, nil
			}
		}
		return nil, &net.DNSError{Err: "not found", Name: q, IsNotFound: true}
	}
	verify := func(m string) []*dkim.Verification {
		t.Helper()
		vs, err := dkim.VerifyWithOptions(strings.NewReader(m), &dkim.VerifyOptions{LookupTXT: lookup})
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != 2 {
			t.Fatalf("%d signatures, want 2", len(vs))
		}
		return vs
	}
	algos := map[string]bool{}
	for _, v := range verify(sigs + msg) {
		if v.Err != nil || v.Domain != "example.test" {
			t.Fatalf("signature for %s: %v", v.Domain, v.Err)
		}
	}
	for _, f := range headerFields([]byte(sigs + msg)) {
		if strings.EqualFold(f.name, "DKIM-Signature") {
			for _, a := range []string{"a=ed25519-sha256", "a=rsa-sha256"} {
				if strings.Contains(f.value, a) {
					algos[a] = true
				}
			}
		}
	}
	if len(algos) != 2 {
		t.Fatalf("algorithms signed with: %v", algos)
	}
	for _, v := range verify(sigs + strings.Replace(msg, "Hello", "Hullo", 1)) {
		if v.Err == nil {
			t.Fatal("a changed body verified")
		}
	}
}

// TestDKIMBadRSAKey: a short RSA key or a key of another kind in
// dkim-rsa.key stops the start with an error naming the file, and the
// file is left as it was.
func TestDKIMBadRSAKey(t *testing.T) {
	short, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	for name, key := range map[string]crypto.Signer{"short": short, "ed25519": ed} {
		dir := t.TempDir()
		if err := writeKey(filepath.Join(dir, DKIMRSAKeyFile), key); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(filepath.Join(dir, DKIMRSAKeyFile))
		_, err := LoadOrCreateDKIMKeys(dir, "")
		if err == nil || !strings.Contains(err.Error(), DKIMRSAKeyFile) {
			t.Errorf("%s: %v", name, err)
		}
		after, _ := os.ReadFile(filepath.Join(dir, DKIMRSAKeyFile))
		if string(before) != string(after) {
			t.Errorf("%s: the key file changed", name)
		}
	}
}

// BenchmarkDKIMSignBoth: both signatures of a 64 KiB message.
func BenchmarkDKIMSignBoth(b *testing.B) {
	keys, err := LoadOrCreateDKIMKeys(b.TempDir(), "")
	if err != nil {
		b.Fatal(err)
	}
	msg := []byte("From: alice@example.test\r\nTo: bob@remote.test\r\nSubject: bench\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 1024))
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := dkimSignatures(msg, "example.test", keys); err != nil {
			b.Fatal(err)
		}
	}
}
