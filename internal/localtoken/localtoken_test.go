package localtoken

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func TestNewTokens(t *testing.T) {
	a, err := New()
	if err != nil {
		t.Fatal(err)
	}
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 32 || a == b {
		t.Fatalf("tokens %q and %q: want two different 32-character tokens", a, b)
	}
	if !Equal(a, a) || Equal(a, b) || Equal(a, "") {
		t.Fatal("Equal is wrong")
	}
}

// The secret wrapped under a token opens with that token and address
// only.
func TestWrapUnwrap(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	tok, _ := New()
	w, err := Wrap(tok, "ann@example.org", secret)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unwrap(tok, "ann@example.org", w)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("unwrap: %x %v", got, err)
	}
	other, _ := New()
	if _, err := Unwrap(other, "ann@example.org", w); err == nil {
		t.Fatal("another token unwrapped the secret")
	}
	if _, err := Unwrap(tok, "bob@example.org", w); err == nil {
		t.Fatal("the secret unwrapped for another address")
	}
	if _, err := Unwrap(tok, "ann@example.org", nil); err == nil {
		t.Fatal("nothing unwrapped")
	}
}

// The key derivation is part of the format of account.json's local_wrap:
// HKDF-SHA256 of the token, no salt, info "bitmask/v1/local-token-kek".
// It must not change, or a restarted bitmaskd could not unlock accounts.
func TestKEKVector(t *testing.T) {
	k, err := KEK("00112233445566778899aabbccddeeff")
	if err != nil {
		t.Fatal(err)
	}
	const want = "413855b79da311e338d48b05693bd06158d595514c5a2b9b4acfeea36d37f187"
	if got := hex.EncodeToString(k[:]); got != want {
		t.Fatalf("KEK = %s, want %s", got, want)
	}
}
