package imapd

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"

	"github.com/bitmask-go/bitmask/pkg/rawmime"
)

// This file reads MIME (RFC 2045, 2046) directly from the message bytes,
// with pkg/rawmime. Every part is a pair of slices of the original
// message (its header block and its body), so BODY[...] sections are the
// exact bytes the message holds and the sizes in BODYSTRUCTURE agree with
// them. Parsing is forgiving: a malformed header line, a missing boundary
// or a truncated multipart still give an answer.

// Limits against hostile nesting: deeper parts are leaves.
const (
	maxMIMEDepth = 32
	maxMIMEParts = 1000
)

// entity is one MIME entity: a header block (the field lines and the empty
// line that ends them) and a body, both slices of the message.
type entity struct {
	header []byte
	body   []byte
}

// splitEntity splits b after its first empty line. Without one, all of
// b is header.
func splitEntity(b []byte) entity {
	fields, blank, body := rawmime.SplitHeader(b)
	if blank == nil {
		return entity{header: b, body: body}
	}
	end := len(fields) + len(blank)
	return entity{header: b[:end:end], body: body}
}

// headerFields calls fn for each field of a header block with its name
// and its raw lines (continuation lines included, line breaks kept). The
// name is what stands before the colon of the first line (mail clients
// read names that loosely); a line without a colon, or whose name would
// hold a CR, has an empty name. fn returns false to stop.
func headerFields(h []byte, fn func(name, raw []byte) bool) {
	for f := range rawmime.Fields(h) {
		name := f.LooseName()
		if bytes.IndexByte(name, '\r') >= 0 {
			name = nil
		}
		if !fn(name, f.Raw) {
			return
		}
	}
}

// headerGet returns the unfolded value of the first field called name.
func headerGet(h []byte, name string) string {
	var v string
	headerFields(h, func(n, raw []byte) bool {
		if len(n) == len(name) && strings.EqualFold(string(n), name) {
			v = rawmime.Value(raw)
			return false
		}
		return true
	})
	return v
}

// filterHeader keeps the fields named in names (or, with not, the others)
// and ends the result with an empty line, as HEADER.FIELDS and
// HEADER.FIELDS.NOT return it (RFC 9051 §6.4.5).
func filterHeader(h []byte, names []string, not bool) []byte {
	var out []byte
	headerFields(h, func(n, raw []byte) bool {
		match := false
		for _, want := range names {
			if len(n) == len(want) && strings.EqualFold(string(n), want) {
				match = true
				break
			}
		}
		if match != not && len(n) > 0 {
			out = append(out, raw...)
			if !bytes.HasSuffix(raw, []byte("\n")) {
				out = append(out, '\r', '\n')
			}
		}
		return true
	})
	return append(out, '\r', '\n')
}

// contentType returns an entity's lower-case media type and parameters,
// or dflt (RFC 2045 §5.2: text/plain; charset=us-ascii) when the field is
// missing or unusable.
func contentType(h []byte, dflt string) (typ, sub string, params map[string]string) {
	if v := headerGet(h, "Content-Type"); v != "" {
		mt, ps, err := mime.ParseMediaType(v)
		if err == nil || errors.Is(err, mime.ErrInvalidMediaParameter) {
			if t, s, ok := strings.Cut(mt, "/"); ok && t != "" && s != "" {
				if len(ps) == 0 {
					ps = nil
				}
				return t, s, ps
			}
		}
	}
	typ, sub, _ = strings.Cut(dflt, "/")
	if dflt == "text/plain" {
		params = map[string]string{"charset": "us-ascii"}
	}
	return typ, sub, params
}

func transferEncoding(h []byte) string {
	return strings.ToLower(headerGet(h, "Content-Transfer-Encoding"))
}

// encapsulates says whether a part of type typ/sub holds a message that
// IMAP describes and addresses as one (RFC 9051 §6.4.5, §7.5.2).
func encapsulates(h []byte, typ, sub string) bool {
	if typ != "message" || (sub != "rfc822" && sub != "global") {
		return false
	}
	switch transferEncoding(h) {
	case "base64", "quoted-printable":
		return false // not allowed by RFC 2046 §5.2.1; treat as opaque
	}
	return true
}

// structure builds BODYSTRUCTURE (RFC 9051 §7.5.2) for messages.
type structure struct{ parts int }

func (st *structure) build(e entity, dflt string, depth int) imap.BodyStructure {
	st.parts++
	typ, sub, params := contentType(e.header, dflt)
	if typ == "multipart" {
		if boundary := params["boundary"]; boundary != "" && depth < maxMIMEDepth {
			mp := &imap.BodyStructureMultiPart{
				Subtype: sub,
				Extended: &imap.BodyStructureMultiPartExt{
					Params:      params,
					Disposition: disposition(e.header),
					Language:    language(e.header),
					Location:    headerGet(e.header, "Content-Location"),
				},
			}
			childDflt := "text/plain"
			if sub == "digest" {
				childDflt = "message/rfc822"
			}
			for _, p := range splitMultipart(e.body, boundary) {
				if st.parts >= maxMIMEParts {
					break
				}
				mp.Children = append(mp.Children, st.build(splitEntity(p), childDflt, depth+1))
			}
			if len(mp.Children) == 0 {
				// IMAP has no multipart without parts.
				mp.Children = []imap.BodyStructure{emptyTextPart()}
			}
			return mp
		}
		// A multipart we cannot split is shown as text.
		typ, sub, params = "text", "plain", map[string]string{"charset": "us-ascii"}
	}
	sp := &imap.BodyStructureSinglePart{
		Type:        typ,
		Subtype:     sub,
		Params:      params,
		ID:          headerGet(e.header, "Content-Id"),
		Description: headerGet(e.header, "Content-Description"),
		Encoding:    transferEncoding(e.header),
		Size:        uint32(len(e.body)),
		Extended: &imap.BodyStructureSinglePartExt{
			Disposition: disposition(e.header),
			Language:    language(e.header),
			Location:    headerGet(e.header, "Content-Location"),
		},
	}
	if sp.Encoding == "" {
		sp.Encoding = "7bit"
	}
	switch {
	case typ == "message" && (sub == "rfc822" || sub == "global"):
		if !encapsulates(e.header, typ, sub) || depth >= maxMIMEDepth {
			// IMAP requires envelope and structure for message/rfc822.
			sp.Type, sp.Subtype = "application", "octet-stream"
			break
		}
		inner := splitEntity(e.body)
		sp.MessageRFC822 = &imap.BodyStructureMessageRFC822{
			Envelope:      envelopeOf(inner.header),
			BodyStructure: st.build(inner, "text/plain", depth+1),
			NumLines:      int64(bytes.Count(e.body, []byte("\n"))),
		}
	case typ == "text":
		sp.Text = &imap.BodyStructureText{NumLines: int64(bytes.Count(e.body, []byte("\n")))}
	}
	return sp
}

func emptyTextPart() *imap.BodyStructureSinglePart {
	return &imap.BodyStructureSinglePart{
		Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"},
		Encoding: "7bit", Text: &imap.BodyStructureText{},
		Extended: &imap.BodyStructureSinglePartExt{},
	}
}

func disposition(h []byte) *imap.BodyStructureDisposition {
	v := headerGet(h, "Content-Disposition")
	if v == "" {
		return nil
	}
	d, params, err := mime.ParseMediaType(v)
	if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) || d == "" {
		d, _, _ = strings.Cut(v, ";")
		d = strings.ToLower(strings.TrimSpace(d))
		params = nil
		if d == "" {
			return nil
		}
	}
	if len(params) == 0 {
		params = nil
	}
	return &imap.BodyStructureDisposition{Value: d, Params: params}
}

func language(h []byte) []string {
	v := headerGet(h, "Content-Language")
	if v == "" {
		return nil
	}
	var out []string
	for _, l := range strings.Split(v, ",") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// splitMultipart returns the parts of a multipart body (RFC 2046 §5.1.1):
// the bytes between delimiter lines, without the line break that belongs
// to the next delimiter. Preamble and epilogue are dropped; a body whose
// close delimiter is missing ends its last part at the end of the body.
// A delimiter's padding may mix CRs with the blanks (LoosePadding), as
// this reader has always accepted.
func splitMultipart(body []byte, boundary string) [][]byte {
	m := rawmime.SplitMultipart(body, boundary, rawmime.LoosePadding)
	if len(m.Parts) == 0 {
		return nil
	}
	parts := make([][]byte, len(m.Parts))
	for i, p := range m.Parts {
		parts[i] = body[p.Start:p.End:p.End]
	}
	if !m.Closed {
		parts[len(parts)-1] = body[m.Parts[len(parts)-1].Start:]
	}
	return parts
}

// navigate finds the part a section's part numbers address (RFC 9051
// §6.4.5): the parts of a multipart are numbered from 1; a non-multipart
// message has a single part 1, its body; the parts of a message/rfc822
// part are those of the message it holds. It returns the part and its
// media type.
func navigate(raw []byte, path []int) (cur entity, typ, sub string, ok bool) {
	cur = splitEntity(raw)
	typ, sub, _ = contentType(cur.header, "text/plain")
	isMsg := true // cur is a whole message, not yet one of its parts
	for depth, n := range path {
		if depth >= maxMIMEDepth || n < 1 {
			return entity{}, "", "", false
		}
		if !isMsg && encapsulates(cur.header, typ, sub) {
			cur = splitEntity(cur.body)
			typ, sub, _ = contentType(cur.header, "text/plain")
		}
		var boundary string
		if typ == "multipart" {
			_, _, params := contentType(cur.header, "text/plain")
			boundary = params["boundary"]
		}
		if boundary == "" {
			if n != 1 {
				return entity{}, "", "", false
			}
			isMsg = false
			continue
		}
		parts := splitMultipart(cur.body, boundary)
		if n > len(parts) {
			return entity{}, "", "", false
		}
		dflt := "text/plain"
		if sub == "digest" {
			dflt = "message/rfc822"
		}
		cur = splitEntity(parts[n-1])
		typ, sub, _ = contentType(cur.header, dflt)
		isMsg = false
	}
	return cur, typ, sub, true
}

// bodySection returns a BODY[section] (without its partial range), or nil
// when the message has no such part.
func bodySection(raw []byte, sec *imap.FetchItemBodySection) []byte {
	var msg entity
	if len(sec.Part) == 0 {
		if sec.Specifier == imap.PartSpecifierNone {
			return raw
		}
		msg = splitEntity(raw)
	} else {
		cur, typ, sub, ok := navigate(raw, sec.Part)
		if !ok {
			return nil
		}
		switch sec.Specifier {
		case imap.PartSpecifierNone:
			return cur.body
		case imap.PartSpecifierMIME:
			return cur.header
		}
		msg = cur
		if encapsulates(cur.header, typ, sub) {
			msg = splitEntity(cur.body)
		}
	}
	switch sec.Specifier {
	case imap.PartSpecifierHeader:
		return headerSection(msg.header, sec)
	case imap.PartSpecifierText:
		return msg.body
	}
	return nil
}

// headerSection is HEADER, HEADER.FIELDS or HEADER.FIELDS.NOT of a header
// block.
func headerSection(h []byte, sec *imap.FetchItemBodySection) []byte {
	switch {
	case len(sec.HeaderFields) > 0:
		return filterHeader(h, sec.HeaderFields, false)
	case len(sec.HeaderFieldsNot) > 0:
		return filterHeader(h, sec.HeaderFieldsNot, true)
	}
	return h
}

// partial applies a <offset.size> range.
func partial(b []byte, p *imap.SectionPartial) []byte {
	if p == nil {
		return b
	}
	if p.Offset < 0 || p.Offset >= int64(len(b)) || p.Size <= 0 {
		return nil
	}
	end := p.Offset + p.Size
	if end > int64(len(b)) || end < p.Offset {
		end = int64(len(b))
	}
	return b[p.Offset:end]
}

var errUnknownCTE = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeUnknownCTE,
	Text: "Unknown Content-Transfer-Encoding",
}

// binarySection returns BINARY[part] (RFC 3516): the part's content with
// its transfer encoding undone. ok is false when there is no such part.
func binarySection(raw []byte, part []int) (b []byte, ok bool, err error) {
	if len(part) == 0 {
		return raw, true, nil
	}
	cur, typ, sub, ok := navigate(raw, part)
	if !ok {
		return nil, false, nil
	}
	if typ == "multipart" || encapsulates(cur.header, typ, sub) {
		return cur.body, true, nil
	}
	b, err = decodeTransfer(transferEncoding(cur.header), cur.body)
	return b, true, err
}

func decodeTransfer(enc string, body []byte) ([]byte, error) {
	switch enc {
	case "", "7bit", "8bit", "binary":
		return body, nil
	case "base64":
		b, _ := rawmime.DecodeBase64(body)
		return b, nil
	case "quoted-printable":
		b, _ := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		return b, nil // what decoded before any malformed escape
	}
	return nil, errUnknownCTE
}

// envelopeOf builds ENVELOPE (RFC 9051 §7.5.2) from a header block.
func envelopeOf(h []byte) *imap.Envelope {
	env := &imap.Envelope{}
	var date, subject, messageID, inReplyTo string
	var addrs [6]string
	headerFields(h, func(n, raw []byte) bool {
		var dst *string
		switch strings.ToLower(string(n)) {
		case "date":
			dst = &date
		case "subject":
			dst = &subject
		case "message-id":
			dst = &messageID
		case "in-reply-to":
			dst = &inReplyTo
		case "from":
			dst = &addrs[0]
		case "sender":
			dst = &addrs[1]
		case "reply-to":
			dst = &addrs[2]
		case "to":
			dst = &addrs[3]
		case "cc":
			dst = &addrs[4]
		case "bcc":
			dst = &addrs[5]
		}
		if dst != nil && *dst == "" {
			*dst = rawmime.Value(raw)
		}
		return true
	})
	if date != "" {
		if t, err := mail.ParseDate(date); err == nil {
			env.Date = t
		}
	}
	env.Subject = decodeText(subject)
	env.From = parseAddrs(addrs[0])
	env.Sender = parseAddrs(addrs[1])
	env.ReplyTo = parseAddrs(addrs[2])
	env.To = parseAddrs(addrs[3])
	env.Cc = parseAddrs(addrs[4])
	env.Bcc = parseAddrs(addrs[5])
	env.InReplyTo = msgIDs(inReplyTo)
	if ids := msgIDs(messageID); len(ids) > 0 {
		env.MessageID = ids[0]
	} else if v := strings.Trim(messageID, "<> \t"); v != "" && !strings.ContainsAny(v, " \t") {
		env.MessageID = v
	}
	return env
}

// msgIDs returns the <...> identifiers in a field, without brackets.
func msgIDs(v string) []string {
	var out []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			return out
		}
		if id := strings.TrimSpace(v[i+1 : i+j]); id != "" {
			out = append(out, id)
		}
		v = v[i+j+1:]
	}
}

var wordDecoder = &mime.WordDecoder{CharsetReader: lenientCharset}

// decodeText decodes RFC 2047 encoded words; what cannot be decoded stays
// as it is (a mail client decodes it again).
func decodeText(s string) string {
	if s == "" {
		return ""
	}
	if strings.Contains(s, "=?") {
		if d, err := wordDecoder.DecodeHeader(s); err == nil {
			s = d
		}
	}
	return toUTF8(s)
}

// parseAddrs parses an address list for ENVELOPE; an unparsable entry is
// skipped rather than losing the whole list.
func parseAddrs(v string) []imap.Address {
	if v == "" {
		return nil
	}
	p := mail.AddressParser{WordDecoder: wordDecoder}
	list, err := p.ParseList(v)
	if err != nil {
		list = list[:0]
		for _, piece := range strings.Split(v, ",") {
			if a, err := p.Parse(piece); err == nil {
				list = append(list, a)
			}
		}
	}
	var out []imap.Address
	for _, a := range list {
		i := strings.LastIndexByte(a.Address, '@')
		if i <= 0 || i == len(a.Address)-1 {
			continue // IMAP has no address without a host outside group syntax
		}
		out = append(out, imap.Address{Name: toUTF8(a.Name), Mailbox: a.Address[:i], Host: a.Address[i+1:]})
	}
	return out
}

// toUTF8 reads invalid UTF-8 (raw 8-bit header bytes) as Latin-1.
func toUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		sb.WriteRune(rune(s[i]))
	}
	return sb.String()
}

// lenientCharset converts what the standard library does not (it knows
// UTF-8, US-ASCII and ISO-8859-1): Windows-1252 by its table, anything
// else as Latin-1, which keeps ASCII right and never fails. (Full charset
// tables would need golang.org/x/text, which this module does not carry.)
func lenientCharset(charset string, input io.Reader) (io.Reader, error) {
	b, err := io.ReadAll(input)
	if err != nil {
		return nil, err
	}
	return strings.NewReader(latin1ToUTF8(b, charset)), nil
}

// latin1ToUTF8 reads b as Windows-1252 when charset says so, otherwise as
// Latin-1.
func latin1ToUTF8(b []byte, charset string) string {
	cp1252 := false
	switch strings.ToLower(charset) {
	case "windows-1252", "cp1252", "x-cp1252":
		cp1252 = true
	}
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		if cp1252 && c >= 0x80 && c < 0xa0 {
			if r := cp1252Table[c-0x80]; r != 0 {
				sb.WriteRune(r)
				continue
			}
		}
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

var cp1252Table = [32]rune{
	'€', 0, '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', 0, 'Ž', 0,
	0, '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', 0, 'ž', 'Ÿ',
}
