// Package seal implements the cryptographic formats of Bitmask in Go: password
// stretching, storage-secret wrapping, the key schedule, encrypted documents,
// encrypted content-addressed blobs and encrypted local values.
//
// The package follows the example of filippo.io/age: a small API, one
// construction per job, no knobs that can make things insecure, and a written
// specification (docs/formats.md) with test vectors
// (testdata/vectors/seal/*.json) so the formats can be reimplemented in any
// language.
//
// # Design
//
// Everything hangs off two secrets.
//
// The password is stretched once with Argon2id ([DerivePasswordKeys]). The
// 32-byte result is never used directly; HKDF-SHA256 splits it into two
// independent values with distinct labels: the SRP secret x, which
// authenticates the user to the provider, and the key-encryption key (KEK).
// Because the two are independent HKDF outputs, the provider, which learns
// the SRP verifier, learns nothing about the KEK. The Argon2id parameters and
// salt are stored by the provider, so [KDFParams.Validate] bounds the
// format (a ceiling, so a hostile provider cannot make the client allocate
// absurd amounts of memory), and [KDFParams.AtLeast] with [MinKDFParams]
// is the floor the client holds a provider's answer to before it derives
// anything from the password (docs/formats.md §3).
//
// The storage secret is 32 random bytes ([NewStorageSecret]) created once per
// account. It is stored at the provider only wrapped ([WrapSecret]) under the
// KEK, or under a key derived from a recovery code, with the username as
// associated data. Changing the password re-wraps the storage secret; it does
// not re-encrypt any data.
//
// The key schedule ([DeriveKeys]) derives every data key from the storage
// secret with HKDF-SHA256 and a distinct label, so no key is ever used for
// two purposes.
//
// All AEAD encryption uses XChaCha20-Poly1305 with fresh random 24-byte
// nonces (random nonces of that size never collide in practice), except
// blobs, which use the STREAM construction (as in age) with ChaCha20-Poly1305
// under a fresh per-blob key. Every ciphertext begins with a version byte,
// currently 1.
//
//   - Documents ([SealDoc], [OpenDoc]) are small mutable records synchronised
//     with the provider as {id, rev, deleted, ciphertext}. The associated data
//     binds the user, id, revision and deletion flag, so the provider cannot
//     swap documents between ids or users, replay an old ciphertext under a
//     new revision, or resurrect a deleted document unnoticed. The plaintext
//     is padded to a small set of bucket sizes to hide exact lengths.
//     Document ids are either random ([RandomDocID]) or, for well-known
//     documents, an opaque keyed hash of a name ([DocID]).
//   - Blobs ([SealBlob], [OpenBlob]) are immutable, possibly large,
//     attachments addressed by a keyed hash of their plaintext ([BlobID]),
//     so equal content deduplicates without revealing the content. They are
//     encrypted in 64 KiB chunks that are authenticated one by one, so they
//     can be streamed; truncation, reordering, extension and swapping ids are
//     all detected.
//   - Local values ([SealValue], [OpenValue]) encrypt values in the client's
//     local database; [IndexKey] derives the opaque database keys.
//
// Authentication failures are reported as [ErrDecrypt]. Malformed inputs
// (wrong version, truncated headers, bad padding) are reported as other
// errors. All errors start with "seal: ".
package seal
