package seal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// fuzzKey is the key the fuzz targets and their seeds use.
func fuzzKey() *[32]byte { return testKey(0xf0) }

// fuzzDocAD is the document slot the fuzz targets open.
const (
	fuzzUser = "fuzz@example.org"
	fuzzID   = "0123456789abcdef0123456789abcdef"
	fuzzRev  = 1
	fuzzBlob = "fuzz-blob"
)

// FuzzOpenDoc feeds arbitrary bytes to OpenDoc twice: once as a ciphertext
// (which essentially never authenticates) and once as the padded plaintext
// of a ciphertext that does authenticate, to exercise the padding parser.
// Neither may panic, and anything accepted must be canonical.
func FuzzOpenDoc(f *testing.F) {
	for _, s := range docSeeds(f) {
		f.Add(s)
	}
	key := fuzzKey()
	f.Fuzz(func(t *testing.T, data []byte) {
		if body, err := OpenDoc(key, fuzzUser, fuzzID, fuzzRev, false, data); err == nil {
			again, err := sealDocWithNonce(key, nonce24(data[1:25]), fuzzUser, fuzzID, fuzzRev, false, body)
			if err != nil || !bytes.Equal(again, data) {
				t.Fatalf("accepted a non-canonical ciphertext")
			}
		}
		ad, err := docAD(fuzzUser, fuzzID, fuzzRev, false)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := xSeal(key, &[24]byte{}, data, ad)
		if err != nil {
			t.Fatal(err)
		}
		body, err := OpenDoc(key, fuzzUser, fuzzID, fuzzRev, false, ct)
		if err != nil {
			if errors.Is(err, ErrDecrypt) {
				t.Fatalf("authentic ciphertext reported as %v", err)
			}
			return
		}
		padded, err := padDoc(body)
		if err != nil || !bytes.Equal(padded, data) {
			t.Fatalf("accepted non-canonical padding")
		}
	})
}

// FuzzOpenBlob feeds arbitrary bytes to OpenBlobBytes (which must not panic
// and, if it accepts, must accept only the canonical encoding) and uses them
// as a plaintext for a small-chunk round trip whose every truncation fails.
func FuzzOpenBlob(f *testing.F) {
	for _, s := range blobSeeds(f) {
		f.Add(s)
	}
	key := fuzzKey()
	f.Fuzz(func(t *testing.T, data []byte) {
		// The in-memory opener and the stream agree on every input.
		var streamed bytes.Buffer
		serr := OpenBlob(&streamed, key, fuzzBlob, bytes.NewReader(data))
		direct, derr := OpenBlobBytes(key, fuzzBlob, data)
		if (serr == nil) != (derr == nil) || serr == nil && !bytes.Equal(direct, streamed.Bytes()) {
			t.Fatalf("OpenBlob (%v) and OpenBlobBytes (%v) disagree", serr, derr)
		}
		if pt, err := OpenBlobBytes(key, fuzzBlob, data); err == nil {
			var again bytes.Buffer
			if err := sealBlob(&again, key, fuzzBlob, bytes.NewReader(pt), (*[16]byte)(data[1:17]), blobChunkSize); err != nil || !bytes.Equal(again.Bytes(), data) {
				t.Fatalf("accepted a non-canonical blob")
			}
		}
		const chunk = 16
		var enc bytes.Buffer
		if err := sealBlob(&enc, key, fuzzBlob, bytes.NewReader(data), &[16]byte{}, chunk); err != nil {
			t.Fatal(err)
		}
		ct := enc.Bytes()
		if direct, err := sealBlobBytes(key, fuzzBlob, data, &[16]byte{}, chunk); err != nil || !bytes.Equal(direct, ct) {
			t.Fatalf("sealBlobBytes differs from sealBlob: %v", err)
		}
		var dec bytes.Buffer
		if err := openBlob(&dec, key, fuzzBlob, bytes.NewReader(ct), chunk); err != nil || !bytes.Equal(dec.Bytes(), data) {
			t.Fatalf("round trip failed: %v", err)
		}
		if pt, err := openBlobBytes(key, fuzzBlob, ct, chunk); err != nil || !bytes.Equal(pt, data) {
			t.Fatalf("in-memory round trip failed: %v", err)
		}
		for _, cut := range []int{len(ct) - 1, len(ct) - tagSize - 1, len(ct) / 2} {
			if cut < 0 {
				continue
			}
			if err := openBlob(&bytes.Buffer{}, key, fuzzBlob, bytes.NewReader(ct[:cut]), chunk); err == nil {
				t.Fatalf("truncation to %d accepted", cut)
			}
		}
	})
}

func docSeeds(t testing.TB) map[string][]byte {
	key := fuzzKey()
	valid, err := sealDocWithNonce(key, nonce24(seq(1, 24)), fuzzUser, fuzzID, fuzzRev, false, []byte(`{"hello":"world"}`))
	if err != nil {
		t.Fatal(err)
	}
	padded, _ := padDoc([]byte("hello"))
	badPad := bytes.Clone(padded)
	badPad[200] = 1
	badLen := bytes.Clone(padded)
	badLen[0] = 0x7f
	return map[string][]byte{
		"valid":          valid,
		"valid-other":    mustSealDoc(t, key, "someone-else", []byte("x")),
		"padded-hello":   padded,
		"padded-nonzero": badPad,
		"padded-badlen":  badLen,
		"padded-short":   padded[:100],
		"empty":          {},
		"version-only":   {1},
		"header-only":    append([]byte{1}, seq(1, 24)...),
	}
}

func mustSealDoc(t testing.TB, key *[32]byte, user string, body []byte) []byte {
	ct, err := sealDocWithNonce(key, nonce24(seq(2, 24)), user, fuzzID, fuzzRev, false, body)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func blobSeeds(t testing.TB) map[string][]byte {
	key := fuzzKey()
	seal := func(pt []byte, saltByte byte) []byte {
		var buf bytes.Buffer
		if err := sealBlob(&buf, key, fuzzBlob, bytes.NewReader(pt), (*[16]byte)(seq(saltByte, 16)), blobChunkSize); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	hello := seal([]byte("hello, blob"), 1)
	return map[string][]byte{
		"valid-empty":   seal(nil, 2),
		"valid-hello":   hello,
		"truncated":     hello[:len(hello)-1],
		"extended":      append(bytes.Clone(hello), 0),
		"header-only":   hello[:blobHeaderSize],
		"short-header":  hello[:5],
		"empty":         {},
		"bad-version":   append([]byte{2}, hello[1:]...),
		"plaintext-100": pattern(100),
	}
}

// TestFuzzSeeds rewrites testdata/fuzz/{FuzzOpenDoc,FuzzOpenBlob} with -update
// and otherwise checks that the seed corpus is present.
func TestFuzzSeeds(t *testing.T) {
	for target, seeds := range map[string]map[string][]byte{"FuzzOpenDoc": docSeeds(t), "FuzzOpenBlob": blobSeeds(t)} {
		dir := filepath.Join("testdata", "fuzz", target)
		for name, data := range seeds {
			path := filepath.Join(dir, "seed-"+name)
			want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
			if *update {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./pkg/seal -run TestFuzzSeeds -update)", err)
			}
			if string(got) != want {
				t.Errorf("%s is stale (run go test ./pkg/seal -run TestFuzzSeeds -update)", path)
			}
		}
	}
}
