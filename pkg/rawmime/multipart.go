package rawmime

import "bytes"

// Padding is the rule for what may follow the boundary on a delimiter
// line, after the "--" of a close delimiter: RFC 2046 §5.1.1 allows
// "transport padding", white space added by gateways.
type Padding uint8

const (
	// StrictPadding allows spaces and tabs, then the line break (CRLF,
	// LF, or CRs before the LF).
	StrictPadding Padding = iota
	// LoosePadding allows spaces, tabs and CRs in any order before the
	// LF ("--b \r \n" is a delimiter).
	LoosePadding
)

// Part is one body part of a multipart body, as offsets into the body.
type Part struct {
	// Delim is where the delimiter line introducing the part starts.
	Delim int
	// Start and End delimit the part's content: from after its
	// delimiter line to before the line break that precedes the next
	// delimiter (that line break belongs to the delimiter).
	Start, End int
}

// Multipart is a multipart body split into parts.
type Multipart struct {
	Parts []Part
	// Close is where the close-delimiter line starts: the epilogue is
	// the rest of that line's end. len(body) when there is none.
	Close int
	// Closed says whether the close delimiter was found.
	Closed bool
}

// SplitMultipart finds the body parts of a multipart body with the given
// boundary (RFC 2046 §5.1.1). The preamble is what comes before the
// first part's Delim, the epilogue what follows the close-delimiter
// line. Without a close delimiter the last part runs to the end of the
// body. A close delimiter before any part ends the body with no parts;
// so does an empty boundary.
func SplitMultipart(body []byte, boundary string, pad Padding) Multipart {
	m := Multipart{Close: len(body)}
	if boundary == "" {
		return m
	}
	dash := "--" + boundary
	open := false
	for pos := 0; pos < len(body); {
		lineStart := pos
		line := NextLine(body, pos)
		pos += len(line)
		closing, ok := delimiter(line, dash, pad)
		if !ok {
			continue
		}
		if open {
			p := &m.Parts[len(m.Parts)-1]
			p.End = partEnd(body, p.Start, lineStart)
		}
		if closing {
			m.Close = lineStart
			m.Closed = true
			return m
		}
		m.Parts = append(m.Parts, Part{Delim: lineStart, Start: pos, End: len(body)})
		open = true
	}
	return m
}

// delimiter reports whether line (with its line break) is a delimiter
// line for dash ("--" boundary), and whether it is the close delimiter.
func delimiter(line []byte, dash string, pad Padding) (closing, ok bool) {
	if len(line) < len(dash) || string(line[:len(dash)]) != dash {
		return false, false
	}
	rest := line[len(dash):]
	if pad == StrictPadding {
		rest = bytes.TrimRight(rest, "\r\n")
	}
	if bytes.HasPrefix(rest, []byte("--")) {
		closing = true
		rest = rest[2:]
	}
	if pad == StrictPadding {
		return closing, len(bytes.Trim(rest, " \t")) == 0
	}
	return closing, len(bytes.TrimRight(rest, " \t\r\n")) == 0
}

// partEnd is the end of a part's content that starts at start, given the
// start of the next delimiter line: before the CRLF or LF that ends the
// part's last line, never before start.
func partEnd(body []byte, start, delim int) int {
	end := delim
	if end > start && body[end-1] == '\n' {
		end--
		if end > start && body[end-1] == '\r' {
			end--
		}
	}
	return end
}
