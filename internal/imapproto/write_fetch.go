package imapproto

// FETCH responses: * seq FETCH (items), with ENVELOPE (RFC 3501 §7.4.2,
// group syntax included), BODY and BODYSTRUCTURE (both forms, nested
// multiparts and message/rfc822 parts), body sections with their origin,
// the obsolete RFC822 items, BINARY (RFC 3516) and MODSEQ (RFC 7162).

import (
	"io"
	"mime"
	"time"

	"github.com/emersion/go-imap/v2"
)

// FetchWriter writes a FETCH's (or STORE's) responses.
type FetchWriter struct {
	c    *Conn
	opts *FetchOptions // nil for STORE

	rw FetchResponseWriter // the response being written: one at a time
}

// Updates is for the untagged responses a FETCH or STORE sends besides
// its FETCHes (VANISHED (EARLIER), FLAGS before a new keyword).
func (w *FetchWriter) Updates() *UpdateWriter { return &UpdateWriter{c: w.c} }

// CreateMessage begins * seq FETCH (...). Until its Close, nothing else
// is written on the connection. The FetchResponseWriter is the
// FetchWriter's own, valid until Close.
func (w *FetchWriter) CreateMessage(seq uint32) *FetchResponseWriter {
	e := w.c.beginResponse()
	w.rw = FetchResponseWriter{w: w, e: e}
	e.startFetch(seq)
	return &w.rw
}

// FetchResponseWriter writes the items of one FETCH response.
type FetchResponseWriter struct {
	w *FetchWriter
	e *Encoder
	n int // items written
}

func (e *Encoder) startFetch(seq uint32) {
	b := append(e.w.AvailableBuffer(), "* "...)
	b = appendUint32(b, seq)
	e.w.Write(append(b, " FETCH ("...))
}

// item begins an item: its separator and name (with its trailing space).
func (w *FetchResponseWriter) item(name string) {
	if w.n > 0 {
		w.e.sp()
	}
	w.n++
	w.e.raw(name)
}

func (w *FetchResponseWriter) WriteUID(uid imap.UID) {
	w.item("UID ")
	w.e.number(uint32(uid))
}

func (w *FetchResponseWriter) WriteFlags(flags []imap.Flag) {
	w.item("FLAGS ")
	w.e.flags(flags)
}

func (w *FetchResponseWriter) WriteRFC822Size(size int64) {
	w.item("RFC822.SIZE ")
	w.e.int64(size)
}

func (w *FetchResponseWriter) WriteInternalDate(t time.Time) {
	w.item("INTERNALDATE ")
	w.e.dateTime(t)
}

// WriteModSeq writes MODSEQ (n) (RFC 7162 §3.1.4).
func (w *FetchResponseWriter) WriteModSeq(modSeq uint64) {
	w.item("MODSEQ (")
	w.e.number64(modSeq)
	w.e.byte(')')
}

func (w *FetchResponseWriter) WriteEnvelope(env *imap.Envelope) {
	w.item("ENVELOPE ")
	w.e.envelope(env)
}

// WriteBodyStructure writes BODYSTRUCTURE (the extended form) when the
// FETCH asked for it, else BODY (the non-extensible form).
func (w *FetchResponseWriter) WriteBodyStructure(bs imap.BodyStructure) {
	extended := w.w != nil && w.w.opts != nil && w.w.opts.BodyStructure != nil && w.w.opts.BodyStructure.Extended
	if extended {
		w.item("BODYSTRUCTURE ")
	} else {
		w.item("BODY ")
	}
	w.e.bodyStructure(bs, extended)
}

// WriteBodySection writes BODY[section]<origin> (or RFC822, RFC822.HEADER,
// RFC822.TEXT for the obsolete items) followed by a literal of size bytes
// that the caller writes and closes.
func (w *FetchResponseWriter) WriteBodySection(section *imap.FetchItemBodySection, size int64) io.WriteCloser {
	name := ""
	if section == nil {
		section = &imap.FetchItemBodySection{}
	} else if w.w != nil && w.w.opts != nil {
		switch o := w.w.opts; section {
		case o.RFC822:
			name = "RFC822 "
		case o.RFC822Header:
			name = "RFC822.HEADER "
		case o.RFC822Text:
			name = "RFC822.TEXT "
		}
	}
	if name != "" {
		w.item(name)
	} else {
		w.item("BODY")
		w.e.section(section)
		w.e.sp()
	}
	return w.e.literal(size, false)
}

// section writes [section-spec] and <origin> of a body section
// (RFC 3501 §6.4.5: the response carries the origin of a partial, not
// its length).
func (e *Encoder) section(s *imap.FetchItemBodySection) {
	e.byte('[')
	e.part(s.Part)
	if s.Specifier != imap.PartSpecifierNone {
		if len(s.Part) > 0 {
			e.byte('.')
		}
		e.atom(string(s.Specifier))
		if s.Specifier == imap.PartSpecifierHeader {
			switch {
			case len(s.HeaderFields) > 0:
				e.raw(".FIELDS ")
				e.headerList(s.HeaderFields)
			case len(s.HeaderFieldsNot) > 0:
				e.raw(".FIELDS.NOT ")
				e.headerList(s.HeaderFieldsNot)
			}
		}
	}
	e.byte(']')
	e.origin(s.Partial)
}

func (e *Encoder) origin(p *imap.SectionPartial) {
	if p == nil {
		return
	}
	e.byte('<')
	e.int64(p.Offset)
	e.byte('>')
}

func (e *Encoder) headerList(names []string) {
	e.byte('(')
	for i, n := range names {
		if i > 0 {
			e.sp()
		}
		e.astring(n)
	}
	e.byte(')')
}

// part writes a section part: 1.2.3.
func (e *Encoder) part(part []int) {
	b := e.w.AvailableBuffer()
	for i, p := range part {
		if i > 0 {
			b = append(b, '.')
		}
		if p < 0 {
			p = 0
		}
		b = appendUint32(b, uint32(p))
	}
	e.w.Write(b)
}

// WriteBinarySection writes BINARY[part]<origin> and a literal of size
// bytes that the caller writes and closes. The origin is there whenever
// the client asked for a partial (RFC 3516 §4.2). Content with NUL
// bytes goes through WriteBinarySection8.
func (w *FetchResponseWriter) WriteBinarySection(section *imap.FetchItemBinarySection, size int64) io.WriteCloser {
	return w.binarySection(section, size, false)
}

// WriteBinarySection8 is WriteBinarySection with a literal8 (~{n}), which
// content with NUL bytes needs (RFC 3516 §4.3).
func (w *FetchResponseWriter) WriteBinarySection8(section *imap.FetchItemBinarySection, size int64) io.WriteCloser {
	return w.binarySection(section, size, true)
}

func (w *FetchResponseWriter) binarySection(section *imap.FetchItemBinarySection, size int64, lit8 bool) io.WriteCloser {
	w.item("BINARY[")
	if section != nil {
		w.e.part(section.Part)
	}
	w.e.byte(']')
	if section != nil {
		w.e.origin(section.Partial)
	}
	w.e.sp()
	return w.e.literal(size, lit8)
}

// WriteBinarySectionSize writes BINARY.SIZE[part] n.
func (w *FetchResponseWriter) WriteBinarySectionSize(section *imap.FetchItemBinarySectionSize, size uint32) {
	w.item("BINARY.SIZE[")
	if section != nil {
		w.e.part(section.Part)
	}
	w.e.raw("] ")
	w.e.number(size)
}

// Close ends the response ")" and releases the connection. A literal
// left open is closed first (padded: see literalWriter).
func (w *FetchResponseWriter) Close() error {
	if w.e == nil {
		return nil
	}
	err := w.e.endFetch()
	w.e = nil
	if w.w != nil && w.w.c != nil {
		if cerr := w.w.c.endResponse(); err == nil {
			err = cerr
		}
	}
	return err
}

func (e *Encoder) endFetch() error {
	err := e.lit.Close()
	e.raw(")\r\n")
	if err != nil {
		return err
	}
	return e.result()
}

// envelope writes an ENVELOPE (RFC 3501 §7.4.2). Sender and Reply-To
// default to From when empty, as the RFC has the server do. Text
// (subject, names) that is not ASCII goes as RFC 2047 encoded-words
// unless the client enabled UTF8=ACCEPT.
func (e *Encoder) envelope(env *imap.Envelope) {
	if env == nil {
		e.raw("(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)")
		return
	}
	e.byte('(')
	if env.Date.IsZero() {
		e.nil_()
	} else {
		b := append(e.w.AvailableBuffer(), '"')
		b = env.Date.AppendFormat(b, envelopeLayout)
		e.w.Write(append(b, '"'))
	}
	e.sp()
	e.textString(env.Subject)
	sender, replyTo := env.Sender, env.ReplyTo
	if len(sender) == 0 {
		sender = env.From
	}
	if len(replyTo) == 0 {
		replyTo = env.From
	}
	e.sp()
	e.addressList(env.From)
	e.sp()
	e.addressList(sender)
	e.sp()
	e.addressList(replyTo)
	e.sp()
	e.addressList(env.To)
	e.sp()
	e.addressList(env.Cc)
	e.sp()
	e.addressList(env.Bcc)
	e.sp()
	e.msgIDs(env.InReplyTo)
	e.sp()
	if env.MessageID == "" {
		e.nil_()
	} else {
		e.msgIDs1(env.MessageID)
	}
	e.byte(')')
}

// textString writes human-readable header text as an nstring: as it is
// when ASCII (or the client takes UTF-8), else as encoded-words.
func (e *Encoder) textString(s string) {
	if s == "" {
		e.nil_()
		return
	}
	if !e.utf8 && !isASCII(s) {
		s = mime.QEncoding.Encode("utf-8", s)
	}
	e.string(s)
}

// addressList writes an envelope's address list, or NIL. go-imap's group
// markers become RFC 3501's: a start of group (Host "", Mailbox the group
// name) is (NIL NIL "name" NIL), an end of group (NIL NIL NIL NIL).
func (e *Encoder) addressList(l []imap.Address) {
	if len(l) == 0 {
		e.nil_()
		return
	}
	e.byte('(')
	for i := range l {
		a := &l[i]
		switch {
		case a.IsGroupEnd():
			e.raw("(NIL NIL NIL NIL)")
		case a.IsGroupStart():
			e.raw("(NIL NIL ")
			e.textString(a.Mailbox)
			e.raw(" NIL)")
		default:
			e.byte('(')
			e.textString(a.Name)
			e.raw(" NIL ")
			e.nstring(a.Mailbox)
			e.sp()
			e.nstring(a.Host)
			e.byte(')')
		}
	}
	e.byte(')')
}

// msgIDs writes In-Reply-To's message identifiers: "<a> <b>", or NIL.
func (e *Encoder) msgIDs(ids []string) {
	switch len(ids) {
	case 0:
		e.nil_()
		return
	case 1:
		e.msgIDs1(ids[0])
		return
	}
	n := 0
	ok := true
	for _, id := range ids {
		n += len(id) + 3
		if !e.quotable(id) {
			ok = false
		}
	}
	if ok && n <= maxQuoted {
		e.byte('"')
		for i, id := range ids {
			if i > 0 {
				e.sp()
			}
			e.byte('<')
			e.quotedBody(id)
			e.byte('>')
		}
		e.byte('"')
		return
	}
	var b []byte
	for i, id := range ids {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, '<')
		b = append(b, id...)
		b = append(b, '>')
	}
	e.string(string(b))
}

func (e *Encoder) msgIDs1(id string) {
	if len(id)+2 <= maxQuoted && e.quotable(id) {
		e.byte('"')
		e.byte('<')
		e.quotedBody(id)
		e.raw(">\"")
		return
	}
	e.string("<" + id + ">")
}

// emptyPart stands for a part the session left out (a multipart without
// children, a message/rfc822 without its body): the grammar needs one.
var emptyPart = &imap.BodyStructureSinglePart{Type: "text", Subtype: "plain", Encoding: "7bit", Text: &imap.BodyStructureText{}}

// bodyStructure writes a body (RFC 3501 §7.4.2, RFC 9051 §7.5.2):
// extended is BODYSTRUCTURE's form, with the extension data.
func (e *Encoder) bodyStructure(bs imap.BodyStructure, extended bool) {
	switch bs := bs.(type) {
	case *imap.BodyStructureSinglePart:
		if bs == nil {
			e.body1part(emptyPart, extended)
			return
		}
		e.body1part(bs, extended)
	case *imap.BodyStructureMultiPart:
		if bs == nil {
			e.body1part(emptyPart, extended)
			return
		}
		e.bodyMpart(bs, extended)
	default:
		e.body1part(emptyPart, extended)
	}
}

func (e *Encoder) body1part(bs *imap.BodyStructureSinglePart, extended bool) {
	e.byte('(')
	e.string(bs.Type)
	e.sp()
	e.string(bs.Subtype)
	e.sp()
	e.params(bs.Params)
	e.sp()
	e.nstring(bs.ID)
	e.sp()
	e.textString(bs.Description)
	e.sp()
	if bs.Encoding == "" {
		e.raw(`"7bit"`)
	} else {
		e.string(bs.Encoding)
	}
	e.sp()
	e.number(bs.Size)
	switch {
	case equalFoldASCII(bs.Type, "message") && (equalFoldASCII(bs.Subtype, "rfc822") || equalFoldASCII(bs.Subtype, "global")):
		msg := bs.MessageRFC822
		if msg == nil {
			msg = &imap.BodyStructureMessageRFC822{}
		}
		e.sp()
		e.envelope(msg.Envelope)
		e.sp()
		e.bodyStructure(msg.BodyStructure, extended)
		e.sp()
		e.int64(msg.NumLines)
	case equalFoldASCII(bs.Type, "text"):
		e.sp()
		if bs.Text != nil {
			e.int64(bs.Text.NumLines)
		} else {
			e.byte('0')
		}
	}
	if extended {
		// body-fld-md5 is NIL: no server computes it.
		if ext := bs.Extended; ext != nil {
			e.raw(" NIL ")
			e.disposition(ext.Disposition)
			e.sp()
			e.languages(ext.Language)
			e.sp()
			e.nstring(ext.Location)
		} else {
			e.raw(" NIL NIL NIL NIL")
		}
	}
	e.byte(')')
}

func (e *Encoder) bodyMpart(bs *imap.BodyStructureMultiPart, extended bool) {
	e.byte('(')
	if len(bs.Children) == 0 {
		e.body1part(emptyPart, extended)
	}
	// No space between the parts (RFC 3501's body-type-mpart).
	for _, c := range bs.Children {
		e.bodyStructure(c, extended)
	}
	e.sp()
	if bs.Subtype == "" {
		e.raw(`"mixed"`)
	} else {
		e.string(bs.Subtype)
	}
	if extended {
		if ext := bs.Extended; ext != nil {
			e.sp()
			e.params(ext.Params)
			e.sp()
			e.disposition(ext.Disposition)
			e.sp()
			e.languages(ext.Language)
			e.sp()
			e.nstring(ext.Location)
		} else {
			e.raw(" NIL NIL NIL NIL")
		}
	}
	e.byte(')')
}

// params writes body-fld-param: ("name" "value" ...) sorted by name, or
// NIL.
func (e *Encoder) params(params map[string]string) {
	if len(params) == 0 {
		e.nil_()
		return
	}
	e.byte('(')
	for i, k := range e.sortedKeys(params) {
		if i > 0 {
			e.sp()
		}
		e.string(k)
		e.sp()
		e.string(params[k])
	}
	e.byte(')')
}

func (e *Encoder) disposition(d *imap.BodyStructureDisposition) {
	if d == nil || d.Value == "" {
		e.nil_()
		return
	}
	e.byte('(')
	e.string(d.Value)
	e.sp()
	e.params(d.Params)
	e.byte(')')
}

// languages writes body-fld-lang: NIL, one string, or a list of them.
func (e *Encoder) languages(l []string) {
	switch len(l) {
	case 0:
		e.nil_()
	case 1:
		e.string(l[0])
	default:
		e.byte('(')
		for i, s := range l {
			if i > 0 {
				e.sp()
			}
			e.string(s)
		}
		e.byte(')')
	}
}
