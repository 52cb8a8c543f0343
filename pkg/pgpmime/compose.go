package pgpmime

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Options tune EncryptSign and Sign. The zero value (or nil) is fine.
type Options struct {
	// HiddenRecipients writes every Public-Key Encrypted Session Key
	// packet with the wildcard key ID 0 (RFC 4880 §5.1, RFC 9580
	// §5.1.1 "anonymous recipient"), so the message does not reveal
	// whose keys it was encrypted to; recipients then try each of their
	// secret keys. Only used by EncryptSign.
	HiddenRecipients bool
	// ObscuredSubject is the outer Subject of an encrypted message;
	// empty means "...". (RFC 9788 §3.2.1 hcp_baseline uses "[...]";
	// "..." is what Thunderbird, K-9 and Enigmail write and show.)
	ObscuredSubject string
	// OuterHeaders names further header fields that EncryptSign keeps
	// outside the encryption (besides the routing fields, see
	// EncryptSign); naming "Subject" keeps the real Subject visible.
	OuterHeaders []string
	// Config tunes the OpenPGP operations (time, randomness, hash).
	// nil means defaults; Sign always uses SHA-256 unless Config sets
	// another DefaultHash.
	Config *packet.Config
}

func (o *Options) config() *packet.Config {
	if o == nil || o.Config == nil {
		return &packet.Config{DefaultHash: crypto.SHA256}
	}
	c := *o.Config
	if c.DefaultHash == 0 {
		c.DefaultHash = crypto.SHA256
	}
	return &c
}

// Errors returned by the composing functions.
var (
	ErrNoRecipients = errors.New("pgpmime: no recipients")
	ErrNoSigner     = errors.New("pgpmime: no signing key")
	ErrProtected    = errors.New("pgpmime: message is already signed or encrypted")
	ErrNotPublicKey = errors.New("pgpmime: not an armored public key")
)

// outerFields are the fields EncryptSign leaves in the clear: what routing,
// threading and Autocrypt need. Everything else travels only inside.
var outerFields = map[string]bool{
	"from": true, "to": true, "cc": true, "date": true, "message-id": true,
	"in-reply-to": true, "references": true, "mime-version": true,
	"autocrypt": true,
}

// EncryptSign makes a PGP/MIME encrypted and signed message (RFC 3156 §4,
// combined method of §6.2: one OpenPGP message that is signed and then
// encrypted) with header protection (RFC 9788 §5.2.1).
//
// The encrypted entity (the Cryptographic Payload) carries the original
// body and Content-* fields plus every other original header field except
// Bcc (Subject, From, To, Cc, Date, Message-ID, In-Reply-To, References,
// ...), is marked with Content-Type parameters hp="cipher" (RFC 9788
// §2.1.1) and protected-headers="v1" (understood by Thunderbird, K-9,
// Enigmail, mutt), and records the outer fields in HP-Outer fields
// (§2.2). Like multipart/signed content it is canonicalized to CRLF and
// 7bit (RFC 3156 §6.2, §3).
//
// The outer header keeps only From, To, Cc, Date, Message-ID,
// In-Reply-To, References, Autocrypt (the sender's key, which Autocrypt
// Level 1 puts in the clear) and opts.OuterHeaders, plus Subject replaced
// by "..." when the message had one. Bcc never appears anywhere.
//
// to are the recipients' public keys, typically including the sender's own
// key so the Sent copy stays readable.
func EncryptSign(msg []byte, to openpgp.EntityList, signer *openpgp.Entity, opts *Options) ([]byte, error) {
	if len(to) == 0 {
		return nil, ErrNoRecipients
	}
	if signer == nil {
		return nil, ErrNoSigner
	}
	e, err := parseEntity(msg)
	if err != nil {
		return nil, err
	}
	const eol = "\r\n"
	cfg := opts.config()
	subject := "..."
	keep := map[string]bool{}
	for k := range outerFields {
		keep[k] = true
	}
	if opts != nil {
		if opts.ObscuredSubject != "" {
			subject = opts.ObscuredSubject
		}
		for _, n := range opts.OuterHeaders {
			keep[strings.ToLower(n)] = true
		}
	}

	// Split the header (RFC 9788 §5.2.1 "origheaders" and "origbody").
	var structural, orig []field
	for _, f := range e.header {
		switch {
		case f.key() == "bcc" || f.key() == "resent-bcc":
		case f.key() == "mime-version":
		case isStructural(f.name):
			structural = append(structural, f)
		default:
			orig = append(orig, f)
		}
	}

	// The outer header: what the Header Confidentiality Policy leaves
	// outside (RFC 9788 §5.2.1 step 5.iv).
	var outer []field
	for _, f := range orig {
		switch {
		case keep[f.key()]:
			outer = append(outer, field{name: f.name, raw: cleanHeaderField(f.raw)})
		case f.key() == "subject":
			outer = append(outer, newField(f.name, subject, eol))
		}
	}

	// The Cryptographic Payload: Content-* fields first, then the
	// protected fields, then HP-Outer (RFC 9788 §5.2.1 steps 3, 5.i, 5.v).
	mt, params := mediaType(structural)
	// Written quoted, as in RFC 9788's examples, for clients that match
	// the parameters textually.
	ct := formatMediaType(mt, without(without(params, "hp"), "protected-headers")) + `; protected-headers="v1"; hp="cipher"`
	var inner []field
	inner = append(inner, newField("Content-Type", ct, eol))
	for _, f := range structural {
		if f.key() != "content-type" {
			inner = append(inner, f)
		}
	}
	inner = append(inner, orig...)
	for _, f := range outer {
		inner = append(inner, newField("HP-Outer", f.name+": "+f.value(), eol))
	}
	var payload bytes.Buffer
	writeHeader(&payload, inner, eol)
	payload.Write(e.body)
	plain, err := canonicalize(payload.Bytes())
	if err != nil {
		return nil, err
	}

	// Encrypt and sign in one OpenPGP message (RFC 3156 §6.2).
	var armored bytes.Buffer
	aw, err := armor.Encode(&armored, "PGP MESSAGE", nil)
	if err != nil {
		return nil, err
	}
	var pw io.WriteCloser
	if opts != nil && opts.HiddenRecipients {
		pw, err = encryptHidden(aw, to, signer, cfg)
	} else {
		pw, err = openpgp.Encrypt(aw, to, signer, &openpgp.FileHints{IsBinary: true}, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("pgpmime: encrypt: %w", err)
	}
	if _, err := pw.Write(plain); err != nil {
		return nil, err
	}
	if err := pw.Close(); err != nil {
		return nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}
	armored.WriteString(eol)
	ciphertext := toCRLF(armored.Bytes())

	// multipart/encrypted (RFC 3156 §4): a "Version: 1" control part and
	// the OpenPGP message as application/octet-stream.
	boundary, err := newBoundary(cfg, ciphertext)
	if err != nil {
		return nil, err
	}
	outer = append(outer,
		newField("MIME-Version", "1.0", eol),
		newField("Content-Type", `multipart/encrypted; protocol="application/pgp-encrypted"; boundary="`+boundary+`"`, eol))
	var out bytes.Buffer
	writeHeader(&out, outer, eol)
	out.WriteString("This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)" + eol)
	out.WriteString("--" + boundary + eol)
	out.WriteString("Content-Type: application/pgp-encrypted" + eol)
	out.WriteString("Content-Description: PGP/MIME version identification" + eol + eol)
	out.WriteString("Version: 1" + eol + eol)
	out.WriteString("--" + boundary + eol)
	out.WriteString(`Content-Type: application/octet-stream; name="encrypted.asc"` + eol)
	out.WriteString("Content-Description: OpenPGP encrypted message" + eol)
	out.WriteString(`Content-Disposition: inline; filename="encrypted.asc"` + eol + eol)
	out.Write(ciphertext)
	out.WriteString(eol + "--" + boundary + "--" + eol)
	return out.Bytes(), nil
}

// encryptHidden writes a signed and encrypted OpenPGP message whose
// PKESK packets carry the wildcard key ID (RFC 4880 §5.1: "An
// implementation MAY accept or use a Key ID of zero as a 'wild card' or
// 'speculative' Key ID"). go-crypto's v1 Encrypt has no such option, so
// the message is assembled from its packet layer: session key, one PKESK
// per recipient (packet.SerializeEncryptedKeyAEADwithHiddenOption with
// hidden=true), a SEIPD v1 packet (with MDC), and inside it the signed
// literal data written by openpgp.Sign. No compression is applied.
func encryptHidden(w io.Writer, to openpgp.EntityList, signer *openpgp.Entity, cfg *packet.Config) (io.WriteCloser, error) {
	cipher := packet.CipherAES256
	for _, e := range to {
		sig, _ := e.PrimarySelfSignature()
		if sig == nil {
			return nil, errors.New("pgpmime: recipient key without self-signature")
		}
		if len(sig.PreferredSymmetric) > 0 && !bytes.Contains(sig.PreferredSymmetric, []byte{uint8(packet.CipherAES256)}) {
			cipher = packet.CipherAES128 // the algorithm every implementation must support
		}
	}
	key := make([]byte, cipher.KeySize())
	if _, err := io.ReadFull(cfg.Random(), key); err != nil {
		return nil, err
	}
	for _, e := range to {
		k, ok := e.EncryptionKey(cfg.Now())
		if !ok {
			return nil, fmt.Errorf("pgpmime: key %X has no valid encryption key", e.PrimaryKey.Fingerprint)
		}
		if err := packet.SerializeEncryptedKeyAEADwithHiddenOption(w, k.PublicKey, cipher, false, key, true, cfg); err != nil {
			return nil, err
		}
	}
	payload, err := packet.SerializeSymmetricallyEncrypted(w, cipher, false, packet.CipherSuite{}, key, cfg)
	if err != nil {
		return nil, err
	}
	signed, err := openpgp.Sign(payload, signer, &openpgp.FileHints{IsBinary: true}, cfg)
	if err != nil {
		return nil, err
	}
	return &chainCloser{signed, payload}, nil
}

type chainCloser struct {
	io.WriteCloser
	next io.Closer
}

func (c *chainCloser) Close() error {
	if err := c.WriteCloser.Close(); err != nil {
		return err
	}
	return c.next.Close()
}

// newBoundary makes a random MIME boundary that does not occur in content.
func newBoundary(cfg *packet.Config, content ...[]byte) (string, error) {
	for {
		var b [15]byte
		if _, err := io.ReadFull(cfg.Random(), b[:]); err != nil {
			return "", err
		}
		s := "pgpmime-" + hex.EncodeToString(b[:])
		clash := false
		for _, c := range content {
			if bytes.Contains(c, []byte(s)) {
				clash = true
			}
		}
		if !clash {
			return s, nil
		}
	}
}

// hashNames are the micalg names of RFC 3156 §5 ("pgp-" + the lower-case
// RFC 4880 §9.4 text name).
var hashNames = map[crypto.Hash]string{
	crypto.SHA1: "pgp-sha1", crypto.SHA224: "pgp-sha224", crypto.SHA256: "pgp-sha256",
	crypto.SHA384: "pgp-sha384", crypto.SHA512: "pgp-sha512",
	crypto.SHA3_256: "pgp-sha3-256", crypto.SHA3_512: "pgp-sha3-512",
}

// Sign makes a PGP/MIME signed message (RFC 3156 §5): multipart/signed
// with micalg and protocol="application/pgp-signature". Header fields
// other than Content-* stay outside; the first part is the original body
// entity (its Content-* fields and body), canonicalized as §5 requires:
// CRLF line breaks, 8-bit text re-encoded as quoted-printable and 8-bit
// data as base64 so that relays cannot alter it (§3), no trailing
// whitespace, ending with a line break (the OpenPGP convention noted in
// §5). The detached signature is made over exactly those bytes.
func Sign(msg []byte, signer *openpgp.Entity, opts *Options) ([]byte, error) {
	if signer == nil {
		return nil, ErrNoSigner
	}
	e, err := parseEntity(msg)
	if err != nil {
		return nil, err
	}
	const eol = "\r\n"
	cfg := opts.config()
	var structural, rest []field
	for _, f := range e.header {
		switch {
		case f.key() == "mime-version":
		case isStructural(f.name):
			structural = append(structural, f)
		default:
			rest = append(rest, field{name: f.name, raw: cleanHeaderField(f.raw)})
		}
	}
	var ent bytes.Buffer
	writeHeader(&ent, structural, eol)
	ent.Write(e.body)
	signed, err := canonicalize(ent.Bytes())
	if err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(signed, []byte("\r\n")) {
		signed = append(signed, '\r', '\n')
	}

	var sig bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&sig, signer, bytes.NewReader(signed), cfg); err != nil {
		return nil, fmt.Errorf("pgpmime: sign: %w", err)
	}
	micalg, err := micalgOf(sig.Bytes())
	if err != nil {
		return nil, err
	}
	sigBytes := toCRLF(sig.Bytes())
	if !bytes.HasSuffix(sigBytes, []byte("\r\n")) {
		sigBytes = append(sigBytes, '\r', '\n')
	}
	boundary, err := newBoundary(cfg, signed, sigBytes)
	if err != nil {
		return nil, err
	}
	hdr := append(rest,
		newField("MIME-Version", "1.0", eol),
		newField("Content-Type", `multipart/signed; micalg=`+micalg+`; protocol="application/pgp-signature"; boundary="`+boundary+`"`, eol))
	var out bytes.Buffer
	writeHeader(&out, hdr, eol)
	out.WriteString("This is an OpenPGP/MIME signed message (RFC 4880 and 3156)" + eol)
	out.WriteString("--" + boundary + eol)
	out.Write(signed)
	out.WriteString(eol + "--" + boundary + eol)
	out.WriteString(`Content-Type: application/pgp-signature; name="signature.asc"` + eol)
	out.WriteString("Content-Description: OpenPGP digital signature" + eol)
	out.WriteString(`Content-Disposition: attachment; filename="signature.asc"` + eol + eol)
	out.Write(sigBytes)
	out.WriteString(eol + "--" + boundary + "--" + eol)
	return out.Bytes(), nil
}

// micalgOf reads the hash algorithm of an armored signature.
func micalgOf(armored []byte) (string, error) {
	blk, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		return "", err
	}
	p, err := packet.Read(blk.Body)
	if err != nil {
		return "", err
	}
	s, ok := p.(*packet.Signature)
	if !ok {
		return "", errors.New("pgpmime: not a signature")
	}
	name, ok := hashNames[s.Hash]
	if !ok {
		return "", fmt.Errorf("pgpmime: no micalg name for hash %v", s.Hash)
	}
	return name, nil
}

// IsEncrypted reports whether msg is already encrypted: PGP/MIME
// (multipart/encrypted, RFC 3156 §4, or any other multipart/encrypted,
// RFC 1847), S/MIME enveloped data (RFC 8551 §3.3), or a text/plain part (not an attachment) holding an inline PGP
// MESSAGE block. Such a message should pass through unchanged. Note that
// an inline-PGP message may still carry unencrypted parts besides the
// encrypted text.
func IsEncrypted(msg []byte) bool {
	e, err := parseEntity(msg)
	if err != nil {
		return false
	}
	mt, params := mediaType(e.header)
	switch mt {
	case "multipart/encrypted":
		return true
	case "application/pkcs7-mime", "application/x-pkcs7-mime":
		return strings.EqualFold(params["smime-type"], "enveloped-data") || strings.EqualFold(params["smime-type"], "authEnveloped-data")
	}
	found := false
	visit(msg, func(pe *entity) {
		if found {
			return
		}
		if t, _ := mediaType(pe.header); t != "text/plain" || isAttachment(pe.header) {
			return
		}
		text, _ := decodeCTE(getValue(pe.header, "Content-Transfer-Encoding"), pe.body)
		if armorLine(text, beginMessage, 0) >= 0 {
			found = true
		}
	})
	return found
}

// AttachKey adds the sender's public key as an application/pgp-keys
// attachment (RFC 3156 §7). A multipart/mixed message gets one more part
// (all other bytes unchanged); any other message is wrapped in a new
// multipart/mixed whose first part is the original body entity. Signed or
// encrypted messages are refused (ErrProtected): attach the key first.
func AttachKey(msg []byte, armoredPub string, filename string) ([]byte, error) {
	if strings.Contains(armoredPub, "PRIVATE KEY") || !strings.Contains(armoredPub, "-----BEGIN PGP PUBLIC KEY BLOCK-----") {
		return nil, ErrNotPublicKey
	}
	e, err := parseEntity(msg)
	if err != nil {
		return nil, err
	}
	filename = sanitizeFilename(filename)
	eol := e.eol
	mt, params := mediaType(e.header)
	if mt == "multipart/signed" || mt == "multipart/encrypted" || IsEncrypted(msg) {
		return nil, ErrProtected
	}
	keyText := convertEOL(toCRLF([]byte(strings.TrimRight(armoredPub, "\r\n")+"\n")), eol)
	var kp bytes.Buffer
	kp.WriteString(`Content-Type: application/pgp-keys; name="` + filename + `"` + eol)
	kp.WriteString("Content-Transfer-Encoding: 7bit" + eol)
	kp.WriteString("Content-Description: OpenPGP public key" + eol)
	kp.WriteString(`Content-Disposition: attachment; filename="` + filename + `"` + eol + eol)
	kp.Write(keyText)
	keyPart := bytes.TrimRight(kp.Bytes(), "\r\n")

	hdrLen := len(msg) - len(e.body)
	if mt == "multipart/mixed" {
		if mp, ok := splitMultipart(e.body, params["boundary"]); ok {
			b := params["boundary"]
			var nb bytes.Buffer
			if mp.closed {
				nb.Write(e.body[:mp.closeDelim])
				nb.WriteString("--" + b + eol)
				nb.Write(keyPart)
				nb.WriteString(eol)
				nb.Write(e.body[mp.closeDelim:])
			} else {
				nb.Write(e.body)
				nb.WriteString(eol + "--" + b + eol)
				nb.Write(keyPart)
				nb.WriteString(eol + "--" + b + "--" + eol)
			}
			out := append([]byte{}, msg[:hdrLen]...)
			if !e.sep {
				out = append(out, eol...)
			}
			return append(out, nb.Bytes()...), nil
		}
	}

	var structural, rest []field
	for _, f := range e.header {
		switch {
		case f.key() == "mime-version":
		case isStructural(f.name):
			structural = append(structural, f)
		default:
			rest = append(rest, f)
		}
	}
	boundary, err := newBoundary(&packet.Config{}, e.body, keyPart)
	if err != nil {
		return nil, err
	}
	hdr := append(rest,
		newField("MIME-Version", "1.0", eol),
		newField("Content-Type", `multipart/mixed; boundary="`+boundary+`"`, eol))
	var out bytes.Buffer
	writeHeader(&out, hdr, eol)
	out.WriteString("--" + boundary + eol)
	for _, f := range structural {
		out.Write(f.raw)
	}
	out.WriteString(eol)
	out.Write(e.body)
	if len(e.body) > 0 && !bytes.HasSuffix(e.body, []byte("\n")) {
		out.WriteString(eol)
	}
	out.WriteString(eol + "--" + boundary + eol)
	out.Write(keyPart)
	out.WriteString(eol + "--" + boundary + "--" + eol)
	return out.Bytes(), nil
}

func sanitizeFilename(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 0x20 && r < 0x7f && r != '"' && r != '\\' && r != '/' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "publickey.asc"
	}
	return b.String()
}

// KeysFromMessage returns the armored public keys found in
// application/pgp-keys parts (RFC 3156 §7), anywhere in the MIME tree.
// Binary keys are armored; private keys and data that does not parse as
// an OpenPGP key are skipped.
func KeysFromMessage(msg []byte) []string {
	var out []string
	visit(msg, func(pe *entity) {
		if t, _ := mediaType(pe.header); t != "application/pgp-keys" || len(out) >= 32 {
			return
		}
		data, _ := decodeCTE(getValue(pe.header, "Content-Transfer-Encoding"), pe.body)
		const begin, end = "-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----END PGP PUBLIC KEY BLOCK-----"
		if armorLine(data, begin, 0) < 0 {
			if len(data) > 0 && data[0]&0x80 != 0 {
				if s, ok := armorPublic(data); ok {
					out = append(out, s)
				}
			}
			return
		}
		pos := 0
		for n := 0; n < 32; n++ {
			i := armorLine(data, begin, pos)
			if i < 0 {
				return
			}
			j := armorLine(data, end, i)
			if j < 0 {
				return
			}
			blk := string(bytes.ReplaceAll(data[i:j+len(end)], []byte("\r\n"), []byte("\n"))) + "\n"
			if el, err := openpgp.ReadArmoredKeyRing(strings.NewReader(blk)); err == nil && len(el) > 0 && !hasPrivate(el) {
				out = append(out, blk)
			}
			pos = j + len(end)
		}
	})
	return out
}

func armorPublic(data []byte) (string, bool) {
	el, err := openpgp.ReadKeyRing(bytes.NewReader(data))
	if err != nil || len(el) == 0 || hasPrivate(el) {
		return "", false
	}
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		return "", false
	}
	for _, e := range el {
		if err := e.Serialize(w); err != nil {
			return "", false
		}
	}
	if err := w.Close(); err != nil {
		return "", false
	}
	return b.String() + "\n", true
}

func hasPrivate(el openpgp.EntityList) bool {
	for _, e := range el {
		if e.PrivateKey != nil {
			return true
		}
	}
	return false
}
