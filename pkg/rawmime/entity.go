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
	// Multipart is the body split into parts, with offsets relative to
	// BodyStart; nil for a leaf.
	Multipart *Multipart
	// Parts are the entities of Multipart's parts, in order.
	Parts []*Entity
}

// Options tunes Parse.
type Options struct {
	// Boundary returns the boundary of a multipart entity from its
	// header section, or "" for a leaf; nil means MultipartBoundary.
	Boundary func(header []byte) string
	// Padding is the delimiter rule (see Padding).
	Padding Padding
	// MaxDepth bounds the nesting of multiparts and MaxParts the
	// number of entities, against hostile input: deeper or further
	// entities are leaves. Zero means 32 and 1000.
	MaxDepth, MaxParts int
}

// Parse reads b as a MIME entity and, recursively, the parts of its
// multipart bodies. Nothing in b makes it fail: a header section without
// an empty line is all header, a multipart body without a delimiter a
// leaf.
func Parse(b []byte, o *Options) *Entity {
	p := parser{b: b, boundary: MultipartBoundary, maxDepth: 32, maxParts: 1000}
	if o != nil {
		if o.Boundary != nil {
			p.boundary = o.Boundary
		}
		p.pad = o.Padding
		if o.MaxDepth > 0 {
			p.maxDepth = o.MaxDepth
		}
		if o.MaxParts > 0 {
			p.maxParts = o.MaxParts
		}
	}
	return p.entity(0, len(b), 0)
}

type parser struct {
	b                  []byte
	boundary           func([]byte) string
	pad                Padding
	maxDepth, maxParts int
	parts              int
}

func (p *parser) entity(start, end, depth int) *Entity {
	p.parts++
	fields, blank, _ := SplitHeader(p.b[start:end])
	e := &Entity{Start: start, BodyStart: start + len(fields) + len(blank), End: end}
	if depth >= p.maxDepth {
		return e
	}
	bd := p.boundary(p.b[start:e.BodyStart])
	if bd == "" {
		return e
	}
	m := SplitMultipart(p.b[e.BodyStart:end], bd, p.pad)
	if len(m.Parts) == 0 {
		return e
	}
	e.Multipart = &m
	for _, part := range m.Parts {
		if p.parts >= p.maxParts {
			break
		}
		e.Parts = append(e.Parts, p.entity(e.BodyStart+part.Start, e.BodyStart+part.End, depth+1))
	}
	return e
}

// MultipartBoundary is the boundary parameter of the first Content-Type
// field of a header section when its media type is multipart/*, else "".
func MultipartBoundary(header []byte) string {
	for f := range Fields(header) {
		if !strings.EqualFold(string(f.LooseName()), "Content-Type") {
			continue
		}
		mt, params, err := mime.ParseMediaType(f.Value())
		if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
			return ""
		}
		if !strings.HasPrefix(mt, "multipart/") {
			return ""
		}
		return params["boundary"]
	}
	return ""
}
