package pgpmime

import (
	"bytes"
	"mime"
	"strings"
)

// splitRawHeader returns the header block (without the empty line that
// ends it), the separator and the rest. The header ends at the first empty
// line, i.e. CRLF CRLF or LF LF (RFC 5322 §2.1). Without an empty line the
// whole message is taken as header.
func splitRawHeader(msg []byte) (hdr, sep, rest []byte) {
	pos := 0
	for pos < len(msg) {
		line := nextLine(msg, pos)
		if isBlankLine(line) {
			return msg[:pos], line, msg[pos+len(line):]
		}
		pos += len(line)
	}
	return msg, nil, nil
}

// rawFieldSpans splits a header block into field spans: each span starts
// at a line that does not begin with whitespace and includes its
// continuation lines. Lines that are not well-formed fields are kept as
// spans of their own (with an empty name) so nothing is lost.
func rawFieldSpans(hdr []byte) []field {
	var out []field
	pos := 0
	for pos < len(hdr) {
		line := nextLine(hdr, pos)
		if (line[0] == ' ' || line[0] == '\t') && len(out) > 0 {
			f := &out[len(out)-1]
			f.raw = hdr[pos-len(f.raw) : pos+len(line)]
		} else {
			name := ""
			if i := bytes.IndexByte(line, ':'); i > 0 {
				name = string(bytes.TrimRight(line[:i], " \t"))
			}
			out = append(out, field{name: name, raw: line})
		}
		pos += len(line)
	}
	return out
}

// StripHeaders removes every top-level header field with one of the given
// names (case-insensitive), including folded continuation lines. The body
// and all other header bytes are kept exactly. It is meant for removing
// sender-supplied fields that only the receiving system may set.
func StripHeaders(msg []byte, names ...string) []byte {
	if len(names) == 0 {
		return msg
	}
	hdr, sep, rest := splitRawHeader(msg)
	spans := rawFieldSpans(hdr)
	var out bytes.Buffer
	out.Grow(len(msg))
	removed := false
	for _, f := range spans {
		drop := false
		for _, n := range names {
			if f.name != "" && strings.EqualFold(f.name, n) {
				drop = true
				break
			}
		}
		if drop {
			removed = true
			continue
		}
		out.Write(f.raw)
	}
	if !removed {
		return msg
	}
	out.Write(sep)
	out.Write(rest)
	return out.Bytes()
}

// SetHeaders sets top-level header fields given as name, value pairs:
// existing fields of that name are removed and "Name: value" is appended
// at the end of the header. A trailing unpaired name is ignored. Values
// cannot inject further fields (line breaks become spaces) and non-ASCII
// values are written as RFC 2047 encoded-words. The body is not touched.
func SetHeaders(msg []byte, kv ...string) []byte {
	if len(kv) < 2 {
		return msg
	}
	names := make([]string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		names = append(names, kv[i])
	}
	stripped := StripHeaders(msg, names...)
	hdr, sep, rest := splitRawHeader(stripped)
	eol := "\r\n"
	if first := nextLine(stripped, 0); !bytes.HasSuffix(first, []byte("\r\n")) && bytes.HasSuffix(first, []byte("\n")) {
		eol = "\n"
	}
	var out bytes.Buffer
	out.Grow(len(stripped) + 64*len(names))
	out.Write(hdr)
	if len(hdr) > 0 && hdr[len(hdr)-1] != '\n' {
		out.WriteString(eol)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		name := sanitizeFieldName(kv[i])
		if name == "" {
			continue
		}
		v := kv[i+1]
		if !isASCII(v) {
			v = mime.QEncoding.Encode("utf-8", v)
		}
		out.Write(newField(name, v, eol).raw)
	}
	if sep == nil {
		sep = []byte(eol)
	}
	out.Write(sep)
	out.Write(rest)
	return out.Bytes()
}

func sanitizeFieldName(n string) string {
	var b strings.Builder
	for i := 0; i < len(n); i++ {
		if c := n[i]; c >= 33 && c <= 126 && c != ':' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
