// Package mailtext is the one definition of the text IMAP SEARCH BODY and
// TEXT look at: the decoded text parts of a message, through its
// multiparts and attached messages, and (for TEXT) the decoded values of
// every header field, in lower case. The IMAP server's scan and the
// full-text index (internal/fulltext) both read messages through it, so
// the index answers exactly what the scan would.
//
// The MIME helpers the text walk needs (reading a Content-Type, a
// transfer encoding, RFC 2047 words, Latin-1 and Windows-1252 text) are
// exported for the IMAP server, which describes the same tree in
// BODYSTRUCTURE and ENVELOPE.
package mailtext

import (
	"bytes"
	"errors"
	"io"
	"math"
	"mime"
	"mime/quotedprintable"
	"strings"
	"unicode/utf8"

	"github.com/bitmask-go/bitmask/pkg/rawmime"
)

// MaxDepth bounds the nesting of multiparts and message/rfc822 parts the
// text walk enters (deeper parts are leaves).
const MaxDepth = 32

// MaxText is where the walk stops adding entities: once the text holds
// more than this many bytes, the entities after it are left out.
const MaxText = 64 << 20

// searchLimits are the limits of the text walk's reading of the tree: down
// to MaxDepth, however many entities there are.
var searchLimits = rawmime.Options{MaxDepth: MaxDepth, MaxParts: math.MaxInt}

// Text resets dst, collects the text of raw into it (with the header
// field values when headers is true, as SEARCH TEXT; else the text parts
// only, as SEARCH BODY) and returns it in lower case: dst's bytes,
// lowered in place when they are ASCII.
func Text(dst *bytes.Buffer, raw []byte, headers bool) []byte {
	dst.Reset()
	Append(dst, raw, headers)
	return Lower(dst.Bytes())
}

// Append appends the decoded text of a message's text parts (and, with
// headers, its header field values) to dst, through its multiparts and
// attached messages, as it is (not lowered).
func Append(dst *bytes.Buffer, raw []byte, headers bool) {
	start := dst.Len()
	walk(raw, headers, func(_ bool, s []byte, str string) {
		if s != nil {
			dst.Write(s)
		} else {
			dst.WriteString(str)
		}
		dst.WriteByte('\n')
	}, func() int { return dst.Len() - start })
}

// Pieces calls fn with each piece of the text Append(…, true) makes, in
// order, as it is (not lowered), each without the newline Append puts
// after it: header says whether the piece is a header field's value
// (else it is a text part, part of the text SEARCH BODY reads). The text
// Append makes is the pieces each followed by "\n"; the text without
// headers, the text parts each followed by "\n", for any message of at
// most MaxText/4 bytes (a longer one may reach MaxText, where the two
// walks stop at different places). fn must not keep text.
func Pieces(raw []byte, fn func(header bool, text []byte)) {
	var buf []byte
	n := 0
	walk(raw, true, func(header bool, s []byte, str string) {
		if s == nil {
			buf = append(buf[:0], str...)
			s = buf
		}
		n += len(s) + 1
		fn(header, s)
	}, func() int { return n })
}

// walk emits the pieces of the text of raw: each header field value
// (with headers) and each text part, decoded, as bytes or as a string.
// size is how much text there is so far (for MaxText).
func walk(raw []byte, headers bool, emit func(header bool, b []byte, s string), size func() int) {
	walkEntity(raw, ParseMIME(raw, searchLimits), headers, emit, size)
}

func walkEntity(raw []byte, e *rawmime.Entity, headers bool, emit func(bool, []byte, string), size func() int) {
	if size() > MaxText {
		return
	}
	h, body := raw[e.Start:e.BodyStart], raw[e.BodyStart:e.End]
	if headers {
		HeaderFields(h, func(n, raw []byte) bool {
			emit(true, nil, DecodeText(rawmime.Value(raw)))
			return true
		})
	}
	typ, _, params := ContentType(h, DefaultType(e))
	switch {
	case e.Content.Boundary != "":
		for _, p := range e.Parts {
			walkEntity(raw, p, headers, emit, size)
		}
	case e.Message != nil:
		walkEntity(raw, e.Message, headers, emit, size)
	case typ == "text":
		b, err := DecodeTransfer(TransferEncoding(h), body)
		if err != nil {
			b = body
		}
		charset := params["charset"]
		switch strings.ToLower(charset) {
		case "", "utf-8", "utf8", "us-ascii":
			if utf8.Valid(b) {
				emit(false, b, "")
				return
			}
		}
		emit(false, nil, Latin1ToUTF8(b, charset))
	}
}

// Lower lower-cases b the way SEARCH compares text: in place when it is
// ASCII (the usual case for the bulk of a message), else into a new
// slice (Unicode folding can change lengths).
func Lower(b []byte) []byte {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return bytes.ToLower(b)
		}
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return b
}

// ParseMIME reads the MIME tree of a message as IMAP sees it: multiparts
// split (delimiter padding may mix CRs with the blanks, LoosePadding, as
// this reader has always accepted) and the messages of message/rfc822
// parts read as messages, within the limits of lim.
func ParseMIME(raw []byte, lim rawmime.Options) *rawmime.Entity {
	lim.Content = PartContent
	lim.Padding = rawmime.LoosePadding
	return rawmime.Parse(raw, &lim)
}

// PartContent is what the body of an entity holds, by ContentType: a
// multipart's boundary (none, when the type has no usable boundary), or a
// message IMAP describes as one (see Encapsulates).
func PartContent(h []byte, digestPart bool) rawmime.Content {
	if !digestPart && !namesNesting(HeaderGet(h, "Content-Type")) {
		return rawmime.Content{} // the common leaf, without parsing its type
	}
	typ, sub, params := ContentType(h, defaultTypeOf(digestPart))
	switch {
	case typ == "multipart":
		return rawmime.Content{Boundary: params["boundary"], Digest: sub == "digest"}
	case Encapsulates(h, typ, sub):
		return rawmime.Content{Message: true}
	}
	return rawmime.Content{}
}

// namesNesting says whether a Content-Type value may name a multipart or
// message type: ContentType lowers the case of the type, so it only reads
// either from a value that holds the word.
func namesNesting(v string) bool {
	v = strings.ToLower(v)
	return strings.Contains(v, "multipart") || strings.Contains(v, "message")
}

// DefaultType is the media type of an entity without a usable
// Content-Type: message/rfc822 for a part of a multipart/digest, else
// text/plain (RFC 2046 §5.1.5, RFC 2045 §5.2).
func DefaultType(e *rawmime.Entity) string { return defaultTypeOf(e.DigestPart) }

func defaultTypeOf(digestPart bool) string {
	if digestPart {
		return "message/rfc822"
	}
	return "text/plain"
}

// HeaderFields calls fn for each field of a header block with its name
// and its raw lines (continuation lines included, line breaks kept). The
// name is what stands before the colon of the first line (mail clients
// read names that loosely); a line without a colon, or whose name would
// hold a CR, has an empty name. fn returns false to stop.
func HeaderFields(h []byte, fn func(name, raw []byte) bool) {
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

// HeaderGet returns the unfolded value of the first field called name.
func HeaderGet(h []byte, name string) string {
	var v string
	HeaderFields(h, func(n, raw []byte) bool {
		if len(n) == len(name) && strings.EqualFold(string(n), name) {
			v = rawmime.Value(raw)
			return false
		}
		return true
	})
	return v
}

// ContentType returns an entity's lower-case media type and parameters,
// or dflt (RFC 2045 §5.2: text/plain; charset=us-ascii) when the field is
// missing or unusable.
func ContentType(h []byte, dflt string) (typ, sub string, params map[string]string) {
	if v := HeaderGet(h, "Content-Type"); v != "" {
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

// TransferEncoding is an entity's Content-Transfer-Encoding, lower case.
func TransferEncoding(h []byte) string {
	return strings.ToLower(HeaderGet(h, "Content-Transfer-Encoding"))
}

// Encapsulates says whether a part of type typ/sub holds a message that
// IMAP describes and addresses as one (RFC 9051 §6.4.5, §7.5.2).
func Encapsulates(h []byte, typ, sub string) bool {
	if typ != "message" || (sub != "rfc822" && sub != "global") {
		return false
	}
	switch TransferEncoding(h) {
	case "base64", "quoted-printable":
		return false // not allowed by RFC 2046 §5.2.1; treat as opaque
	}
	return true
}

// ErrUnknownEncoding is DecodeTransfer's error for a transfer encoding it
// does not know.
var ErrUnknownEncoding = errors.New("mailtext: unknown Content-Transfer-Encoding")

// DecodeTransfer undoes a body's transfer encoding (enc in lower case).
// Malformed base64 or quoted-printable gives what decoded before the
// fault; an encoding other than the five of RFC 2045 ErrUnknownEncoding.
func DecodeTransfer(enc string, body []byte) ([]byte, error) {
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
	return nil, ErrUnknownEncoding
}

var wordDecoder = &mime.WordDecoder{CharsetReader: lenientCharset}

// WordDecoder is the RFC 2047 decoder DecodeText uses (charsets as
// Latin1ToUTF8 reads them), for address parsing.
func WordDecoder() *mime.WordDecoder { return wordDecoder }

// DecodeText decodes RFC 2047 encoded words; what cannot be decoded stays
// as it is (a mail client decodes it again).
func DecodeText(s string) string {
	if s == "" {
		return ""
	}
	if strings.Contains(s, "=?") {
		if d, err := wordDecoder.DecodeHeader(s); err == nil {
			s = d
		}
	}
	return ToUTF8(s)
}

// ToUTF8 reads invalid UTF-8 (raw 8-bit header bytes) as Latin-1.
func ToUTF8(s string) string {
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
	return strings.NewReader(Latin1ToUTF8(b, charset)), nil
}

// Latin1ToUTF8 reads b as Windows-1252 when charset says so, otherwise as
// Latin-1.
func Latin1ToUTF8(b []byte, charset string) string {
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
