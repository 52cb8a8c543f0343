package seal

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkDerivePasswordKeysDefault measures the product default Argon2id
// parameters; docs/formats.md records the result.
func BenchmarkDerivePasswordKeysDefault(b *testing.B) {
	p, err := DefaultKDFParams()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(p.MemoryKiB)/1024, "MiB")
	for b.Loop() {
		if _, err := DerivePasswordKeys([]byte("correct horse battery staple"), p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealDoc2KB(b *testing.B) {
	key, body := testKey(1), pattern(2048)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := SealDoc(key, "alice@example.org", "0123456789abcdef0123456789abcdef", 42, false, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenDoc2KB(b *testing.B) {
	key, body := testKey(1), pattern(2048)
	ct, err := SealDoc(key, "alice@example.org", "0123456789abcdef0123456789abcdef", 42, false, body)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := OpenDoc(key, "alice@example.org", "0123456789abcdef0123456789abcdef", 42, false, ct); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealBlob1MB(b *testing.B) {
	key, pt := testKey(2), pattern(1<<20)
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		if err := SealBlob(io.Discard, key, "id", bytes.NewReader(pt)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenBlob1MB(b *testing.B) {
	key, pt := testKey(2), pattern(1<<20)
	ct, err := SealBlobBytes(key, "id", pt)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		if err := OpenBlob(io.Discard, key, "id", bytes.NewReader(ct)); err != nil {
			b.Fatal(err)
		}
	}
}
