package mx

import (
	"net/mail"
	"strings"

	"github.com/bitmask-go/bitmask/internal/provider/smtpserver"
	"github.com/bitmask-go/bitmask/pkg/rawmime"
)

// The MX reads just enough of a message's header section to find the
// From field (DMARC), DKIM-Signature fields and Authentication-Results
// fields, and keeps every byte it does not remove. It does not judge the
// rest: 8-bit text, odd line breaks and lines without a colon pass
// through untouched for the user's device to make sense of.

// field is one header field as it came: name and the raw bytes of all
// its lines, line breaks included.
type field struct {
	name string // "" for a line in the header section that is no field
	raw  []byte
}

// message is a message split at the end of its header section.
type message struct {
	fields []field
	// rest is what follows the fields: the empty line and the body, or
	// nothing.
	rest []byte
	// noHeader is set when the message does not start with a header
	// field or an empty line: then it is all body.
	noHeader bool
}

// splitMessage splits msg into its header fields (rawmime.Fields, names
// by the strict rule: "" for a line that is no field) and the rest. A
// message whose first line is neither a field nor empty has no header.
func splitMessage(msg []byte) *message {
	m := &message{}
	first := rawmime.NextLine(msg, 0)
	if len(msg) == 0 || !(rawmime.IsBlankLine(first) || rawmime.FieldName(first) != "") {
		m.noHeader = true
		m.rest = msg
		return m
	}
	pos := 0
	for f := range rawmime.Fields(msg) {
		m.fields = append(m.fields, field{name: f.Name(), raw: f.Raw})
		pos = f.Start + len(f.Raw)
	}
	m.rest = msg[pos:]
	return m
}

// value is a field's unfolded value.
func (f field) value() string { return rawmime.Value(f.raw) }

// has reports whether a field named name is present.
func (m *message) has(name string) bool {
	for _, f := range m.fields {
		if strings.EqualFold(f.name, name) {
			return true
		}
	}
	return false
}

// fromDomain is the domain of the message's single From address, the
// author domain DMARC is about (RFC 7489 §6.6.1). A message with no
// From, several, or a From with several addresses has none.
func (m *message) fromDomain() (string, bool) {
	var from []field
	for _, f := range m.fields {
		if strings.EqualFold(f.name, "From") {
			from = append(from, f)
		}
	}
	if len(from) != 1 {
		return "", false
	}
	list, err := mail.ParseAddressList(from[0].value())
	if err != nil || len(list) != 1 {
		return "", false
	}
	at := strings.LastIndexByte(list[0].Address, '@')
	if at < 0 {
		return "", false
	}
	d := smtpserver.NormDomain(list[0].Address[at+1:])
	return d, d != ""
}

// withoutOurResults returns the message's parts to store, without the
// Authentication-Results fields that claim our authserv-id (RFC 8601
// §5), and how many it removed. A message without a header section gets
// an empty line first, so its body stays a body under our fields.
func (m *message) withoutOurResults(authservID string) (parts [][]byte, removed int) {
	if m.noHeader {
		return [][]byte{[]byte("\r\n"), m.rest}, 0
	}
	for _, f := range m.fields {
		if strings.EqualFold(f.name, "Authentication-Results") && strings.EqualFold(authservIDOf(f.value()), authservID) {
			removed++
			continue
		}
		if n := len(parts); n > 0 && sameArray(parts[n-1], f.raw) {
			parts[n-1] = parts[n-1][:len(parts[n-1])+len(f.raw)]
			continue
		}
		parts = append(parts, f.raw)
	}
	if n := len(parts); n > 0 && sameArray(parts[n-1], m.rest) {
		parts[n-1] = parts[n-1][:len(parts[n-1])+len(m.rest)]
	} else {
		parts = append(parts, m.rest)
	}
	return parts, removed
}

// sameArray reports whether b starts right where a ends in the same
// backing array, so the two can be written as one slice.
func sameArray(a, b []byte) bool {
	if len(b) == 0 || cap(a) < len(a)+len(b) {
		return false
	}
	return &a[:len(a)+1][len(a)] == &b[0]
}

// authservIDOf is the authserv-id of an Authentication-Results value:
// the first token before the first ";", after comments, unquoted.
func authservIDOf(v string) string {
	head, _, _ := strings.Cut(stripComments(v), ";")
	head = strings.TrimSpace(head)
	if strings.HasPrefix(head, `"`) {
		if end := strings.IndexByte(head[1:], '"'); end >= 0 {
			return head[1 : end+1]
		}
		return strings.Trim(head, `"`)
	}
	if i := strings.IndexAny(head, " \t"); i >= 0 {
		head = head[:i]
	}
	return head
}

// stripComments removes RFC 5322 comments (nested parentheses, with
// quoted pairs) outside quoted strings.
func stripComments(s string) string {
	var b strings.Builder
	depth, quoted := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && (depth > 0 || quoted):
			if depth == 0 {
				b.WriteByte(c)
				if i+1 < len(s) {
					b.WriteByte(s[i+1])
				}
			}
			i++
		case quoted:
			b.WriteByte(c)
			if c == '"' {
				quoted = false
			}
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0:
		case c == '"':
			quoted = true
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
