package pgpmime

import (
	"bytes"
	"mime"
	"strings"

	"github.com/bitmask-go/bitmask/pkg/rawmime"
)

// StripHeaders removes every top-level header field with one of the given
// names (case-insensitive), including folded continuation lines. The body
// and all other header bytes are kept exactly. It is meant for removing
// sender-supplied fields that only the receiving system may set.
func StripHeaders(msg []byte, names ...string) []byte {
	if len(names) == 0 {
		return msg
	}
	hdr, sep, rest := rawmime.SplitHeader(msg)
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
	hdr, sep, rest := rawmime.SplitHeader(stripped)
	eol := rawmime.EOL(stripped)
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

// StripNamePrefix removes every header field whose name starts with
// prefix (case-insensitive) from the message's header and from the header
// of every message/rfc822 or message/global entity inside it (a forwarded
// message a client shows with its own header), at any depth up to the
// walk limits, signed and encrypted structures included. All other bytes
// are kept. It is meant for status fields only the receiving system may
// set (X-Leap-*), which a sender might plant anywhere a client shows a
// header.
func StripNamePrefix(msg []byte, prefix string) []byte {
	visited := 0
	out, _ := stripPrefix(msg, strings.ToLower(prefix), true, 0, &visited)
	return out
}

func stripPrefix(raw []byte, prefix string, isMessage bool, depth int, visited *int) ([]byte, bool) {
	*visited++
	if *visited > maxWalkParts || depth > maxWalkDepth {
		return raw, false
	}
	e, err := parseEntity(raw)
	if err != nil {
		if isMessage {
			// A header the MIME parser refuses is still a header to
			// a mail client: remove the fields line by line.
			if out := StripHeaders(raw, prefixedNames(raw, prefix)...); len(out) != len(raw) {
				return out, true
			}
		}
		return raw, false
	}
	hdr := e.header
	changed := false
	if isMessage {
		kept := hdr[:0:0]
		for _, f := range hdr {
			if strings.HasPrefix(f.key(), prefix) {
				changed = true
				continue
			}
			kept = append(kept, f)
		}
		hdr = kept
	}
	body := e.body
	mt, params := mediaType(e.header)
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		if mp, ok := splitMultipart(e.body, params["boundary"]); ok {
			repl := map[int][]byte{}
			for i, p := range mp.parts {
				if nb, ok := stripPrefix(e.body[p.start:p.end], prefix, false, depth+1, visited); ok {
					repl[i] = nb
				}
			}
			if len(repl) > 0 {
				body, changed = mp.rebuild(e.body, repl, nil), true
			}
		}
	case mt == "message/rfc822" || mt == "message/global":
		// RFC 2046 §5.2.1 allows no encoding of message/rfc822 but
		// clients decode one anyway and show the header inside.
		switch cte := strings.ToLower(strings.TrimSpace(getValue(e.header, "Content-Transfer-Encoding"))); cte {
		case "base64", "quoted-printable":
			dec, _ := decodeCTE(cte, e.body)
			if nb, ok := stripPrefix(dec, prefix, true, depth+1, visited); ok {
				if cte == "base64" {
					body = encodeBase64(nb, e.eol)
				} else {
					body = encodeQP(nb, e.eol)
				}
				changed = true
			}
		default:
			if nb, ok := stripPrefix(e.body, prefix, true, depth+1, visited); ok {
				body, changed = nb, true
			}
		}
	}
	if !changed {
		return raw, false
	}
	hdrLen := 0
	for _, f := range e.header {
		hdrLen += len(f.raw)
	}
	var out bytes.Buffer
	out.Grow(len(raw))
	for _, f := range hdr {
		out.Write(f.raw)
	}
	out.Write(raw[hdrLen : len(raw)-len(e.body)]) // the empty line, as it was
	out.Write(body)
	return out.Bytes(), true
}

// prefixedNames lists the top-level field names of msg that start with
// prefix (lower case).
func prefixedNames(msg []byte, prefix string) []string {
	hdr, _, _ := rawmime.SplitHeader(msg)
	var out []string
	for _, f := range rawFieldSpans(hdr) {
		if f.name != "" && strings.HasPrefix(strings.ToLower(f.name), prefix) {
			out = append(out, f.name)
		}
	}
	return out
}
