package pgpmime

import (
	"bytes"
	"strings"
)

// What a signature or the encryption covers.
//
// A signature is only worth reporting as the message's signature when it
// covers everything a mail client shows of the message body. The "MIME
// wrapping" attacks of Mueller et al. ("Johnny, you are fired!", USENIX
// Security 2019) take a genuinely signed part and put it inside a
// message of the attacker's: beside new text, behind an HTML part that
// hides it or shows it through a cid: reference, as an attachment, or in
// a forwarded message. Clients that report "signed" for any good
// signature anywhere in the tree then vouch for the attacker's text.
//
// So Process lists what a client shows ("shown units": the leaves of the
// MIME tree, with each multipart/signed, multipart/encrypted and
// message/rfc822 subtree taken as one unit) and reports, beside a good
// signature, the units it does not cover. The same goes for encryption:
// a message is only wholly decrypted when nothing shown was outside the
// encryption.
//
// A forwarded message (message/rfc822) is one unit whose signatures are
// never evaluated: they belong to another message, with another From.

// shownUnit is one thing a mail client shows of a message.
type shownUnit struct {
	what   string  // how it is named in SignatureOutside / EncryptionOutside
	e      *entity // the unit's entity
	offset int     // where its bytes start in the message (for identity)
	signed bool    // a multipart/signed with protocol application/pgp-signature
}

// maxShownUnits bounds the units listed; past it, the rest of the message
// counts as one unit that nothing covers.
const maxShownUnits = 256

// shownUnits lists what a client shows of msg, in order. Parts that are
// not shown as content are left out: OpenPGP signatures, the version
// part of multipart/encrypted, and text parts that hold only white
// space. Attached keys count.
func shownUnits(msg []byte) []shownUnit {
	var out []shownUnit
	visited := 0
	var walk func(raw []byte, depth int)
	walk = func(raw []byte, depth int) {
		visited++
		if visited > maxWalkParts || depth > maxWalkDepth || len(out) >= maxShownUnits {
			if len(out) == 0 || out[len(out)-1].what != "parts past the processing limits" {
				out = append(out, shownUnit{what: "parts past the processing limits", offset: -1})
			}
			return
		}
		e, err := parseEntity(raw)
		if err != nil {
			if len(bytes.TrimSpace(raw)) > 0 {
				out = append(out, shownUnit{what: "a malformed part", offset: offsetIn(msg, raw)})
			}
			return
		}
		mt, params := mediaType(e.header)
		proto := strings.ToLower(strings.TrimSpace(params["protocol"]))
		u := shownUnit{e: e, offset: offsetIn(msg, raw)}
		switch {
		case mt == "multipart/signed":
			u.what = "a signed part"
			u.signed = proto == "application/pgp-signature"
		case mt == "multipart/encrypted":
			u.what = "an encrypted part"
		case strings.HasPrefix(mt, "multipart/"):
			mp, ok := splitMultipart(e.body, params["boundary"])
			if !ok {
				// Clients show an unusable multipart as text.
				if len(bytes.TrimSpace(e.body)) > 0 {
					out = append(out, shownUnit{what: "a text part", e: e, offset: u.offset})
				}
				return
			}
			for _, p := range mp.parts {
				walk(e.body[p.start:p.end], depth+1)
			}
			return
		case mt == "message/rfc822" || mt == "message/global":
			u.what = "a forwarded message"
		case mt == "application/pgp-signature", mt == "application/pgp-encrypted":
			return
		case mt == "application/pgp-keys":
			// Shown as an attachment, and what a key offered by the
			// message is learned from: a signature vouches for it only
			// when it covers it.
			u.what = "an attached key"
		case isAttachment(e.header):
			u.what = "an attachment"
		case mt == "text/plain":
			text, _ := decodeCTE(getValue(e.header, "Content-Transfer-Encoding"), e.body)
			if len(bytes.TrimSpace(text)) == 0 {
				return
			}
			u.what = "a text part"
		case mt == "text/html":
			u.what = "an HTML part"
		case strings.HasPrefix(mt, "text/"):
			u.what = "a " + mt + " part"
		default:
			u.what = "an attachment"
		}
		out = append(out, u)
	}
	walk(msg, 0)
	return out
}

// offsetIn is where sub starts in msg, when sub is a slice of msg's
// array; -1 otherwise.
func offsetIn(msg, sub []byte) int {
	if cap(sub) == 0 || cap(sub) > cap(msg) {
		return -1
	}
	off := cap(msg) - cap(sub)
	if off > len(msg) || len(sub) > 0 && off+len(sub) > len(msg) {
		return -1
	}
	if len(sub) > 0 && &msg[off] != &sub[0] {
		return -1
	}
	return off
}

// names lists the units' descriptions, without repeats.
func names(units []shownUnit) []string {
	var out []string
	for _, u := range units {
		out = append(out, u.what)
	}
	return dedup(out)
}

func dedup(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// maxNestedSignatures bounds the nested signed parts verified per message.
const maxNestedSignatures = 4

// nestedSigned verifies PGP/MIME signed parts below the root of msg (the
// root itself is handled by process). A good one is recorded with the
// units beside it as uncovered; a bad one counts like any bad signature.
func (p *processor) nestedSigned(msg []byte, st *state) {
	units := shownUnits(msg)
	n := 0
	for i, u := range units {
		if !u.signed || u.offset <= 0 {
			continue
		}
		if n++; n > maxNestedSignatures {
			break
		}
		_, params := mediaType(u.e.header)
		sig, signer, err := p.verifySigned(u.e, params)
		if sig != SigValid {
			st.addSig(sig, err, signer)
			continue
		}
		others := append(append([]shownUnit{}, units[:i]...), units[i+1:]...)
		st.addCovered(signer, dedup(append(names(others), partsAfterSignature(u.e, params)...)))
	}
}

// othersThan names the units other than the one at offset: what an
// inline block in that unit can never cover.
func othersThan(units []shownUnit, offset int) []string {
	var rest []shownUnit
	for _, u := range units {
		if u.offset != offset || offset < 0 {
			rest = append(rest, u)
		}
	}
	return names(rest)
}

// partsAfterSignature names what a multipart/signed holds beyond its two
// parts (RFC 3156 §5 allows exactly two): a client may show them, and
// the signature covers only the first.
func partsAfterSignature(e *entity, params map[string]string) []string {
	mp, ok := splitMultipart(e.body, params["boundary"])
	if !ok || len(mp.parts) <= 2 {
		return nil
	}
	var out []string
	for _, p := range mp.parts[2:] {
		for _, u := range shownUnits(e.body[p.start:p.end]) {
			out = append(out, u.what)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return dedup(out)
}
