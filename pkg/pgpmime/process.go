package pgpmime

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/emersion/go-message/mail"

	"github.com/bitmask-go/bitmask/pkg/rawmime"
)

// SigStatus is the outcome of signature verification.
type SigStatus string

// Signature outcomes.
const (
	SigNone       SigStatus = "none"             // no OpenPGP signature found
	SigValid      SigStatus = "valid"            // verified with a known key
	SigInvalid    SigStatus = "invalid"          // the signature does not verify (or its key is revoked or expired)
	SigUnknownKey SigStatus = "could not verify" // signed by a key that was not given
)

// Result describes what Process did.
type Result struct {
	// Message is the processed RFC 5322 message: decrypted, with protected
	// headers applied; the input unchanged if there was nothing to do or
	// decryption failed.
	Message []byte
	// Encrypted reports that an encryption layer was found.
	Encrypted bool
	// Decrypted reports that all encryption layers were removed.
	Decrypted bool
	// DecryptErr says why not, when Encrypted && !Decrypted.
	DecryptErr error
	// Signature is the verification outcome.
	Signature SigStatus
	// SignatureErr says why Signature is not SigValid when a signature was
	// found (nil otherwise).
	SignatureErr error
	// SignerFingerprint is the signing key's primary fingerprint as
	// uppercase hex, when Signature is SigValid.
	SignerFingerprint string
	// SignerAddress is the signer key's address matching the From address
	// of the processed message, or else the key's primary address, when
	// Signature is SigValid. Callers should compare it with From.
	SignerAddress string
	// Signer is the key that made the valid signature (nil otherwise).
	// Process only says that the signature is good; whether the signer
	// is the author the reader sees is the caller's decision.
	Signer *openpgp.Entity
	// SignatureOutside names what a mail client shows of the message
	// that no valid signature covers ("text around the signed block",
	// "a text/html part", ...), when Signature is SigValid; empty when a
	// signature covers everything shown. SignatureErr is then
	// ErrPartialSignature.
	SignatureOutside []string
	// EncryptionOutside names what a mail client shows that was not
	// inside the encryption, when Decrypted; empty when everything
	// shown was encrypted.
	EncryptionOutside []string
}

// Errors reported in Result.DecryptErr.
var (
	ErrNoKey        = errors.New("pgpmime: no usable private key for this message")
	ErrTooLarge     = errors.New("pgpmime: decrypted message exceeds size limit")
	ErrTooDeep      = errors.New("pgpmime: too many nested OpenPGP layers")
	ErrMalformed    = errors.New("pgpmime: malformed OpenPGP/MIME structure")
	ErrNotEncrypted = errors.New("pgpmime: encrypted part holds no encrypted OpenPGP message")
	ErrUnsupported  = errors.New("pgpmime: encrypted with something other than OpenPGP (e.g. S/MIME)")
	// ErrUnsafeStructure: an inline PGP block sits in a MIME structure
	// that could leak its plaintext (HTML parts around it, the EFAIL
	// "direct exfiltration" pattern), so it is not decrypted.
	ErrUnsafeStructure = errors.New("pgpmime: inline PGP block in a MIME structure that could leak the plaintext; not decrypted")
	// ErrPartialSignature (in Result.SignatureErr) means a signature
	// verified but covers only part of what a client shows (text
	// outside an inline signed block, parts beside a nested signed
	// part); Result.SignatureOutside says what.
	ErrPartialSignature = errors.New("pgpmime: the signature covers only part of the message")
)

// Limits on the work Process does.
const (
	// MaxPlaintext bounds the decompressed plaintext of all the OpenPGP
	// messages (layers, inline blocks) in one mail together.
	MaxPlaintext = 128 << 20
	// MaxDepth bounds how many OpenPGP layers (encrypted or signed) are
	// processed inside each other.
	MaxDepth = 3
	// maxInlineBlocks bounds the armored blocks handled per text part.
	maxInlineBlocks = 16
)

// maxPlaintext is MaxPlaintext; a variable so tests can lower it.
var maxPlaintext int64 = MaxPlaintext

// state accumulates what processing found.
type state struct {
	encrypted, decrypted bool
	decryptErr           error
	sig                  SigStatus
	sigErr               error
	signer               *openpgp.Entity
	// sigFull: a valid signature covers everything shown; otherwise
	// sigOutside lists what the valid signature(s) leave out.
	sigFull    bool
	sigOutside []string
	// encOutside lists what is shown that was not encrypted.
	encOutside []string
}

// addCovered records a valid signature that leaves outside uncovered
// (nothing: it covers everything shown). A signature covering everything
// wins over partial ones, and its signer is the one reported.
func (s *state) addCovered(signer *openpgp.Entity, outside []string) {
	s.addSig(SigValid, nil, signer)
	switch {
	case s.sigFull:
	case len(outside) == 0:
		s.sigFull, s.sigOutside, s.signer = true, nil, signer
	case s.sigOutside == nil:
		s.sigOutside, s.signer = outside, signer
	}
}

// merge adds what an inner state found.
func (s *state) merge(in *state) {
	if in.sig == SigValid && in.signer != nil {
		if in.sigFull {
			s.addCovered(in.signer, nil)
		} else {
			s.addCovered(in.signer, in.sigOutside)
		}
	} else {
		s.addSig(in.sig, in.sigErr, in.signer)
	}
	s.encOutside = append(s.encOutside, in.encOutside...)
}

// addSig merges another signature outcome: an invalid signature anywhere
// wins, then an unverifiable one, then a valid one.
func (s *state) addSig(st SigStatus, err error, signer *openpgp.Entity) {
	rank := func(x SigStatus) int {
		switch x {
		case SigInvalid:
			return 3
		case SigUnknownKey:
			return 2
		case SigValid:
			return 1
		}
		return 0
	}
	if s.sig == "" {
		s.sig = SigNone
	}
	if st == "" || st == SigNone {
		if err != nil && s.sigErr == nil {
			s.sigErr = err
		}
		return
	}
	if rank(st) > rank(s.sig) {
		s.sig, s.sigErr = st, err
	}
	if st == SigValid && s.signer == nil {
		s.signer = signer
	}
}

type processor struct {
	keyring openpgp.EntityList // own private keys + sender public keys
	cfg     *packet.Config
	// budget is what is left of MaxPlaintext for the whole message:
	// all the layers and inline blocks of one message share it, so 16
	// blocks cannot make 16 times as much.
	budget int64
}

// Process removes an OpenPGP layer and verifies signatures.
//
// own are the recipient's private keys (all of them, old ones too);
// senderKeys are the public keys known for the From address (may be
// empty: a signature is then SigUnknownKey). now is the time at which key
// validity is judged (zero: time.Now()).
//
// What it handles, at the top level of the message:
//   - multipart/encrypted with protocol="application/pgp-encrypted"
//     (RFC 3156 §4): decrypted, the signature of a combined
//     signed-and-encrypted OpenPGP message (§6.2) checked, protected
//     headers applied (RFC 9788 §4), then the plaintext processed again
//     (an encapsulated multipart/signed, §6.1, or further layers - at most
//     MaxDepth in all). A decrypted message uses CRLF line breaks.
//   - multipart/signed with protocol="application/pgp-signature" (§5):
//     verified; the message is kept exactly as it is.
//   - inline PGP in text/plain parts that are not attachments: PGP
//     MESSAGE blocks decrypted in place, cleartext signatures verified
//     and kept (see "Inline PGP" in the package documentation).
//   - other encryption (S/MIME, unknown multipart/encrypted protocols):
//     reported as Encrypted with ErrUnsupported.
//
// Not handled: encrypted or signed structures nested inside another
// multipart (e.g. a multipart/encrypted wrapped by a mailing list into
// multipart/mixed), inline PGP in text/html.
//
// Signatures are checked against senderKeys and own, so a message signed
// with one of the user's own keys (a Sent copy) verifies too. Key
// validity (expiry, revocation) is judged at now; a signature by a key
// expired or revoked at that time is SigInvalid.
//
// Process never loses the message: it returns a non-nil Result whose
// Message is the input when nothing was done or something failed. A
// message that does not parse as MIME is returned unchanged with an
// empty Result. The error is only non-nil for an internal failure (the
// Result is still usable).
func Process(raw []byte, own openpgp.EntityList, senderKeys openpgp.EntityList, now time.Time) (res *Result, err error) {
	res = &Result{Message: raw, Signature: SigNone}
	defer func() {
		if r := recover(); r != nil {
			res = &Result{Message: raw, Signature: SigNone}
			err = fmt.Errorf("pgpmime: internal error: %v", r)
		}
	}()
	if now.IsZero() {
		now = time.Now()
	}
	p := &processor{cfg: &packet.Config{Time: func() time.Time { return now }}, budget: maxPlaintext}
	limit := maxPlaintext + 1<<20
	p.cfg.MaxDecompressedMessageSize = &limit
	p.keyring = append(p.keyring, own...)
	p.keyring = append(p.keyring, senderKeys...)

	st := &state{sig: SigNone}
	out := p.process(raw, 0, st)
	res.Encrypted = st.encrypted
	res.Signature = st.sig
	res.SignatureErr = st.sigErr
	if st.encrypted && (st.decryptErr != nil || !st.decrypted) {
		res.Decrypted = false
		res.DecryptErr = st.decryptErr
		if res.DecryptErr == nil {
			res.DecryptErr = ErrMalformed
		}
		res.Message = raw
		// A signature inside a layer we could not open is not reported.
		if res.Signature != SigNone {
			res.Signature, res.SignatureErr = SigNone, nil
		}
		return res, nil
	}
	res.Decrypted = st.encrypted
	res.Message = out
	if res.Decrypted {
		res.EncryptionOutside = dedup(st.encOutside)
	}
	if st.sig == SigValid && st.signer != nil {
		res.Signer = st.signer
		res.SignerFingerprint = fingerprint(st.signer)
		res.SignerAddress = signerAddress(st.signer, fromAddress(out))
		if !st.sigFull {
			res.SignatureOutside = dedup(st.sigOutside)
			if len(res.SignatureOutside) == 0 {
				res.SignatureOutside = []string{"parts of the message"}
			}
			res.SignatureErr = ErrPartialSignature
		}
	}
	return res, nil
}

// process handles one entity. It returns the (possibly rewritten) message
// and records findings in st. On a decryption failure it records the error
// and returns msg unchanged.
func (p *processor) process(msg []byte, depth int, st *state) []byte {
	e, err := parseEntity(msg)
	if err != nil || len(e.header) == 0 {
		return msg
	}
	mt, params := mediaType(e.header)
	proto := strings.ToLower(strings.TrimSpace(params["protocol"]))
	switch {
	case mt == "multipart/encrypted" && proto == "application/pgp-encrypted":
		return p.pgpMIMEEncrypted(msg, e, params, depth, st)
	case mt == "multipart/encrypted",
		(mt == "application/pkcs7-mime" || mt == "application/x-pkcs7-mime") && strings.Contains(strings.ToLower(params["smime-type"]), "enveloped-data"):
		// Encrypted, but not with OpenPGP (S/MIME, RFC 8551).
		st.encrypted, st.decryptErr = true, ErrUnsupported
		return msg
	case mt == "multipart/signed" && proto == "application/pgp-signature":
		if depth >= MaxDepth {
			st.addSig(SigNone, ErrTooDeep, nil)
			return msg
		}
		sig, signer, serr := p.verifySigned(e, params)
		if sig == SigValid {
			st.addCovered(signer, partsAfterSignature(e, params))
		} else {
			st.addSig(sig, serr, signer)
		}
		return msg
	}
	p.nestedSigned(msg, st)
	return p.inline(msg, depth, st)
}

// pgpMIMEEncrypted handles multipart/encrypted (RFC 3156 §4): exactly two
// parts, the first application/pgp-encrypted with "Version: 1", the second
// application/octet-stream with the OpenPGP message. The plaintext is a
// MIME entity (RFC 3156 §4: "written in MIME canonical format (body and
// headers)") that replaces the Content-* fields and body of the message.
func (p *processor) pgpMIMEEncrypted(msg []byte, e *entity, params map[string]string, depth int, st *state) []byte {
	st.encrypted = true
	if depth >= MaxDepth {
		st.decryptErr = ErrTooDeep
		return msg
	}
	mp, ok := splitMultipart(e.body, params["boundary"])
	if !ok || len(mp.parts) < 2 {
		st.decryptErr = fmt.Errorf("%w: multipart/encrypted needs two parts", ErrMalformed)
		return msg
	}
	pe, err := parseEntity(e.body[mp.parts[1].start:mp.parts[1].end])
	if err != nil {
		st.decryptErr = fmt.Errorf("%w: %v", ErrMalformed, err)
		return msg
	}
	data, _ := decodeCTE(getValue(pe.header, "Content-Transfer-Encoding"), pe.body)
	dr, err := p.decrypt(data)
	if err != nil {
		st.decryptErr = err
		return msg
	}
	st.decrypted = true
	if dr.sig == SigValid {
		// The combined method signs the whole plaintext.
		st.addCovered(dr.signer, nil)
	} else {
		st.addSig(dr.sig, dr.sigErr, dr.signer)
	}

	merged := p.mergeDecrypted(e, dr.plain, st)
	inner := &state{sig: SigNone}
	out := p.process(merged, depth+1, inner)
	if inner.encrypted && (inner.decryptErr != nil || !inner.decrypted) {
		st.decryptErr = inner.decryptErr
		if st.decryptErr == nil {
			st.decryptErr = ErrMalformed
		}
		st.decrypted = false
		return msg
	}
	if dr.sig == SigValid {
		// The combined signature covers the whole plaintext: signatures
		// inside it (a forwarded signed part, say) are content the
		// signer vouched for, and do not change the message's status.
		st.encOutside = append(st.encOutside, inner.encOutside...)
	} else {
		st.merge(inner)
	}
	return out
}

// decrypted is the outcome of decrypting one OpenPGP message.
type decrypted struct {
	plain        []byte
	sig          SigStatus
	sigErr       error
	signer       *openpgp.Entity
	armorHeaders map[string]string
}

// decrypt opens an OpenPGP message (armored or binary) and checks the
// signature of a signed-then-encrypted message (RFC 3156 §6.2, the
// "combined method"): the signature is only known once the literal data
// has been read to the end.
func (p *processor) decrypt(data []byte) (*decrypted, error) {
	d := &decrypted{sig: SigNone}
	var r io.Reader = bytes.NewReader(data)
	if i := bytes.Index(data, []byte("-----BEGIN PGP MESSAGE-----")); i >= 0 {
		blk, err := armor.Decode(bytes.NewReader(data[i:]))
		if err != nil {
			return nil, fmt.Errorf("%w: armor: %v", ErrMalformed, err)
		}
		d.armorHeaders = blk.Header
		r = blk.Body
	}
	md, err := openpgp.ReadMessage(r, p.keyring, nil, p.cfg)
	if err != nil {
		if errors.Is(err, pgperrors.ErrKeyIncorrect) {
			return nil, ErrNoKey
		}
		return nil, fmt.Errorf("pgpmime: decrypt: %w", err)
	}
	if !md.IsEncrypted || md.DecryptedWith.PrivateKey == nil {
		return nil, ErrNotEncrypted
	}
	plain, err := io.ReadAll(io.LimitReader(md.UnverifiedBody, p.budget+1))
	if err != nil {
		return nil, fmt.Errorf("pgpmime: decrypt: %w", err)
	}
	if int64(len(plain)) > p.budget {
		return nil, ErrTooLarge
	}
	p.budget -= int64(len(plain))
	d.plain = plain
	if md.IsSigned {
		switch {
		case md.SignedBy == nil:
			d.sig, d.sigErr = SigUnknownKey, pgperrors.ErrUnknownIssuer
		case md.SignatureError != nil:
			d.sig, d.sigErr = SigInvalid, md.SignatureError
		case md.Signature != nil:
			d.sig, d.signer = SigValid, md.SignedBy.Entity
		default:
			d.sig, d.sigErr = SigInvalid, errors.New("pgpmime: signature missing")
		}
	}
	return d, nil
}

// verifySigned checks multipart/signed (RFC 3156 §5): two parts, the
// signed data and an application/pgp-signature part. The signature covers
// the first part exactly as transmitted - its MIME header and body, up to
// but excluding the line break before the next delimiter (RFC 2046
// §5.1.1) - with line breaks converted to CRLF (§5, receiving step 1).
func (p *processor) verifySigned(e *entity, params map[string]string) (SigStatus, *openpgp.Entity, error) {
	// A structure that other MIME parsers may read differently (a mail
	// client, the IMAP server's BODYSTRUCTURE) could show what the
	// signature does not cover: it is not vouched for.
	if n := countFields(e.header, "Content-Type"); n != 1 {
		return SigInvalid, nil, fmt.Errorf("%w: multipart/signed with %d Content-Type fields", ErrMalformed, n)
	}
	if _, _, err := mime.ParseMediaType(getValue(e.header, "Content-Type")); err != nil {
		return SigInvalid, nil, fmt.Errorf("%w: multipart/signed Content-Type does not parse strictly", ErrMalformed)
	}
	mp, ok := splitMultipart(e.body, params["boundary"])
	if !ok || len(mp.parts) < 2 {
		return SigInvalid, nil, fmt.Errorf("%w: multipart/signed needs two parts", ErrMalformed)
	}
	signed := toCRLF(e.body[mp.parts[0].start:mp.parts[0].end])
	se, err := parseEntity(e.body[mp.parts[1].start:mp.parts[1].end])
	if err != nil {
		return SigInvalid, nil, fmt.Errorf("%w: signature part: %v", ErrMalformed, err)
	}
	// RFC 3156 §5: the second part is application/pgp-signature. Any
	// other type may be shown as content by a client (text/html around
	// the armored signature, say).
	if st, _ := mediaType(se.header); st != "application/pgp-signature" {
		return SigInvalid, nil, fmt.Errorf("%w: the signature part is %s, not application/pgp-signature", ErrMalformed, st)
	}
	sigData, _ := decodeCTE(getValue(se.header, "Content-Transfer-Encoding"), se.body)
	return p.checkDetached(signed, sigData)
}

// checkDetached verifies a detached signature (armored or binary).
func (p *processor) checkDetached(signed, sigData []byte) (SigStatus, *openpgp.Entity, error) {
	var sr io.Reader = bytes.NewReader(sigData)
	if i := bytes.Index(sigData, []byte("-----BEGIN PGP ")); i >= 0 {
		blk, err := armor.Decode(bytes.NewReader(sigData[i:]))
		if err != nil {
			return SigInvalid, nil, fmt.Errorf("%w: signature armor: %v", ErrMalformed, err)
		}
		sr = blk.Body
	}
	signer, err := openpgp.CheckDetachedSignature(p.keyring, bytes.NewReader(signed), sr, p.cfg)
	return sigOutcome(signer, err)
}

func sigOutcome(signer *openpgp.Entity, err error) (SigStatus, *openpgp.Entity, error) {
	switch {
	case err == nil && signer != nil:
		return SigValid, signer, nil
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return SigUnknownKey, nil, err
	case err == nil:
		return SigInvalid, nil, errors.New("pgpmime: no signer")
	}
	return SigInvalid, nil, err
}

// Header fields that protected headers (RFC 9788 §4) may replace: the
// User-Facing fields of RFC 9787 §1.1.2, related originator, threading and
// client fields, and Autocrypt-Gossip (only valid inside encryption,
// Autocrypt Level 1 "Key Gossip"). Trace and transport fields (Received,
// Return-Path, Authentication-Results, List-*, ...) and anything else are
// never taken from inside, so a sender cannot forge what the receiving
// system adds.
var protectable = map[string]bool{
	"subject": true, "from": true, "sender": true, "reply-to": true,
	"to": true, "cc": true, "date": true, "message-id": true,
	"in-reply-to": true, "references": true, "keywords": true,
	"comments": true, "mail-followup-to": true, "mail-reply-to": true,
	"autocrypt-gossip": true, "user-agent": true, "x-mailer": true,
	"organization": true, "importance": true, "priority": true,
	"x-priority": true, "disposition-notification-to": true,
}

// mergeDecrypted builds the decrypted message from the outer header and
// the plaintext entity.
//
// The plaintext's Content-* fields replace the outer ones. If the
// Cryptographic Payload (the plaintext entity, or the first part when it
// is an encapsulated multipart/signed, RFC 3156 §6.1) announces header
// protection - Content-Type parameter hp="cipher"/"clear" (RFC 9788
// §2.1.1) or the older protected-headers="v1"
// (draft-autocrypt-lamps-protected-headers, RFC 9788 Appendix F.3) - its
// protectable fields replace the outer ones (RFC 9788 §4: render the
// protected value, ignore the unprotected one). HP-Outer fields (§2.2) are
// dropped. A protected From whose address differs from the outer From is
// only used when the message carries a valid signature by a key bound to
// that address (§4.4.3); otherwise the outer From stays. Legacy Display
// Elements (§4.5.3) are removed from the body.
func (p *processor) mergeDecrypted(outer *entity, plain []byte, st *state) []byte {
	const eol = "\r\n"
	inner, err := parseEntity(plain)
	if err != nil || !looksLikeMIMEHeader(inner.header) {
		// Not a MIME entity (some agents encrypt a bare body): treat
		// the plaintext as text.
		cte, body := encodeText(plain, eol)
		ct := "text/plain"
		if !isASCII(string(plain)) && isUTF8(plain) {
			ct = "text/plain; charset=utf-8"
		}
		inner = &entity{header: []field{newField("Content-Type", ct, eol), newField("Content-Transfer-Encoding", cte, eol)}, body: body, eol: eol, sep: true}
	}
	innerType, innerParams := mediaType(inner.header)

	// Locate the Cryptographic Payload and its header fields.
	payloadHdr := inner.header
	payloadParams := innerParams
	innerIsSigned := innerType == "multipart/signed"
	if innerIsSigned {
		if mp, ok := splitMultipart(inner.body, innerParams["boundary"]); ok && len(mp.parts) > 0 {
			if fe, err := parseEntity(inner.body[mp.parts[0].start:mp.parts[0].end]); err == nil {
				payloadHdr = fe.header
				_, payloadParams = mediaType(fe.header)
			}
		}
	}
	protected := strings.EqualFold(payloadParams["protected-headers"], "v1") ||
		strings.EqualFold(payloadParams["hp"], "cipher") || strings.EqualFold(payloadParams["hp"], "clear")

	var protFields []field
	if protected {
		for _, f := range payloadHdr {
			if protectable[f.key()] {
				protFields = append(protFields, f)
			}
		}
		if !innerIsSigned {
			// Legacy Display part of draft-autocrypt-lamps-protected-headers
			// (RFC 9788 Appendix F.3): the first child of a multipart/mixed
			// payload, text/rfc822-headers (or text/plain with
			// protected-headers="v1"), repeating the protected fields for
			// legacy clients. It is dropped; its fields are used when the
			// payload root itself has none.
			if legacy, body, ok := dropLegacyPart(inner, innerType, innerParams); ok {
				if len(protFields) == 0 {
					protFields = legacy
				}
				inner = &entity{header: inner.header, body: body, eol: inner.eol, sep: true}
			}
			if payloadParams["hp"] != "" {
				var b bytes.Buffer
				writeHeader(&b, inner.header, inner.eol)
				b.Write(inner.body)
				if stripped := stripLegacyEntity(b.Bytes(), true, 0); stripped != nil {
					if ne, err := parseEntity(stripped); err == nil {
						inner = ne
						innerType, innerParams = mediaType(inner.header)
					}
				}
			}
		}
	}
	body := inner.body

	// Decide about a protected From (RFC 9788 §4.4).
	outerFrom := addrSpec(getValue(outer.header, "From"))
	useProtected := map[string]bool{}
	for _, f := range protFields {
		k := f.key()
		if k == "from" {
			in := addrSpec(f.value())
			bound := false
			if st.sig == SigValid && st.signer != nil {
				bound = hasAddress(st.signer, in)
			} else if innerIsSigned {
				if s, signer, _ := p.verifySignedRaw(inner); s == SigValid {
					bound = hasAddress(signer, in)
				}
			}
			if in == "" || (!strings.EqualFold(in, outerFrom) && !bound) {
				continue
			}
		}
		useProtected[k] = true
	}

	var hdr []field
	for _, f := range outer.header {
		k := f.key()
		if isStructural(f.name) && k != "mime-version" || k == "autocrypt-gossip" || useProtected[k] {
			continue
		}
		hdr = append(hdr, f.withEOL(eol))
	}
	for _, f := range protFields {
		if useProtected[f.key()] {
			hdr = append(hdr, f.withEOL(eol))
		}
	}
	if _, ok := getField(hdr, "MIME-Version"); !ok {
		hdr = append(hdr, newField("MIME-Version", "1.0", eol))
	}
	for _, f := range inner.header {
		if !isStructural(f.name) || f.key() == "mime-version" {
			continue
		}
		if f.key() == "content-type" && !innerIsSigned && (innerParams["hp"] != "" || innerParams["protected-headers"] != "") {
			// The hp parameter is only meaningful at the root of a
			// Cryptographic Payload (RFC 9788 §4.1); this entity is
			// now the top of a plain message.
			ps := map[string]string{}
			for k, v := range innerParams {
				if k != "hp" && k != "protected-headers" {
					ps[k] = v
				}
			}
			hdr = append(hdr, newField("Content-Type", formatMediaType(innerType, ps), eol))
			continue
		}
		hdr = append(hdr, f.withEOL(eol))
	}
	var out bytes.Buffer
	writeHeader(&out, hdr, eol)
	out.Write(body)
	return out.Bytes()
}

func (p *processor) verifySignedRaw(e *entity) (SigStatus, *openpgp.Entity, error) {
	_, params := mediaType(e.header)
	return p.verifySigned(e, params)
}

// looksLikeMIMEHeader requires at least one MIME field, so that plain text
// that happens to start with "word:" is not mistaken for a header.
func looksLikeMIMEHeader(fs []field) bool {
	for _, f := range fs {
		if isStructural(f.name) {
			return true
		}
	}
	return false
}

// dropLegacyPart finds and removes the Legacy Display part of the older
// protected-headers scheme, returning the header fields it lists.
func dropLegacyPart(inner *entity, mt string, params map[string]string) ([]field, []byte, bool) {
	if mt != "multipart/mixed" {
		return nil, nil, false
	}
	mp, ok := splitMultipart(inner.body, params["boundary"])
	if !ok || len(mp.parts) < 2 {
		return nil, nil, false
	}
	le, err := parseEntity(inner.body[mp.parts[0].start:mp.parts[0].end])
	if err != nil {
		return nil, nil, false
	}
	lt, lp := mediaType(le.header)
	if lt != "text/rfc822-headers" && !(lt == "text/plain" && strings.EqualFold(lp["protected-headers"], "v1")) {
		return nil, nil, false
	}
	var fs []field
	lb, _ := decodeCTE(getValue(le.header, "Content-Transfer-Encoding"), le.body)
	lb = append(append([]byte{}, bytes.TrimLeft(lb, "\r\n")...), "\r\n\r\n"...)
	if he, err := parseEntity(lb); err == nil {
		for _, f := range he.header {
			if protectable[f.key()] {
				fs = append(fs, f)
			}
		}
	}
	return fs, mp.rebuild(inner.body, nil, map[int]bool{0: true}), true
}

// stripLegacyEntity removes Legacy Display Elements (RFC 9788 §4.5.3) from
// the text/plain Main Body Parts of an entity that are marked
// hp-legacy-display="1": the leading lines up to and including the first
// blank line (§4.5.3.2). Main Body Parts are the root, the first child of
// multipart/mixed or multipart/related, and the children of
// multipart/alternative (RFC 9787 §7.1). text/html Legacy Display Elements
// are left in place. It returns nil when nothing changed.
func stripLegacyEntity(raw []byte, main bool, depth int) []byte {
	if !main || depth > 8 {
		return nil
	}
	e, err := parseEntity(raw)
	if err != nil {
		return nil
	}
	mt, params := mediaType(e.header)
	switch mt {
	case "text/plain":
		if params["hp-legacy-display"] != "1" {
			return nil
		}
		text, err := decodeCTE(getValue(e.header, "Content-Transfer-Encoding"), e.body)
		if err != nil {
			return nil
		}
		pos := 0
		found := false
		for pos < len(text) {
			l := rawmime.NextLine(text, pos)
			pos += len(l)
			if len(bytes.TrimRight(l, "\r\n")) == 0 {
				found = true
				break
			}
		}
		if !found {
			return nil
		}
		cte, enc := encodeText(text[pos:], e.eol)
		hdr := setFieldValue(e.header, "Content-Type", formatMediaType(mt, without(params, "hp-legacy-display")), e.eol)
		hdr = setFieldValue(hdr, "Content-Transfer-Encoding", cte, e.eol)
		var b bytes.Buffer
		writeHeader(&b, hdr, e.eol)
		b.Write(enc)
		return b.Bytes()
	case "multipart/mixed", "multipart/related", "multipart/alternative":
		mp, ok := splitMultipart(e.body, params["boundary"])
		if !ok {
			return nil
		}
		repl := map[int][]byte{}
		for i, pt := range mp.parts {
			isMain := i == 0 || mt == "multipart/alternative"
			if nb := stripLegacyEntity(e.body[pt.start:pt.end], isMain, depth+1); nb != nil {
				repl[i] = nb
			}
		}
		if len(repl) == 0 {
			return nil
		}
		out := append([]byte{}, raw[:len(raw)-len(e.body)]...)
		return append(out, mp.rebuild(e.body, repl, nil)...)
	}
	return nil
}

func without(m map[string]string, key string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

// addrSpec returns the lower-cased address of a single-address field.
func addrSpec(v string) string {
	if v == "" {
		return ""
	}
	l, err := mail.ParseAddressList(v)
	if err != nil || len(l) != 1 {
		return ""
	}
	return strings.ToLower(l[0].Address)
}

// fromAddress is the address in the From field of msg.
func fromAddress(msg []byte) string {
	e, err := parseEntity(msg)
	if err != nil {
		return ""
	}
	return addrSpec(getValue(e.header, "From"))
}

// hasAddress reports whether one of the key's user IDs has the address.
func hasAddress(e *openpgp.Entity, addr string) bool {
	if e == nil || addr == "" {
		return false
	}
	for _, id := range e.Identities {
		if id.UserId != nil && strings.EqualFold(strings.TrimSpace(id.UserId.Email), addr) {
			return true
		}
	}
	return false
}

func signerAddress(e *openpgp.Entity, from string) string {
	if hasAddress(e, from) {
		return from
	}
	if id := e.PrimaryIdentity(); id != nil && id.UserId != nil {
		return strings.ToLower(id.UserId.Email)
	}
	return ""
}

func fingerprint(e *openpgp.Entity) string {
	return strings.ToUpper(fmt.Sprintf("%x", e.PrimaryKey.Fingerprint))
}

func isUTF8(b []byte) bool { return utf8.Valid(b) }

// countFields counts the fields named name (case-insensitive).
func countFields(fs []field, name string) int {
	n := 0
	for _, f := range fs {
		if strings.EqualFold(f.name, name) {
			n++
		}
	}
	return n
}
