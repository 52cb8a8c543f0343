package imapproto

// The tokens of the grammar (RFC 9051 §9, RFC 3501 §9): atoms, strings,
// literals, numbers, flags, sequence sets and dates.

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
)

// Character classes.
const (
	cAtom   = 1 << iota // ATOM-CHAR
	cAStr               // ASTRING-CHAR: ATOM-CHAR and "]"
	cList               // list-char: ATOM-CHAR, "%", "*", "]"
	cTag                // tag: ASTRING-CHAR but "+"
	cSearch             // a search key or sequence set: ATOM-CHAR and "*"
)

var charClass = func() [256]uint8 {
	var t [256]uint8
	for c := 0x21; c < 0x7f; c++ {
		switch c {
		case '(', ')', '{', '%', '*', '"', '\\', ']':
			continue
		}
		t[c] = cAtom | cAStr | cList | cTag | cSearch
	}
	t[']'] |= cAStr | cList | cTag
	t['%'] |= cList
	t['*'] |= cList | cSearch
	t['+'] &^= cTag
	return t
}()

func isTagChar(c byte) bool { return charClass[c]&cTag != 0 }

// errSyntax is a malformed command.
func errSyntax(format string, args ...any) error {
	return &ParseError{Text: fmt.Sprintf(format, args...)}
}

func (d *Decoder) atEnd() bool { return d.pos >= len(d.line) }

func (d *Decoder) peek() byte {
	if d.pos < len(d.line) {
		return d.line[d.pos]
	}
	return 0
}

// expect consumes c or fails.
func (d *Decoder) expect(c byte) error {
	if d.pos < len(d.line) && d.line[d.pos] == c {
		d.pos++
		return nil
	}
	if d.atEnd() {
		if c == ' ' {
			return errSyntax("the command ends too early")
		}
		return errSyntax("missing %q at the end of the command", c)
	}
	return errSyntax("expected %q at %s", c, d.excerpt())
}

func (d *Decoder) sp() error { return d.expect(' ') }

// maybe consumes c if it is next.
func (d *Decoder) maybe(c byte) bool {
	if d.pos < len(d.line) && d.line[d.pos] == c {
		d.pos++
		return true
	}
	return false
}

// end checks that the command is over.
func (d *Decoder) end() error {
	if !d.atEnd() {
		return errSyntax("unexpected %s after the command", d.excerpt())
	}
	return nil
}

// excerpt is a short, printable and quoted piece of the line at the
// parse position, for error texts; only its position in the commands
// that carry a password.
func (d *Decoder) excerpt() string {
	if d.quiet {
		return "byte " + strconv.Itoa(d.pos+1)
	}
	rest := d.line[d.pos:]
	if len(rest) > 20 {
		rest = rest[:20]
	}
	b := make([]byte, 0, len(rest)+2)
	b = append(b, '"')
	for _, c := range rest {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			c = '?'
		}
		b = append(b, c)
	}
	return string(append(b, '"'))
}

// run consumes 1* characters of class and returns them (not copied:
// valid until the next line is read).
func (d *Decoder) run(class uint8) []byte {
	start := d.pos
	for d.pos < len(d.line) && charClass[d.line[d.pos]]&class != 0 {
		d.pos++
	}
	return d.line[start:d.pos]
}

// readTag reads the tag and the space after it.
func (d *Decoder) readTag() (string, bool) {
	t := d.run(cTag)
	if len(t) == 0 || !d.maybe(' ') {
		return "", false
	}
	return string(t), true
}

// atom reads an atom; what names it in error texts.
func (d *Decoder) atom(what string) (string, error) {
	a := d.run(cAtom)
	if len(a) == 0 {
		return "", d.missing(what)
	}
	return string(a), nil
}

// keyword reads an atom and upper-cases it (command names, item names,
// options).
func (d *Decoder) keyword(what string) (string, error) {
	a := d.run(cAtom)
	if len(a) == 0 {
		return "", d.missing(what)
	}
	return upperASCII(a), nil
}

// upperASCII returns b upper-cased, without allocating for the names the
// grammar knows.
func upperASCII(b []byte) string {
	if s, ok := knownWords[string(b)]; ok {
		return s
	}
	for _, c := range b {
		if c >= 'a' && c <= 'z' {
			b = bytes.ToUpper(b)
			if s, ok := knownWords[string(b)]; ok {
				return s
			}
			break
		}
	}
	return string(b)
}

// knownWords holds the upper-case names of the grammar.
var knownWords = func() map[string]string {
	m := map[string]string{}
	for _, w := range strings.Fields(`
		CAPABILITY NOOP CHECK LOGOUT STARTTLS UNAUTHENTICATE NAMESPACE IDLE CLOSE UNSELECT
		EXPUNGE LOGIN AUTHENTICATE ENABLE ID SELECT EXAMINE CREATE DELETE SUBSCRIBE
		UNSUBSCRIBE RENAME LIST LSUB STATUS APPEND SEARCH FETCH STORE COPY MOVE UID
		CONDSTORE QRESYNC USE SUBSCRIBED REMOTE RECURSIVEMATCH SPECIAL-USE RETURN CHILDREN
		MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE APPENDLIMIT HIGHESTMODSEQ UTF8
		ALL FAST FULL ENVELOPE FLAGS INTERNALDATE RFC822 RFC822.SIZE RFC822.HEADER RFC822.TEXT
		BODY BODY.PEEK BODYSTRUCTURE BINARY BINARY.PEEK BINARY.SIZE MODSEQ HEADER TEXT MIME
		HEADER.FIELDS HEADER.FIELDS.NOT CHANGEDSINCE VANISHED UNCHANGEDSINCE FLAGS.SILENT
		MIN MAX COUNT SAVE CHARSET ANSWERED DRAFT FLAGGED SEEN UNANSWERED UNDELETED UNDRAFT
		UNFLAGGED NEW OLD KEYWORD UNKEYWORD BCC CC FROM SUBJECT TO BEFORE ON SINCE SENTBEFORE
		SENTON SENTSINCE LARGER SMALLER NOT OR PRIV SHARED PLAIN XOAUTH2 OAUTHBEARER`) {
		m[w] = w
	}
	return m
}()

func (d *Decoder) missing(what string) error {
	if d.atEnd() {
		return errSyntax("missing %s", what)
	}
	return errSyntax("expected %s at %s", what, d.excerpt())
}

// astring reads an astring: an atom (with "]"), a quoted string or a
// literal.
func (d *Decoder) astring(what string) (string, error) {
	switch d.peek() {
	case '"', '{':
		return d.str(what)
	}
	a := d.run(cAStr)
	if len(a) == 0 {
		return "", d.missing(what)
	}
	return string(a), nil
}

// nstring reads NIL or a string; ok false for NIL.
func (d *Decoder) nstring(what string) (s string, ok bool, err error) {
	switch d.peek() {
	case '"', '{':
		s, err = d.str(what)
		return s, err == nil, err
	}
	a := d.run(cAtom)
	if !bytes.EqualFold(a, []byte("NIL")) {
		d.pos -= len(a)
		return "", false, d.missing(what)
	}
	return "", false, nil
}

// str reads a string: quoted or literal.
func (d *Decoder) str(what string) (string, error) {
	switch d.peek() {
	case '"':
		return d.quoted(what)
	case '{':
		b, err := d.literal(what)
		return string(b), err
	}
	return "", d.missing(what)
}

// quoted reads a quoted string. Only \" and \\ are escapes; UTF-8 (and
// other 8-bit bytes: clients send them with CHARSET) is taken as it is;
// NUL and CR are not allowed.
func (d *Decoder) quoted(what string) (string, error) {
	if err := d.expect('"'); err != nil {
		return "", err
	}
	start := d.pos
	escaped := false
	for {
		if d.pos >= len(d.line) {
			return "", errSyntax("unterminated quoted string in %s", what)
		}
		c := d.line[d.pos]
		switch c {
		case '"':
			s := d.line[start:d.pos]
			d.pos++
			if !escaped {
				return string(s), nil
			}
			out := make([]byte, 0, len(s))
			for i := 0; i < len(s); i++ {
				if s[i] == '\\' {
					i++
				}
				out = append(out, s[i])
			}
			return string(out), nil
		case '\\':
			if d.pos+1 >= len(d.line) || (d.line[d.pos+1] != '"' && d.line[d.pos+1] != '\\') {
				return "", errSyntax("bad escape in quoted string in %s", what)
			}
			escaped = true
			d.pos += 2
		case 0, '\r':
			return "", errSyntax("control character in quoted string in %s", what)
		default:
			d.pos++
		}
	}
}

// literalHeader reads "{n}" or "{n+}" (and "~{n}", "~{n+}" when binary
// is allowed), which must end the line.
func (d *Decoder) literalHeader(what string, binary bool) (n int64, sync, bin bool, err error) {
	if d.peek() == '~' {
		if !binary {
			return 0, false, false, errSyntax("literal8 not allowed in %s", what)
		}
		bin = true
		d.pos++
	}
	if err := d.expect('{'); err != nil {
		return 0, false, false, err
	}
	n, err = d.number64("literal size")
	if err != nil {
		return 0, false, false, err
	}
	sync = !d.maybe('+')
	if err := d.expect('}'); err != nil {
		return 0, false, false, err
	}
	if !d.atEnd() {
		return 0, false, false, errSyntax("literal header of %s not at the end of the line", what)
	}
	return n, sync, bin, nil
}

// literal reads a literal string (not an APPEND message). The literals
// of one command together are within MaxLiteral: each is held until the
// command is parsed, and a line of literal headers could announce
// thousands. NUL is not allowed in it.
func (d *Decoder) literal(what string) ([]byte, error) {
	n, sync, _, err := d.literalHeader(what, false)
	if err != nil {
		return nil, err
	}
	if n > d.maxLiteral()-d.lits {
		if d.lits > 0 {
			return nil, errSyntax("literals of the command too long")
		}
		return nil, errSyntax("literal of %s too long", what)
	}
	d.lits += n
	b, err := d.literalBody(n, sync)
	if err != nil {
		return nil, err
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return nil, errSyntax("NUL in %s", what)
	}
	return b, nil
}

// literalBody reads the n bytes of a literal whose header ended the
// line (asking for them if sync), then the line after them.
func (d *Decoder) literalBody(n int64, sync bool) ([]byte, error) {
	if sync && d.cont != nil {
		if err := d.cont(); err != nil {
			return nil, err
		}
	}
	b, err := d.readN(n)
	if err != nil {
		return nil, err
	}
	if err := d.readLine(); err != nil {
		return nil, err
	}
	return b, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number64 reads a number up to 2^63-1.
func (d *Decoder) number64(what string) (int64, error) {
	start := d.pos
	var n int64
	for d.pos < len(d.line) && isDigit(d.line[d.pos]) {
		v := int64(d.line[d.pos] - '0')
		if n > (1<<63-1-v)/10 {
			return 0, errSyntax("%s too large", what)
		}
		n = n*10 + v
		d.pos++
	}
	if d.pos == start {
		return 0, d.missing(what)
	}
	return n, nil
}

// number reads a number up to 2^32-1.
func (d *Decoder) number(what string) (uint32, error) {
	n, err := d.number64(what)
	if err != nil {
		return 0, err
	}
	if n > 1<<32-1 {
		return 0, errSyntax("%s too large", what)
	}
	return uint32(n), nil
}

// nzNumber reads a non-zero number up to 2^32-1.
func (d *Decoder) nzNumber(what string) (uint32, error) {
	n, err := d.number(what)
	if err == nil && n == 0 {
		err = errSyntax("%s must not be 0", what)
	}
	return n, err
}

// modSeq reads a mod-sequence value (RFC 7162: up to 2^63-1); zero
// says whether 0 is allowed (mod-sequence-valzer).
func (d *Decoder) modSeq(zero bool) (uint64, error) {
	n, err := d.number64("mod-sequence")
	if err != nil {
		return 0, err
	}
	if n == 0 && !zero {
		return 0, errSyntax("mod-sequence must not be 0")
	}
	return uint64(n), nil
}

// mailbox reads a mailbox name: modified UTF-7 decoded (unless
// UTF8=ACCEPT), INBOX in any case as INBOX.
func (d *Decoder) mailbox() (string, error) {
	s, err := d.astring("mailbox name")
	if err != nil {
		return "", err
	}
	if d.utf8 {
		if !utf8.ValidString(s) {
			return "", errSyntax("mailbox name is not UTF-8")
		}
	} else if s, err = decodeMailboxUTF7(s); err != nil {
		return "", errSyntax("mailbox name is not valid modified UTF-7")
	}
	if strings.EqualFold(s, "INBOX") {
		s = "INBOX"
	}
	return s, nil
}

// listMailbox reads a LIST reference or pattern: 1*list-char or a
// string, decoded as a mailbox name when it is valid, kept as it is when
// not (it then matches nothing).
func (d *Decoder) listMailbox(what string) (string, error) {
	var s string
	switch d.peek() {
	case '"', '{':
		var err error
		if s, err = d.str(what); err != nil {
			return "", err
		}
	default:
		a := d.run(cList)
		if len(a) == 0 {
			return "", d.missing(what)
		}
		s = string(a)
	}
	if !d.utf8 {
		if dec, err := decodeMailboxUTF7(s); err == nil {
			s = dec
		}
	}
	if strings.EqualFold(s, "INBOX") {
		s = "INBOX"
	}
	return s, nil
}

// canonical spellings of the flags the RFCs name (flags are case
// insensitive).
var canonicalFlags = []imap.Flag{
	imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft, `\Recent`,
	imap.FlagForwarded, imap.FlagMDNSent, imap.FlagJunk, imap.FlagNotJunk, imap.FlagPhishing, imap.FlagImportant,
}

var canonicalAttrs = []imap.MailboxAttr{
	imap.MailboxAttrAll, imap.MailboxAttrArchive, imap.MailboxAttrDrafts, imap.MailboxAttrFlagged,
	imap.MailboxAttrJunk, imap.MailboxAttrSent, imap.MailboxAttrTrash, imap.MailboxAttrImportant,
}

func canonicalFlag(b []byte) imap.Flag {
	for _, f := range canonicalFlags {
		if len(f) == len(b) && bytes.EqualFold(b, []byte(f)) {
			return f
		}
	}
	return imap.Flag(b)
}

// flag reads a flag: "\" atom (system flag or extension) or an atom
// (keyword).
func (d *Decoder) flag() (imap.Flag, error) {
	start := d.pos
	d.maybe('\\')
	if d.peek() == '*' {
		return "", errSyntax(`\* is not a flag`)
	}
	if len(d.run(cAtom)) == 0 {
		d.pos = start
		return "", d.missing("flag")
	}
	return canonicalFlag(d.line[start:d.pos]), nil
}

// flagList reads "(" [flag *(SP flag)] ")".
func (d *Decoder) flagList() ([]imap.Flag, error) {
	if err := d.expect('('); err != nil {
		return nil, err
	}
	flags := []imap.Flag{}
	if d.maybe(')') {
		return flags, nil
	}
	for {
		f, err := d.flag()
		if err != nil {
			return nil, err
		}
		flags = append(flags, f)
		if d.maybe(')') {
			return flags, nil
		}
		if err := d.sp(); err != nil {
			return nil, err
		}
	}
}

// numRanges reads a sequence-set (RFC 9051: ranges separated by ",",
// "*" for the largest number) into ranges as go-imap represents them
// (0 for "*"). star says whether "*" is allowed.
func (d *Decoder) numRanges(what string, star bool) ([]imap.SeqRange, error) {
	var ranges []imap.SeqRange
	for {
		a, err := d.seqNumber(what, star)
		if err != nil {
			return nil, err
		}
		b := a
		if d.maybe(':') {
			if b, err = d.seqNumber(what, star); err != nil {
				return nil, err
			}
		}
		// Lowest first, "*" (0) last.
		if (b < a && b != 0) || a == 0 {
			a, b = b, a
		}
		ranges = append(ranges, imap.SeqRange{Start: a, Stop: b})
		if !d.maybe(',') {
			return ranges, nil
		}
	}
}

func (d *Decoder) seqNumber(what string, star bool) (uint32, error) {
	if d.peek() == '*' {
		if !star {
			return 0, errSyntax("* not allowed in %s", what)
		}
		d.pos++
		return 0, nil
	}
	if d.peek() == '0' {
		return 0, errSyntax("bad number in %s", what)
	}
	return d.nzNumber(what)
}

// seqSet builds a normalized set from ranges: sorted first, so that
// each insertion is an append or a merge at the end.
func seqSet(ranges []imap.SeqRange) imap.SeqSet {
	slices.SortStableFunc(ranges, func(x, y imap.SeqRange) int {
		kx, ky := int64(x.Start), int64(y.Start)
		if x.Start == 0 {
			kx = 1 << 32
		}
		if y.Start == 0 {
			ky = 1 << 32
		}
		return int(kx - ky)
	})
	var s imap.SeqSet
	for _, r := range ranges {
		s.AddRange(r.Start, r.Stop)
	}
	return s
}

func uidSet(ranges []imap.SeqRange) imap.UIDSet {
	s := seqSet(ranges)
	u := make(imap.UIDSet, len(s))
	for i, r := range s {
		u[i] = imap.UIDRange{Start: imap.UID(r.Start), Stop: imap.UID(r.Stop)}
	}
	return u
}

// numSet reads the sequence-set of FETCH, STORE, COPY, MOVE and UID
// EXPUNGE: sequence numbers, UIDs (uid), or "$" (RFC 5182), which is
// imap.SearchRes() whatever uid says.
func (d *Decoder) numSet(uid bool) (imap.NumSet, error) {
	if d.maybe('$') {
		return imap.SearchRes(), nil
	}
	what := "sequence set"
	if uid {
		what = "UID set"
	}
	ranges, err := d.numRanges(what, true)
	if err != nil {
		return nil, err
	}
	if uid {
		return uidSet(ranges), nil
	}
	return seqSet(ranges), nil
}

var months = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// dateText parses date-day "-" date-month "-" date-year at the start of
// b and returns what it used. fixed asks for date-day-fixed (SP DIGIT
// or 2DIGIT, date-time's form); one digit is accepted too.
func dateText(b []byte, fixed bool) (y int, m time.Month, day int, used int, ok bool) {
	i := 0
	if fixed && len(b) > 0 && b[0] == ' ' {
		i++
	}
	for i < len(b) && isDigit(b[i]) && i < 2+btoi(fixed && b[0] == ' ') {
		day = day*10 + int(b[i]-'0')
		i++
	}
	if day == 0 || i+9 > len(b) || b[i] != '-' || b[i+4] != '-' {
		return 0, 0, 0, 0, false
	}
	for k, name := range months {
		if bytes.EqualFold(b[i+1:i+4], []byte(name)) {
			m = time.Month(k + 1)
		}
	}
	i += 5
	for k := 0; k < 4; k++ {
		if !isDigit(b[i+k]) {
			return 0, 0, 0, 0, false
		}
		y = y*10 + int(b[i+k]-'0')
	}
	i += 4
	if m == 0 || day > daysIn(m, y) {
		return 0, 0, 0, 0, false
	}
	return y, m, day, i, true
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func daysIn(m time.Month, y int) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// searchDate reads a SEARCH date: date-text, quoted or not. The day is
// taken in UTC, as go-imap's types hold it.
func (d *Decoder) searchDate() (time.Time, error) {
	q := d.maybe('"')
	y, m, day, used, ok := dateText(d.line[d.pos:], false)
	if !ok {
		return time.Time{}, d.missing("date (d-Mon-yyyy)")
	}
	d.pos += used
	if q {
		if err := d.expect('"'); err != nil {
			return time.Time{}, err
		}
	}
	return time.Date(y, m, day, 0, 0, 0, 0, time.UTC), nil
}

// dateTime reads APPEND's date-time: DQUOTE date-day-fixed "-"
// date-month "-" date-year SP time SP zone DQUOTE.
func (d *Decoder) dateTime() (time.Time, error) {
	bad := errSyntax("bad date-time (\"dd-Mon-yyyy hh:mm:ss +zzzz\")")
	if !d.maybe('"') {
		return time.Time{}, bad
	}
	b := d.line[d.pos:]
	y, m, day, i, ok := dateText(b, true)
	// SP hh:mm:ss SP +zzzz DQUOTE
	if !ok || i+16 > len(b) || b[i] != ' ' || b[i+3] != ':' || b[i+6] != ':' || b[i+9] != ' ' ||
		(b[i+10] != '+' && b[i+10] != '-') || b[i+15] != '"' {
		return time.Time{}, bad
	}
	num := func(j, n int) int {
		v := 0
		for k := j; k < j+n; k++ {
			if !isDigit(b[k]) {
				return -1
			}
			v = v*10 + int(b[k]-'0')
		}
		return v
	}
	hh, mm, ss, zh, zm := num(i+1, 2), num(i+4, 2), num(i+7, 2), num(i+11, 2), num(i+13, 2)
	if hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60 || zh < 0 || zm < 0 || zm > 59 {
		return time.Time{}, bad
	}
	off := (zh*60 + zm) * 60
	if b[i+10] == '-' {
		off = -off
	}
	d.pos += i + 16
	if ss == 60 { // a leap second: the one before
		ss = 59
	}
	loc := time.UTC
	if off != 0 {
		loc = time.FixedZone("", off)
	}
	return time.Date(y, m, day, hh, mm, ss, 0, loc), nil
}
