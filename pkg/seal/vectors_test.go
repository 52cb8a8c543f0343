package seal

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/argon2"
)

var update = flag.Bool("update", false, "rewrite ../../testdata/vectors/seal/*.json and testdata/fuzz seeds")

// vectorDir is testdata/vectors/seal at the module root; tests run in pkg/seal.
const vectorDir = "../../testdata/vectors/seal"

// hexBytes is a byte slice encoded as lowercase hex in JSON.
type hexBytes []byte

func (h hexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

func (h *hexBytes) UnmarshalText(b []byte) error {
	d, err := hex.DecodeString(string(b))
	*h = d
	return err
}

// seq returns n bytes start, start+1, ...
func seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func key32(b []byte) *[32]byte {
	if len(b) != 32 {
		panic("key32: wrong length")
	}
	return (*[32]byte)(b)
}

func nonce24(b []byte) *[24]byte {
	if len(b) != 24 {
		panic("nonce24: wrong length")
	}
	return (*[24]byte)(b)
}

type vectorFile[V any] struct {
	Description string `json:"description"`
	Vectors     []V    `json:"vectors"`
}

type kdfVector struct {
	Comment   string   `json:"comment"`
	Password  hexBytes `json:"password"`
	T         uint32   `json:"t"`
	M         uint32   `json:"m"`
	P         uint8    `json:"p"`
	Salt      hexBytes `json:"salt"`
	Stretched hexBytes `json:"stretched"`
	SRPSecret hexBytes `json:"srp_secret"`
	KEK       hexBytes `json:"kek"`
}

type keysVector struct {
	Secret     hexBytes `json:"secret"`
	Doc        hexBytes `json:"doc"`
	DocID      hexBytes `json:"doc_id"`
	Blob       hexBytes `json:"blob"`
	BlobMAC    hexBytes `json:"blob_mac"`
	Local      hexBytes `json:"local"`
	LocalIndex hexBytes `json:"local_index"`
}

type wrapVector struct {
	KEK     hexBytes `json:"kek"`
	Nonce   hexBytes `json:"nonce"`
	Secret  hexBytes `json:"secret"`
	AD      hexBytes `json:"ad"`
	Wrapped hexBytes `json:"wrapped"`
}

type docVector struct {
	Key        hexBytes `json:"key"`
	Nonce      hexBytes `json:"nonce"`
	User       string   `json:"user"`
	ID         string   `json:"id"`
	Rev        uint64   `json:"rev"`
	Deleted    bool     `json:"deleted"`
	Body       hexBytes `json:"body"`
	AD         hexBytes `json:"ad"`
	PaddedLen  int      `json:"padded_len"`
	Ciphertext hexBytes `json:"ciphertext"`
}

type docIDVector struct {
	Key  hexBytes `json:"key"`
	Name string   `json:"name"`
	ID   string   `json:"id"`
}

type blobIDVector struct {
	Key          hexBytes `json:"key"`
	PlaintextLen int      `json:"plaintext_len"`
	ID           string   `json:"id"`
}

type blobVector struct {
	Key              hexBytes `json:"key"`
	ID               string   `json:"id"`
	Salt             hexBytes `json:"salt"`
	PlaintextLen     int      `json:"plaintext_len"`
	StreamKey        hexBytes `json:"stream_key"`
	CiphertextLen    int      `json:"ciphertext_len"`
	CiphertextSHA256 hexBytes `json:"ciphertext_sha256"`
	Ciphertext       hexBytes `json:"ciphertext,omitempty"`
}

type valueVector struct {
	Key        hexBytes `json:"key"`
	Nonce      hexBytes `json:"nonce"`
	AD         hexBytes `json:"ad"`
	Plaintext  hexBytes `json:"plaintext"`
	Ciphertext hexBytes `json:"ciphertext"`
}

type indexKeyVector struct {
	Key      hexBytes `json:"key"`
	Parts    []string `json:"parts"`
	IndexKey hexBytes `json:"index_key"`
}

const blobPatternNote = " The plaintext of a vector with plaintext_len n is the n bytes b[i] = i mod 251."

// generateVectors computes every vector from fixed inputs.
func generateVectors(t *testing.T) map[string]any {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]any{}

	// KDF.
	kdfIn := []kdfVector{
		{Comment: "minimum parameters", Password: []byte("correct horse battery staple"), T: 1, M: 8192, P: 1, Salt: seq(0, 16)},
		{Comment: "empty password", Password: []byte{}, T: 1, M: 8192, P: 1, Salt: seq(0, 16)},
		{Comment: "UTF-8 password, two lanes, 32-byte salt", Password: []byte("pässwörd 🔑"), T: 2, M: 8192, P: 2, Salt: seq(0x20, 32)},
		{Comment: "64-byte salt, four lanes", Password: []byte("hunter2"), T: 1, M: 16384, P: 4, Salt: seq(0x80, 64)},
	}
	for i := range kdfIn {
		v := &kdfIn[i]
		p := KDFParams{Time: v.T, MemoryKiB: v.M, Threads: v.P, Salt: v.Salt}
		pk, err := DerivePasswordKeys(v.Password, p)
		must(err)
		v.Stretched = argon2.IDKey(v.Password, v.Salt, v.T, v.M, v.P, 32)
		v.SRPSecret = pk.SRPSecret
		v.KEK = bytes.Clone(pk.KEK[:])
	}
	files["kdf.json"] = vectorFile[kdfVector]{
		Description: "DerivePasswordKeys: stretched = Argon2id(password, salt, t, m KiB, p, 32 bytes); srp_secret = HKDF-SHA256(stretched, salt empty, info \"bitmask/v1/srp-x\", 32); kek = HKDF-SHA256(stretched, salt empty, info \"bitmask/v1/kek\", 32). Cheap parameters; the product defaults are in docs/formats.md.",
		Vectors:     kdfIn,
	}

	// Key schedule.
	secret := seq(0, 32)
	var keysVecs []keysVector
	var keys *Keys
	for _, s := range [][]byte{secret, bytes.Repeat([]byte{0xff}, 32)} {
		k, err := DeriveKeys(s)
		must(err)
		if keys == nil {
			keys = k
		}
		keysVecs = append(keysVecs, keysVector{
			Secret: s, Doc: bytes.Clone(k.Doc[:]), DocID: bytes.Clone(k.DocID[:]), Blob: bytes.Clone(k.Blob[:]),
			BlobMAC: bytes.Clone(k.BlobMAC[:]), Local: bytes.Clone(k.Local[:]), LocalIndex: bytes.Clone(k.LocalIndex[:]),
		})
	}
	files["keys.json"] = vectorFile[keysVector]{
		Description: "DeriveKeys: each key = HKDF-SHA256(ikm = secret, salt empty, info = label, 32 bytes) with labels bitmask/v1/doc, bitmask/v1/doc-id, bitmask/v1/blob, bitmask/v1/blob-mac, bitmask/v1/local, bitmask/v1/local-index.",
		Vectors:     keysVecs,
	}

	// Wrap.
	kek := kdfIn[0].KEK
	wrapVecs := []wrapVector{
		{KEK: kek, Nonce: seq(0x40, 24), Secret: secret, AD: []byte("alice@example.org")},
		{KEK: kek, Nonce: seq(0x41, 24), Secret: secret, AD: []byte{}},
	}
	for i := range wrapVecs {
		v := &wrapVecs[i]
		w, err := wrapSecretWithNonce(key32(v.KEK), nonce24(v.Nonce), v.Secret, v.AD)
		must(err)
		v.Wrapped = w
	}
	files["wrap.json"] = vectorFile[wrapVector]{
		Description: "WrapSecret: wrapped = 0x01 || nonce (24) || XChaCha20-Poly1305(kek, nonce, secret, ad). kek is the kek of the first kdf.json vector; secret is the first keys.json secret.",
		Vectors:     wrapVecs,
	}

	// DocID.
	var docIDVecs []docIDVector
	for _, name := range []string{"settings", "", "addressbook", "ünïcødé/名前"} {
		docIDVecs = append(docIDVecs, docIDVector{Key: keys.DocID[:], Name: name, ID: DocID(&keys.DocID, name)})
	}
	files["docid.json"] = vectorFile[docIDVector]{
		Description: "DocID: id = first 32 lowercase hex characters of HMAC-SHA256(key, \"bitmask-docid-v1\" || 0x00 || UTF-8 name). key is Keys.DocID of the first keys.json vector.",
		Vectors:     docIDVecs,
	}

	// Documents.
	settingsID := docIDVecs[0].ID
	docVecs := []docVector{
		{Nonce: seq(0x50, 24), User: "alice@example.org", ID: settingsID, Rev: 1, Body: []byte(`{"theme":"dark"}`)},
		{Nonce: seq(0x51, 24), User: "alice@example.org", ID: settingsID, Rev: 2, Deleted: true, Body: []byte{}},
		{Nonce: seq(0x52, 24), User: "alice@example.org", ID: "0123456789abcdef0123456789abcdef", Rev: 1 << 32, Body: pattern(252)},
		{Nonce: seq(0x53, 24), User: "alice@example.org", ID: "0123456789abcdef0123456789abcdef", Rev: 3, Body: pattern(253)},
		{Nonce: seq(0x54, 24), User: "", ID: "x", Rev: ^uint64(0), Body: pattern(1000)},
	}
	for i := range docVecs {
		v := &docVecs[i]
		v.Key = keys.Doc[:]
		ad, err := docAD(v.User, v.ID, v.Rev, v.Deleted)
		must(err)
		v.AD = ad
		v.PaddedLen = docBucket(4 + len(v.Body))
		ct, err := sealDocWithNonce(&keys.Doc, nonce24(v.Nonce), v.User, v.ID, v.Rev, v.Deleted, v.Body)
		must(err)
		v.Ciphertext = ct
	}
	files["doc.json"] = vectorFile[docVector]{
		Description: "SealDoc: ad = \"bitmask-doc-v1\" || u32be(len(user)) || user || u32be(len(id)) || id || u64be(rev) || (deleted ? 0x01 : 0x00); padded = u32be(len(body)) || body || zeros to padded_len; ciphertext = 0x01 || nonce (24) || XChaCha20-Poly1305(key, nonce, padded, ad). key is Keys.Doc of the first keys.json vector.",
		Vectors:     docVecs,
	}

	// BlobID.
	var blobIDVecs []blobIDVector
	for _, n := range []int{0, 3, 100, 65536, 65537} {
		blobIDVecs = append(blobIDVecs, blobIDVector{Key: keys.BlobMAC[:], PlaintextLen: n, ID: BlobID(&keys.BlobMAC, pattern(n))})
	}
	files["blobid.json"] = vectorFile[blobIDVector]{
		Description: "BlobID: id = lowercase hex of HMAC-SHA256(key, plaintext). key is Keys.BlobMAC of the first keys.json vector." + blobPatternNote,
		Vectors:     blobIDVecs,
	}

	// Blobs.
	var blobVecs []blobVector
	for i, n := range []int{0, 100, 65536, 65537} {
		pt := pattern(n)
		salt := seq(0x60+byte(i), 16)
		v := blobVector{Key: keys.Blob[:], ID: BlobID(&keys.BlobMAC, pt), Salt: salt, PlaintextLen: n}
		sk, err := hkdfKey(keys.Blob[:], salt, labelBlobStream+v.ID)
		must(err)
		v.StreamKey = sk[:]
		var buf bytes.Buffer
		must(sealBlob(&buf, &keys.Blob, v.ID, bytes.NewReader(pt), (*[16]byte)(salt), blobChunkSize))
		ct := buf.Bytes()
		sum := sha256.Sum256(ct)
		v.CiphertextLen, v.CiphertextSHA256 = len(ct), sum[:]
		if len(ct) <= 1024 {
			v.Ciphertext = ct
		}
		blobVecs = append(blobVecs, v)
	}
	files["blob.json"] = vectorFile[blobVector]{
		Description: "SealBlob: stream_key = HKDF-SHA256(ikm = key, salt = salt, info = \"bitmask/v1/blob-stream\" || id, 32); ciphertext = 0x01 || salt (16) || chunks, each chunk i = ChaCha20-Poly1305(stream_key, nonce = u88be(i) || last flag, up to 65536 plaintext bytes, no ad). ciphertext is given in full when at most 1024 bytes, otherwise check ciphertext_len and ciphertext_sha256. key is Keys.Blob and id = BlobID(Keys.BlobMAC, plaintext) of the first keys.json vector." + blobPatternNote,
		Vectors:     blobVecs,
	}

	// Values.
	valueVecs := []valueVector{
		{Nonce: seq(0x70, 24), AD: []byte("messages/INBOX/1"), Plaintext: []byte("Subject: hello\r\n\r\nhi\r\n")},
		{Nonce: seq(0x71, 24), AD: []byte{}, Plaintext: []byte{}},
	}
	for i := range valueVecs {
		v := &valueVecs[i]
		v.Key = keys.Local[:]
		ct, err := sealValueWithNonce(&keys.Local, nonce24(v.Nonce), v.AD, v.Plaintext)
		must(err)
		v.Ciphertext = ct
	}
	files["value.json"] = vectorFile[valueVector]{
		Description: "SealValue: ciphertext = 0x01 || nonce (24) || XChaCha20-Poly1305(key, nonce, plaintext, ad). key is Keys.Local of the first keys.json vector.",
		Vectors:     valueVecs,
	}

	// IndexKey.
	var ikVecs []indexKeyVector
	for _, parts := range [][]string{{"mbox", "INBOX"}, {"mboxINBOX"}, {"mbo", "xINBOX"}, {}, {""}, {"msg", "INBOX", "42"}} {
		ikVecs = append(ikVecs, indexKeyVector{Key: keys.LocalIndex[:], Parts: parts, IndexKey: IndexKey(&keys.LocalIndex, parts...)})
	}
	files["indexkey.json"] = vectorFile[indexKeyVector]{
		Description: "IndexKey: index_key = first 16 bytes of HMAC-SHA256(key, u32be(len(p1)) || p1 || u32be(len(p2)) || p2 || ...), parts as UTF-8. key is Keys.LocalIndex of the first keys.json vector.",
		Vectors:     ikVecs,
	}
	return files
}

func readVectors[V any](t *testing.T, name string) []V {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, name))
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/seal -run TestVectors -update to create)", err)
	}
	var f vectorFile[V]
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(f.Vectors) == 0 {
		t.Fatalf("%s: no vectors", name)
	}
	return f.Vectors
}

func checkHex(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got %x\nwant %x", what, got, want)
	}
}

func TestVectors(t *testing.T) {
	if *update {
		if err := os.MkdirAll(vectorDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, f := range generateVectors(t) {
			b, err := json.MarshalIndent(f, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(vectorDir, name), append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	t.Run("kdf", func(t *testing.T) {
		for i, v := range readVectors[kdfVector](t, "kdf.json") {
			p := KDFParams{Time: v.T, MemoryKiB: v.M, Threads: v.P, Salt: v.Salt}
			pk, err := DerivePasswordKeys(v.Password, p)
			if err != nil {
				t.Fatalf("%d: %v", i, err)
			}
			checkHex(t, "stretched", argon2.IDKey(v.Password, v.Salt, v.T, v.M, v.P, 32), v.Stretched)
			checkHex(t, "srp_secret", pk.SRPSecret, v.SRPSecret)
			checkHex(t, "kek", pk.KEK[:], v.KEK)
		}
	})
	t.Run("keys", func(t *testing.T) {
		for _, v := range readVectors[keysVector](t, "keys.json") {
			k, err := DeriveKeys(v.Secret)
			if err != nil {
				t.Fatal(err)
			}
			checkHex(t, "doc", k.Doc[:], v.Doc)
			checkHex(t, "doc_id", k.DocID[:], v.DocID)
			checkHex(t, "blob", k.Blob[:], v.Blob)
			checkHex(t, "blob_mac", k.BlobMAC[:], v.BlobMAC)
			checkHex(t, "local", k.Local[:], v.Local)
			checkHex(t, "local_index", k.LocalIndex[:], v.LocalIndex)
		}
	})
	t.Run("wrap", func(t *testing.T) {
		for _, v := range readVectors[wrapVector](t, "wrap.json") {
			w, err := wrapSecretWithNonce(key32(v.KEK), nonce24(v.Nonce), v.Secret, v.AD)
			if err != nil {
				t.Fatal(err)
			}
			checkHex(t, "wrapped", w, v.Wrapped)
			s, err := UnwrapSecret(key32(v.KEK), v.Wrapped, v.AD)
			if err != nil {
				t.Fatal(err)
			}
			checkHex(t, "unwrapped", s, v.Secret)
		}
	})
	t.Run("doc", func(t *testing.T) {
		for _, v := range readVectors[docVector](t, "doc.json") {
			ad, err := docAD(v.User, v.ID, v.Rev, v.Deleted)
			if err != nil {
				t.Fatal(err)
			}
			checkHex(t, "ad", ad, v.AD)
			if got := docBucket(4 + len(v.Body)); got != v.PaddedLen {
				t.Errorf("padded_len %d, want %d", got, v.PaddedLen)
			}
			ct, err := sealDocWithNonce(key32(v.Key), nonce24(v.Nonce), v.User, v.ID, v.Rev, v.Deleted, v.Body)
			if err != nil {
				t.Fatal(err)
			}
			checkHex(t, "ciphertext", ct, v.Ciphertext)
			body, err := OpenDoc(key32(v.Key), v.User, v.ID, v.Rev, v.Deleted, v.Ciphertext)
			if err != nil {
				t.Fatal(err)
			}
			checkHex(t, "body", body, v.Body)
			if _, err := OpenDoc(key32(v.Key), v.User, v.ID, v.Rev+1, v.Deleted, v.Ciphertext); err != ErrDecrypt {
				t.Errorf("rev+1: %v", err)
			}
		}
	})
	t.Run("docid", func(t *testing.T) {
		for _, v := range readVectors[docIDVector](t, "docid.json") {
			if got := DocID(key32(v.Key), v.Name); got != v.ID {
				t.Errorf("DocID(%q) = %s, want %s", v.Name, got, v.ID)
			}
		}
	})
	t.Run("blobid", func(t *testing.T) {
		for _, v := range readVectors[blobIDVector](t, "blobid.json") {
			if got := BlobID(key32(v.Key), pattern(v.PlaintextLen)); got != v.ID {
				t.Errorf("BlobID(%d bytes) = %s, want %s", v.PlaintextLen, got, v.ID)
			}
		}
	})
	t.Run("blob", func(t *testing.T) {
		for _, v := range readVectors[blobVector](t, "blob.json") {
			pt := pattern(v.PlaintextLen)
			sk, err := hkdfKey(v.Key, v.Salt, labelBlobStream+v.ID)
			if err != nil {
				t.Fatal(err)
			}
			checkHex(t, "stream_key", sk[:], v.StreamKey)
			var buf bytes.Buffer
			if err := sealBlob(&buf, key32(v.Key), v.ID, bytes.NewReader(pt), (*[16]byte)(v.Salt), blobChunkSize); err != nil {
				t.Fatal(err)
			}
			ct := buf.Bytes()
			if len(ct) != v.CiphertextLen {
				t.Errorf("%d-byte blob: ciphertext %d bytes, want %d", v.PlaintextLen, len(ct), v.CiphertextLen)
			}
			sum := sha256.Sum256(ct)
			checkHex(t, "ciphertext_sha256", sum[:], v.CiphertextSHA256)
			if v.Ciphertext != nil {
				checkHex(t, "ciphertext", ct, v.Ciphertext)
			}
			got, err := OpenBlobBytes(key32(v.Key), v.ID, ct)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, pt) {
				t.Errorf("%d-byte blob: plaintext mismatch", v.PlaintextLen)
			}
		}
	})
	t.Run("value", func(t *testing.T) {
		for _, v := range readVectors[valueVector](t, "value.json") {
			ct, err := sealValueWithNonce(key32(v.Key), nonce24(v.Nonce), v.AD, v.Plaintext)
			if err != nil {
				t.Fatal(err)
			}
			checkHex(t, "ciphertext", ct, v.Ciphertext)
			pt, err := OpenValue(key32(v.Key), v.AD, v.Ciphertext)
			if err != nil {
				t.Fatal(err)
			}
			checkHex(t, "plaintext", pt, v.Plaintext)
		}
	})
	t.Run("indexkey", func(t *testing.T) {
		for _, v := range readVectors[indexKeyVector](t, "indexkey.json") {
			checkHex(t, "index_key", IndexKey(key32(v.Key), v.Parts...), v.IndexKey)
		}
	})
}

// TestVectorsMatchGenerator checks that the vector files are exactly what the
// generator produces, so a change to a format cannot slip past by updating
// only the code or only the files.
func TestVectorsMatchGenerator(t *testing.T) {
	for name, f := range generateVectors(t) {
		want, err := json.MarshalIndent(f, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(vectorDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, append(want, '\n')) {
			t.Errorf("%s differs from the generator (run go test ./pkg/seal -run TestVectors -update)", name)
		}
	}
}
