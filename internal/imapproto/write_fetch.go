package imapproto

// FETCH responses: * seq FETCH (items), with ENVELOPE (RFC 3501 §7.4.2,
// group syntax included), BODY and BODYSTRUCTURE (both forms, nested
// multiparts and message/rfc822 parts), body sections with their origin,
// the obsolete RFC822 items, BINARY (RFC 3516) and MODSEQ (RFC 7162).

import (
	"io"
	"mime"
	"strconv"
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
	b := append(e.avail(24), "* "...)
	b = appendUint32(b, seq)
	e.w.Write(append(b, " FETCH ("...))
}

// closeLiteral ends a literal the caller left open (padded, with an
// error) before the next item, rather than have the item in it.
func (w *FetchResponseWriter) closeLiteral() {
	if w.e.lit.open {
		w.e.lit.Close()
	}
}

// item begins an item: its separator and name (with its trailing space).
func (w *FetchResponseWriter) item(name string) {
	w.closeLiteral()
	if w.n > 0 {
		w.e.sp()
	}
	w.n++
	w.e.raw(name)
}

// itemBuf begins an item of at most size bytes in the writer's free
// space, or in the Encoder's scratch buffer when the free space is too
// small (the item is then copied in by the Write that ends it).
func (w *FetchResponseWriter) itemBuf(name string, size int) []byte {
	w.closeLiteral()
	b := w.e.avail(size + len(name) + 1)
	if w.n > 0 {
		b = append(b, ' ')
	}
	w.n++
	return append(b, name...)
}

func (w *FetchResponseWriter) WriteUID(uid imap.UID) {
	b := w.itemBuf("UID ", 10)
	w.e.w.Write(appendUint32(b, uint32(uid)))
}

func (w *FetchResponseWriter) WriteFlags(flags []imap.Flag) {
	size := 1
	for _, f := range flags {
		size += len(f) + 1
	}
	b := w.itemBuf("FLAGS (", size)
	first := true
	for _, f := range flags {
		if !isFlag(string(f)) || (w.e.rev2 && isRecent(f)) {
			continue // see Encoder.flags
		}
		if !first {
			b = append(b, ' ')
		}
		first = false
		b = append(b, f...)
	}
	w.e.w.Write(append(b, ')'))
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

// WriteBodyStructureWire writes BODYSTRUCTURE with a value that
// BodyStructureWire made (kept since the message was stored), as it is.
// Only for a FETCH that asked for BODYSTRUCTURE, not BODY.
func (w *FetchResponseWriter) WriteBodyStructureWire(wire []byte) {
	w.item("BODYSTRUCTURE ")
	w.e.w.Write(wire)
}

// BodyStructureWire returns BODYSTRUCTURE's value (the extended form) for
// bs when every session would be written the same bytes and they fit on
// the response's line: printable ASCII only. Otherwise (text that is not
// ASCII, which UTF8=ACCEPT and IMAP4rev2 sessions get as UTF-8 and others
// as encoded words or literals; a literal) it returns nil, and the
// structure has to be written per session (WriteBodyStructure).
func BodyStructureWire(bs imap.BodyStructure) []byte {
	var plain, utf Encoder
	utf.utf8, utf.rev2 = true, true
	b := plain.appendBody(nil, bs, true)
	if !IsWireText(b) || string(utf.appendBody(nil, bs, true)) != string(b) {
		return nil
	}
	return b
}

// IsWireText says whether b is printable ASCII only (space to tilde), as
// a value kept for WriteBodyStructureWire must be.
func IsWireText(b []byte) bool {
	for _, c := range b {
		if c < ' ' || c > '~' {
			return false
		}
	}
	return true
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
	b := e.avail(11 * len(part))
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

// envelope writes an ENVELOPE (RFC 3501 §7.4.2).
func (e *Encoder) envelope(env *imap.Envelope) {
	e.buf = e.appendEnvelope(e.buf[:0], env)
	e.w.Write(e.buf)
}

// appendEnvelope appends an ENVELOPE. Sender and Reply-To default to
// From when empty, as the RFC has the server do. Text (subject, names)
// that is not ASCII goes as RFC 2047 encoded-words unless the client
// enabled UTF8=ACCEPT.
func (e *Encoder) appendEnvelope(b []byte, env *imap.Envelope) []byte {
	if env == nil {
		return append(b, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"...)
	}
	b = append(b, '(')
	if env.Date.IsZero() {
		b = append(b, "NIL"...)
	} else {
		b = append(b, '"')
		b = appendEnvelopeDate(b, env.Date)
		b = append(b, '"')
	}
	b = append(b, ' ')
	b = e.appendText(b, env.Subject)
	sender, replyTo := env.Sender, env.ReplyTo
	if len(sender) == 0 {
		sender = env.From
	}
	if len(replyTo) == 0 {
		replyTo = env.From
	}
	b = append(b, ' ')
	b = e.appendAddressList(b, env.From)
	b = append(b, ' ')
	b = e.appendAddressList(b, sender)
	b = append(b, ' ')
	b = e.appendAddressList(b, replyTo)
	b = append(b, ' ')
	b = e.appendAddressList(b, env.To)
	b = append(b, ' ')
	b = e.appendAddressList(b, env.Cc)
	b = append(b, ' ')
	b = e.appendAddressList(b, env.Bcc)
	b = append(b, ' ')
	b = e.appendMsgIDs(b, env.InReplyTo, "")
	b = append(b, ' ')
	if env.MessageID == "" {
		b = append(b, "NIL"...)
	} else {
		b = e.appendMsgIDs(b, nil, env.MessageID)
	}
	return append(b, ')')
}

// appendText appends human-readable header text as an nstring: as it is
// when ASCII (or the client takes UTF-8), else as encoded-words.
func (e *Encoder) appendText(b []byte, s string) []byte {
	if s == "" {
		return append(b, "NIL"...)
	}
	if !e.utf8 && !isASCII(s) {
		s = mime.QEncoding.Encode("utf-8", s)
	}
	return e.appendString(b, s)
}

// appendAddressList appends an envelope's address list, or NIL. go-imap's
// group markers become RFC 3501's: a start of group (Host "", Mailbox the
// group name) is (NIL NIL "name" NIL), an end of group (NIL NIL NIL NIL).
func (e *Encoder) appendAddressList(b []byte, l []imap.Address) []byte {
	if len(l) == 0 {
		return append(b, "NIL"...)
	}
	b = append(b, '(')
	for i := range l {
		a := &l[i]
		switch {
		case a.IsGroupEnd():
			b = append(b, "(NIL NIL NIL NIL)"...)
		case a.IsGroupStart():
			b = append(b, "(NIL NIL "...)
			b = e.appendText(b, a.Mailbox)
			b = append(b, " NIL)"...)
		default:
			b = append(b, '(')
			b = e.appendText(b, a.Name)
			b = append(b, " NIL "...)
			b = e.appendNString(b, a.Mailbox)
			b = append(b, ' ')
			b = e.appendNString(b, a.Host)
			b = append(b, ')')
		}
	}
	return append(b, ')')
}

// appendMsgIDs appends message identifiers in angle brackets, separated
// by spaces: ids, or the one id when ids is nil; NIL when there are none.
func (e *Encoder) appendMsgIDs(b []byte, ids []string, id string) []byte {
	if ids == nil && id != "" {
		ids = e.one[:1]
		ids[0] = id
	}
	if len(ids) == 0 {
		return append(b, "NIL"...)
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
		b = append(b, '"')
		for i, id := range ids {
			if i > 0 {
				b = append(b, ' ')
			}
			b = append(b, '<')
			b = appendQuotedBody(b, id, '>')
		}
		return append(b, '"')
	}
	b = append(b, '{')
	b = strconv.AppendInt(b, int64(n-1), 10)
	b = append(b, "}\r\n"...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, '<')
		b = append(b, id...)
		b = append(b, '>')
	}
	return b
}

// emptyPart stands for a part the session left out (a multipart without
// children, a message/rfc822 without its body): the grammar needs one.
var emptyPart = &imap.BodyStructureSinglePart{Type: "text", Subtype: "plain", Encoding: "7bit", Text: &imap.BodyStructureText{}}

// bodyStructure writes a body (RFC 3501 §7.4.2, RFC 9051 §7.5.2):
// extended is BODYSTRUCTURE's form, with the extension data.
func (e *Encoder) bodyStructure(bs imap.BodyStructure, extended bool) {
	e.buf = e.appendBody(e.buf[:0], bs, extended)
	e.w.Write(e.buf)
}

func (e *Encoder) appendBody(b []byte, bs imap.BodyStructure, extended bool) []byte {
	switch bs := bs.(type) {
	case *imap.BodyStructureSinglePart:
		if bs != nil {
			return e.appendBody1part(b, bs, extended)
		}
	case *imap.BodyStructureMultiPart:
		if bs != nil {
			return e.appendBodyMpart(b, bs, extended)
		}
	}
	return e.appendBody1part(b, emptyPart, extended)
}

func (e *Encoder) appendBody1part(b []byte, bs *imap.BodyStructureSinglePart, extended bool) []byte {
	b = append(b, '(')
	b = e.appendString(b, bs.Type)
	b = append(b, ' ')
	b = e.appendString(b, bs.Subtype)
	b = append(b, ' ')
	b = e.appendParams(b, bs.Params)
	b = append(b, ' ')
	b = e.appendNString(b, bs.ID)
	b = append(b, ' ')
	b = e.appendText(b, bs.Description)
	b = append(b, ' ')
	if bs.Encoding == "" {
		b = append(b, `"7bit"`...)
	} else {
		b = e.appendString(b, bs.Encoding)
	}
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(bs.Size), 10)
	switch {
	case equalFoldASCII(bs.Type, "message") && (equalFoldASCII(bs.Subtype, "rfc822") || equalFoldASCII(bs.Subtype, "global")):
		msg := bs.MessageRFC822
		if msg == nil {
			msg = &imap.BodyStructureMessageRFC822{}
		}
		b = append(b, ' ')
		b = e.appendEnvelope(b, msg.Envelope)
		b = append(b, ' ')
		b = e.appendBody(b, msg.BodyStructure, extended)
		b = append(b, ' ')
		b = strconv.AppendInt(b, max(msg.NumLines, 0), 10)
	case equalFoldASCII(bs.Type, "text"):
		b = append(b, ' ')
		if bs.Text != nil {
			b = strconv.AppendInt(b, max(bs.Text.NumLines, 0), 10)
		} else {
			b = append(b, '0')
		}
	}
	if extended {
		// body-fld-md5 is NIL: no server computes it.
		if ext := bs.Extended; ext != nil {
			b = append(b, " NIL "...)
			b = e.appendDisposition(b, ext.Disposition)
			b = append(b, ' ')
			b = e.appendLanguages(b, ext.Language)
			b = append(b, ' ')
			b = e.appendNString(b, ext.Location)
		} else {
			b = append(b, " NIL NIL NIL NIL"...)
		}
	}
	return append(b, ')')
}

func (e *Encoder) appendBodyMpart(b []byte, bs *imap.BodyStructureMultiPart, extended bool) []byte {
	b = append(b, '(')
	if len(bs.Children) == 0 {
		b = e.appendBody1part(b, emptyPart, extended)
	}
	// No space between the parts (RFC 3501's body-type-mpart).
	for _, c := range bs.Children {
		b = e.appendBody(b, c, extended)
	}
	b = append(b, ' ')
	if bs.Subtype == "" {
		b = append(b, `"mixed"`...)
	} else {
		b = e.appendString(b, bs.Subtype)
	}
	if extended {
		if ext := bs.Extended; ext != nil {
			b = append(b, ' ')
			b = e.appendParams(b, ext.Params)
			b = append(b, ' ')
			b = e.appendDisposition(b, ext.Disposition)
			b = append(b, ' ')
			b = e.appendLanguages(b, ext.Language)
			b = append(b, ' ')
			b = e.appendNString(b, ext.Location)
		} else {
			b = append(b, " NIL NIL NIL NIL"...)
		}
	}
	return append(b, ')')
}

// appendParams appends body-fld-param: ("name" "value" ...) sorted by
// name, or NIL.
func (e *Encoder) appendParams(b []byte, params map[string]string) []byte {
	if len(params) == 0 {
		return append(b, "NIL"...)
	}
	b = append(b, '(')
	if len(params) == 1 {
		for k, v := range params {
			b = e.appendString(b, k)
			b = append(b, ' ')
			b = e.appendString(b, v)
		}
		return append(b, ')')
	}
	for i, k := range e.sortedKeys(params) {
		if i > 0 {
			b = append(b, ' ')
		}
		b = e.appendString(b, k)
		b = append(b, ' ')
		b = e.appendString(b, params[k])
	}
	return append(b, ')')
}

func (e *Encoder) appendDisposition(b []byte, d *imap.BodyStructureDisposition) []byte {
	if d == nil || d.Value == "" {
		return append(b, "NIL"...)
	}
	b = append(b, '(')
	b = e.appendString(b, d.Value)
	b = append(b, ' ')
	b = e.appendParams(b, d.Params)
	return append(b, ')')
}

// appendLanguages appends body-fld-lang: NIL, one string, or a list.
func (e *Encoder) appendLanguages(b []byte, l []string) []byte {
	switch len(l) {
	case 0:
		return append(b, "NIL"...)
	case 1:
		return e.appendString(b, l[0])
	}
	b = append(b, '(')
	for i, s := range l {
		if i > 0 {
			b = append(b, ' ')
		}
		b = e.appendString(b, s)
	}
	return append(b, ')')
}
