package imapproto

// OWNED BY the write helper: everything in write*.go. The exported
// writer methods are the contract with the session (internal/imapd); the
// unexported Encoder methods listed here are the contract with conn.go.
// Keep the signatures.
//
// This file has the Encoder and its primitives (the grammar's atoms,
// numbers, strings, lists, sets, dates, mailbox names). write_resp.go has
// the responses that are not about messages (status responses,
// CAPABILITY, SELECT, SEARCH, LIST, ...), write_fetch.go the FETCH
// responses (ENVELOPE, BODYSTRUCTURE, body sections) and write_update.go
// the untagged updates of a selected mailbox.
//
// Everything is written straight into the connection's bufio.Writer with
// strconv.Append* into its free space: writing a FETCH response for a
// message allocates nothing in the common case (ASCII headers).

import (
	"bufio"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
)

// Encoder writes responses into the connection's buffered writer. It
// does not flush (the Conn does) and does not lock (the Conn does).
type Encoder struct {
	w    *bufio.Writer
	utf8 bool // UTF8=ACCEPT enabled: mailbox names as UTF-8, else modified UTF-7
	rev2 bool // IMAP4rev2 enabled
	err  error

	keys []string      // scratch for sorting parameter names
	buf  []byte        // scratch for building a response item
	one  [1]string     // scratch for a one-element list
	lit  literalWriter // the one literal open at a time
}

func newEncoder(w *bufio.Writer) *Encoder { return &Encoder{w: w} }

// maxQuoted is the longest string written as a quoted string; longer
// ones are literals (a quoted string lengthens the response line, which
// clients may bound; a literal is length-prefixed).
const maxQuoted = 1024

// Layouts of the dates the responses carry.
const (
	dateTimeLayout = "02-Jan-2006 15:04:05 -0700"      // INTERNALDATE (RFC 3501 date-time)
	envelopeLayout = "Mon, 02 Jan 2006 15:04:05 -0700" // ENVELOPE date (RFC 5322)
)

// setErr records the first encoding error (a literal written short or
// long); the Conn ends the connection on it, as the stream is then out
// of step with what the client expects.
func (e *Encoder) setErr(err error) {
	if e.err == nil {
		e.err = err
	}
}

// result is the Encoder's error, or the writer's sticky write error.
func (e *Encoder) result() error {
	if e.err != nil {
		return e.err
	}
	// A zero-length Write returns bufio.Writer's sticky error.
	_, err := e.w.Write(nil)
	return err
}

// avail returns an empty slice to build up to n bytes in: the writer's
// free space when it has n bytes, else the Encoder's scratch buffer.
// Either way the bytes go out with e.w.Write, without allocating.
func (e *Encoder) avail(n int) []byte {
	if e.w.Available() >= n {
		return e.w.AvailableBuffer()
	}
	if cap(e.buf) < n {
		e.buf = make([]byte, 0, max(n, 512))
	}
	return e.buf[:0]
}

func (e *Encoder) raw(s string) { e.w.WriteString(s) }
func (e *Encoder) byte(c byte)  { e.w.WriteByte(c) }
func (e *Encoder) sp()          { e.w.WriteByte(' ') }
func (e *Encoder) crlf()        { e.w.WriteString("\r\n") }
func (e *Encoder) nil_()        { e.w.WriteString("NIL") }

// atom writes s as it is: the caller knows it is an atom (a keyword, a
// flag, a capability).
func (e *Encoder) atom(s string) { e.w.WriteString(s) }

func (e *Encoder) number(n uint32) {
	e.w.Write(strconv.AppendUint(e.avail(10), uint64(n), 10))
}

func (e *Encoder) number64(n uint64) {
	e.w.Write(strconv.AppendUint(e.avail(20), n, 10))
}

// int64 writes a size; a negative one (never valid) as 0.
func (e *Encoder) int64(n int64) {
	if n < 0 {
		n = 0
	}
	e.w.Write(strconv.AppendInt(e.avail(20), n, 10))
}

// quotable reports whether s can be a quoted string: short, no NUL, CR
// or LF, and 8-bit only as valid UTF-8 when the session takes UTF-8
// (IMAP4rev2 or UTF8=ACCEPT; RFC 9051 §4.3, RFC 6855).
func (e *Encoder) quotable(s string) bool {
	if len(s) > maxQuoted {
		return false
	}
	high := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == 0 || c == '\r' || c == '\n':
			return false
		case c >= 0x80:
			high = true
		}
	}
	if high {
		return (e.utf8 || e.rev2) && utf8.ValidString(s)
	}
	return true
}

// quoted writes s as a quoted string, escaping '"' and '\'. The caller
// has checked quotable.
func (e *Encoder) quoted(s string) {
	e.byte('"')
	e.quotedBody(s)
	e.byte('"')
}

func (e *Encoder) quotedBody(s string) {
	start := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			e.raw(s[start:i])
			e.byte('\\')
			start = i
		}
	}
	e.raw(s[start:])
}

// string writes s as a quoted string when it can be one, else as a
// literal.
func (e *Encoder) string(s string) {
	if e.quotable(s) {
		e.quoted(s)
		return
	}
	e.literalString(s)
}

// The append forms below build a whole ENVELOPE or BODYSTRUCTURE in the
// Encoder's scratch buffer, written with one Write.

// Byte classes for strings: what a byte asks of a quoted string.
const (
	qPlain   = iota
	qEscape  // '"' and '\\': a backslash before
	qLiteral // NUL, CR, LF: not in a quoted string
	qHigh    // 8-bit: only as UTF-8, in a session that takes it
)

var quoteClass = func() (t [256]uint8) {
	t['"'], t['\\'] = qEscape, qEscape
	t[0], t['\r'], t['\n'] = qLiteral, qLiteral, qLiteral
	for c := 0x80; c < 0x100; c++ {
		t[c] = qHigh
	}
	return t
}()

// appendString appends s as a quoted string or a literal (see string),
// in one pass over s for the usual plain ASCII.
func (e *Encoder) appendString(b []byte, s string) []byte {
	esc, high := false, false
	if len(s) > maxQuoted {
		goto literal
	}
	for i := 0; i < len(s); i++ {
		switch quoteClass[s[i]] {
		case qEscape:
			esc = true
		case qLiteral:
			goto literal
		case qHigh:
			high = true
		}
	}
	if high && !((e.utf8 || e.rev2) && utf8.ValidString(s)) {
		goto literal
	}
	if !esc {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	return appendQuotedBody(append(b, '"'), s, '"')
literal:
	b = append(b, '{')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, "}\r\n"...)
	return append(b, s...)
}

// appendQuotedBody appends s escaped for a quoted string, then end.
func appendQuotedBody(b []byte, s string, end byte) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b = append(b, s[start:i]...)
			b = append(b, '\\')
			start = i
		}
	}
	b = append(b, s[start:]...)
	return append(b, end)
}

// appendNString appends s as a string, or NIL when it is empty.
func (e *Encoder) appendNString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "NIL"...)
	}
	return e.appendString(b, s)
}

// nstring writes s as a string, or NIL when it is empty.
func (e *Encoder) nstring(s string) {
	if s == "" {
		e.nil_()
		return
	}
	e.string(s)
}

// astring writes s as an atom when it is one, else as a string (header
// field names in BODY[HEADER.FIELDS (...)]).
func (e *Encoder) astring(s string) {
	if isAtom(s) {
		e.atom(s)
		return
	}
	e.string(s)
}

// isAtom reports whether s is made of ATOM-CHARs and is not NIL.
func isAtom(s string) bool {
	if s == "" || len(s) == 3 && (s[0]|0x20) == 'n' && (s[1]|0x20) == 'i' && (s[2]|0x20) == 'l' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAtomChar(s[i]) {
			return false
		}
	}
	return true
}

// isAtomChar: any CHAR except atom-specials (RFC 3501 §9).
func isAtomChar(c byte) bool {
	switch c {
	case '(', ')', '{', ' ', '%', '*', '"', '\\', ']':
		return false
	}
	return c > 0x1f && c < 0x7f
}

// literalString writes s as a literal: {n} CRLF and the bytes.
func (e *Encoder) literalString(s string) {
	e.literalHeader(int64(len(s)), false)
	e.raw(s)
}

// literalHeader writes "{n}" CRLF, or "~{n}" CRLF for a literal8
// (RFC 3516, content with NUL).
func (e *Encoder) literalHeader(size int64, lit8 bool) {
	if lit8 {
		e.byte('~')
	}
	e.byte('{')
	e.int64(size)
	e.raw("}\r\n")
}

// literal writes a literal's header and returns the writer of its size
// bytes. The writer is the Encoder's own: one literal at a time.
func (e *Encoder) literal(size int64, lit8 bool) *literalWriter {
	if size < 0 {
		size = 0
	}
	e.lit.Close() // one left open ends here (padded, with an error)
	e.literalHeader(size, lit8)
	e.lit = literalWriter{e: e, left: size, open: true}
	return &e.lit
}

var (
	errLiteralLong  = errors.New("imapproto: more bytes written than the literal's size")
	errLiteralShort = errors.New("imapproto: fewer bytes written than the literal's size")
)

// literalWriter takes a literal's bytes. Writing more than announced
// writes only what fits; closing short pads with spaces. Both keep the
// stream in step with what the client expects and return an error.
type literalWriter struct {
	e    *Encoder
	left int64
	open bool
}

func (l *literalWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		n, _ := l.e.w.Write(p[:l.left])
		l.left -= int64(n)
		l.e.setErr(errLiteralLong)
		return n, errLiteralLong
	}
	n, err := l.e.w.Write(p)
	l.left -= int64(n)
	return n, err
}

func (l *literalWriter) WriteString(s string) (int, error) {
	if int64(len(s)) > l.left {
		n, _ := l.e.w.WriteString(s[:l.left])
		l.left -= int64(n)
		l.e.setErr(errLiteralLong)
		return n, errLiteralLong
	}
	n, err := l.e.w.WriteString(s)
	l.left -= int64(n)
	return n, err
}

func (l *literalWriter) Close() error {
	if !l.open {
		return nil
	}
	l.open = false
	if l.left > 0 {
		for ; l.left > 0; l.left-- {
			l.e.byte(' ')
		}
		l.e.setErr(errLiteralShort)
		return errLiteralShort
	}
	return l.e.result()
}

// flags writes a flag list: "(" flags ")". A flag that is not one (a
// keyword with a space, a parenthesis or a line end, from another
// device's data) is left out: written as it is, it would end the list or
// the response and be read as the server's. IMAP4rev2 sessions get no
// \Recent (RFC 9051 removed it; appendix E).
func (e *Encoder) flags(flags []imap.Flag) {
	e.byte('(')
	first := true
	for _, f := range flags {
		if !isFlag(string(f)) || (e.rev2 && isRecent(f)) {
			continue
		}
		if !first {
			e.sp()
		}
		first = false
		e.atom(string(f))
	}
	e.byte(')')
}

// isRecent says whether f is \Recent (flags are case-insensitive).
func isRecent(f imap.Flag) bool { return equalFoldASCII(string(f), `\Recent`) }

// isFlag reports whether s can be written as a flag (or a mailbox
// attribute): an atom, or "\" and an atom, or \* (RFC 9051 flag,
// flag-perm, mbx-list-flags).
func isFlag(s string) bool {
	if s == `\*` {
		return true
	}
	if len(s) > 0 && s[0] == '\\' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAtomChar(s[i]) {
			return false
		}
	}
	return true
}

// dateTime writes an INTERNALDATE: "02-Jan-2006 15:04:05 -0700".
func (e *Encoder) dateTime(t time.Time) {
	b := append(e.avail(32), '"')
	b = appendDateTime(b, t)
	e.w.Write(append(b, '"'))
}

// appendDateTime appends t in dateTimeLayout; appendEnvelopeDate in
// envelopeLayout. Both are time.Format's output, written out by hand:
// FETCH writes one per message.
func appendDateTime(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	b = append2(b, day)
	b = append(b, '-')
	b = append(b, month.String()[:3]...)
	b = append(b, '-')
	b = appendYear(b, year)
	b = append(b, ' ')
	return appendClockZone(b, t)
}

func appendEnvelopeDate(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	b = append(b, t.Weekday().String()[:3]...)
	b = append(b, ", "...)
	b = append2(b, day)
	b = append(b, ' ')
	b = append(b, month.String()[:3]...)
	b = append(b, ' ')
	b = appendYear(b, year)
	b = append(b, ' ')
	return appendClockZone(b, t)
}

// appendClockZone appends "15:04:05 -0700".
func appendClockZone(b []byte, t time.Time) []byte {
	hour, min, sec := t.Clock()
	b = append2(b, hour)
	b = append(b, ':')
	b = append2(b, min)
	b = append(b, ':')
	b = append2(b, sec)
	_, off := t.Zone()
	off /= 60 // minutes
	if off < 0 {
		b = append(b, " -"...)
		off = -off
	} else {
		b = append(b, " +"...)
	}
	b = append2(b, off/60)
	return append2(b, off%60)
}

// append2 appends n (0-99) in two digits.
func append2(b []byte, n int) []byte {
	return append(b, byte('0'+n/10%10), byte('0'+n%10))
}

func appendYear(b []byte, y int) []byte {
	if y < 0 || y > 9999 {
		return strconv.AppendInt(b, int64(y), 10)
	}
	return append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10))
}

// numRange writes one range of a set: n, n:m, n:* or *.
func (e *Encoder) numRange(start, stop uint32) {
	b := e.avail(21)
	b = appendSetNum(b, start)
	if stop != start {
		b = append(b, ':')
		b = appendSetNum(b, stop)
	}
	e.w.Write(b)
}

func appendUint32(b []byte, n uint32) []byte {
	return strconv.AppendUint(b, uint64(n), 10)
}

func appendSetNum(b []byte, n uint32) []byte {
	if n == 0 {
		return append(b, '*')
	}
	return strconv.AppendUint(b, uint64(n), 10)
}

// numSet writes a sequence or UID set (the SEARCHRES marker as $). An
// empty set writes nothing: callers leave out what would hold one.
func (e *Encoder) numSet(set imap.NumSet) {
	switch set := set.(type) {
	case imap.SeqSet:
		e.seqSet(set)
	case imap.UIDSet:
		e.uidSet(set)
	}
}

func (e *Encoder) seqSet(set imap.SeqSet) {
	for i, r := range set {
		if i > 0 {
			e.byte(',')
		}
		e.numRange(r.Start, r.Stop)
	}
}

func (e *Encoder) uidSet(set imap.UIDSet) {
	if imap.IsSearchRes(set) {
		e.byte('$')
		return
	}
	for i, r := range set {
		if i > 0 {
			e.byte(',')
		}
		e.numRange(uint32(r.Start), uint32(r.Stop))
	}
}

// numSetEmpty reports whether set has no members (nil, or no ranges).
func numSetEmpty(set imap.NumSet) bool {
	switch set := set.(type) {
	case imap.SeqSet:
		return len(set) == 0
	case imap.UIDSet:
		return len(set) == 0 && !imap.IsSearchRes(set)
	}
	return true
}

// mailbox writes a mailbox name: INBOX as the atom, any other as a
// string, in modified UTF-7 (RFC 3501 §5.1.3) unless the client enabled
// UTF8=ACCEPT (RFC 6855 §3).
func (e *Encoder) mailbox(name string) {
	if len(name) == 5 && equalFoldASCII(name, "INBOX") {
		e.atom("INBOX")
		return
	}
	e.mailboxString(name)
}

// mailboxString is mailbox without INBOX's special case (NAMESPACE
// prefixes, OLDNAME).
func (e *Encoder) mailboxString(name string) {
	if !e.utf8 && (!isASCII(name) || hasAmpersand(name)) {
		name = encodeMailboxUTF7(name)
	}
	e.string(name)
}

func hasAmpersand(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '&' {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// text writes human-readable text (resp-text): CR, LF and NUL, which
// would end or corrupt the line, become spaces.
func (e *Encoder) text(s string) {
	start := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\r' || c == '\n' || c == 0 {
			e.raw(s[start:i])
			e.byte(' ')
			start = i + 1
		}
	}
	e.raw(s[start:])
}
