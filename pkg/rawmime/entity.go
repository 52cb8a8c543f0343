package rawmime

import (
	"errors"
	"mime"
	"strings"
)

// Entity is a MIME entity as ranges of the input it was parsed from: its
// header section is input[Start:BodyStart] (the fields and the empty
// line), its body input[BodyStart:End].
type Entity struct {
	Start, BodyStart, End int
	// DigestPart says the entity is a part of a multipart/digest, where
	// an entity without a Content-Type is a message/rfc822, not
	// text/plain (RFC 2046 §5.1.5).
	DigestPart bool
	// Content is what Options.Content read from the header section;
	// zero for an entity at the depth limit, which is a leaf.
	Content Content
	// Multipart is the body split into parts, with offsets relative to
	// BodyStart; nil for a leaf.
	Multipart *Multipart
	// Parts are the entities of Multipart's parts, in order.
	Parts []*Entity
	// Message is the message the body holds when it is one
	// (message/rfc822, RFC 2046 §5.2.1): an entity over the whole body,
	// BodyStart to End. Nil for any other body.
	Message *Entity
}

// Content is what the body of an entity holds, as the caller reads the
// entity's header section.
type Content struct {
	// Boundary is the boundary of a multipart body; "" for any other
	// body.
	Boundary string
	// Digest says the multipart is a multipart/digest, whose parts are
	// message/rfc822 by default.
	Digest bool
	// Message says the body is a message of its own, to be parsed as
	// an entity.
	Message bool
}

// Options tunes Parse.
type Options struct {
	// Content reads what an entity's body holds from its header
	// section; digestPart is Entity.DigestPart. Nil means
	// DefaultContent.
	Content func(header []byte, digestPart bool) Content
	// Padding is the delimiter rule (see Padding).
	Padding Padding
	// MaxDepth bounds the nesting of multiparts and messages and
	// MaxParts the number of entities, against hostile input: an entity
	// at depth MaxDepth is a leaf (the root is at depth 0, its parts or
	// its message at 1), and once MaxParts entities are made, a
	// multipart's further parts are left out. The message of an entity
	// counts as one, but is never left out for the limit: its entity is
	// already made. Zero means 32 and 1000.
	MaxDepth, MaxParts int
}

// Parse reads b as a MIME entity and, recursively, the parts of its
// multipart bodies and the messages its message bodies hold. Nothing in
// b makes it fail: a header section without an empty line is all
// header, a multipart body without a delimiter a leaf.
func Parse(b []byte, o *Options) *Entity {
	p := parser{b: b, content: DefaultContent, maxDepth: 32, maxParts: 1000}
	if o != nil {
		if o.Content != nil {
			p.content = o.Content
		}
		p.pad = o.Padding
		if o.MaxDepth > 0 {
			p.maxDepth = o.MaxDepth
		}
		if o.MaxParts > 0 {
			p.maxParts = o.MaxParts
		}
	}
	return p.entity(0, len(b), 0, false)
}

type parser struct {
	b                  []byte
	content            func([]byte, bool) Content
	pad                Padding
	maxDepth, maxParts int
	parts              int
}

func (p *parser) entity(start, end, depth int, digestPart bool) *Entity {
	p.parts++
	fields, blank, _ := SplitHeader(p.b[start:end])
	e := &Entity{Start: start, BodyStart: start + len(fields) + len(blank), End: end, DigestPart: digestPart}
	if depth >= p.maxDepth {
		return e
	}
	c := p.content(p.b[start:e.BodyStart], digestPart)
	e.Content = c
	switch {
	case c.Boundary != "":
		p.multipart(e, c, depth)
	case c.Message:
		e.Message = p.entity(e.BodyStart, end, depth+1, false)
	}
	return e
}

// multipart splits the body of e and parses its parts.
func (p *parser) multipart(e *Entity, c Content, depth int) {
	m := SplitMultipart(p.b[e.BodyStart:e.End], c.Boundary, p.pad)
	if len(m.Parts) == 0 {
		return
	}
	e.Multipart = &m
	for _, part := range m.Parts {
		if p.parts >= p.maxParts {
			break
		}
		e.Parts = append(e.Parts, p.entity(e.BodyStart+part.Start, e.BodyStart+part.End, depth+1, c.Digest))
	}
}

// DefaultContent reads the first Content-Type field of a header section
// by RFC 2045 and 2046: multipart/* with its boundary, message/rfc822 and
// message/global (RFC 6532) as messages, and without a Content-Type a
// digest part as a message. A field whose media type does not parse is
// as good as none.
func DefaultContent(header []byte, digestPart bool) Content {
	mt, params, ok := firstContentType(header)
	if !ok {
		return Content{Message: digestPart}
	}
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		return Content{Boundary: params["boundary"], Digest: mt == "multipart/digest"}
	case mt == "message/rfc822" || mt == "message/global":
		return Content{Message: true}
	}
	return Content{}
}

// firstContentType parses the first Content-Type field of a header
// section (names read loosely); ok is false without one, or when its
// media type does not parse.
func firstContentType(header []byte) (mt string, params map[string]string, ok bool) {
	for f := range Fields(header) {
		if !strings.EqualFold(string(f.LooseName()), "Content-Type") {
			continue
		}
		mt, params, err := mime.ParseMediaType(f.Value())
		if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
			return "", nil, false
		}
		return mt, params, true
	}
	return "", nil, false
}
