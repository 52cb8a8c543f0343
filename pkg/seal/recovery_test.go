package seal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

// recoveryVector is one vector of testdata/vectors/seal/recovery.json:
// a code's entropy and cheap parameters to the code as written, the
// stretch, the recovery SRP secret and KEK, and the storage secret
// wrapped under that KEK with Bitmask's associated data.
type recoveryVector struct {
	Comment   string   `json:"comment"`
	Entropy   hexBytes `json:"entropy"`
	Code      string   `json:"code"`
	T         uint32   `json:"t"`
	M         uint32   `json:"m"`
	P         uint8    `json:"p"`
	Salt      hexBytes `json:"salt"`
	Stretched hexBytes `json:"stretched"`
	SRPSecret hexBytes `json:"srp_secret"`
	KEK       hexBytes `json:"kek"`
	Nonce     hexBytes `json:"nonce"`
	Secret    hexBytes `json:"secret"`
	AD        string   `json:"ad"`
	Wrapped   hexBytes `json:"wrapped"`
}

const recoveryVectorFile = "recovery.json"

func generateRecoveryVectors(t *testing.T) vectorFile[recoveryVector] {
	vs := []recoveryVector{
		{Comment: "entropy 00 01 .. 13, minimum parameters", Entropy: seq(0, 20), T: 1, M: 8192, P: 1, Salt: seq(0x10, 16)},
		{Comment: "entropy all ff, two passes, two lanes", Entropy: bytes.Repeat([]byte{0xff}, 20), T: 2, M: 8192, P: 2, Salt: seq(0x30, 16)},
		{Comment: "entropy a0 a1 .. b3, 32-byte salt", Entropy: seq(0xa0, 20), T: 1, M: 16384, P: 1, Salt: seq(0x50, 32)},
	}
	for i := range vs {
		v := &vs[i]
		c, err := RecoveryCodeFromEntropy(v.Entropy)
		if err != nil {
			t.Fatal(err)
		}
		v.Code = c.String()
		rk, err := DeriveRecoveryKeys(c, KDFParams{Time: v.T, MemoryKiB: v.M, Threads: v.P, Salt: v.Salt})
		if err != nil {
			t.Fatal(err)
		}
		v.Stretched = argon2.IDKey(v.Entropy, v.Salt, v.T, v.M, v.P, 32)
		v.SRPSecret = rk.SRPSecret
		v.KEK = bytes.Clone(rk.KEK[:])
		v.Nonce = seq(byte(0x60+i), 24)
		v.Secret = seq(0, 32)
		v.AD = "bitmask-recovery-v1\x00alice"
		w, err := wrapSecretWithNonce(&rk.KEK, nonce24(v.Nonce), v.Secret, []byte(v.AD))
		if err != nil {
			t.Fatal(err)
		}
		v.Wrapped = w
	}
	return vectorFile[recoveryVector]{
		Description: "Recovery codes (docs/formats.md, Recovery code): code = Crockford base32 of the 20-byte entropy (32 characters) || 3 characters of the first 15 bits of SHA-256(\"bitmask-recovery-check-v1\" || 0x00 || entropy), in groups of 5 joined by '-'; stretched = Argon2id(entropy, salt, t, m KiB, p, 32); srp_secret = HKDF-SHA256(stretched, salt empty, info \"bitmask/v1/recovery-srp-x\"); kek = HKDF-SHA256(stretched, salt empty, info \"bitmask/v1/recovery-kek\"); wrapped = WrapSecret(kek, nonce, secret, ad) with ad = \"bitmask-recovery-v1\" || 0x00 || login.",
		Vectors:     vs,
	}
}

func TestRecoveryVectors(t *testing.T) {
	path := filepath.Join(vectorDir, recoveryVectorFile)
	gen := generateRecoveryVectors(t)
	want, err := json.MarshalIndent(gen, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/seal -run TestRecoveryVectors -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the generator (run go test ./pkg/seal -run TestRecoveryVectors -update)", recoveryVectorFile)
	}
	// Check the file's values by the functions, from the inputs only.
	for i, v := range readVectors[recoveryVector](t, recoveryVectorFile) {
		c, err := ParseRecoveryCode(v.Code)
		if err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		checkHex(t, fmt.Sprintf("vector %d entropy", i), c.Entropy(), v.Entropy)
		rk, err := DeriveRecoveryKeys(c, KDFParams{Time: v.T, MemoryKiB: v.M, Threads: v.P, Salt: v.Salt})
		if err != nil {
			t.Fatal(err)
		}
		checkHex(t, fmt.Sprintf("vector %d srp_secret", i), rk.SRPSecret, v.SRPSecret)
		checkHex(t, fmt.Sprintf("vector %d kek", i), rk.KEK[:], v.KEK)
		secret, err := UnwrapSecret(&rk.KEK, v.Wrapped, []byte(v.AD))
		if err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		checkHex(t, fmt.Sprintf("vector %d secret", i), secret, v.Secret)
	}
}

// The first vector's code, fixed here so a change of the encoding shows.
const vectorCode = "000G4-0R40M-30E20-9185G-R38E1-W8124-GKPTQ"

func TestRecoveryCodeText(t *testing.T) {
	c, err := RecoveryCodeFromEntropy(seq(0, 20))
	if err != nil {
		t.Fatal(err)
	}
	if c.String() != vectorCode {
		t.Fatalf("code %s, want %s", c, vectorCode)
	}
	// What a person may type: lower case, spaces, no dashes, O for 0,
	// L or I for 1.
	for _, typed := range []string{
		vectorCode,
		strings.ToLower(vectorCode),
		strings.ReplaceAll(vectorCode, "-", " "),
		strings.ReplaceAll(vectorCode, "-", ""),
		"  " + strings.ReplaceAll(strings.ReplaceAll(vectorCode, "0", "O"), "1", "l") + "\n",
		strings.ReplaceAll(vectorCode, "1", "I"),
	} {
		got, err := ParseRecoveryCode(typed)
		if err != nil {
			t.Errorf("%q: %v", typed, err)
			continue
		}
		if got != c {
			t.Errorf("%q read as %s", typed, got)
		}
	}
	for i := 0; i < 50; i++ {
		n, err := NewRecoveryCode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseRecoveryCode(n.String())
		if err != nil || back != n {
			t.Fatalf("%s: round trip gave %v, %v", n, back, err)
		}
		if len(n.String()) != 41 {
			t.Fatalf("%s is %d characters", n, len(n.String()))
		}
	}
}

// TestRecoveryCodeTypos: every single wrong character and every swap of
// two neighbours of the vector code is caught by the check, and malformed
// input gets an error that says what is wrong.
func TestRecoveryCodeTypos(t *testing.T) {
	plain := strings.ReplaceAll(vectorCode, "-", "")
	for i := range plain {
		for _, r := range crockford {
			if byte(r) == plain[i] {
				continue
			}
			typo := plain[:i] + string(r) + plain[i+1:]
			if _, err := ParseRecoveryCode(typo); !errors.Is(err, ErrRecoveryCode) || !strings.Contains(err.Error(), "mistyped") {
				t.Fatalf("%s (position %d) not caught: %v", typo, i, err)
			}
		}
		if i+1 < len(plain) && plain[i] != plain[i+1] {
			swap := plain[:i] + plain[i+1:i+2] + plain[i:i+1] + plain[i+2:]
			if _, err := ParseRecoveryCode(swap); !errors.Is(err, ErrRecoveryCode) {
				t.Fatalf("swap at %d not caught", i)
			}
		}
	}
	for typed, want := range map[string]string{
		"":                                       "has 0 letters",
		vectorCode[:len(vectorCode)-1]:           "has 34 letters",
		vectorCode + "0":                         "has 36 letters",
		strings.Replace(vectorCode, "G", "U", 1): `'U' is not`,
		strings.Replace(vectorCode, "G", "é", 1): `'é' is not`,
		strings.Replace(vectorCode, "-", "_", 1): `'_' is not`,
	} {
		_, err := ParseRecoveryCode(typed)
		if !errors.Is(err, ErrRecoveryCode) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", typed, err, want)
		}
	}
}

// TestRecoveryKeysIndependent: a code's keys differ from a password's
// keys with the same bytes and parameters, and from each other.
func TestRecoveryKeysIndependent(t *testing.T) {
	c, _ := RecoveryCodeFromEntropy(seq(0, 20))
	p := KDFParams{Time: 1, MemoryKiB: 8192, Threads: 1, Salt: seq(0, 16)}
	rk, err := DeriveRecoveryKeys(c, p)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := DerivePasswordKeys(c.Entropy(), p)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(rk.SRPSecret, pk.SRPSecret) || rk.KEK == pk.KEK || bytes.Equal(rk.SRPSecret, rk.KEK[:]) {
		t.Fatal("recovery keys related to password keys")
	}
	if _, err := DeriveRecoveryKeys(c, KDFParams{Time: 0, MemoryKiB: 8192, Threads: 1, Salt: seq(0, 16)}); err == nil {
		t.Fatal("invalid parameters accepted")
	}
}

// FuzzParseRecoveryCode: any text parses or fails with ErrRecoveryCode;
// what parses prints back to a text that parses to the same code.
func FuzzParseRecoveryCode(f *testing.F) {
	f.Add(vectorCode)
	f.Add(strings.ToLower(vectorCode))
	f.Add("")
	f.Add("OIL--" + vectorCode[5:])
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseRecoveryCode(s)
		if err != nil {
			if !errors.Is(err, ErrRecoveryCode) {
				t.Fatalf("error not ErrRecoveryCode: %v", err)
			}
			return
		}
		back, err := ParseRecoveryCode(c.String())
		if err != nil || back != c {
			t.Fatalf("%q -> %s -> %v, %v", s, c, back, err)
		}
	})
}

// BenchmarkDeriveRecoveryKeysDefault is one derivation of a recovery
// code's keys with the product's default parameters, as bitmaskd makes
// at signup, at user recovery-code and at a recovery.
func BenchmarkDeriveRecoveryKeysDefault(b *testing.B) {
	c, err := NewRecoveryCode()
	if err != nil {
		b.Fatal(err)
	}
	p, err := DefaultKDFParams()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := DeriveRecoveryKeys(c, p); err != nil {
			b.Fatal(err)
		}
	}
}
