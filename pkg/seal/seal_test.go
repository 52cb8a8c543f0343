package seal

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func testKey(b byte) *[32]byte {
	var k [32]byte
	for i := range k {
		k[i] = b + byte(i)
	}
	return &k
}

func fastParams(t testing.TB) KDFParams {
	t.Helper()
	p, err := FastKDFParams()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// pattern returns n bytes with byte i = i mod 251 (the vector plaintext).
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

func TestKDFParamsValidate(t *testing.T) {
	salt := make([]byte, 16)
	ok := KDFParams{Time: 1, MemoryKiB: 8192, Threads: 1, Salt: salt}
	if err := ok.Validate(); err != nil {
		t.Fatalf("minimum params rejected: %v", err)
	}
	max := KDFParams{Time: 16, MemoryKiB: 2 << 20, Threads: 16, Salt: make([]byte, 64)}
	if err := max.Validate(); err != nil {
		t.Fatalf("maximum params rejected: %v", err)
	}
	bad := map[string]func(*KDFParams){
		"t=0":        func(p *KDFParams) { p.Time = 0 },
		"t=17":       func(p *KDFParams) { p.Time = 17 },
		"m=8191":     func(p *KDFParams) { p.MemoryKiB = 8191 },
		"m=2GiB+1":   func(p *KDFParams) { p.MemoryKiB = 2<<20 + 1 },
		"m=max":      func(p *KDFParams) { p.MemoryKiB = ^uint32(0) },
		"p=0":        func(p *KDFParams) { p.Threads = 0 },
		"p=17":       func(p *KDFParams) { p.Threads = 17 },
		"p=255":      func(p *KDFParams) { p.Threads = 255 },
		"salt=nil":   func(p *KDFParams) { p.Salt = nil },
		"salt=15":    func(p *KDFParams) { p.Salt = make([]byte, 15) },
		"salt=65":    func(p *KDFParams) { p.Salt = make([]byte, 65) },
		"all zero":   func(p *KDFParams) { *p = KDFParams{} },
		"t=1<<31":    func(p *KDFParams) { p.Time = 1 << 31 },
		"salt=1 MiB": func(p *KDFParams) { p.Salt = make([]byte, 1<<20) },
	}
	for name, mutate := range bad {
		p := ok
		mutate(&p)
		err := p.Validate()
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !strings.HasPrefix(err.Error(), "seal: ") {
			t.Errorf("%s: error %q lacks prefix", name, err)
		}
		if _, err := DerivePasswordKeys([]byte("pw"), p); err == nil {
			t.Errorf("%s: DerivePasswordKeys accepted", name)
		}
	}
}

func TestDefaultKDFParams(t *testing.T) {
	p, err := DefaultKDFParams()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if p.Time != defaultTime || p.MemoryKiB != defaultMemoryKiB || p.Threads != defaultThreads || len(p.Salt) != 16 {
		t.Fatalf("unexpected defaults %+v", p)
	}
	q, _ := DefaultKDFParams()
	if bytes.Equal(p.Salt, q.Salt) {
		t.Fatal("salt not random")
	}
	f := fastParams(t)
	if f.Time != 1 || f.MemoryKiB != 8192 || f.Threads != 1 || len(f.Salt) != 16 {
		t.Fatalf("unexpected fast params %+v", f)
	}
}

func TestKDFParamsJSON(t *testing.T) {
	p := KDFParams{Time: 3, MemoryKiB: 262144, Threads: 2, Salt: []byte("0123456789abcdef")}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"t":3,"m":262144,"p":2,"salt":"MDEyMzQ1Njc4OWFiY2RlZg=="}`
	if string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
	var q KDFParams
	if err := json.Unmarshal(b, &q); err != nil {
		t.Fatal(err)
	}
	if q.Time != p.Time || q.MemoryKiB != p.MemoryKiB || q.Threads != p.Threads || !bytes.Equal(q.Salt, p.Salt) {
		t.Fatalf("round trip: %+v", q)
	}
}

func TestDerivePasswordKeys(t *testing.T) {
	p := fastParams(t)
	a, err := DerivePasswordKeys([]byte("correct horse"), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.SRPSecret) != 32 {
		t.Fatalf("SRPSecret is %d bytes", len(a.SRPSecret))
	}
	if bytes.Equal(a.SRPSecret, a.KEK[:]) {
		t.Fatal("SRP secret equals KEK")
	}
	b, _ := DerivePasswordKeys([]byte("correct horse"), p)
	if !bytes.Equal(a.SRPSecret, b.SRPSecret) || a.KEK != b.KEK {
		t.Fatal("not deterministic")
	}
	c, _ := DerivePasswordKeys([]byte("correct horsf"), p)
	if bytes.Equal(a.SRPSecret, c.SRPSecret) || a.KEK == c.KEK {
		t.Fatal("password not used")
	}
	p2 := p
	p2.Salt = append([]byte(nil), p.Salt...)
	p2.Salt[0] ^= 1
	d, _ := DerivePasswordKeys([]byte("correct horse"), p2)
	if bytes.Equal(a.SRPSecret, d.SRPSecret) || a.KEK == d.KEK {
		t.Fatal("salt not used")
	}
	p3 := p
	p3.Time = 2
	e, _ := DerivePasswordKeys([]byte("correct horse"), p3)
	if a.KEK == e.KEK {
		t.Fatal("time not used")
	}
}

func TestWrapSecret(t *testing.T) {
	secret, err := NewStorageSecret()
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != 32 {
		t.Fatalf("secret is %d bytes", len(secret))
	}
	s2, _ := NewStorageSecret()
	if bytes.Equal(secret, s2) {
		t.Fatal("secrets not random")
	}
	kek := testKey(1)
	ad := []byte("alice@example.org")
	w, err := WrapSecret(kek, secret, ad)
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 1+24+32+16 || w[0] != 1 {
		t.Fatalf("wrapped: len %d version %d", len(w), w[0])
	}
	w2, _ := WrapSecret(kek, secret, ad)
	if bytes.Equal(w, w2) {
		t.Fatal("nonce not random")
	}
	got, err := UnwrapSecret(kek, w, ad)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("unwrap: %v", err)
	}
	if _, err := UnwrapSecret(testKey(2), w, ad); err != ErrDecrypt {
		t.Fatalf("wrong kek: %v", err)
	}
	if _, err := UnwrapSecret(kek, w, []byte("mallory@example.org")); err != ErrDecrypt {
		t.Fatalf("wrong ad: %v", err)
	}
	for i := range w {
		bad := bytes.Clone(w)
		bad[i] ^= 0x80
		if _, err := UnwrapSecret(kek, bad, ad); err == nil {
			t.Fatalf("tampered byte %d accepted", i)
		}
	}
	for n := 0; n < len(w); n++ {
		if _, err := UnwrapSecret(kek, w[:n], ad); err == nil {
			t.Fatalf("truncated to %d accepted", n)
		}
	}
	if _, err := UnwrapSecret(kek, append(bytes.Clone(w), 0), ad); err != ErrDecrypt {
		t.Fatalf("extended: %v", err)
	}
	if _, err := WrapSecret(nil, secret, ad); err == nil {
		t.Fatal("nil kek accepted")
	}
	if _, err := UnwrapSecret(nil, w, ad); err == nil {
		t.Fatal("nil kek accepted")
	}
}

func TestPasswordToSecret(t *testing.T) {
	p := fastParams(t)
	pk, err := DerivePasswordKeys([]byte("hunter2"), p)
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := NewStorageSecret()
	w, err := WrapSecret(&pk.KEK, secret, []byte("alice"))
	if err != nil {
		t.Fatal(err)
	}
	wrong, _ := DerivePasswordKeys([]byte("hunter3"), p)
	if _, err := UnwrapSecret(&wrong.KEK, w, []byte("alice")); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong password: %v", err)
	}
	got, err := UnwrapSecret(&pk.KEK, w, []byte("alice"))
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("unwrap: %v", err)
	}
}

func TestDeriveKeys(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := DeriveKeys(make([]byte, n)); err == nil {
			t.Errorf("accepted %d-byte secret", n)
		}
	}
	secret, _ := NewStorageSecret()
	k, err := DeriveKeys(secret)
	if err != nil {
		t.Fatal(err)
	}
	all := [][32]byte{k.Doc, k.DocID, k.Blob, k.BlobMAC, k.Local, k.LocalIndex}
	seen := map[[32]byte]bool{}
	for i, key := range all {
		if key == ([32]byte{}) || seen[key] {
			t.Fatalf("key %d zero or repeated", i)
		}
		seen[key] = true
	}
	k2, _ := DeriveKeys(secret)
	if *k != *k2 {
		t.Fatal("not deterministic")
	}
}

func TestDocRoundTrip(t *testing.T) {
	key := testKey(3)
	for _, n := range []int{0, 1, 251, 252, 253, 1000, 65532, 65533, 70000} {
		body := pattern(n)
		ct, err := SealDoc(key, "alice", "doc1", 7, false, body)
		if err != nil {
			t.Fatal(err)
		}
		got, err := OpenDoc(key, "alice", "doc1", 7, false, ct)
		if err != nil {
			t.Fatalf("%d: %v", n, err)
		}
		if !bytes.Equal(got, body) {
			t.Fatalf("%d: body mismatch", n)
		}
	}
	ct, _ := SealDoc(key, "alice", "doc1", 8, true, nil)
	if got, err := OpenDoc(key, "alice", "doc1", 8, true, ct); err != nil || len(got) != 0 {
		t.Fatalf("tombstone: %v %d", err, len(got))
	}
}

func TestDocBinding(t *testing.T) {
	key := testKey(3)
	body := []byte(`{"subject":"hi"}`)
	ct, err := SealDoc(key, "alice", "doc1", 7, false, body)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		key     *[32]byte
		user    string
		id      string
		rev     uint64
		deleted bool
	}{
		{"key", testKey(4), "alice", "doc1", 7, false},
		{"user", key, "bob", "doc1", 7, false},
		{"id", key, "alice", "doc2", 7, false},
		{"rev", key, "alice", "doc1", 6, false},
		{"rev+1", key, "alice", "doc1", 8, false},
		{"rev high bit", key, "alice", "doc1", 7 | 1<<63, false},
		{"deleted", key, "alice", "doc1", 7, true},
		// Length prefixes keep ("alic","edoc1") distinct from ("alice","doc1").
		{"boundary", key, "alic", "edoc1", 7, false},
		{"empty user", key, "", "alicedoc1", 7, false},
	}
	for _, c := range cases {
		if _, err := OpenDoc(c.key, c.user, c.id, c.rev, c.deleted, ct); err != ErrDecrypt {
			t.Errorf("wrong %s: got %v, want ErrDecrypt", c.name, err)
		}
	}
	for i := range ct {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(ct)
			bad[i] ^= bit
			if _, err := OpenDoc(key, "alice", "doc1", 7, false, bad); err == nil {
				t.Fatalf("tampered byte %d accepted", i)
			}
		}
	}
	for n := 0; n < len(ct); n++ {
		if _, err := OpenDoc(key, "alice", "doc1", 7, false, ct[:n]); err == nil {
			t.Fatalf("truncated to %d accepted", n)
		}
	}
	if _, err := OpenDoc(key, "alice", "doc1", 7, false, append(bytes.Clone(ct), 0)); err == nil {
		t.Fatal("extended ciphertext accepted")
	}
	if _, err := OpenDoc(nil, "alice", "doc1", 7, false, ct); err == nil {
		t.Fatal("nil key accepted")
	}
}

func TestDocPaddingBuckets(t *testing.T) {
	const overhead = 1 + 24 + 16
	for _, c := range []struct{ body, padded int }{
		{0, 256},
		{252, 256},
		{253, 512},
		{255, 512},
		{256, 512},
		{1000, 1024},
		{1020, 1024},
		{1021, 2048},
		{65532, 65536},
		{65533, 131072},
		{70000, 131072},
		{131068, 131072},
		{131069, 196608},
		{200000, 262144},
	} {
		ct, err := SealDoc(testKey(5), "u", "i", 1, false, make([]byte, c.body))
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != c.padded+overhead {
			t.Errorf("body %d: ciphertext %d bytes, want %d", c.body, len(ct), c.padded+overhead)
		}
	}
	// The sizes named in the spec.
	for body, want := range map[int]int{0: 297, 255: 553, 256: 553, 1000: 1065, 70000: 131113} {
		ct, _ := SealDoc(testKey(5), "u", "i", 1, false, make([]byte, body))
		if len(ct) != want {
			t.Errorf("body %d: ciphertext %d bytes, want %d", body, len(ct), want)
		}
	}
}

// sealRawDoc encrypts padded as a document without padding it, to test that
// OpenDoc rejects non-canonical padding that nevertheless authenticates.
func sealRawDoc(t testing.TB, key *[32]byte, padded []byte) []byte {
	t.Helper()
	ad, err := docAD("u", "i", 1, false)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := xSeal(key, &[24]byte{}, padded, ad)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func TestDocBadPadding(t *testing.T) {
	key := testKey(6)
	good, _ := padDoc([]byte("hello"))
	if body, err := OpenDoc(key, "u", "i", 1, false, sealRawDoc(t, key, good)); err != nil || string(body) != "hello" {
		t.Fatalf("canonical: %q %v", body, err)
	}
	mk := func(f func([]byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := map[string][]byte{
		"empty":        {},
		"three bytes":  {0, 0, 0},
		"no padding":   {0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'},
		"nonzero pad":  mk(func(b []byte) []byte { b[255] = 1; return b }),
		"nonzero pad2": mk(func(b []byte) []byte { b[9] = 0x80; return b }),
		"length long":  mk(func(b []byte) []byte { b[3] = 253; return b }), // 4+253 > 256
		"length huge":  mk(func(b []byte) []byte { b[0] = 0xff; return b }),
		"length max":   mk(func(b []byte) []byte { b[0], b[1], b[2], b[3] = 0xff, 0xff, 0xff, 0xff; return b }),
		"short bucket": good[:255],
		"big bucket":   append(bytes.Clone(good), make([]byte, 256)...), // 512 for a 5-byte body
		"odd bucket":   append(bytes.Clone(good), make([]byte, 100)...),
	}
	for name, padded := range cases {
		_, err := OpenDoc(key, "u", "i", 1, false, sealRawDoc(t, key, padded))
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if errors.Is(err, ErrDecrypt) || !strings.HasPrefix(err.Error(), "seal: ") {
			t.Errorf("%s: unexpected error %v", name, err)
		}
	}
}

func TestDocVersion(t *testing.T) {
	key := testKey(3)
	ct, _ := SealDoc(key, "u", "i", 1, false, nil)
	for _, v := range []byte{0, 2, 0xff} {
		bad := bytes.Clone(ct)
		bad[0] = v
		if _, err := OpenDoc(key, "u", "i", 1, false, bad); err == nil || errors.Is(err, ErrDecrypt) {
			t.Errorf("version %d: %v", v, err)
		}
	}
}

func TestDocID(t *testing.T) {
	key := testKey(7)
	a := DocID(key, "settings")
	if len(a) != 32 || strings.ToLower(a) != a {
		t.Fatalf("bad id %q", a)
	}
	if _, err := hex.DecodeString(a); err != nil {
		t.Fatal(err)
	}
	if DocID(key, "settings") != a {
		t.Fatal("not deterministic")
	}
	if DocID(key, "settings2") == a || DocID(testKey(8), "settings") == a {
		t.Fatal("collision")
	}
	r1, err := RandomDocID()
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := RandomDocID()
	if len(r1) != 32 || r1 == r2 || strings.ToLower(r1) != r1 {
		t.Fatalf("bad random ids %q %q", r1, r2)
	}
	if _, err := hex.DecodeString(r1); err != nil {
		t.Fatal(err)
	}
}

func TestBlobID(t *testing.T) {
	key := testKey(9)
	data := pattern(200000)
	id := BlobID(key, data)
	if len(id) != 64 || strings.ToLower(id) != id {
		t.Fatalf("bad id %q", id)
	}
	h := NewBlobIDHasher(key)
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 777)
		h.Write(rest[:n])
		rest = rest[n:]
	}
	if hex.EncodeToString(h.Sum(nil)) != id {
		t.Fatal("streaming hasher differs")
	}
	if BlobID(testKey(10), data) == id || BlobID(key, data[1:]) == id {
		t.Fatal("collision")
	}
}

func TestValue(t *testing.T) {
	key := testKey(11)
	ad := []byte("messages/123")
	for _, n := range []int{0, 1, 1000} {
		pt := pattern(n)
		ct, err := SealValue(key, ad, pt)
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != 1+24+n+16 {
			t.Fatalf("len %d", len(ct))
		}
		got, err := OpenValue(key, ad, ct)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("round trip: %v", err)
		}
		if _, err := OpenValue(testKey(12), ad, ct); err != ErrDecrypt {
			t.Fatalf("wrong key: %v", err)
		}
		if _, err := OpenValue(key, []byte("messages/124"), ct); err != ErrDecrypt {
			t.Fatalf("wrong ad: %v", err)
		}
		for i := range ct {
			bad := bytes.Clone(ct)
			bad[i] ^= 4
			if _, err := OpenValue(key, ad, bad); err == nil {
				t.Fatalf("tampered byte %d accepted", i)
			}
		}
		if _, err := OpenValue(key, ad, ct[:len(ct)-1]); err == nil {
			t.Fatal("truncated accepted")
		}
	}
}

func TestIndexKey(t *testing.T) {
	key := testKey(13)
	a := IndexKey(key, "mbox", "INBOX")
	if len(a) != 16 {
		t.Fatalf("len %d", len(a))
	}
	if !bytes.Equal(a, IndexKey(key, "mbox", "INBOX")) {
		t.Fatal("not deterministic")
	}
	distinct := [][]string{
		{"mbox", "INBOX"}, {"mboxINBOX"}, {"mbo", "xINBOX"}, {"mbox", "INBOX", ""},
		{}, {""}, {"", ""}, {"INBOX", "mbox"},
	}
	seen := map[string]bool{}
	for _, parts := range distinct {
		k := string(IndexKey(key, parts...))
		if seen[k] {
			t.Fatalf("collision for %q", parts)
		}
		seen[k] = true
	}
	if bytes.Equal(IndexKey(testKey(14), "mbox", "INBOX"), a) {
		t.Fatal("key not used")
	}
}

func TestBlobRoundTrip(t *testing.T) {
	key := testKey(15)
	for _, n := range []int{0, 1, 100, blobChunkSize - 1, blobChunkSize, blobChunkSize + 1, 2*blobChunkSize + 100, 3 * blobChunkSize} {
		pt := pattern(n)
		id := BlobID(testKey(16), pt)
		ct, err := SealBlobBytes(key, id, pt)
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != sealedBlobSize(n, blobChunkSize) {
			t.Fatalf("%d: ciphertext %d bytes, want %d", n, len(ct), sealedBlobSize(n, blobChunkSize))
		}
		got, err := OpenBlobBytes(key, id, ct)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%d: round trip: %v", n, err)
		}
		// Streaming with awkward readers.
		for _, r := range []func(io.Reader) io.Reader{iotest.OneByteReader, iotest.HalfReader, iotest.DataErrReader} {
			var enc bytes.Buffer
			if err := SealBlob(&enc, key, id, r(bytes.NewReader(pt))); err != nil {
				t.Fatal(err)
			}
			var dec bytes.Buffer
			if err := OpenBlob(&dec, key, id, r(bytes.NewReader(enc.Bytes()))); err != nil {
				t.Fatalf("%d: %v", n, err)
			}
			if !bytes.Equal(dec.Bytes(), pt) {
				t.Fatalf("%d: streaming mismatch", n)
			}
		}
	}
}

// splitBlob splits a sealed blob into its header and sealed chunks.
func splitBlob(ct []byte, chunkSize int) (header []byte, chunks [][]byte) {
	header, rest := ct[:blobHeaderSize], ct[blobHeaderSize:]
	for len(rest) > chunkSize+tagSize {
		chunks = append(chunks, rest[:chunkSize+tagSize])
		rest = rest[chunkSize+tagSize:]
	}
	return header, append(chunks, rest)
}

func joinBlob(header []byte, chunks ...[]byte) []byte {
	out := bytes.Clone(header)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return out
}

func TestBlobAttacks(t *testing.T) {
	key := testKey(17)
	pt := pattern(2*blobChunkSize + 100)
	id := BlobID(testKey(18), pt)
	ct, err := SealBlobBytes(key, id, pt)
	if err != nil {
		t.Fatal(err)
	}
	h, c := splitBlob(ct, blobChunkSize)
	if len(c) != 3 || len(c[2]) != 100+tagSize {
		t.Fatalf("unexpected split: %d chunks", len(c))
	}
	attacks := map[string][]byte{
		"drop last chunk":      joinBlob(h, c[0], c[1]),
		"drop first chunk":     joinBlob(h, c[1], c[2]),
		"drop middle chunk":    joinBlob(h, c[0], c[2]),
		"only last chunk":      joinBlob(h, c[2]),
		"cut mid last chunk":   ct[:len(ct)-50],
		"cut last tag byte":    ct[:len(ct)-1],
		"cut mid chunk 1":      ct[:blobHeaderSize+blobChunkSize+tagSize+1000],
		"cut to chunk 0 + 1":   ct[:blobHeaderSize+blobChunkSize+tagSize+1],
		"cut to 15 bytes":      ct[:blobHeaderSize+15],
		"header only":          h,
		"cut in header":        ct[:10],
		"empty":                {},
		"swap chunks 0,1":      joinBlob(h, c[1], c[0], c[2]),
		"repeat chunk 0":       joinBlob(h, c[0], c[0], c[2]),
		"append last again":    joinBlob(h, c[0], c[1], c[2], c[2]),
		"append chunk 0":       joinBlob(h, c[0], c[1], c[2], c[0]),
		"append one byte":      append(bytes.Clone(ct), 0),
		"append 16 zero bytes": append(bytes.Clone(ct), make([]byte, 16)...),
		"version 2":            append([]byte{2}, ct[1:]...),
		"version 0":            append([]byte{0}, ct[1:]...),
	}
	// A chunk from another blob sealed under the same key and id but a
	// different nonce salt must not splice in.
	other, _ := SealBlobBytes(key, id, pt)
	_, oc := splitBlob(other, blobChunkSize)
	attacks["splice chunk from other blob"] = joinBlob(h, c[0], oc[1], c[2])
	attacks["other header"] = joinBlob(other[:blobHeaderSize], c...)

	for name, bad := range attacks {
		if _, err := OpenBlobBytes(key, id, bad); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.HasPrefix(err.Error(), "seal: ") {
			t.Errorf("%s: error %q", name, err)
		}
	}
	for _, pos := range []int{0, 1, 16, 17, 18, 1000, blobHeaderSize + blobChunkSize - 1, blobHeaderSize + blobChunkSize + 15,
		blobHeaderSize + blobChunkSize + 16, len(ct) - 117, len(ct) - 16, len(ct) - 1} {
		bad := bytes.Clone(ct)
		bad[pos] ^= 1
		if _, err := OpenBlobBytes(key, id, bad); err == nil {
			t.Errorf("tampered byte %d accepted", pos)
		}
	}
	if _, err := OpenBlobBytes(key, id+"0", ct); err != ErrDecrypt {
		t.Errorf("wrong id: %v", err)
	}
	if _, err := OpenBlobBytes(key, BlobID(testKey(18), pt[1:]), ct); err != ErrDecrypt {
		t.Errorf("other id: %v", err)
	}
	if _, err := OpenBlobBytes(testKey(19), id, ct); err != ErrDecrypt {
		t.Errorf("wrong key: %v", err)
	}
	if got, err := OpenBlobBytes(key, id, ct); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("original no longer opens: %v", err)
	}
}

// TestBlobSmallChunks exercises the STREAM logic exhaustively with a tiny
// chunk size: every single-byte tamper, every truncation and every appended
// byte must fail.
func TestBlobSmallChunks(t *testing.T) {
	const chunk = 8
	key := testKey(20)
	salt := [16]byte{1, 2, 3}
	for n := 0; n <= 4*chunk+1; n++ {
		pt := pattern(n)
		var enc bytes.Buffer
		if err := sealBlob(&enc, key, "id", bytes.NewReader(pt), &salt, chunk); err != nil {
			t.Fatal(err)
		}
		ct := enc.Bytes()
		if len(ct) != sealedBlobSize(n, chunk) {
			t.Fatalf("%d: size %d, want %d", n, len(ct), sealedBlobSize(n, chunk))
		}
		if direct, err := sealBlobBytes(key, "id", pt, &salt, chunk); err != nil || !bytes.Equal(direct, ct) {
			t.Fatalf("%d: sealBlobBytes differs from sealBlob: %v", n, err)
		}
		// The stream and the in-memory opener agree on every input.
		open := func(b []byte) ([]byte, error) {
			var dec bytes.Buffer
			err := openBlob(&dec, key, "id", bytes.NewReader(b), chunk)
			direct, derr := openBlobBytes(key, "id", b, chunk)
			if (err == nil) != (derr == nil) || err == nil && !bytes.Equal(direct, dec.Bytes()) {
				t.Fatalf("%d: openBlob (%v) and openBlobBytes (%v) disagree on %x", n, err, derr, b)
			}
			if err != nil && errors.Is(err, ErrDecrypt) != errors.Is(derr, ErrDecrypt) {
				t.Fatalf("%d: openBlob (%v) and openBlobBytes (%v) fail differently", n, err, derr)
			}
			return dec.Bytes(), err
		}
		if got, err := open(ct); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%d: round trip: %v", n, err)
		}
		for i := range ct {
			bad := bytes.Clone(ct)
			bad[i] ^= 0x20
			if _, err := open(bad); err == nil {
				t.Fatalf("%d: tampered byte %d accepted", n, i)
			}
		}
		for l := 0; l < len(ct); l++ {
			if _, err := open(ct[:l]); err == nil {
				t.Fatalf("%d: truncation to %d accepted", n, l)
			}
		}
		if _, err := open(append(bytes.Clone(ct), 0)); err == nil {
			t.Fatalf("%d: extension accepted", n)
		}
	}
}

// TestBlobEmptyFinalChunk checks that a final empty chunk after a full one is
// rejected even though it authenticates, so each plaintext has exactly one
// encoding.
func TestBlobEmptyFinalChunk(t *testing.T) {
	const chunk = 8
	key := testKey(21)
	salt := [16]byte{9}
	aead, err := blobAEAD(key, salt[:], "id")
	if err != nil {
		t.Fatal(err)
	}
	var nonce [12]byte
	ct := append([]byte{1}, salt[:]...)
	streamNonce(&nonce, 0, false)
	ct = aead.Seal(ct, nonce[:], pattern(chunk), nil)
	streamNonce(&nonce, 1, true)
	ct = aead.Seal(ct, nonce[:], nil, nil)
	err = openBlob(io.Discard, key, "id", bytes.NewReader(ct), chunk)
	if err == nil || errors.Is(err, ErrDecrypt) {
		t.Fatalf("got %v", err)
	}
}

// recorder records every write.
type recorder struct{ writes [][]byte }

func (r *recorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}

// TestBlobNoUnauthenticatedOutput checks that the plaintext of a chunk that
// fails authentication never reaches dst.
func TestBlobNoUnauthenticatedOutput(t *testing.T) {
	key := testKey(22)
	pt := pattern(3 * blobChunkSize)
	ct, _ := SealBlobBytes(key, "id", pt)
	bad := bytes.Clone(ct)
	bad[blobHeaderSize+blobChunkSize+tagSize+5] ^= 1 // inside chunk 1
	var rec recorder
	if err := OpenBlob(&rec, key, "id", bytes.NewReader(bad)); err != ErrDecrypt {
		t.Fatalf("got %v", err)
	}
	var got []byte
	for _, w := range rec.writes {
		got = append(got, w...)
	}
	if !bytes.Equal(got, pt[:blobChunkSize]) {
		t.Fatalf("wrote %d bytes, want exactly the %d bytes of chunk 0", len(got), blobChunkSize)
	}
	// Truncated after a full non-final chunk: the chunk fails as final and
	// nothing of it is written.
	rec = recorder{}
	if err := OpenBlob(&rec, key, "id", bytes.NewReader(ct[:blobHeaderSize+blobChunkSize+tagSize])); err != ErrDecrypt {
		t.Fatalf("got %v", err)
	}
	if len(rec.writes) != 0 {
		t.Fatalf("%d writes", len(rec.writes))
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestBlobIOErrors(t *testing.T) {
	key := testKey(23)
	if err := SealBlob(errWriter{}, key, "id", bytes.NewReader([]byte("x"))); err == nil {
		t.Fatal("write error ignored")
	}
	if err := SealBlob(io.Discard, key, "id", iotest.ErrReader(errors.New("boom"))); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("read error: %v", err)
	}
	ct, _ := SealBlobBytes(key, "id", []byte("x"))
	if err := OpenBlob(errWriter{}, key, "id", bytes.NewReader(ct)); err == nil {
		t.Fatal("write error ignored")
	}
	if err := OpenBlob(io.Discard, key, "id", io.MultiReader(bytes.NewReader(ct[:20]), iotest.ErrReader(errors.New("boom")))); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("read error: %v", err)
	}
	if err := SealBlob(io.Discard, nil, "id", bytes.NewReader(nil)); err == nil {
		t.Fatal("nil key accepted")
	}
	if err := OpenBlob(io.Discard, nil, "id", bytes.NewReader(ct)); err == nil {
		t.Fatal("nil key accepted")
	}
}

func TestBlobRandomSalt(t *testing.T) {
	key := testKey(24)
	a, _ := SealBlobBytes(key, "id", []byte("same"))
	b, _ := SealBlobBytes(key, "id", []byte("same"))
	if bytes.Equal(a, b) {
		t.Fatal("blob ciphertexts identical")
	}
}

func TestRandomInputsDoNotOpen(t *testing.T) {
	key := testKey(25)
	buf := make([]byte, 600)
	for range 50 {
		rand.Read(buf)
		if _, err := OpenDoc(key, "u", "i", 0, false, buf); err == nil {
			t.Fatal("random doc opened")
		}
		buf[0] = 1
		if _, err := OpenBlobBytes(key, "id", buf); err == nil {
			t.Fatal("random blob opened")
		}
		if _, err := OpenValue(key, nil, buf); err == nil {
			t.Fatal("random value opened")
		}
	}
}
