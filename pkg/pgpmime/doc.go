// Package pgpmime applies OpenPGP to Internet mail: PGP/MIME (RFC 3156),
// inline PGP, and header protection (RFC 9788).
//
// # How OpenPGP travels in mail
//
// An OpenPGP message (RFC 4880, RFC 9580) is a sequence of packets:
// public-key encrypted session keys (PKESK, one per recipient key), an
// encrypted data packet (SEIPD) holding, once decrypted, possibly
// compressed one-pass-signature, literal-data and signature packets. Mail
// carries it ASCII-armored (RFC 4880 §6.2: "-----BEGIN PGP MESSAGE-----",
// base64, CRC, "-----END ...") because mail transport is 7-bit text.
//
// PGP/MIME (RFC 3156) labels the OpenPGP data with MIME types (RFC 1847
// security multiparts):
//
//   - Encryption (§4): Content-Type multipart/encrypted;
//     protocol="application/pgp-encrypted", with exactly two parts: an
//     application/pgp-encrypted control part containing "Version: 1",
//     and an application/octet-stream part with the armored OpenPGP
//     message. The plaintext is a complete MIME entity (its own
//     Content-Type, body, sub-parts and attachments), written in
//     canonical form (CRLF line breaks) before encryption.
//
//   - Signing (§5): Content-Type multipart/signed; micalg=pgp-sha256;
//     protocol="application/pgp-signature", with two parts: the signed
//     MIME entity and an application/pgp-signature part with a detached
//     signature. The signature covers the first part exactly as
//     transmitted - its MIME header fields and body - in canonical CRLF
//     form, excluding the line break before the next boundary delimiter,
//     which belongs to the delimiter (RFC 2046 §5.1.1). Because relays
//     may re-encode 8-bit data, the signed part must be 7-bit clean
//     (quoted-printable or base64) and free of trailing whitespace (§3).
//
//   - Sign and encrypt (§6): either a multipart/signed inside
//     multipart/encrypted (§6.1, "encapsulation"), or one OpenPGP
//     message that is both signed and encrypted (§6.2, "combined",
//     what EncryptSign produces and most clients send).
//
//   - Keys (§7): application/pgp-keys parts carry armored public keys.
//
// Inline PGP predates PGP/MIME: the armored block simply sits in a
// text/plain body. An encrypted block is "-----BEGIN PGP MESSAGE-----";
// a cleartext signature (RFC 4880 §7) is "-----BEGIN PGP SIGNED
// MESSAGE-----", the dash-escaped text, then a signature block. It only
// protects the text it encloses, never the MIME structure or attachments.
//
// # Header protection
//
// PGP/MIME protects the body, not the message header: Subject, From, To
// and Date travel in the clear and can be altered. Header protection
// (RFC 9788, building on the earlier "protected headers" of
// draft-autocrypt-lamps-protected-headers) copies the header fields into
// the header of the protected MIME entity - the Cryptographic Payload -
// and marks it with the Content-Type parameter hp="cipher" (encrypted)
// or hp="clear" (signed only) (§2.1.1); the older scheme used
// protected-headers="v1". For encrypted mail the outer copy of
// confidential fields is removed or obscured (Subject becomes "[...]" in
// RFC 9788's hcp_baseline, "..." in deployed clients) and the outer
// values are recorded inside as HP-Outer fields (§2.2). A receiver
// shows the protected values instead of the outer ones (§4), but treats
// a protected From that differs from the outer From with care (§4.4).
// Legacy Display Elements (§2.1.2, §4.5.3) repeat protected fields in the
// body for clients that do not implement this; aware clients hide them.
//
// # This package
//
// Process (incoming) decrypts multipart/encrypted and inline PGP
// messages, verifies PGP/MIME, combined and inline signatures, applies
// protected headers, and reports what it found; it never loses the
// message. EncryptSign and Sign (outgoing) produce PGP/MIME with header
// protection; IsEncrypted, AttachKey, KeysFromMessage, StripHeaders and
// SetHeaders are helpers for a mail pipeline. All functions work on raw
// RFC 5322 bytes and keep the bytes they do not need to change.
//
// Limits: at most MaxDepth nested OpenPGP layers, at most MaxPlaintext
// bytes of decrypted (decompressed) data per OpenPGP message.
//
// # Choices made by Process
//
// Protected headers: only user-facing, originator, threading and client
// fields (Subject, From, To, Cc, Date, Message-ID, References, Reply-To,
// User-Agent, Autocrypt-Gossip, ...) are taken from the Cryptographic
// Payload; trace and transport fields (Received, Authentication-Results,
// List-*, X-...) never are, so a sender cannot forge what the receiving
// system adds. A protected From with another address than the outer From
// is only used when a valid signature comes from a key with that address
// (RFC 9788 §4.4.3). HP-Outer fields are dropped, as are outer
// Autocrypt-Gossip fields (gossip is only valid inside encryption).
//
// Inline PGP: a PGP MESSAGE block is replaced by its plaintext and the
// text part re-encoded (7bit, or quoted-printable when needed; charset
// from the armor "Charset" header, or utf-8 for UTF-8 text labelled
// us-ascii); text around the block is kept. A cleartext-signed block is
// verified and left as it is, armor included, so any client can verify it
// again.
//
// Coverage: Process says what a good signature and the encryption do not
// cover of what a client shows (Result.SignatureOutside,
// Result.EncryptionOutside; coverage.go). A signature at the root covers
// everything; an inline block covers only itself (text around it, a
// mailing-list footer say, and every other part are outside); a
// PGP/MIME signed part below the root covers only itself (the MIME
// wrapping attacks); signatures inside a forwarded message/rfc822 are
// not evaluated. A good signature that leaves something out is still
// SigValid, with ErrPartialSignature in SignatureErr: the caller decides
// what to call it (bitmaskd: "partial", docs/signatures.md).
package pgpmime
