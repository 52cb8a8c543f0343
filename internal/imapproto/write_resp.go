package imapproto

// Responses that are not about messages: status responses and their
// codes, continuation requests, CAPABILITY, ENABLED, ID, NAMESPACE,
// STATUS, SELECT's untagged responses, SEARCH and ESEARCH, LIST and LSUB.

import (
	"slices"

	"github.com/emersion/go-imap/v2"
)

// Status is a status response: tagged (Tag set) or untagged ("*").
// CodeArg, when not nil, writes the code's argument after "[CODE ".
type Status struct {
	Tag     string
	Type    imap.StatusResponseType
	Code    imap.ResponseCode
	CodeArg func(e *Encoder)
	Text    string
}

// defaultText is the text of a status response given none (resp-text
// needs at least one character in IMAP4rev1).
func defaultText(t imap.StatusResponseType) string {
	switch t {
	case imap.StatusResponseTypeOK:
		return "Completed"
	case imap.StatusResponseTypeNo:
		return "Failed"
	case imap.StatusResponseTypeBad:
		return "Invalid command"
	case imap.StatusResponseTypeBye:
		return "Logging out"
	case imap.StatusResponseTypePreAuth:
		return "Logged in"
	}
	return "-"
}

// writeStatus writes "tag TYPE [CODE arg] text" (tag "*" when s.Tag is
// empty). Text loses its CR, LF and NUL (spaces instead); text that
// starts with "[" without a code gets a leading space, so that no client
// reads it as a code.
func (e *Encoder) writeStatus(s *Status) error {
	if s.Tag == "" {
		e.byte('*')
	} else {
		e.raw(s.Tag)
	}
	e.sp()
	e.atom(string(s.Type))
	e.sp()
	if s.Code != "" {
		e.byte('[')
		e.atom(string(s.Code))
		if s.CodeArg != nil {
			e.sp()
			s.CodeArg(e)
		}
		e.raw("] ")
	}
	text := s.Text
	if text == "" {
		text = defaultText(s.Type)
	} else if text[0] == '[' && s.Code == "" {
		e.sp()
	}
	e.text(text)
	e.crlf()
	return e.result()
}

// writeContinuation writes a continuation request "+ text" (text is a
// literal's go-ahead or an AUTHENTICATE challenge in base64, maybe
// empty).
func (e *Encoder) writeContinuation(text string) error {
	e.raw("+ ")
	e.text(text)
	e.crlf()
	return e.result()
}

func (e *Encoder) capList(caps []imap.Cap) {
	for i, c := range caps {
		if i > 0 {
			e.sp()
		}
		e.atom(string(c))
	}
}

// writeCapability writes "* CAPABILITY caps".
func (e *Encoder) writeCapability(caps []imap.Cap) error {
	e.raw("* CAPABILITY ")
	e.capList(caps)
	e.crlf()
	return e.result()
}

// writeEnabled writes "* ENABLED caps" (RFC 5161; no caps: "* ENABLED").
func (e *Encoder) writeEnabled(caps []imap.Cap) error {
	e.raw("* ENABLED")
	for _, c := range caps {
		e.sp()
		e.atom(string(c))
	}
	e.crlf()
	return e.result()
}

// writeID writes the server's ID (RFC 2971): * ID ("key" "value" ...)
// with the keys sorted, or * ID NIL when there is nothing to say.
func (e *Encoder) writeID(params map[string]string) error {
	e.raw("* ID ")
	if len(params) == 0 {
		e.nil_()
	} else {
		keys := e.sortedKeys(params)
		e.byte('(')
		for i, k := range keys {
			if i > 0 {
				e.sp()
			}
			e.string(k)
			e.sp()
			e.string(params[k])
		}
		e.byte(')')
	}
	e.crlf()
	return e.result()
}

// sortedKeys returns m's keys sorted, in the Encoder's scratch slice
// (valid until the next call).
func (e *Encoder) sortedKeys(m map[string]string) []string {
	keys := e.keys[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.keys = keys
	return keys
}

// delim writes a hierarchy delimiter: a quoted character, or NIL.
func (e *Encoder) delim(r rune) {
	if r == 0 {
		e.nil_()
		return
	}
	e.byte('"')
	if r == '"' || r == '\\' {
		e.byte('\\')
	}
	e.w.WriteRune(r)
	e.byte('"')
}

func (e *Encoder) namespaces(l []imap.NamespaceDescriptor) {
	if len(l) == 0 {
		e.nil_()
		return
	}
	e.byte('(')
	for _, d := range l {
		e.byte('(')
		e.mailboxString(d.Prefix)
		e.sp()
		e.delim(d.Delim)
		e.byte(')')
	}
	e.byte(')')
}

// writeNamespace writes "* NAMESPACE personal other shared" (RFC 2342).
func (e *Encoder) writeNamespace(data *imap.NamespaceData) error {
	if data == nil {
		data = &imap.NamespaceData{}
	}
	e.raw("* NAMESPACE ")
	e.namespaces(data.Personal)
	e.sp()
	e.namespaces(data.Other)
	e.sp()
	e.namespaces(data.Shared)
	e.crlf()
	return e.result()
}

// writeStatusData writes "* STATUS mailbox (items)": the items data
// holds (pointers set; UIDNEXT, UIDVALIDITY, HIGHESTMODSEQ when not 0),
// in RFC 9051's order.
func (e *Encoder) writeStatusData(data *imap.StatusData) error {
	e.statusData(data.Mailbox, data)
	return e.result()
}

func (e *Encoder) statusData(name string, data *imap.StatusData) {
	e.raw("* STATUS ")
	e.mailbox(name)
	e.raw(" (")
	n := 0
	item := func(name string) {
		if n > 0 {
			e.sp()
		}
		n++
		e.raw(name)
		e.sp()
	}
	if data.NumMessages != nil {
		item("MESSAGES")
		e.number(*data.NumMessages)
	}
	if data.NumRecent != nil && !e.rev2 {
		item("RECENT")
		e.number(*data.NumRecent)
	}
	if data.UIDNext != 0 {
		item("UIDNEXT")
		e.number(uint32(data.UIDNext))
	}
	if data.UIDValidity != 0 {
		item("UIDVALIDITY")
		e.number(data.UIDValidity)
	}
	if data.NumUnseen != nil {
		item("UNSEEN")
		e.number(*data.NumUnseen)
	}
	if data.NumDeleted != nil {
		item("DELETED")
		e.number(*data.NumDeleted)
	}
	if data.Size != nil {
		item("SIZE")
		e.int64(*data.Size)
	}
	if data.AppendLimit != nil {
		item("APPENDLIMIT")
		e.number(*data.AppendLimit)
	}
	if data.DeletedStorage != nil {
		item("DELETED-STORAGE")
		e.int64(*data.DeletedStorage)
	}
	if data.HighestModSeq != 0 {
		item("HIGHESTMODSEQ")
		e.number64(data.HighestModSeq)
	}
	e.byte(')')
	e.crlf()
}

// writeSelect writes SELECT's and EXAMINE's untagged responses, in RFC
// 9051 §6.3.2's order (with RFC 3501's RECENT and UNSEEN for IMAP4rev1
// sessions, and RFC 7162's HIGHESTMODSEQ or NOMODSEQ). The tagged OK
// [READ-WRITE] or [READ-ONLY] is the Conn's; readOnly makes
// PERMANENTFLAGS empty.
func (e *Encoder) writeSelect(data *SelectData, readOnly bool) error {
	e.raw("* FLAGS ")
	e.flags(data.Flags)
	e.crlf()

	e.raw("* ")
	e.number(data.NumMessages)
	e.raw(" EXISTS\r\n")

	if !e.rev2 {
		e.raw("* ")
		e.number(data.NumRecent)
		e.raw(" RECENT\r\n")
		if data.FirstUnseen != 0 {
			e.raw("* OK [UNSEEN ")
			e.number(data.FirstUnseen)
			e.raw("] First unseen\r\n")
		}
	}

	e.raw("* OK [PERMANENTFLAGS ")
	if readOnly {
		e.raw("()")
	} else {
		e.flags(data.PermanentFlags)
	}
	if readOnly {
		e.raw("] Read-only mailbox\r\n")
	} else {
		e.raw("] Flags permitted\r\n")
	}

	if data.UIDNext != 0 {
		e.raw("* OK [UIDNEXT ")
		e.number(uint32(data.UIDNext))
		e.raw("] Predicted next UID\r\n")
	}
	if data.UIDValidity != 0 {
		e.raw("* OK [UIDVALIDITY ")
		e.number(data.UIDValidity)
		e.raw("] UIDs valid\r\n")
	}
	if data.HighestModSeq != 0 {
		e.raw("* OK [HIGHESTMODSEQ ")
		e.number64(data.HighestModSeq)
		e.raw("] Highest\r\n")
	} else {
		e.raw("* OK [NOMODSEQ] No mod-sequences\r\n")
	}
	return e.result()
}

// writeSearch writes a SEARCH's answer: * SEARCH n ... [(MODSEQ m)]
// (RFC 3501, RFC 7162 §3.1.5) for a SEARCH without RETURN in an
// IMAP4rev1 session, else * ESEARCH (TAG "t") [UID] MIN n MAX n COUNT n
// ALL set [MODSEQ m] (RFC 4731, RFC 9051 §7.3.4) with the items RETURN
// asked for (none given, or RETURN (): ALL). RETURN (SAVE) alone
// (RFC 5182) writes nothing. Min, Max and Count are worked out from All
// when data leaves them 0.
func (e *Encoder) writeSearch(tag string, kind NumKind, data *imap.SearchData, args *SearchArgs) error {
	if data == nil {
		data = &imap.SearchData{}
	}
	extended := args != nil && args.Return
	var opts imap.SearchOptions
	if args != nil {
		opts = args.Options
	}
	if !extended && !e.rev2 {
		e.search(data)
		return e.result()
	}
	if !opts.ReturnMin && !opts.ReturnMax && !opts.ReturnCount && !opts.ReturnAll {
		if opts.ReturnSave {
			return nil
		}
		opts.ReturnAll = true
	}
	e.esearch(tag, kind, data, &opts)
	return e.result()
}

// search writes the IMAP4rev1 SEARCH response.
func (e *Encoder) search(data *imap.SearchData) {
	e.raw("* SEARCH")
	n := 0
	forEachNum(data.All, func(num uint32) {
		e.sp()
		e.number(num)
		n++
	})
	if n > 0 && data.ModSeq > 0 {
		e.raw(" (MODSEQ ")
		e.number64(data.ModSeq)
		e.byte(')')
	}
	e.crlf()
}

// forEachNum calls f with each number of a static set, in its order.
// "*" members (never in a result) are skipped.
func forEachNum(set imap.NumSet, f func(uint32)) {
	each := func(start, stop uint32) {
		if start == 0 || stop == 0 {
			return
		}
		if start > stop {
			start, stop = stop, start
		}
		for n := start; ; n++ {
			f(n)
			if n == stop {
				return
			}
		}
	}
	switch set := set.(type) {
	case imap.SeqSet:
		for _, r := range set {
			each(r.Start, r.Stop)
		}
	case imap.UIDSet:
		if imap.IsSearchRes(set) {
			return
		}
		for _, r := range set {
			each(uint32(r.Start), uint32(r.Stop))
		}
	}
}

// setStats returns the smallest and largest members of a static set and
// how many it has.
func setStats(set imap.NumSet) (lo, hi, count uint32) {
	add := func(start, stop uint32) {
		if start == 0 || stop == 0 {
			return
		}
		if start > stop {
			start, stop = stop, start
		}
		if lo == 0 || start < lo {
			lo = start
		}
		if stop > hi {
			hi = stop
		}
		count += stop - start + 1
	}
	switch set := set.(type) {
	case imap.SeqSet:
		for _, r := range set {
			add(r.Start, r.Stop)
		}
	case imap.UIDSet:
		for _, r := range set {
			add(uint32(r.Start), uint32(r.Stop))
		}
	}
	return lo, hi, count
}

func (e *Encoder) esearch(tag string, kind NumKind, data *imap.SearchData, opts *imap.SearchOptions) {
	e.raw("* ESEARCH")
	if tag != "" {
		e.raw(" (TAG ")
		e.string(tag)
		e.byte(')')
	}
	if kind == NumKindUID {
		e.raw(" UID")
	}
	lo, hi, count := setStats(data.All)
	if data.Min != 0 {
		lo = data.Min
	}
	if data.Max != 0 {
		hi = data.Max
	}
	if data.Count != 0 {
		count = data.Count
	}
	if opts.ReturnMin && lo != 0 {
		e.raw(" MIN ")
		e.number(lo)
	}
	if opts.ReturnMax && hi != 0 {
		e.raw(" MAX ")
		e.number(hi)
	}
	if opts.ReturnCount {
		e.raw(" COUNT ")
		e.number(count)
	}
	if opts.ReturnAll && !numSetEmpty(data.All) {
		e.raw(" ALL ")
		e.numSet(data.All)
	}
	if data.ModSeq > 0 && (count > 0 || lo != 0) {
		e.raw(" MODSEQ ")
		e.number64(data.ModSeq)
	}
	e.crlf()
}

// Code arguments (Status.CodeArg).

// codeAppendUID writes APPENDUID's "uidvalidity uid-set" (RFC 4315;
// several UIDs for MULTIAPPEND).
func codeAppendUID(data *AppendData) func(e *Encoder) {
	return func(e *Encoder) {
		e.number(data.UIDValidity)
		e.sp()
		e.uidSet(data.UIDs)
	}
}

// codeCopyUID writes COPYUID's "uidvalidity source-set dest-set".
func codeCopyUID(data *imap.CopyData) func(e *Encoder) {
	return func(e *Encoder) {
		e.number(data.UIDValidity)
		e.sp()
		e.uidSet(data.SourceUIDs)
		e.sp()
		e.uidSet(data.DestUIDs)
	}
}

// codeNumSet writes a set (MODIFIED, RFC 7162 §3.1.3).
func codeNumSet(set imap.NumSet) func(e *Encoder) {
	return func(e *Encoder) { e.numSet(set) }
}

// codeNumber writes a number (UIDNEXT, UIDVALIDITY, UNSEEN).
func codeNumber(n uint32) func(e *Encoder) {
	return func(e *Encoder) { e.number(n) }
}

// codeModSeq writes a mod-sequence (HIGHESTMODSEQ).
func codeModSeq(n uint64) func(e *Encoder) {
	return func(e *Encoder) { e.number64(n) }
}

// codeFlags writes a flag list (PERMANENTFLAGS).
func codeFlags(flags []imap.Flag) func(e *Encoder) {
	return func(e *Encoder) { e.flags(flags) }
}

// codeCaps writes capabilities (CAPABILITY in a greeting or a tagged OK).
func codeCaps(caps []imap.Cap) func(e *Encoder) {
	return func(e *Encoder) { e.capList(caps) }
}

// ListWriter writes LIST (or LSUB) responses, and with RETURN (STATUS)
// each listed mailbox's STATUS after it.
type ListWriter struct {
	c    *Conn
	lsub bool
	opts *imap.ListOptions
}

// WriteList writes one mailbox's LIST (or LSUB) response, then its
// STATUS when data.Status is set (LIST-STATUS, RFC 5819).
func (w *ListWriter) WriteList(data *imap.ListData) error {
	e := w.c.beginResponse()
	e.writeList(data, w.lsub)
	return w.c.endResponse()
}

// writeList writes * LIST (attrs) delim mailbox [(extended data)]
// (RFC 5258: CHILDINFO; RFC 9051: OLDNAME), then the STATUS when
// data.Status is set. LSUB responses have no extended data.
func (e *Encoder) writeList(data *imap.ListData, lsub bool) {
	if lsub {
		e.raw("* LSUB (")
	} else {
		e.raw("* LIST (")
	}
	first := true
	for _, a := range data.Attrs {
		if !isFlag(string(a)) {
			continue // see Encoder.flags
		}
		if !first {
			e.sp()
		}
		first = false
		e.atom(string(a))
	}
	e.raw(") ")
	e.delim(data.Delim)
	e.sp()
	e.mailbox(data.Mailbox)
	childInfo := data.ChildInfo != nil && data.ChildInfo.Subscribed
	if !lsub && (childInfo || data.OldName != "") {
		e.raw(" (")
		if childInfo {
			e.raw(`"CHILDINFO" ("SUBSCRIBED")`)
			if data.OldName != "" {
				e.sp()
			}
		}
		if data.OldName != "" {
			e.raw(`"OLDNAME" (`)
			e.mailbox(data.OldName)
			e.byte(')')
		}
		e.byte(')')
	}
	e.crlf()
	if data.Status != nil && !lsub {
		e.statusData(data.Mailbox, data.Status)
	}
}
