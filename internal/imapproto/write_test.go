package imapproto

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// testEncoder is an Encoder over a buffer; out flushes and returns what
// was written since the last out.
type testEncoder struct {
	*Encoder
	buf *bytes.Buffer
}

func newTestEncoder() *testEncoder {
	buf := new(bytes.Buffer)
	return &testEncoder{Encoder: newEncoder(bufio.NewWriter(buf)), buf: buf}
}

func (te *testEncoder) out(t *testing.T) string {
	t.Helper()
	if err := te.w.Flush(); err != nil {
		t.Fatal(err)
	}
	s := te.buf.String()
	te.buf.Reset()
	return s
}

// golden checks that write writes want.
func golden(t *testing.T, name string, want string, write func(e *Encoder)) {
	t.Helper()
	te := newTestEncoder()
	write(te.Encoder)
	if got := te.out(t); got != want {
		t.Errorf("%s:\n got %q\nwant %q", name, got, want)
	}
}

func u32(n uint32) *uint32 { return &n }
func i64(n int64) *int64   { return &n }

func TestEncoderStrings(t *testing.T) {
	long := strings.Repeat("a", maxQuoted+1)
	for _, tc := range []struct {
		in, want string
		utf8     bool
	}{
		{"hello", `"hello"`, false},
		{"", `""`, false},
		{`a "b" \c`, `"a \"b\" \\c"`, false},
		{"a\r\nb", "{4}\r\na\r\nb", false},
		{"a\x00b", "{3}\r\na\x00b", false},
		{"héllo", "{6}\r\nhéllo", false},
		{"héllo", `"héllo"`, true},
		{"\xff", "{1}\r\n\xff", true}, // not UTF-8
		{long, "{1025}\r\n" + long, false},
	} {
		golden(t, tc.in, tc.want, func(e *Encoder) {
			e.utf8 = tc.utf8
			e.string(tc.in)
		})
	}
	golden(t, "nstring", `NIL "x"`, func(e *Encoder) { e.nstring(""); e.sp(); e.nstring("x") })
	golden(t, "astring", `From "a b" "NIL" x-y`, func(e *Encoder) {
		e.astring("From")
		e.sp()
		e.astring("a b")
		e.sp()
		e.astring("NIL")
		e.sp()
		e.astring("x-y")
	})
	golden(t, "text", "a b  c", func(e *Encoder) { e.text("a\nb\r\nc") })
}

func TestEncoderPrimitives(t *testing.T) {
	golden(t, "numbers", "0 4294967295 18446744073709551615 0 42", func(e *Encoder) {
		e.number(0)
		e.sp()
		e.number(4294967295)
		e.sp()
		e.number64(18446744073709551615)
		e.sp()
		e.int64(-5)
		e.sp()
		e.int64(42)
	})
	golden(t, "flags", `(\Seen $Junk) ()`, func(e *Encoder) {
		e.flags([]imap.Flag{imap.FlagSeen, imap.FlagJunk})
		e.sp()
		e.flags(nil)
	})
	date := time.Date(2024, 3, 5, 7, 8, 9, 0, time.FixedZone("", -(4*3600+30*60)))
	golden(t, "date-time", `"05-Mar-2024 07:08:09 -0430"`, func(e *Encoder) { e.dateTime(date) })
	seq := imap.SeqSet{{Start: 1, Stop: 1}, {Start: 3, Stop: 5}, {Start: 7, Stop: 0}}
	golden(t, "seq set", "1,3:5,7:*", func(e *Encoder) { e.numSet(seq) })
	golden(t, "uid set", "9,10:20", func(e *Encoder) { e.numSet(imap.UIDSet{{Start: 9, Stop: 9}, {Start: 10, Stop: 20}}) })
	golden(t, "searchres", "$", func(e *Encoder) { e.numSet(imap.SearchRes()) })
	golden(t, "mailboxes", `INBOX "Sent" "Entw&APw-rfe" "a&-b" "a\"b"`, func(e *Encoder) {
		e.mailbox("inbox")
		e.sp()
		e.mailbox("Sent")
		e.sp()
		e.mailbox("Entwürfe")
		e.sp()
		e.mailbox("a&b")
		e.sp()
		e.mailbox(`a"b`)
	})
	golden(t, "mailboxes utf8", `"Entwürfe" "a&b"`, func(e *Encoder) {
		e.utf8 = true
		e.mailbox("Entwürfe")
		e.sp()
		e.mailbox("a&b")
	})
	golden(t, "delims", `"/" "." "\\" NIL`, func(e *Encoder) {
		e.delim('/')
		e.sp()
		e.delim('.')
		e.sp()
		e.delim('\\')
		e.sp()
		e.delim(0)
	})
}

func TestLiteralWriter(t *testing.T) {
	te := newTestEncoder()
	l := te.literal(5, false)
	io.WriteString(l, "he")
	l.Write([]byte("llo"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := te.out(t); got != "{5}\r\nhello" {
		t.Errorf("literal: %q", got)
	}
	if te.result() != nil {
		t.Fatal(te.result())
	}

	// Short: padded, error.
	te = newTestEncoder()
	l = te.literal(4, true)
	l.Write([]byte("ab"))
	if err := l.Close(); !errors.Is(err, errLiteralShort) {
		t.Errorf("short literal: %v", err)
	}
	if got := te.out(t); got != "~{4}\r\nab  " {
		t.Errorf("short literal: %q", got)
	}
	if te.result() == nil {
		t.Error("the Encoder does not keep the error")
	}

	// Long: cut, error.
	te = newTestEncoder()
	l = te.literal(2, false)
	if n, err := l.Write([]byte("abc")); n != 2 || !errors.Is(err, errLiteralLong) {
		t.Errorf("long literal: %d, %v", n, err)
	}
	l.Close()
	if got := te.out(t); got != "{2}\r\nab" {
		t.Errorf("long literal: %q", got)
	}
}

func TestWriteStatus(t *testing.T) {
	for _, tc := range []struct {
		s    Status
		want string
	}{
		{Status{Tag: "a1", Type: imap.StatusResponseTypeOK, Text: "LOGIN completed"}, "a1 OK LOGIN completed\r\n"},
		{Status{Type: imap.StatusResponseTypeOK, Code: imap.ResponseCodeAlert, Text: "Hi"}, "* OK [ALERT] Hi\r\n"},
		{Status{Tag: "a2", Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate}, "a2 NO [TRYCREATE] Failed\r\n"},
		{Status{Tag: "a3", Type: imap.StatusResponseTypeBad, Text: "bad\r\nline"}, "a3 BAD bad  line\r\n"},
		{Status{Tag: "a4", Type: imap.StatusResponseTypeNo, Text: "[x] y"}, "a4 NO  [x] y\r\n"},
		{Status{Tag: "*", Type: imap.StatusResponseTypeBye, Text: "Bye"}, "* BYE Bye\r\n"},
		{Status{Tag: "a5", Type: imap.StatusResponseTypeOK, Code: "READ-WRITE", Text: "SELECT completed"}, "a5 OK [READ-WRITE] SELECT completed\r\n"},
		{Status{Tag: "a6", Type: imap.StatusResponseTypeOK, Code: "APPENDUID",
			CodeArg: codeAppendUID(&AppendData{UIDValidity: 38505, UIDs: imap.UIDSet{{Start: 3955, Stop: 3957}}}), Text: "APPEND completed"},
			"a6 OK [APPENDUID 38505 3955:3957] APPEND completed\r\n"},
		{Status{Tag: "a7", Type: imap.StatusResponseTypeOK, Code: "COPYUID",
			CodeArg: codeCopyUID(&imap.CopyData{UIDValidity: 38505, SourceUIDs: imap.UIDSet{{Start: 304, Stop: 304}, {Start: 319, Stop: 320}}, DestUIDs: imap.UIDSet{{Start: 3956, Stop: 3958}}}), Text: "Done"},
			"a7 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n"},
		{Status{Tag: "a8", Type: imap.StatusResponseTypeOK, Code: "MODIFIED", CodeArg: codeNumSet(imap.SeqSet{{Start: 7, Stop: 7}, {Start: 9, Stop: 9}}), Text: "Conditional STORE failed"},
			"a8 OK [MODIFIED 7,9] Conditional STORE failed\r\n"},
		{Status{Type: imap.StatusResponseTypeOK, Code: "UIDNEXT", CodeArg: codeNumber(4392), Text: "Predicted next UID"}, "* OK [UIDNEXT 4392] Predicted next UID\r\n"},
		{Status{Type: imap.StatusResponseTypeOK, Code: "HIGHESTMODSEQ", CodeArg: codeModSeq(715194045007), Text: "Highest"}, "* OK [HIGHESTMODSEQ 715194045007] Highest\r\n"},
		{Status{Type: imap.StatusResponseTypeOK, Code: "PERMANENTFLAGS", CodeArg: codeFlags([]imap.Flag{imap.FlagDeleted, imap.FlagSeen, imap.FlagWildcard}), Text: "Limited"},
			"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n"},
		{Status{Type: imap.StatusResponseTypeOK, Code: "CAPABILITY", CodeArg: codeCaps([]imap.Cap{imap.CapIMAP4rev1, imap.CapIMAP4rev2}), Text: "ready"},
			"* OK [CAPABILITY IMAP4rev1 IMAP4rev2] ready\r\n"},
		{Status{Tag: "a9", Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig, Text: "Message too big"}, "a9 NO [TOOBIG] Message too big\r\n"},
		{Status{Tag: "b1", Type: imap.StatusResponseTypeOK, Code: "CLOSED", Text: "x"}, "b1 OK [CLOSED] x\r\n"},
	} {
		s := tc.s
		golden(t, tc.want, tc.want, func(e *Encoder) {
			if err := e.writeStatus(&s); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestWriteSimpleResponses(t *testing.T) {
	golden(t, "continuation", "+ Ready\r\n+ \r\n", func(e *Encoder) {
		e.writeContinuation("Ready")
		e.writeContinuation("")
	})
	golden(t, "capability", "* CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN\r\n", func(e *Encoder) {
		e.writeCapability([]imap.Cap{imap.CapIMAP4rev1, imap.CapLiteralPlus, "AUTH=PLAIN"})
	})
	golden(t, "enabled", "* ENABLED CONDSTORE QRESYNC\r\n* ENABLED\r\n", func(e *Encoder) {
		e.writeEnabled([]imap.Cap{imap.CapCondStore, imap.CapQResync})
		e.writeEnabled(nil)
	})
	golden(t, "id", "* ID (\"name\" \"bitmaskd\" \"version\" \"1.0\")\r\n* ID NIL\r\n", func(e *Encoder) {
		e.writeID(map[string]string{"version": "1.0", "name": "bitmaskd"})
		e.writeID(nil)
	})
	golden(t, "namespace", "* NAMESPACE ((\"\" \"/\")) NIL ((\"Shared/\" \"/\")(\"Öff/\" NIL))\r\n", func(e *Encoder) {
		e.utf8 = true
		e.writeNamespace(&imap.NamespaceData{
			Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: '/'}},
			Shared:   []imap.NamespaceDescriptor{{Prefix: "Shared/", Delim: '/'}, {Prefix: "Öff/"}},
		})
	})
	golden(t, "status", "* STATUS \"blurdybloop\" (MESSAGES 231 RECENT 1 UIDNEXT 44292 UIDVALIDITY 7 UNSEEN 3 DELETED 2 SIZE 12345 APPENDLIMIT 1000 HIGHESTMODSEQ 9)\r\n", func(e *Encoder) {
		e.writeStatusData(&imap.StatusData{Mailbox: "blurdybloop", NumMessages: u32(231), NumRecent: u32(1), UIDNext: 44292, UIDValidity: 7,
			NumUnseen: u32(3), NumDeleted: u32(2), Size: i64(12345), AppendLimit: u32(1000), HighestModSeq: 9})
	})
	golden(t, "status rev2", "* STATUS INBOX (MESSAGES 0)\r\n", func(e *Encoder) {
		e.rev2 = true
		e.writeStatusData(&imap.StatusData{Mailbox: "INBOX", NumMessages: u32(0), NumRecent: u32(0)})
	})
}

func TestWriteSelect(t *testing.T) {
	data := &SelectData{
		Flags:          []imap.Flag{imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagSeen, imap.FlagDraft},
		PermanentFlags: []imap.Flag{imap.FlagDeleted, imap.FlagSeen, imap.FlagWildcard},
		NumMessages:    172,
		NumRecent:      1,
		FirstUnseen:    12,
		UIDNext:        4392,
		UIDValidity:    3857529045,
		HighestModSeq:  715194045007,
	}
	golden(t, "rev1", "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"+
		"* 172 EXISTS\r\n"+
		"* 1 RECENT\r\n"+
		"* OK [UNSEEN 12] First unseen\r\n"+
		"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Flags permitted\r\n"+
		"* OK [UIDNEXT 4392] Predicted next UID\r\n"+
		"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"+
		"* OK [HIGHESTMODSEQ 715194045007] Highest\r\n",
		func(e *Encoder) { e.writeSelect(data, false) })
	nomod := *data
	nomod.HighestModSeq = 0
	golden(t, "rev2 examine", "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"+
		"* 172 EXISTS\r\n"+
		"* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n"+
		"* OK [UIDNEXT 4392] Predicted next UID\r\n"+
		"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"+
		"* OK [NOMODSEQ] No mod-sequences\r\n",
		func(e *Encoder) { e.rev2 = true; e.writeSelect(&nomod, true) })
}

func TestWriteSearch(t *testing.T) {
	all := imap.SeqSet{{Start: 2, Stop: 2}, {Start: 10, Stop: 12}}
	uids := imap.UIDSet{{Start: 4, Stop: 4}, {Start: 4294967294, Stop: 4294967295}}
	for _, tc := range []struct {
		name string
		rev2 bool
		kind NumKind
		data *imap.SearchData
		args *SearchArgs
		want string
	}{
		{"rev1", false, NumKindSeq, &imap.SearchData{All: all}, &SearchArgs{}, "* SEARCH 2 10 11 12\r\n"},
		{"rev1 nil args", false, NumKindSeq, &imap.SearchData{All: all}, nil, "* SEARCH 2 10 11 12\r\n"},
		{"rev1 uid top", false, NumKindUID, &imap.SearchData{All: uids}, &SearchArgs{}, "* SEARCH 4 4294967294 4294967295\r\n"},
		{"rev1 empty", false, NumKindSeq, &imap.SearchData{ModSeq: 5}, &SearchArgs{}, "* SEARCH\r\n"},
		{"rev1 modseq", false, NumKindSeq, &imap.SearchData{All: all, ModSeq: 917162500}, &SearchArgs{}, "* SEARCH 2 10 11 12 (MODSEQ 917162500)\r\n"},
		{"rev2 no return", true, NumKindSeq, &imap.SearchData{All: all}, &SearchArgs{}, "* ESEARCH (TAG \"t1\") ALL 2,10:12\r\n"},
		{"return ()", false, NumKindUID, &imap.SearchData{All: uids}, &SearchArgs{Return: true}, "* ESEARCH (TAG \"t1\") UID ALL 4,4294967294:4294967295\r\n"},
		{"return all stats", false, NumKindUID, &imap.SearchData{All: uids, ModSeq: 3},
			&SearchArgs{Return: true, Options: imap.SearchOptions{ReturnMin: true, ReturnMax: true, ReturnCount: true, ReturnAll: true}},
			"* ESEARCH (TAG \"t1\") UID MIN 4 MAX 4294967295 COUNT 3 ALL 4,4294967294:4294967295 MODSEQ 3\r\n"},
		{"given stats", false, NumKindSeq, &imap.SearchData{Min: 2, Max: 12, Count: 4},
			&SearchArgs{Return: true, Options: imap.SearchOptions{ReturnMin: true, ReturnMax: true, ReturnCount: true}},
			"* ESEARCH (TAG \"t1\") MIN 2 MAX 12 COUNT 4\r\n"},
		{"none found", false, NumKindSeq, &imap.SearchData{ModSeq: 4},
			&SearchArgs{Return: true, Options: imap.SearchOptions{ReturnMin: true, ReturnCount: true, ReturnAll: true}},
			"* ESEARCH (TAG \"t1\") COUNT 0\r\n"},
		{"save alone", false, NumKindSeq, &imap.SearchData{All: all}, &SearchArgs{Return: true, Options: imap.SearchOptions{ReturnSave: true}}, ""},
		{"save min", false, NumKindSeq, &imap.SearchData{All: all}, &SearchArgs{Return: true, Options: imap.SearchOptions{ReturnSave: true, ReturnMin: true}},
			"* ESEARCH (TAG \"t1\") MIN 2\r\n"},
	} {
		golden(t, tc.name, tc.want, func(e *Encoder) {
			e.rev2 = tc.rev2
			if err := e.writeSearch("t1", tc.kind, tc.data, tc.args); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestWriteList(t *testing.T) {
	golden(t, "list", "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"\r\n", func(e *Encoder) {
		e.writeList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrHasNoChildren, imap.MailboxAttrSent}, Delim: '/', Mailbox: "Sent"}, false)
	})
	golden(t, "list nil delim inbox", "* LIST () NIL INBOX\r\n", func(e *Encoder) {
		e.writeList(&imap.ListData{Mailbox: "INBOX"}, false)
	})
	golden(t, "childinfo", "* LIST (\\NonExistent) \"/\" \"Foo\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n", func(e *Encoder) {
		e.writeList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNonExistent}, Delim: '/', Mailbox: "Foo", ChildInfo: &imap.ListDataChildInfo{Subscribed: true}}, false)
	})
	golden(t, "oldname", "* LIST () \".\" \"Neu\" (\"CHILDINFO\" (\"SUBSCRIBED\") \"OLDNAME\" (\"Alt&AOQ-\"))\r\n", func(e *Encoder) {
		e.writeList(&imap.ListData{Delim: '.', Mailbox: "Neu", OldName: "Altä", ChildInfo: &imap.ListDataChildInfo{Subscribed: true}}, false)
	})
	golden(t, "lsub", "* LSUB (\\Noselect) \"/\" \"a\"\r\n", func(e *Encoder) {
		e.writeList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: '/', Mailbox: "a", ChildInfo: &imap.ListDataChildInfo{Subscribed: true}}, true)
	})
	golden(t, "list-status", "* LIST () \"/\" \"Drafts\"\r\n* STATUS \"Drafts\" (MESSAGES 3 UNSEEN 1)\r\n", func(e *Encoder) {
		e.writeList(&imap.ListData{Delim: '/', Mailbox: "Drafts", Status: &imap.StatusData{NumMessages: u32(3), NumUnseen: u32(1)}}, false)
	})
}

func TestWriteUpdates(t *testing.T) {
	golden(t, "expunge", "* 3 EXPUNGE\r\n", func(e *Encoder) { e.writeExpunge(3) })
	golden(t, "vanished", "* VANISHED 4,7:9\r\n* VANISHED (EARLIER) 1:*\r\n", func(e *Encoder) {
		e.writeVanished(imap.UIDSet{{Start: 4, Stop: 4}, {Start: 7, Stop: 9}}, false)
		e.writeVanished(imap.UIDSet{{Start: 1, Stop: 0}}, true)
	})
	golden(t, "exists recent", "* 23 EXISTS\r\n* 5 RECENT\r\n", func(e *Encoder) { e.writeExists(23); e.writeRecent(5) })
	golden(t, "recent rev2", "", func(e *Encoder) { e.rev2 = true; e.writeRecent(5) })
	golden(t, "flags", "* FLAGS (\\Seen work)\r\n* OK [PERMANENTFLAGS (\\Seen work \\*)] Flags permitted\r\n", func(e *Encoder) {
		e.writeMailboxFlags([]imap.Flag{imap.FlagSeen, "work"}, []imap.Flag{imap.FlagSeen, "work", imap.FlagWildcard})
	})
	golden(t, "flags only", "* FLAGS ()\r\n", func(e *Encoder) { e.writeMailboxFlags(nil, nil) })
	golden(t, "message flags", "* 4 FETCH (UID 9 FLAGS (\\Seen) MODSEQ (12))\r\n* 5 FETCH (FLAGS ())\r\n", func(e *Encoder) {
		e.writeMessageFlags(4, 9, []imap.Flag{imap.FlagSeen}, 12)
		e.writeMessageFlags(5, 0, nil, 0)
	})
	golden(t, "copyuid", "* OK [COPYUID 7 1:3 10:12] Moved\r\n", func(e *Encoder) {
		e.writeCopyData(&imap.CopyData{UIDValidity: 7, SourceUIDs: imap.UIDSet{{Start: 1, Stop: 3}}, DestUIDs: imap.UIDSet{{Start: 10, Stop: 12}}})
	})
}

// fetchTo writes one FETCH response with opts through write.
func fetchTo(e *Encoder, opts *FetchOptions, seq uint32, write func(w *FetchResponseWriter)) error {
	fw := &FetchWriter{opts: opts}
	fw.rw = FetchResponseWriter{w: fw, e: e}
	e.startFetch(seq)
	write(&fw.rw)
	return fw.rw.Close()
}

func TestWriteFetchItems(t *testing.T) {
	date := time.Date(1996, 7, 17, 2, 44, 25, 0, time.FixedZone("", -7*3600))
	golden(t, "simple", "* 12 FETCH (UID 4827313 FLAGS (\\Seen) RFC822.SIZE 44827 INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" MODSEQ (624140003))\r\n", func(e *Encoder) {
		err := fetchTo(e, nil, 12, func(w *FetchResponseWriter) {
			w.WriteUID(4827313)
			w.WriteFlags([]imap.Flag{imap.FlagSeen})
			w.WriteRFC822Size(44827)
			w.WriteInternalDate(date)
			w.WriteModSeq(624140003)
		})
		if err != nil {
			t.Error(err)
		}
	})

	hdr := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"From", "Subject"}, Peek: true}
	not := &imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"Received"}}
	partial := &imap.FetchItemBodySection{Part: []int{1, 2}, Specifier: imap.PartSpecifierText, Partial: &imap.SectionPartial{Offset: 100, Size: 10}}
	whole := &imap.FetchItemBodySection{}
	mime := &imap.FetchItemBodySection{Part: []int{3}, Specifier: imap.PartSpecifierMIME}
	opts := &FetchOptions{}
	golden(t, "sections", "* 1 FETCH (BODY[HEADER.FIELDS (From Subject)] {3}\r\nabc BODY[2.HEADER.FIELDS.NOT (Received)] {1}\r\nx BODY[1.2.TEXT]<100> {2}\r\nyz BODY[] {0}\r\n BODY[3.MIME] {1}\r\nm)\r\n", func(e *Encoder) {
		err := fetchTo(e, opts, 1, func(w *FetchResponseWriter) {
			for _, s := range []struct {
				sec  *imap.FetchItemBodySection
				body string
			}{{hdr, "abc"}, {not, "x"}, {partial, "yz"}, {whole, ""}, {mime, "m"}} {
				lw := w.WriteBodySection(s.sec, int64(len(s.body)))
				io.WriteString(lw, s.body)
				if err := lw.Close(); err != nil {
					t.Error(err)
				}
			}
		})
		if err != nil {
			t.Error(err)
		}
	})

	rfc822, rfc822h, rfc822t := &imap.FetchItemBodySection{}, &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}, &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText}
	opts = &FetchOptions{RFC822: rfc822, RFC822Header: rfc822h, RFC822Text: rfc822t}
	opts.BodySection = []*imap.FetchItemBodySection{rfc822, rfc822h, rfc822t}
	golden(t, "rfc822", "* 2 FETCH (RFC822 {1}\r\na RFC822.HEADER {1}\r\nb RFC822.TEXT {1}\r\nc BODY[TEXT] {1}\r\nd)\r\n", func(e *Encoder) {
		fetchTo(e, opts, 2, func(w *FetchResponseWriter) {
			for i, s := range []*imap.FetchItemBodySection{rfc822, rfc822h, rfc822t, {Specifier: imap.PartSpecifierText}} {
				lw := w.WriteBodySection(s, 1)
				lw.Write([]byte{"abcd"[i]})
				lw.Close()
			}
		})
	})

	golden(t, "binary", "* 3 FETCH (BINARY[1]<0> {2}\r\nab BINARY[2.1] ~{3}\r\na\x00b BINARY.SIZE[1] 2 BINARY.SIZE[] 9)\r\n", func(e *Encoder) {
		fetchTo(e, &FetchOptions{}, 3, func(w *FetchResponseWriter) {
			lw := w.WriteBinarySection(&imap.FetchItemBinarySection{Part: []int{1}, Partial: &imap.SectionPartial{Offset: 0, Size: 2}, Peek: true}, 2)
			io.WriteString(lw, "ab")
			lw.Close()
			lw = w.WriteBinarySection8(&imap.FetchItemBinarySection{Part: []int{2, 1}}, 3)
			io.WriteString(lw, "a\x00b")
			lw.Close()
			w.WriteBinarySectionSize(&imap.FetchItemBinarySectionSize{Part: []int{1}}, 2)
			w.WriteBinarySectionSize(&imap.FetchItemBinarySectionSize{}, 9)
		})
	})

	// A literal left open is padded and closed by Close, which reports it.
	golden(t, "open literal", "* 4 FETCH (BODY[] {3}\r\na  )\r\n", func(e *Encoder) {
		err := fetchTo(e, &FetchOptions{}, 4, func(w *FetchResponseWriter) {
			w.WriteBodySection(&imap.FetchItemBodySection{}, 3).Write([]byte("a"))
		})
		if !errors.Is(err, errLiteralShort) {
			t.Errorf("Close: %v", err)
		}
	})
}

// testEnvelope has every part of an envelope: a group, a named group, an
// empty group, quotes, non-ASCII text, several In-Reply-To identifiers.
func testEnvelope() *imap.Envelope {
	return &imap.Envelope{
		Date:    time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		Subject: `Re: "quoted" \ and ünïcode`,
		From:    []imap.Address{{Name: "Alice Ä", Mailbox: "alice", Host: "example.org"}},
		To: []imap.Address{
			{Mailbox: "undisclosed-recipients"}, {},
			{Name: "Bob", Mailbox: "bob", Host: "example.net"},
			{Mailbox: "Team"}, {Name: "Carol", Mailbox: "carol", Host: "example.com"}, {Mailbox: "dave", Host: "example.com"}, {},
		},
		Cc:        []imap.Address{{Name: `Eve "the" \ one`, Mailbox: "eve", Host: "example.com"}},
		InReplyTo: []string{"a@b", "c@d"},
		MessageID: "id@example.org",
	}
}

func TestWriteEnvelope(t *testing.T) {
	env := testEnvelope()
	want := `(` +
		`"Tue, 02 Jan 2024 03:04:05 +0000" ` +
		`"=?utf-8?q?Re:_\"quoted\"_\\_and_=C3=BCn=C3=AFcode?=" ` +
		`(("=?utf-8?q?Alice_=C3=84?=" NIL "alice" "example.org")) ` + // from
		`(("=?utf-8?q?Alice_=C3=84?=" NIL "alice" "example.org")) ` + // sender = from
		`(("=?utf-8?q?Alice_=C3=84?=" NIL "alice" "example.org")) ` + // reply-to = from
		`((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)("Bob" NIL "bob" "example.net")` +
		`(NIL NIL "Team" NIL)("Carol" NIL "carol" "example.com")(NIL NIL "dave" "example.com")(NIL NIL NIL NIL)) ` +
		`(("Eve \"the\" \\ one" NIL "eve" "example.com")) ` +
		`NIL ` +
		`"<a@b> <c@d>" "<id@example.org>")`
	golden(t, "envelope", "* 1 FETCH (ENVELOPE "+want+")\r\n", func(e *Encoder) {
		fetchTo(e, nil, 1, func(w *FetchResponseWriter) { w.WriteEnvelope(env) })
	})
	golden(t, "nil envelope", "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)", func(e *Encoder) { e.envelope(nil) })
	golden(t, "empty envelope", "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)", func(e *Encoder) { e.envelope(&imap.Envelope{}) })
	golden(t, "utf8 subject", `(NIL "ünïcode" NIL NIL NIL NIL NIL NIL NIL NIL)`, func(e *Encoder) {
		e.utf8 = true
		e.envelope(&imap.Envelope{Subject: "ünïcode"})
	})
}

// testBodyStructure is a multipart/mixed with a multipart/alternative,
// an attachment and a message/rfc822 holding a multipart itself. It has
// all that go-imap's client fills in when reading BODYSTRUCTURE (empty
// extension data, default encoding, Sender), so that it reads back equal.
func testBodyStructure() imap.BodyStructure {
	return &imap.BodyStructureMultiPart{
		Subtype: "mixed",
		Children: []imap.BodyStructure{
			&imap.BodyStructureMultiPart{
				Subtype: "alternative",
				Children: []imap.BodyStructure{
					&imap.BodyStructureSinglePart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "utf-8", "format": "flowed"},
						Encoding: "quoted-printable", Size: 1234, Text: &imap.BodyStructureText{NumLines: 40},
						Extended: &imap.BodyStructureSinglePartExt{}},
					&imap.BodyStructureSinglePart{Type: "text", Subtype: "html", Params: map[string]string{"charset": "utf-8"},
						Encoding: "base64", Size: 4567, Text: &imap.BodyStructureText{NumLines: 60},
						Extended: &imap.BodyStructureSinglePartExt{}},
				},
				Extended: &imap.BodyStructureMultiPartExt{Params: map[string]string{"boundary": "b2"}},
			},
			&imap.BodyStructureSinglePart{Type: "application", Subtype: "pdf", Params: map[string]string{"name": "Bericht ä.pdf"},
				ID: "<part1@x>", Description: "Der Bericht", Encoding: "base64", Size: 99999,
				Extended: &imap.BodyStructureSinglePartExt{
					Disposition: &imap.BodyStructureDisposition{Value: "attachment", Params: map[string]string{"filename": "Bericht.pdf", "size": "73000"}},
					Language:    []string{"de", "en"},
					Location:    "http://example.org/b.pdf",
				}},
			&imap.BodyStructureSinglePart{Type: "message", Subtype: "rfc822", Encoding: "7bit", Size: 500,
				MessageRFC822: &imap.BodyStructureMessageRFC822{
					Envelope: &imap.Envelope{Subject: "inner", From: []imap.Address{{Mailbox: "x", Host: "y"}},
						Sender: []imap.Address{{Mailbox: "x", Host: "y"}}, ReplyTo: []imap.Address{{Mailbox: "x", Host: "y"}}},
					BodyStructure: &imap.BodyStructureMultiPart{Subtype: "mixed", Children: []imap.BodyStructure{
						&imap.BodyStructureSinglePart{Type: "text", Subtype: "plain", Encoding: "7bit", Size: 3, Text: &imap.BodyStructureText{NumLines: 1},
							Extended: &imap.BodyStructureSinglePartExt{}},
						&imap.BodyStructureSinglePart{Type: "image", Subtype: "png", Encoding: "base64", Size: 30,
							Extended: &imap.BodyStructureSinglePartExt{Language: []string{"en"}}},
					}, Extended: &imap.BodyStructureMultiPartExt{}},
					NumLines: 20,
				},
				Extended: &imap.BodyStructureSinglePartExt{Disposition: &imap.BodyStructureDisposition{Value: "inline"}}},
		},
		Extended: &imap.BodyStructureMultiPartExt{Params: map[string]string{"boundary": "b1"}, Language: []string{"de"}},
	}
}

func TestWriteBodyStructure(t *testing.T) {
	bs := testBodyStructure()
	inner := `(NIL "inner" (("" NIL "x" "y")) (("" NIL "x" "y")) (("" NIL "x" "y")) NIL NIL NIL NIL NIL)`
	inner = strings.ReplaceAll(inner, `""`, "NIL")
	wantBody := `((("text" "plain" ("charset" "utf-8" "format" "flowed") NIL NIL "quoted-printable" 1234 40)` +
		`("text" "html" ("charset" "utf-8") NIL NIL "base64" 4567 60) "alternative")` +
		`("application" "pdf" ("name" {14}` + "\r\n" + `Bericht ä.pdf) "<part1@x>" "Der Bericht" "base64" 99999)` +
		`("message" "rfc822" NIL NIL NIL "7bit" 500 ` + inner + ` (("text" "plain" NIL NIL NIL "7bit" 3 1)("image" "png" NIL NIL NIL "base64" 30) "mixed") 20) "mixed")`
	golden(t, "BODY", "* 1 FETCH (BODY "+wantBody+")\r\n", func(e *Encoder) {
		fetchTo(e, &FetchOptions{FetchOptions: imap.FetchOptions{BodyStructure: &imap.FetchItemBodyStructure{}}}, 1, func(w *FetchResponseWriter) {
			w.WriteBodyStructure(bs)
		})
	})
	wantExt := `((("text" "plain" ("charset" "utf-8" "format" "flowed") NIL NIL "quoted-printable" 1234 40 NIL NIL NIL NIL)` +
		`("text" "html" ("charset" "utf-8") NIL NIL "base64" 4567 60 NIL NIL NIL NIL) "alternative" ("boundary" "b2") NIL NIL NIL)` +
		`("application" "pdf" ("name" {14}` + "\r\n" + `Bericht ä.pdf) "<part1@x>" "Der Bericht" "base64" 99999 NIL ("attachment" ("filename" "Bericht.pdf" "size" "73000")) ("de" "en") "http://example.org/b.pdf")` +
		`("message" "rfc822" NIL NIL NIL "7bit" 500 ` + inner + ` (("text" "plain" NIL NIL NIL "7bit" 3 1 NIL NIL NIL NIL)("image" "png" NIL NIL NIL "base64" 30 NIL NIL "en" NIL) "mixed" NIL NIL NIL NIL) 20 NIL ("inline" NIL) NIL NIL)` +
		` "mixed" ("boundary" "b1") NIL "de" NIL)`
	golden(t, "BODYSTRUCTURE", "* 1 FETCH (BODYSTRUCTURE "+wantExt+")\r\n", func(e *Encoder) {
		fetchTo(e, &FetchOptions{FetchOptions: imap.FetchOptions{BodyStructure: &imap.FetchItemBodyStructure{Extended: true}}}, 1, func(w *FetchResponseWriter) {
			w.WriteBodyStructure(bs)
		})
	})
	golden(t, "degenerate", `(("text" "plain" NIL NIL NIL "7bit" 0 0) "mixed")`, func(e *Encoder) {
		e.bodyStructure(&imap.BodyStructureMultiPart{}, false)
	})
	golden(t, "rfc822 without data", `("message" "rfc822" NIL NIL NIL "7bit" 0 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ("text" "plain" NIL NIL NIL "7bit" 0 0) 0)`, func(e *Encoder) {
		e.bodyStructure(&imap.BodyStructureSinglePart{Type: "message", Subtype: "rfc822"}, false)
	})
}

func TestDateFormats(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("", -(9*3600 + 30*60)), time.FixedZone("", 14*3600), time.FixedZone("", 45*60)}
	for i := range 2000 {
		tm := time.Unix(int64(i)*7919*3571-3e9, 0).In(zones[i%len(zones)])
		if got, want := string(appendDateTime(nil, tm)), tm.Format(dateTimeLayout); got != want {
			t.Errorf("date-time %q, want %q", got, want)
		}
		if got, want := string(appendEnvelopeDate(nil, tm)), tm.Format(envelopeLayout); got != want {
			t.Errorf("envelope date %q, want %q", got, want)
		}
	}
}

func TestEnvelopeMsgIDLiteral(t *testing.T) {
	golden(t, "in-reply-to literal", "(NIL NIL NIL NIL NIL NIL NIL NIL {11}\r\n<a\rb> <c@d> NIL)", func(e *Encoder) {
		e.envelope(&imap.Envelope{InReplyTo: []string{"a\rb", "c@d"}})
	})
	golden(t, "message-id", `(NIL NIL NIL NIL NIL NIL NIL NIL "<a@b>" "<x\"y@z>")`, func(e *Encoder) {
		e.envelope(&imap.Envelope{InReplyTo: []string{"a@b"}, MessageID: `x"y@z`})
	})
}

// deadlineConn is a net.Conn that only takes write deadlines: the
// writers' Conn writes into a buffer.
type deadlineConn struct{ net.Conn }

func (deadlineConn) SetWriteDeadline(time.Time) error { return nil }

// testConn is a Conn whose responses go to buf.
func testConn() (*Conn, *bytes.Buffer) {
	buf := new(bytes.Buffer)
	bw := bufio.NewWriter(buf)
	return &Conn{conn: deadlineConn{}, bw: bw, enc: newEncoder(bw)}, buf
}

func TestWritersThroughConn(t *testing.T) {
	c, buf := testConn()
	uw := &UpdateWriter{c: c}
	check := func(what, want string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
		if got := buf.String(); got != want {
			t.Errorf("%s:\n got %q\nwant %q", what, got, want)
		}
		buf.Reset()
	}
	check("expunge", "* 2 EXPUNGE\r\n", uw.WriteExpunge(2))
	check("vanished", "* VANISHED (EARLIER) 5:7\r\n", uw.WriteVanished(imap.UIDSet{{Start: 5, Stop: 7}}, true))
	check("vanished empty", "", uw.WriteVanished(nil, false))
	check("exists", "* 9 EXISTS\r\n", uw.WriteNumMessages(9))
	check("recent", "* 1 RECENT\r\n", uw.WriteNumRecent(1))
	check("flags", "* FLAGS (\\Seen)\r\n", uw.WriteMailboxFlags([]imap.Flag{imap.FlagSeen}, nil))
	check("message flags", "* 3 FETCH (UID 8 FLAGS (\\Seen) MODSEQ (4))\r\n", uw.WriteMessageFlags(3, 8, []imap.Flag{imap.FlagSeen}, 4))
	check("copy data", "* OK [COPYUID 1 2 3] Moved\r\n", uw.WriteCopyData(&imap.CopyData{UIDValidity: 1, SourceUIDs: imap.UIDSet{{Start: 2, Stop: 2}}, DestUIDs: imap.UIDSet{{Start: 3, Stop: 3}}}))

	lw := &ListWriter{c: c, opts: &imap.ListOptions{}}
	check("list", "* LIST () \"/\" \"a\"\r\n", lw.WriteList(&imap.ListData{Delim: '/', Mailbox: "a"}))
	lw = &ListWriter{c: c, lsub: true}
	check("lsub", "* LSUB () \"/\" \"a\"\r\n", lw.WriteList(&imap.ListData{Delim: '/', Mailbox: "a"}))

	fw := &FetchWriter{c: c, opts: &FetchOptions{}}
	for seq := uint32(1); seq <= 2; seq++ {
		w := fw.CreateMessage(seq)
		w.WriteUID(imap.UID(seq * 10))
		lit := w.WriteBodySection(&imap.FetchItemBodySection{}, 2)
		io.WriteString(lit, "hi")
		lit.Close()
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	}
	check("fetch", "* 1 FETCH (UID 10 BODY[] {2}\r\nhi)\r\n* 2 FETCH (UID 20 BODY[] {2}\r\nhi)\r\n", nil)
	check("fetch updates", "* 4 EXISTS\r\n", fw.Updates().WriteNumMessages(4))
}

// FuzzWriteString checks that every string the Encoder writes reads back
// whole, as a quoted string or a literal, with and without UTF-8.
func FuzzWriteString(f *testing.F) {
	for _, s := range []string{"", "a", `"\`, "a\r\nb", "\x00", "ü", "\xff\xfe", strings.Repeat("x", maxQuoted+1)} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, utf8 bool) {
		te := newTestEncoder()
		te.utf8 = utf8
		te.string(s)
		viaWriter := te.out(t)
		got := string(te.appendString(nil, s))
		if got != viaWriter {
			t.Fatalf("string and appendString differ: %q, %q", viaWriter, got)
		}
		back, rest, err := readTestString(got)
		if err != nil || rest != "" || back != s {
			t.Fatalf("%q written as %q read back as %q (rest %q, %v)", s, got, back, rest, err)
		}
	})
}

// readTestString reads one quoted string or literal off s.
func readTestString(s string) (str, rest string, err error) {
	switch {
	case strings.HasPrefix(s, `"`):
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			switch c := s[i]; c {
			case '\\':
				i++
				if i == len(s) || (s[i] != '"' && s[i] != '\\') {
					return "", "", errors.New("bad escape")
				}
				b.WriteByte(s[i])
			case '"':
				return b.String(), s[i+1:], nil
			case '\r', '\n', 0:
				return "", "", errors.New("CR, LF or NUL in a quoted string")
			default:
				b.WriteByte(c)
			}
		}
		return "", "", errors.New("unterminated quoted string")
	case strings.HasPrefix(s, "{"):
		head, body, ok := strings.Cut(s[1:], "}\r\n")
		if !ok {
			return "", "", errors.New("bad literal")
		}
		n, err := strconv.Atoi(head)
		if err != nil || n > len(body) {
			return "", "", errors.New("bad literal size")
		}
		return body[:n], body[n:], nil
	}
	return "", "", errors.New("not a string")
}

func TestLiteralLeftOpen(t *testing.T) {
	golden(t, "two literals", "* 1 FETCH (BODY[1] {2}\r\na  BODY[2] {1}\r\nb)\r\n", func(e *Encoder) {
		err := fetchTo(e, &FetchOptions{}, 1, func(w *FetchResponseWriter) {
			io.WriteString(w.WriteBodySection(&imap.FetchItemBodySection{Part: []int{1}}, 2), "a")
			lw := w.WriteBodySection(&imap.FetchItemBodySection{Part: []int{2}}, 1)
			io.WriteString(lw, "b")
			lw.Close()
		})
		if !errors.Is(err, errLiteralShort) {
			t.Errorf("Close: %v", err)
		}
	})
}
