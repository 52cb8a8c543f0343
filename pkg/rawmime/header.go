package rawmime

import (
	"bytes"
	"iter"
	"strings"
)

// NextLine returns the line that starts at b[pos:], with its LF; the
// rest of b when no LF follows.
func NextLine(b []byte, pos int) []byte {
	if i := bytes.IndexByte(b[pos:], '\n'); i >= 0 {
		return b[pos : pos+i+1]
	}
	return b[pos:]
}

// IsBlankLine reports whether l, a line with its line break, is empty:
// "\r\n" or "\n".
func IsBlankLine(l []byte) bool {
	return len(l) == 1 && l[0] == '\n' || len(l) == 2 && l[0] == '\r' && l[1] == '\n'
}

// EOL is the line break of b's first line: "\n" when it ends in LF
// alone, otherwise (CRLF, or no line break at all) "\r\n". Writers use
// it to add lines in the style of the ones already there.
func EOL(b []byte) string {
	first := NextLine(b, 0)
	if bytes.HasSuffix(first, []byte("\n")) && !bytes.HasSuffix(first, []byte("\r\n")) {
		return "\n"
	}
	return "\r\n"
}

// SplitHeader splits b at the end of its header section: fields is the
// field lines, blank the empty line that ends them and body the rest.
// Without an empty line, all of b is fields, blank is nil and body empty.
// The three are consecutive slices of b.
func SplitHeader(b []byte) (fields, blank, body []byte) {
	for pos := 0; pos < len(b); {
		line := NextLine(b, pos)
		if IsBlankLine(line) {
			return b[:pos], line, b[pos+len(line):]
		}
		pos += len(line)
	}
	return b, nil, b[len(b):]
}

// Field is one header field as it stands in the header section.
type Field struct {
	// Raw is the field's lines, folded continuation lines and line
	// breaks included (the last line has none at the end of a header
	// section without an empty line).
	Raw []byte
	// Start is the offset of Raw in the header section.
	Start int
}

// Fields returns the fields of a header section, up to its first empty
// line. A field starts at each line that does not start with a space or
// a tab; the lines that do continue it. A continuation line at the very
// start (no field to continue) starts a field of its own, which has no
// strict name. A line without a colon is a field too, with no name: the
// Raw of all fields together is the header section up to the empty line.
func Fields(hdr []byte) iter.Seq[Field] {
	return func(yield func(Field) bool) {
		pos := 0
		for pos < len(hdr) {
			start := pos
			line := NextLine(hdr, pos)
			if IsBlankLine(line) {
				return
			}
			pos += len(line)
			for pos < len(hdr) && (hdr[pos] == ' ' || hdr[pos] == '\t') {
				pos += len(NextLine(hdr, pos))
			}
			if !yield(Field{Raw: hdr[start:pos], Start: start}) {
				return
			}
		}
	}
}

// FieldName is the name of the header field that line starts (RFC 5322
// §3.6.8: printable ASCII but the colon; obsolete syntax allows blanks
// before the colon), or "".
func FieldName(line []byte) string {
	i := 0
	for i < len(line) && line[i] > ' ' && line[i] < 0x7f && line[i] != ':' {
		i++
	}
	if i == 0 {
		return ""
	}
	j := i
	for j < len(line) && (line[j] == ' ' || line[j] == '\t') {
		j++
	}
	if j >= len(line) || line[j] != ':' {
		return ""
	}
	return string(line[:i])
}

// Name is the field's name by FieldName's strict rule, or "".
func (f Field) Name() string { return FieldName(f.Raw) }

// LooseName is whatever stands before the first colon of the field's
// first line, blanks at its end removed: nil without a colon there. It
// may hold blanks, control and 8-bit bytes.
func (f Field) LooseName() []byte {
	first := NextLine(f.Raw, 0)
	i := bytes.IndexByte(first, ':')
	if i < 0 {
		return nil
	}
	return bytes.TrimRight(first[:i], " \t")
}

// Value is the field's value unfolded (RFC 5322 §2.2.3: every CR and LF
// removed, the white space after them kept) with the white space around
// it trimmed; "" without a colon.
func (f Field) Value() string { return Value(f.Raw) }

// Value is the unfolded, trimmed value of a raw field (see Field.Value).
func Value(raw []byte) string {
	i := bytes.IndexByte(raw, ':')
	if i < 0 {
		return ""
	}
	v := raw[i+1:]
	if bytes.IndexByte(v, '\n') < 0 && bytes.IndexByte(v, '\r') < 0 {
		return string(bytes.TrimSpace(v))
	}
	var sb strings.Builder
	sb.Grow(len(v))
	for _, c := range v {
		if c != '\r' && c != '\n' {
			sb.WriteByte(c)
		}
	}
	return strings.TrimSpace(sb.String())
}
