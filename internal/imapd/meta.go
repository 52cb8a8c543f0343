package imapd

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/bitmask-go/bitmask/internal/imapproto"
)

// Meta is what Indexer computes once per message, when it is stored, so
// that FETCH ENVELOPE, BODYSTRUCTURE and header searches never parse the
// message again. Its binary form (version 2; integers are varints as in
// encoding/binary, strings are a length and bytes):
//
//	meta      = version(0x02) flags(byte, bit 0: header truncated)
//	            uvarint(len(envelope)) envelope
//	            uvarint(len(structure)) structure
//	            uvarint(len(wire)) wire    ; BODYSTRUCTURE as written, or empty
//	            header                     ; rest: the raw header block
//	envelope  = has-date(byte) [varint(unix seconds) varint(zone offset seconds)]
//	            subject 6*addresses        ; from sender reply-to to cc bcc
//	            uvarint(n) n*in-reply-to message-id
//	addresses = uvarint(n) n*(name mailbox host)
//	structure = 0x01 single / 0x02 multi
//	single    = type subtype params id description encoding uvarint(size)
//	            kind(byte: 0 other, 1 text, 2 message)
//	            [text: uvarint(lines)] [message: envelope structure uvarint(lines)]
//	            disposition language location
//	multi     = uvarint(n>0) n*structure subtype params disposition language location
//	params    = uvarint(n) n*(key value)
//	disposition = 0x00 / 0x01 value params
//	language  = uvarint(n) n*string
//
// wire is the value of FETCH BODYSTRUCTURE as imapproto writes it, when
// it is the same for every session and printable ASCII
// (imapproto.BodyStructureWire): FETCH BODYSTRUCTURE then copies it
// without decoding the structure. Version 1 is version 2 without the wire
// field; it still decodes (messages stored before version 2), and FETCH
// then writes the decoded structure.
//
// The header block is kept up to 64 KiB (longer ones are cut and flagged,
// and then header sections and searches read the message instead).
// Decoding checks every length against the input and nesting depth, so a
// damaged value is an error, never a panic; the server then recomputes
// from the message.
type Meta struct {
	Envelope        *imap.Envelope
	BodyStructure   imap.BodyStructure
	Header          []byte
	HeaderTruncated bool
	// BodyStructureWire is BODYSTRUCTURE's value as written (see above),
	// nil when the session has to write BodyStructure itself.
	BodyStructureWire []byte
}

const (
	metaVersion   = 2
	metaVersion1  = 1 // without the wire field
	maxMetaHeader = 64 << 10
	maxMetaDepth  = maxMIMEDepth*2 + 2 // a message/rfc822 level counts twice
)

// Indexer is the mailstore.Indexer of the IMAP server: it computes a
// message's envelope, body structure and header block (see Meta).
func Indexer(raw []byte) ([]byte, error) {
	return computeMeta(raw).encode(), nil
}

func computeMeta(raw []byte) *Meta {
	top := splitEntity(raw)
	m := &Meta{
		Envelope:      envelopeOf(top.header),
		BodyStructure: bodyStructure(raw),
		Header:        top.header,
	}
	m.BodyStructureWire = imapproto.BodyStructureWire(m.BodyStructure)
	if len(m.Header) > maxMetaHeader {
		m.Header = m.Header[:maxMetaHeader]
		m.HeaderTruncated = true
	}
	return m
}

func (m *Meta) encode() []byte {
	var env, bs encoder
	env.envelope(m.Envelope)
	bs.structure(m.BodyStructure)
	out := make([]byte, 0, 2+3*binary.MaxVarintLen32+len(env.b)+len(bs.b)+len(m.BodyStructureWire)+len(m.Header))
	var flags byte
	if m.HeaderTruncated {
		flags |= 1
	}
	out = append(out, metaVersion, flags)
	out = binary.AppendUvarint(out, uint64(len(env.b)))
	out = append(out, env.b...)
	out = binary.AppendUvarint(out, uint64(len(bs.b)))
	out = append(out, bs.b...)
	out = binary.AppendUvarint(out, uint64(len(m.BodyStructureWire)))
	out = append(out, m.BodyStructureWire...)
	return append(out, m.Header...)
}

type encoder struct{ b []byte }

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }

func (e *encoder) envelope(env *imap.Envelope) {
	if env == nil {
		env = &imap.Envelope{}
	}
	if env.Date.IsZero() {
		e.b = append(e.b, 0)
	} else {
		_, off := env.Date.Zone()
		e.b = append(e.b, 1)
		e.varint(env.Date.Unix())
		e.varint(int64(off))
	}
	e.str(env.Subject)
	for _, l := range [][]imap.Address{env.From, env.Sender, env.ReplyTo, env.To, env.Cc, env.Bcc} {
		e.uvarint(uint64(len(l)))
		for _, a := range l {
			e.str(a.Name)
			e.str(a.Mailbox)
			e.str(a.Host)
		}
	}
	e.strs(env.InReplyTo)
	e.str(env.MessageID)
}

func (e *encoder) strs(l []string) {
	e.uvarint(uint64(len(l)))
	for _, s := range l {
		e.str(s)
	}
}

func (e *encoder) params(p map[string]string) {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.uvarint(uint64(len(keys)))
	for _, k := range keys {
		e.str(k)
		e.str(p[k])
	}
}

func (e *encoder) disposition(d *imap.BodyStructureDisposition) {
	if d == nil {
		e.b = append(e.b, 0)
		return
	}
	e.b = append(e.b, 1)
	e.str(d.Value)
	e.params(d.Params)
}

func (e *encoder) structure(bs imap.BodyStructure) {
	switch bs := bs.(type) {
	case *imap.BodyStructureMultiPart:
		e.b = append(e.b, 2)
		e.uvarint(uint64(len(bs.Children)))
		for _, c := range bs.Children {
			e.structure(c)
		}
		e.str(bs.Subtype)
		ext := bs.Extended
		if ext == nil {
			ext = &imap.BodyStructureMultiPartExt{}
		}
		e.params(ext.Params)
		e.disposition(ext.Disposition)
		e.strs(ext.Language)
		e.str(ext.Location)
	case *imap.BodyStructureSinglePart:
		e.b = append(e.b, 1)
		e.str(bs.Type)
		e.str(bs.Subtype)
		e.params(bs.Params)
		e.str(bs.ID)
		e.str(bs.Description)
		e.str(bs.Encoding)
		e.uvarint(uint64(bs.Size))
		switch {
		case bs.MessageRFC822 != nil:
			e.b = append(e.b, 2)
			e.envelope(bs.MessageRFC822.Envelope)
			e.structure(bs.MessageRFC822.BodyStructure)
			e.uvarint(uint64(bs.MessageRFC822.NumLines))
		case bs.Text != nil:
			e.b = append(e.b, 1)
			e.uvarint(uint64(bs.Text.NumLines))
		default:
			e.b = append(e.b, 0)
		}
		ext := bs.Extended
		if ext == nil {
			ext = &imap.BodyStructureSinglePartExt{}
		}
		e.disposition(ext.Disposition)
		e.strs(ext.Language)
		e.str(ext.Location)
	default:
		// Never produced by structure.build; keep the encoding valid.
		e.structure(emptyTextPart())
	}
}

// Which parts of a Meta to decode.
const (
	metaEnvelope = 1 << iota
	metaStructure
	metaHeader
	// metaWire asks for BodyStructureWire, and for BodyStructure when
	// the meta has no wire form.
	metaWire
	metaAll = metaEnvelope | metaStructure | metaHeader | metaWire
)

var errMeta = errors.New("imapd: damaged message metadata")

// decodeMeta decodes the parts of b that want asks for.
func decodeMeta(b []byte, want int) (*Meta, error) {
	if len(b) < 2 || (b[0] != metaVersion && b[0] != metaVersion1) || b[1]&^1 != 0 {
		return nil, errMeta
	}
	m := &Meta{HeaderTruncated: b[1]&1 != 0}
	d := decoder{b: b, off: 2}
	envLen := d.length()
	envStart := d.off
	d.off += envLen
	bsLen := d.length()
	bsStart := d.off
	d.off += bsLen
	var wire []byte
	if b[0] == metaVersion {
		wireLen := d.length()
		wire = b[d.off : d.off+wireLen : d.off+wireLen]
		d.off += wireLen
		if len(wire) == 0 {
			wire = nil
		} else if !imapproto.IsWireText(wire) {
			return nil, errMeta
		}
	}
	if d.err {
		return nil, errMeta
	}
	if want&metaWire != 0 {
		m.BodyStructureWire = wire
		if wire == nil {
			want |= metaStructure
		}
	}
	if want&metaEnvelope != 0 {
		ed := decoder{b: b[envStart : envStart+envLen]}
		m.Envelope = ed.envelope()
		if ed.err || ed.off != len(ed.b) {
			return nil, errMeta
		}
	}
	if want&metaStructure != 0 {
		sd := decoder{b: b[bsStart : bsStart+bsLen]}
		m.BodyStructure = sd.structure(0)
		if sd.err || sd.off != len(sd.b) {
			return nil, errMeta
		}
	}
	if want&metaHeader != 0 {
		m.Header = b[d.off:len(b):len(b)]
	}
	return m, nil
}

// decoder reads the binary form; once err is set every read returns zero
// values. Strings are cut from one string made of the input, so decoding
// a meta allocates once for all its text.
type decoder struct {
	b   []byte
	s   string // string(b), made on first use
	off int
	err bool
}

func (d *decoder) fail() { d.err = true; d.off = len(d.b) }

func (d *decoder) byte() byte {
	if d.err || d.off >= len(d.b) {
		d.fail()
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

// length reads a length that must fit in what is left.
func (d *decoder) length() int {
	v := d.uvarint()
	if d.err || v > uint64(len(d.b)-d.off) {
		d.fail()
		return 0
	}
	return int(v)
}

// count reads a number of items each taking at least min bytes.
func (d *decoder) count(min int) int {
	v := d.uvarint()
	if d.err || v > uint64((len(d.b)-d.off)/min) {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *decoder) str() string {
	n := d.length()
	if d.err || n == 0 {
		return ""
	}
	if d.s == "" {
		d.s = string(d.b)
	}
	s := d.s[d.off : d.off+n]
	d.off += n
	return s
}

func (d *decoder) strs() []string {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	l := make([]string, n)
	for i := range l {
		l[i] = d.str()
	}
	return l
}

func (d *decoder) params() map[string]string {
	n := d.count(2)
	if n == 0 {
		return nil
	}
	p := make(map[string]string, n)
	for range n {
		k := d.str()
		p[k] = d.str()
	}
	return p
}

func (d *decoder) disposition() *imap.BodyStructureDisposition {
	switch d.byte() {
	case 0:
		return nil
	case 1:
		return &imap.BodyStructureDisposition{Value: d.str(), Params: d.params()}
	}
	d.fail()
	return nil
}

const maxZoneOffset = 26 * 3600

func (d *decoder) envelope() *imap.Envelope {
	env := &imap.Envelope{}
	switch d.byte() {
	case 0:
	case 1:
		sec, off := d.varint(), d.varint()
		if off < -maxZoneOffset || off > maxZoneOffset || sec < -1<<40 || sec > 1<<40 {
			d.fail()
			return env
		}
		env.Date = time.Unix(sec, 0).In(zone(int(off)))
	default:
		d.fail()
		return env
	}
	env.Subject = d.str()
	for _, dst := range []*[]imap.Address{&env.From, &env.Sender, &env.ReplyTo, &env.To, &env.Cc, &env.Bcc} {
		n := d.count(3)
		if n == 0 {
			continue
		}
		l := make([]imap.Address, n)
		for i := range l {
			l[i] = imap.Address{Name: d.str(), Mailbox: d.str(), Host: d.str()}
		}
		*dst = l
	}
	env.InReplyTo = d.strs()
	env.MessageID = d.str()
	return env
}

func (d *decoder) structure(depth int) imap.BodyStructure {
	if depth > maxMetaDepth {
		d.fail()
		return nil
	}
	switch d.byte() {
	case 1:
		sp := &imap.BodyStructureSinglePart{
			Type: d.str(), Subtype: d.str(), Params: d.params(),
			ID: d.str(), Description: d.str(), Encoding: d.str(),
		}
		size := d.uvarint()
		if size > 1<<32-1 {
			d.fail()
			return nil
		}
		sp.Size = uint32(size)
		kind := d.byte()
		isText := strings.EqualFold(sp.Type, "text")
		isMsg := strings.EqualFold(sp.Type, "message") && (strings.EqualFold(sp.Subtype, "rfc822") || strings.EqualFold(sp.Subtype, "global"))
		switch {
		case kind == 1 && isText:
			sp.Text = &imap.BodyStructureText{NumLines: int64(d.uvarint() & (1<<62 - 1))}
		case kind == 2 && isMsg:
			sp.MessageRFC822 = &imap.BodyStructureMessageRFC822{Envelope: d.envelope()}
			sp.MessageRFC822.BodyStructure = d.structure(depth + 2)
			sp.MessageRFC822.NumLines = int64(d.uvarint() & (1<<62 - 1))
		case kind == 0 && !isText && !isMsg:
		default:
			// IMAP's grammar ties text/* to a line count and
			// message/rfc822 to an envelope and structure.
			d.fail()
			return nil
		}
		sp.Extended = &imap.BodyStructureSinglePartExt{Disposition: d.disposition(), Language: d.strs(), Location: d.str()}
		if d.err {
			return nil
		}
		return sp
	case 2:
		n := d.count(1)
		if n == 0 {
			d.fail() // IMAP has no multipart without parts
			return nil
		}
		mp := &imap.BodyStructureMultiPart{Children: make([]imap.BodyStructure, 0, min(n, 64))}
		for range n {
			c := d.structure(depth + 1)
			if d.err {
				return nil
			}
			mp.Children = append(mp.Children, c)
		}
		mp.Subtype = d.str()
		mp.Extended = &imap.BodyStructureMultiPartExt{Params: d.params(), Disposition: d.disposition(), Language: d.strs(), Location: d.str()}
		if d.err {
			return nil
		}
		return mp
	}
	d.fail()
	return nil
}

// zone returns a fixed zone for a UTC offset, shared for common offsets.
func zone(off int) *time.Location {
	if off == 0 {
		return time.UTC
	}
	if off%900 == 0 && off >= -14*3600 && off <= 14*3600 {
		return quarterZones[(off+14*3600)/900]
	}
	return time.FixedZone("", off)
}

// quarterZones holds a location for every quarter-hour offset from -14:00
// to +14:00 (read-only after init).
var quarterZones = func() [113]*time.Location {
	var z [113]*time.Location
	for i := range z {
		z[i] = time.FixedZone("", i*900-14*3600)
	}
	return z
}()
