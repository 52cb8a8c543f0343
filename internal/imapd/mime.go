package imapd

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/mail"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/bitmask-go/bitmask/internal/mailtext"
	"github.com/bitmask-go/bitmask/pkg/rawmime"
)

// This file reads MIME (RFC 2045, 2046) directly from the message bytes,
// with pkg/rawmime: BODYSTRUCTURE, section lookup and SEARCH's text walk
// the entity tree rawmime.Parse builds (parseMIME). Every part is a range
// of the original message (its header block and its body), so BODY[...]
// sections are the exact bytes the message holds and the sizes in
// BODYSTRUCTURE agree with them. Parsing is forgiving: a malformed header
// line, a missing boundary or a truncated multipart still give an answer.

// Limits against hostile nesting and fan-out: deeper parts are leaves,
// parts beyond the count are left out of BODYSTRUCTURE. maxMIMEDepth
// counts both multipart and message/rfc822 levels, as deep as SEARCH's
// text walk goes (mailtext.MaxDepth).
const (
	maxMIMEDepth = mailtext.MaxDepth
	maxMIMEParts = 1000
)

// The limits of each reading of the tree. BODYSTRUCTURE stops at them.
// A section's part numbers are at most maxMIMEDepth, and each may enter
// a message/rfc822 and then a multipart, so the tree a section is looked
// up in goes twice as deep, and as wide as the message is: any part
// BODYSTRUCTURE leaves out is still there to fetch. Searching reads the
// text of entities down to maxMIMEDepth, however many there are
// (mailtext).
var (
	indexLimits   = rawmime.Options{MaxDepth: maxMIMEDepth, MaxParts: maxMIMEParts}
	sectionLimits = rawmime.Options{MaxDepth: 2*maxMIMEDepth + 1, MaxParts: math.MaxInt}
)

// The MIME reading SEARCH's text walk shares with BODYSTRUCTURE, sections
// and ENVELOPE lives in internal/mailtext; these are its names here.

// parseMIME reads the MIME tree of a message as IMAP sees it
// (mailtext.ParseMIME).
func parseMIME(raw []byte, lim rawmime.Options) *rawmime.Entity {
	return mailtext.ParseMIME(raw, lim)
}

// defaultType is the media type of an entity without a usable
// Content-Type (mailtext.DefaultType).
func defaultType(e *rawmime.Entity) string { return mailtext.DefaultType(e) }

func headerFields(h []byte, fn func(name, raw []byte) bool) { mailtext.HeaderFields(h, fn) }

func headerGet(h []byte, name string) string { return mailtext.HeaderGet(h, name) }

func contentType(h []byte, dflt string) (typ, sub string, params map[string]string) {
	return mailtext.ContentType(h, dflt)
}

func transferEncoding(h []byte) string { return mailtext.TransferEncoding(h) }

func decodeText(s string) string { return mailtext.DecodeText(s) }

func toUTF8(s string) string { return mailtext.ToUTF8(s) }

// entity is one MIME entity: a header block (the field lines and the empty
// line that ends them) and a body, both slices of the message.
type entity struct {
	header []byte
	body   []byte
}

// entityOf is the header block and body of a tree entity of raw.
func entityOf(raw []byte, e *rawmime.Entity) entity {
	return entity{header: raw[e.Start:e.BodyStart:e.BodyStart], body: raw[e.BodyStart:e.End:e.End]}
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

// bodyStructure builds BODYSTRUCTURE (RFC 9051 §7.5.2) for a message.
func bodyStructure(raw []byte) imap.BodyStructure {
	return buildStructure(raw, parseMIME(raw, indexLimits))
}

// buildStructure describes entity e of the message raw and, recursively,
// its parts and the message it holds.
func buildStructure(raw []byte, e *rawmime.Entity) imap.BodyStructure {
	h, body := raw[e.Start:e.BodyStart], raw[e.BodyStart:e.End]
	typ, sub, params := contentType(h, defaultType(e))
	if typ == "multipart" {
		if e.Content.Boundary != "" {
			mp := &imap.BodyStructureMultiPart{
				Subtype: sub,
				Extended: &imap.BodyStructureMultiPartExt{
					Params:      params,
					Disposition: disposition(h),
					Language:    language(h),
					Location:    headerGet(h, "Content-Location"),
				},
			}
			for _, p := range e.Parts {
				mp.Children = append(mp.Children, buildStructure(raw, p))
			}
			if len(mp.Children) == 0 {
				// IMAP has no multipart without parts.
				mp.Children = []imap.BodyStructure{emptyTextPart()}
			}
			return mp
		}
		// A multipart we cannot split, or one too deep, is shown as text.
		typ, sub, params = "text", "plain", map[string]string{"charset": "us-ascii"}
	}
	sp := &imap.BodyStructureSinglePart{
		Type:        typ,
		Subtype:     sub,
		Params:      params,
		ID:          headerGet(h, "Content-Id"),
		Description: headerGet(h, "Content-Description"),
		Encoding:    transferEncoding(h),
		Size:        uint32(len(body)),
		Extended: &imap.BodyStructureSinglePartExt{
			Disposition: disposition(h),
			Language:    language(h),
			Location:    headerGet(h, "Content-Location"),
		},
	}
	if sp.Encoding == "" {
		sp.Encoding = "7bit"
	}
	switch {
	case typ == "message" && (sub == "rfc822" || sub == "global"):
		if e.Message == nil {
			// Not encapsulated, or too deep: IMAP requires envelope
			// and structure for message/rfc822.
			sp.Type, sp.Subtype = "application", "octet-stream"
			break
		}
		sp.MessageRFC822 = &imap.BodyStructureMessageRFC822{
			Envelope:      envelopeOf(raw[e.Message.Start:e.Message.BodyStart]),
			BodyStructure: buildStructure(raw, e.Message),
			NumLines:      int64(bytes.Count(body, []byte("\n"))),
		}
	case typ == "text":
		sp.Text = &imap.BodyStructureText{NumLines: int64(bytes.Count(body, []byte("\n")))}
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

// navigate finds the part a section's part numbers address (RFC 9051
// §6.4.5): the parts of a multipart are numbered from 1; a non-multipart
// message has a single part 1, its body; the parts of a message/rfc822
// part are those of the message it holds. It returns the part's entity
// in root, the tree of raw, and its media type.
func navigate(raw []byte, root *rawmime.Entity, path []int) (cur *rawmime.Entity, typ, sub string, ok bool) {
	cur = root
	typ, sub, _ = contentType(raw[cur.Start:cur.BodyStart], "text/plain")
	isMsg := true // cur is a whole message, not yet one of its parts
	for depth, n := range path {
		if depth >= maxMIMEDepth || n < 1 {
			return nil, "", "", false
		}
		if !isMsg && cur.Message != nil {
			cur = cur.Message
			typ, sub, _ = contentType(raw[cur.Start:cur.BodyStart], "text/plain")
		}
		if cur.Content.Boundary == "" {
			if n != 1 {
				return nil, "", "", false
			}
			isMsg = false
			continue
		}
		if n > len(cur.Parts) {
			return nil, "", "", false
		}
		cur = cur.Parts[n-1]
		typ, sub, _ = contentType(raw[cur.Start:cur.BodyStart], defaultType(cur))
		isMsg = false
	}
	return cur, typ, sub, true
}

// bodySection returns a BODY[section] (without its partial range), or nil
// when the message has no such part.
func bodySection(raw []byte, sec *imap.FetchItemBodySection) []byte {
	return (&sections{raw: raw}).body(sec)
}

// sections reads the sections of one message for one FETCH response: its
// MIME tree is parsed once, and a section asked for again is not made
// again (a FETCH of thousands of BINARY[1] items would otherwise hold
// thousands of decoded copies of the part).
type sections struct {
	raw    []byte
	memo   bool // several sections are asked: keep what was made
	root   *rawmime.Entity
	bodies map[string][]byte
	bins   map[string]binPart
}

type binPart struct {
	b   []byte
	ok  bool
	err error
}

func (s *sections) tree() *rawmime.Entity {
	if s.root == nil {
		s.root = parseMIME(s.raw, sectionLimits)
	}
	return s.root
}

// sectionKey names a section without its partial range.
func sectionKey(part []int, spec imap.PartSpecifier, fields, not []string) string {
	return fmt.Sprint(part, spec, fields, not)
}

// body is bodySection, made once per section.
func (s *sections) body(sec *imap.FetchItemBodySection) []byte {
	if !s.memo {
		return s.makeBody(sec)
	}
	key := sectionKey(sec.Part, sec.Specifier, sec.HeaderFields, sec.HeaderFieldsNot)
	if b, ok := s.bodies[key]; ok {
		return b
	}
	b := s.makeBody(sec)
	if s.bodies == nil {
		s.bodies = map[string][]byte{}
	}
	s.bodies[key] = b
	return b
}

// binary is binarySection, made once per part.
func (s *sections) binary(part []int) ([]byte, bool, error) {
	if !s.memo {
		return s.makeBinary(part)
	}
	key := sectionKey(part, "", nil, nil)
	if p, ok := s.bins[key]; ok {
		return p.b, p.ok, p.err
	}
	b, ok, err := s.makeBinary(part)
	if s.bins == nil {
		s.bins = map[string]binPart{}
	}
	s.bins[key] = binPart{b, ok, err}
	return b, ok, err
}

func (s *sections) makeBody(sec *imap.FetchItemBodySection) []byte {
	raw := s.raw
	var msg entity
	if len(sec.Part) == 0 {
		if sec.Specifier == imap.PartSpecifierNone {
			return raw
		}
		msg = splitEntity(raw)
	} else {
		cur, _, _, ok := navigate(raw, s.tree(), sec.Part)
		if !ok {
			return nil
		}
		msg = entityOf(raw, cur)
		switch sec.Specifier {
		case imap.PartSpecifierNone:
			return msg.body
		case imap.PartSpecifierMIME:
			return msg.header
		}
		if cur.Message != nil {
			msg = entityOf(raw, cur.Message)
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
	return (&sections{raw: raw}).binary(part)
}

func (s *sections) makeBinary(part []int) (b []byte, ok bool, err error) {
	raw := s.raw
	if len(part) == 0 {
		return raw, true, nil
	}
	e, typ, _, ok := navigate(raw, s.tree(), part)
	if !ok {
		return nil, false, nil
	}
	cur := entityOf(raw, e)
	if typ == "multipart" || e.Message != nil {
		return cur.body, true, nil
	}
	b, err = decodeTransfer(transferEncoding(cur.header), cur.body)
	return b, true, err
}

// decodeTransfer undoes a transfer encoding (mailtext.DecodeTransfer),
// with IMAP's UNKNOWN-CTE for an encoding it does not know.
func decodeTransfer(enc string, body []byte) ([]byte, error) {
	b, err := mailtext.DecodeTransfer(enc, body)
	if errors.Is(err, mailtext.ErrUnknownEncoding) {
		return nil, errUnknownCTE
	}
	return b, err
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

// parseAddrs parses an address list for ENVELOPE, keeping group syntax
// (RFC 5322 §3.4, RFC 3501 §7.4.2): a group is a start marker (Mailbox
// the group's name, Host empty), its members, and an end marker (all
// empty), so "undisclosed-recipients:;" is two markers. An unparsable
// member is skipped rather than losing the whole list.
func parseAddrs(v string) []imap.Address {
	if v == "" {
		return nil
	}
	p := mail.AddressParser{WordDecoder: mailtext.WordDecoder()}
	var out []imap.Address
	member := func(piece string) {
		if strings.TrimSpace(piece) == "" {
			return
		}
		a, err := p.Parse(piece)
		if err != nil {
			return
		}
		i := strings.LastIndexByte(a.Address, '@')
		if i <= 0 || i == len(a.Address)-1 {
			return // IMAP has no address without a host outside group syntax
		}
		out = append(out, imap.Address{Name: toUTF8(a.Name), Mailbox: a.Address[:i], Host: a.Address[i+1:]})
	}
	inGroup := false
	start := 0
	rawmime.AddressSpecials(v, func(i int, c byte) bool {
		switch {
		case c == ',':
			member(v[start:i])
			start = i + 1
		case c == ':' && !inGroup:
			out = append(out, imap.Address{Mailbox: groupName(v[start:i])})
			inGroup = true
			start = i + 1
		case c == ';' && inGroup:
			member(v[start:i])
			out = append(out, imap.Address{})
			inGroup = false
			start = i + 1
		}
		return true
	})
	member(v[start:])
	if inGroup {
		out = append(out, imap.Address{}) // a group left open ends here
	}
	return out
}

// groupName is a group's display name, unquoted and decoded; a group
// without one is named "group" (the start marker needs a name).
func groupName(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = strings.ReplaceAll(s[1:len(s)-1], `\"`, `"`)
	}
	s = decodeText(s)
	if s == "" {
		return "group"
	}
	return s
}
