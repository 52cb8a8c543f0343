package pgpmime

// Byte-preserving MIME handling.
//
// OpenPGP signatures in mail are computed over bytes as transmitted
// (RFC 3156 §5), so this package cannot use a parse-and-reserialize MIME
// library for the parts it verifies or leaves alone: it splits messages
// into raw header fields and raw body parts (with pkg/rawmime), remembers
// their offsets, and only ever rewrites the pieces it changes.
//
// Its reading is the strict one: a header line that is neither a field
// with a well-formed name nor a continuation makes the entity malformed
// (parseEntity), and a delimiter line allows only spaces and tabs after
// the boundary (rawmime.StrictPadding). The walks over a whole message
// (rewrite, visit, canonicalize) follow the tree rawmime.Parse builds
// with that reading (walkTree, canonicalContent).

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"math"
	"mime"
	"mime/quotedprintable"
	"strings"

	"github.com/bitmask-go/bitmask/pkg/rawmime"
)

// field is one header field as it appears on the wire: the name and the
// complete raw bytes, including folded continuation lines and the final
// line break (RFC 5322 §2.2, §2.2.3).
type field struct {
	name string
	raw  []byte
}

func (f field) key() string { return strings.ToLower(f.name) }

// value is the unfolded field body with surrounding whitespace removed
// (RFC 5322 §2.2.3: unfolding removes every CRLF that is followed by WSP).
func (f field) value() string { return rawmime.Value(f.raw) }

// entity is a parsed MIME entity: header fields plus the raw body.
type entity struct {
	header []field
	body   []byte
	eol    string // line break used by the header: "\r\n" or "\n"
	sep    bool   // whether the blank line ending the header was present
}

var errBadHeader = errors.New("pgpmime: malformed header")

// parseEntity splits b into header fields and body. The header ends at the
// first empty line (CRLF CRLF or LF LF, RFC 5322 §2.1); a header without
// any line break after it is accepted as a header-only entity. A line that
// is neither a field ("name:" with printable ASCII name, RFC 5322 §2.2)
// nor a continuation line makes the header malformed.
func parseEntity(b []byte) (*entity, error) {
	fields, blank, body := rawmime.SplitHeader(b)
	e := &entity{eol: rawmime.EOL(b), sep: blank != nil, body: body}
	for f := range rawmime.Fields(fields) {
		name := f.Name()
		if name == "" {
			return nil, errBadHeader
		}
		e.header = append(e.header, field{name: name, raw: f.Raw})
	}
	return e, nil
}

// rawFieldSpans splits a header block into field spans: each span starts
// at a line that does not begin with whitespace and includes its
// continuation lines. Lines that are not well-formed fields are kept as
// spans of their own (with an empty name, or whatever stands before a
// colon) so nothing is lost.
func rawFieldSpans(hdr []byte) []field {
	var out []field
	for f := range rawmime.Fields(hdr) {
		out = append(out, field{name: string(f.LooseName()), raw: f.Raw})
	}
	return out
}

// getField returns the value of the first field named name.
func getField(fs []field, name string) (string, bool) {
	for _, f := range fs {
		if strings.EqualFold(f.name, name) {
			return f.value(), true
		}
	}
	return "", false
}

func getValue(fs []field, name string) string {
	v, _ := getField(fs, name)
	return v
}

// newField formats a field. Line breaks in value are replaced by spaces so
// a value can never start a new header field.
func newField(name, value, eol string) field {
	value = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(value)
	return field{name: name, raw: []byte(name + ": " + value + eol)}
}

// setFieldValue replaces the first field named name (removing any others)
// or adds it: a new Content-Transfer-Encoding goes right after
// Content-Type, anything else at the end.
func setFieldValue(fs []field, name, value, eol string) []field {
	out := make([]field, 0, len(fs)+1)
	done := false
	for _, f := range fs {
		if strings.EqualFold(f.name, name) {
			if !done {
				out = append(out, newField(f.name, value, eol))
				done = true
			}
			continue
		}
		out = append(out, f)
	}
	if done {
		return out
	}
	if strings.EqualFold(name, "Content-Transfer-Encoding") {
		for i, f := range out {
			if f.key() == "content-type" {
				out = append(out[:i+1], append([]field{newField(name, value, eol)}, out[i+1:]...)...)
				return out
			}
		}
	}
	return append(out, newField(name, value, eol))
}

// withEOL converts the line breaks of a raw field to eol.
func (f field) withEOL(eol string) field {
	return field{name: f.name, raw: convertEOL(f.raw, eol)}
}

func convertEOL(b []byte, eol string) []byte {
	if eol == "\r\n" {
		return toCRLF(b)
	}
	return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
}

// writeHeader writes the fields followed by the empty line ending the header.
func writeHeader(w *bytes.Buffer, fs []field, eol string) {
	for _, f := range fs {
		w.Write(f.raw)
		if !bytes.HasSuffix(f.raw, []byte("\n")) {
			w.WriteString(eol)
		}
	}
	w.WriteString(eol)
}

// isStructural reports whether a field describes the MIME structure of the
// entity rather than the message (RFC 2045 §9 "Content-" fields, and
// MIME-Version). RFC 9788 calls the others "Non-Structural".
func isStructural(name string) bool {
	n := strings.ToLower(name)
	return strings.HasPrefix(n, "content-") || n == "mime-version"
}

// mediaType parses the Content-Type of fs. A missing or unparsable
// Content-Type means text/plain (RFC 2045 §5.2). Parameters that the strict
// parser rejects (duplicates, stray characters) are recovered leniently,
// as mail in the wild has them.
func mediaType(fs []field) (string, map[string]string) {
	v, ok := getField(fs, "Content-Type")
	if !ok {
		return "text/plain", map[string]string{}
	}
	return parseMediaType(v)
}

func parseMediaType(v string) (string, map[string]string) {
	mt, params, err := mime.ParseMediaType(v)
	if err == nil && strings.Contains(mt, "/") {
		return mt, params
	}
	head, rest, _ := strings.Cut(v, ";")
	mt = strings.ToLower(strings.TrimSpace(head))
	if !strings.Contains(mt, "/") || strings.ContainsAny(mt, " \t\"") {
		return "text/plain", map[string]string{}
	}
	params = map[string]string{}
	for _, p := range strings.Split(rest, ";") {
		k, val, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		val = strings.Trim(strings.TrimSpace(val), `"`)
		if k != "" {
			if _, dup := params[k]; !dup {
				params[k] = val
			}
		}
	}
	return mt, params
}

// formatMediaType is mime.FormatMediaType with a fallback for parameters
// it refuses to format.
func formatMediaType(mt string, params map[string]string) string {
	if s := mime.FormatMediaType(mt, params); s != "" {
		return s
	}
	clean := map[string]string{}
	for k, v := range params {
		if mime.FormatMediaType(mt, map[string]string{k: v}) != "" {
			clean[k] = v
		}
	}
	if s := mime.FormatMediaType(mt, clean); s != "" {
		return s
	}
	return mt
}

// isAttachment reports whether the entity is marked as an attachment
// (RFC 2183).
func isAttachment(fs []field) bool {
	v, ok := getField(fs, "Content-Disposition")
	if !ok {
		return false
	}
	d, _, _ := strings.Cut(v, ";")
	return strings.EqualFold(strings.TrimSpace(d), "attachment")
}

// part is one body part of a multipart entity, as offsets into the body.
type part struct {
	delim      int // start of the delimiter line introducing the part
	start, end int // the part's content: between the delimiter line and the line break before the next delimiter
}

// multipartBody is a multipart body split into parts (RFC 2046 §5.1.1).
type multipartBody struct {
	parts      []part
	closeDelim int  // start of the close-delimiter line (len(body) if missing)
	closed     bool // whether the close delimiter was found
}

// splitMultipart finds the body parts of a multipart body. A delimiter is
// a line consisting of "--" boundary, optionally followed by transport
// padding (spaces and tabs, rawmime.StrictPadding); the close delimiter
// has "--" after the boundary. The line break before a delimiter belongs
// to the delimiter, not to the preceding part (RFC 2046 §5.1.1). It is
// lenient with a missing close delimiter (the last part then runs to the
// end of the body). A body without parts (no delimiter, or "--b--" with
// no part before it: RFC 2046 §5.1.1 requires at least one) is not a
// multipart body anyone can use, nor is one with an empty boundary or a
// boundary over 200 bytes.
func splitMultipart(body []byte, boundary string) (*multipartBody, bool) {
	if !usableBoundary(boundary) {
		return nil, false
	}
	s := rawmime.SplitMultipart(body, boundary, rawmime.StrictPadding)
	if len(s.Parts) == 0 {
		return nil, false
	}
	return multipartOf(&s), true
}

// usableBoundary says whether splitMultipart splits with a boundary: not
// an empty one, nor one over 200 bytes.
func usableBoundary(boundary string) bool {
	return boundary != "" && len(boundary) <= 200
}

// multipartOf is a split multipart body as this package keeps it.
func multipartOf(s *rawmime.Multipart) *multipartBody {
	m := &multipartBody{parts: make([]part, len(s.Parts)), closeDelim: s.Close, closed: s.Closed}
	for i, p := range s.Parts {
		m.parts[i] = part{delim: p.Delim, start: p.Start, end: p.End}
	}
	return m
}

// rebuild returns body with the contents of some parts replaced and some
// parts dropped; everything else is kept byte for byte.
func (m *multipartBody) rebuild(body []byte, repl map[int][]byte, drop map[int]bool) []byte {
	var out bytes.Buffer
	out.Grow(len(body))
	pos := 0
	for i, p := range m.parts {
		if drop[i] {
			out.Write(body[pos:p.delim])
			next := m.closeDelim
			if i+1 < len(m.parts) {
				next = m.parts[i+1].delim
			}
			pos = next
			continue
		}
		if r, ok := repl[i]; ok {
			out.Write(body[pos:p.start])
			out.Write(r)
			pos = p.end
		}
	}
	out.Write(body[pos:])
	return out.Bytes()
}

// decodeCTE undoes a Content-Transfer-Encoding (RFC 2045 §6). Unknown
// encodings and identity encodings return the data unchanged.
func decodeCTE(cte string, data []byte) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		return rawmime.DecodeBase64(data)
	case "quoted-printable":
		out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(data)))
		if err != nil {
			// Mail clients decode what they can and show the rest:
			// so must we, or text they show would count as nothing.
			return decodeQPLenient(data), nil
		}
		return out, nil
	}
	return data, nil
}

// decodeQPLenient decodes quoted-printable (RFC 2045 §6.7) as mail
// clients do with broken input: "=XX" with two hex digits is the byte,
// "=" at the end of a line a soft line break, white space at the end of
// a line is dropped, and anything else (a lone "=", control bytes,
// 8-bit bytes) is kept as it is.
func decodeQPLenient(data []byte) []byte {
	out := make([]byte, 0, len(data))
	for pos := 0; pos < len(data); {
		line := rawmime.NextLine(data, pos)
		pos += len(line)
		body := bytes.TrimRight(line, "\r\n")
		eol := line[len(body):]
		body = bytes.TrimRight(body, " \t")
		soft := false
		for i := 0; i < len(body); i++ {
			c := body[i]
			if c != '=' {
				out = append(out, c)
				continue
			}
			if i == len(body)-1 {
				soft = true
				break
			}
			if i+2 < len(body) && isHex(body[i+1]) && isHex(body[i+2]) {
				out = append(out, unhex(body[i+1])<<4|unhex(body[i+2]))
				i += 2
				continue
			}
			out = append(out, c)
		}
		if !soft {
			out = append(out, eol...)
		}
	}
	return out
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// encodeBase64 encodes with 76-character lines (RFC 2045 §6.8).
func encodeBase64(data []byte, eol string) []byte {
	enc := base64.StdEncoding.EncodeToString(data)
	var out bytes.Buffer
	for len(enc) > 76 {
		out.WriteString(enc[:76])
		out.WriteString(eol)
		enc = enc[76:]
	}
	if enc != "" {
		out.WriteString(enc)
		out.WriteString(eol)
	}
	return out.Bytes()
}

// toCRLF converts bare LF line breaks to CRLF (the canonical form of
// RFC 2049 §4 and RFC 3156 §5 step 1), leaving existing CRLFs alone.
func toCRLF(b []byte) []byte {
	n := bytes.Count(b, []byte("\n")) - bytes.Count(b, []byte("\r\n"))
	if n == 0 {
		return b
	}
	out := make([]byte, 0, len(b)+n)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// lines calls fn for every line of b without its line break.
func lines(b []byte, fn func(line []byte) bool) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		var l []byte
		if i < 0 {
			l, b = b, nil
		} else {
			l, b = b[:i], b[i+1:]
		}
		l = bytes.TrimSuffix(l, []byte("\r"))
		if !fn(l) {
			return
		}
	}
}

// textNeedsEncoding reports whether text cannot be sent as 7bit data that
// survives transport unchanged: 8-bit or control bytes, lines over 998
// octets (RFC 5322 §2.1.1), trailing whitespace (RFC 3156 §3) or lines
// starting with "From " that mbox-style agents rewrite to ">From ".
func textNeedsEncoding(b []byte) bool {
	bad := false
	lines(b, func(l []byte) bool {
		if len(l) > 998 || bytes.HasPrefix(l, []byte("From ")) {
			bad = true
			return false
		}
		if n := len(l); n > 0 && (l[n-1] == ' ' || l[n-1] == '\t') {
			bad = true
			return false
		}
		for _, c := range l {
			if c >= 0x80 || c == 0 || c == '\r' {
				bad = true
				return false
			}
		}
		return true
	})
	return bad
}

// encodeQP encodes text as quoted-printable (RFC 2045 §6.7) with eol line
// breaks. Line breaks of the input are kept as hard line breaks. Besides
// the mandatory rules it encodes trailing whitespace, an "F" starting a
// "From " line and a "." starting a line, so the result passes unchanged
// through agents that mangle those (RFC 3156 §3).
func encodeQP(b []byte, eol string) []byte {
	var out bytes.Buffer
	out.Grow(len(b) + len(b)/8)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		var l []byte
		nl := false
		if i < 0 {
			l, b = b, nil
		} else {
			l, b, nl = b[:i], b[i+1:], true
		}
		if nl {
			l = bytes.TrimSuffix(l, []byte("\r"))
		}
		encodeQPLine(&out, l, eol)
		if nl {
			out.WriteString(eol)
		}
	}
	return out.Bytes()
}

const hexUpper = "0123456789ABCDEF"

func encodeQPLine(out *bytes.Buffer, l []byte, eol string) {
	n := 0 // characters on the current output line
	for i := 0; i < len(l); i++ {
		c := l[i]
		var tok []byte
		switch {
		case n == 0 && (c == 'F' && bytes.HasPrefix(l[i:], []byte("From ")) || c == '.'):
			tok = []byte{'=', hexUpper[c>>4], hexUpper[c&15]}
		case (c == ' ' || c == '\t') && i == len(l)-1:
			tok = []byte{'=', hexUpper[c>>4], hexUpper[c&15]}
		case c == ' ' || c == '\t' || c >= 33 && c <= 126 && c != '=':
			tok = []byte{c}
		default:
			tok = []byte{'=', hexUpper[c>>4], hexUpper[c&15]}
		}
		if n+len(tok) > 75 {
			out.WriteString("=" + eol)
			n = 0
			i-- // re-examine c at the start of the new line
			continue
		}
		out.Write(tok)
		n += len(tok)
	}
}

// encodeText picks a transfer encoding for text: 7bit when the text can
// travel unchanged, quoted-printable otherwise. Line breaks become eol.
func encodeText(text []byte, eol string) (cte string, body []byte) {
	if !textNeedsEncoding(text) {
		return "7bit", convertEOL(toCRLF(text), eol)
	}
	return "quoted-printable", encodeQP(text, eol)
}

// maxWalkParts bounds how many MIME parts a walk over a message visits and
// maxWalkDepth how deeply multiparts may nest, so hostile messages cannot
// make the work unbounded.
const (
	maxWalkParts = 1000
	maxWalkDepth = 32
)

// walker rewrites leaf entities of a MIME tree, keeping all other bytes.
type walker struct {
	// leaf is called for every non-multipart entity; it returns the
	// replacement entity bytes, or nil to keep the entity.
	leaf func(e *entity, raw []byte) []byte
}

// walkTree parses raw into the tree the walks follow, with this
// package's strict reading: a multipart whose header is malformed
// (parseEntity), or that splitMultipart cannot use, is not split, nor is
// a multipart/encrypted or multipart/signed unless protected says so.
// An attached message is a leaf. Entities one level deeper than
// maxWalkDepth are made, as leaves, for the walks to skip.
func walkTree(raw []byte, protected bool) *rawmime.Entity {
	return rawmime.Parse(raw, &rawmime.Options{
		Content:  func(h []byte, _ bool) rawmime.Content { return walkContent(h, protected) },
		Padding:  rawmime.StrictPadding,
		MaxDepth: maxWalkDepth + 1,
		MaxParts: maxWalkParts,
	})
}

func walkContent(h []byte, protected bool) rawmime.Content {
	e, err := parseEntity(h)
	if err != nil {
		return rawmime.Content{}
	}
	mt, params := mediaType(e.header)
	if !strings.HasPrefix(mt, "multipart/") {
		return rawmime.Content{}
	}
	if !protected && (mt == "multipart/encrypted" || mt == "multipart/signed") {
		return rawmime.Content{}
	}
	if !usableBoundary(params["boundary"]) {
		return rawmime.Content{}
	}
	return rawmime.Content{Boundary: params["boundary"]}
}

// rewrite walks raw (a complete entity) and returns the rewritten entity
// and whether anything changed. It never enters multipart/encrypted or
// multipart/signed: protected structures are never touched.
func (w *walker) rewrite(raw []byte) ([]byte, bool) {
	return w.rewriteEntity(raw, walkTree(raw, false), 0)
}

func (w *walker) rewriteEntity(msg []byte, t *rawmime.Entity, depth int) ([]byte, bool) {
	raw := msg[t.Start:t.End]
	if depth > maxWalkDepth {
		return raw, false
	}
	e, err := parseEntity(raw)
	if err != nil {
		return raw, false
	}
	if mt, _ := mediaType(e.header); strings.HasPrefix(mt, "multipart/") {
		if t.Multipart == nil {
			return raw, false
		}
		repl := map[int][]byte{}
		for i, p := range t.Parts {
			if nb, changed := w.rewriteEntity(msg, p, depth+1); changed {
				repl[i] = nb
			}
		}
		if len(repl) == 0 {
			return raw, false
		}
		out := append([]byte{}, msg[t.Start:t.BodyStart]...)
		return append(out, multipartOf(t.Multipart).rebuild(e.body, repl, nil)...), true
	}
	if nb := w.leaf(e, raw); nb != nil {
		return nb, true
	}
	return raw, false
}

// visit calls fn for every leaf entity (read-only walk), multipart/signed
// and multipart/encrypted entered.
func visit(raw []byte, fn func(e *entity)) {
	visitEntity(raw, walkTree(raw, true), 0, fn)
}

func visitEntity(msg []byte, t *rawmime.Entity, depth int, fn func(e *entity)) {
	if depth > maxWalkDepth {
		return
	}
	e, err := parseEntity(msg[t.Start:t.End])
	if err != nil {
		return
	}
	if mt, _ := mediaType(e.header); strings.HasPrefix(mt, "multipart/") {
		for _, p := range t.Parts {
			visitEntity(msg, p, depth+1, fn)
		}
		return
	}
	fn(e)
}

// canonicalize turns an entity into the form RFC 3156 requires for signed
// data (§3, §5 steps 1-4, and §6.2 for combined sign+encrypt): CRLF line
// breaks, 7bit-clean content (8-bit text re-encoded as quoted-printable,
// 8-bit non-text as base64), no trailing whitespace, no whitespace-only
// header lines. Parts that already comply keep their bytes (with CRLF).
// A malformed header anywhere, or nesting deeper than maxWalkDepth, fails
// it, but in an attached message, which is then only given CRLF line
// breaks.
func canonicalize(raw []byte) ([]byte, error) {
	t := rawmime.Parse(raw, &rawmime.Options{
		Content:  canonicalContent,
		Padding:  rawmime.StrictPadding,
		MaxDepth: maxWalkDepth + 1,
		MaxParts: math.MaxInt, // every part is signed
	})
	return canonicalEntity(raw, t, 0)
}

// canonicalContent is walkContent's reading with protected multiparts
// split, and message/rfc822 and message/global bodies read as messages.
func canonicalContent(h []byte, _ bool) rawmime.Content {
	if c := walkContent(h, true); c.Boundary != "" {
		return c
	}
	e, err := parseEntity(h)
	if err != nil {
		return rawmime.Content{}
	}
	mt, _ := mediaType(e.header)
	return rawmime.Content{Message: mt == "message/rfc822" || mt == "message/global"}
}

func canonicalEntity(msg []byte, t *rawmime.Entity, depth int) ([]byte, error) {
	if depth > maxWalkDepth {
		return nil, errors.New("pgpmime: MIME structure nested too deeply")
	}
	raw := msg[t.Start:t.End]
	e, err := parseEntity(raw)
	if err != nil {
		return nil, err
	}
	hdr := make([]field, 0, len(e.header))
	for _, f := range e.header {
		hdr = append(hdr, field{name: f.name, raw: cleanHeaderField(f.raw)})
	}
	mt, params := mediaType(e.header)
	cte := strings.ToLower(getValue(e.header, "Content-Transfer-Encoding"))
	var body []byte
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		if t.Multipart == nil {
			// Not a usable multipart (no delimiter, or a close
			// delimiter with no part before it): signed as the text it
			// is, so what the recipient sees is what was signed.
			body, hdr = canonicalLeaf(hdr, "text/plain", cte, e.body)
			break
		}
		mp := multipartOf(t.Multipart)
		b := params["boundary"]
		var out bytes.Buffer
		if pre := canonicalText(e.body[:mp.parts[0].delim]); len(bytes.TrimSpace(pre)) > 0 && !textNeedsEncoding(bytes.TrimSpace(pre)) {
			out.Write(pre)
			if !bytes.HasSuffix(pre, []byte("\r\n")) {
				out.WriteString("\r\n")
			}
		}
		for _, p := range t.Parts {
			c, err := canonicalEntity(msg, p, depth+1)
			if err != nil {
				return nil, err
			}
			out.WriteString("--" + b + "\r\n")
			out.Write(c)
			out.WriteString("\r\n")
		}
		out.WriteString("--" + b + "--\r\n")
		if mp.closed {
			epi := e.body[mp.closeDelim:]
			epi = epi[len(rawmime.NextLine(epi, 0)):]
			if epi = canonicalText(epi); len(bytes.TrimSpace(epi)) > 0 && !textNeedsEncoding(epi) {
				out.Write(epi)
			}
		}
		body = out.Bytes()
		if cte != "" && cte != "7bit" {
			hdr = setFieldValue(hdr, "Content-Transfer-Encoding", "7bit", "\r\n")
		}
	case mt == "message/rfc822" || mt == "message/global":
		c, err := canonicalEntity(msg, t.Message, depth+1)
		if err != nil {
			// RFC 2046 §5.2.1 forbids encoding message/rfc822, so an
			// unparsable embedded message is only given CRLF line breaks.
			body = toCRLF(e.body)
			break
		}
		body = c
	default:
		body, hdr = canonicalLeaf(hdr, mt, cte, e.body)
	}
	var out bytes.Buffer
	writeHeader(&out, hdr, "\r\n")
	out.Write(body)
	return out.Bytes(), nil
}

// cleanHeaderField converts a raw field to CRLF, strips trailing
// whitespace and drops whitespace-only continuation lines (RFC 3156 §3 note).
func cleanHeaderField(raw []byte) []byte {
	var out bytes.Buffer
	first := true
	lines(raw, func(l []byte) bool {
		t := bytes.TrimRight(l, " \t")
		if !first && len(t) == 0 {
			return true
		}
		first = false
		out.Write(t)
		out.WriteString("\r\n")
		return true
	})
	return out.Bytes()
}

// canonicalText converts to CRLF and strips trailing whitespace per line.
func canonicalText(b []byte) []byte {
	var out bytes.Buffer
	lines(b, func(l []byte) bool {
		out.Write(bytes.TrimRight(l, " \t"))
		out.WriteString("\r\n")
		return true
	})
	if len(b) > 0 && b[len(b)-1] != '\n' {
		out.Truncate(out.Len() - 2)
	}
	return out.Bytes()
}

func is7bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 || c == 0 {
			return false
		}
	}
	return true
}

func canonicalLeaf(hdr []field, mt, cte string, body []byte) ([]byte, []field) {
	switch cte {
	case "base64", "quoted-printable":
		// Trailing whitespace is not data in either encoding (RFC 2045
		// §6.7 rule 3, §6.8), so removing it changes nothing.
		c := canonicalText(body)
		if is7bit(c) {
			return c, hdr
		}
		decoded, _ := decodeCTE(cte, body)
		return encodeBase64(decoded, "\r\n"), setFieldValue(hdr, "Content-Transfer-Encoding", "base64", "\r\n")
	}
	if strings.HasPrefix(mt, "text/") {
		if !textNeedsEncoding(body) {
			return toCRLF(body), hdr
		}
		if _, params := mediaType(hdr); params["charset"] == "" && !is7bit(body) && isUTF8(body) {
			// 8-bit text without a charset would be read as US-ASCII
			// once encoded; say what it is.
			params["charset"] = "utf-8"
			hdr = setFieldValue(hdr, "Content-Type", formatMediaType(mt, params), "\r\n")
		}
		return encodeQP(body, "\r\n"), setFieldValue(hdr, "Content-Transfer-Encoding", "quoted-printable", "\r\n")
	}
	if !textNeedsEncoding(body) {
		return toCRLF(body), hdr
	}
	return encodeBase64(body, "\r\n"), setFieldValue(hdr, "Content-Transfer-Encoding", "base64", "\r\n")
}
