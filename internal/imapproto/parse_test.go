package imapproto

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// testDecoder reads in; conts counts the continuation requests.
type testDecoder struct {
	*Decoder
	conts int
}

func newTestDecoder(in string, lim Limits) *testDecoder {
	td := &testDecoder{}
	td.Decoder = NewDecoder(bufio.NewReader(strings.NewReader(in)), lim, func() error {
		td.conts++
		return nil
	})
	return td
}

// after is a command sent after each test's input: it must read fine,
// whatever happened to the one before.
const after = "z9 NOOP\r\n"

func checkAfter(t *testing.T, d *testDecoder, in string) {
	t.Helper()
	cmd, err := d.ReadCommand()
	if err != nil || cmd.Tag != "z9" || cmd.Name != "NOOP" {
		t.Errorf("%.60q: the next command reads as %+v, %v", in, cmd, err)
		return
	}
	if _, err := d.ReadCommand(); err != io.EOF {
		t.Errorf("%.60q: then %v, want EOF", in, err)
	}
}

func show(v any) string {
	switch v := v.(type) {
	case *Command:
		if v == nil {
			return "nil"
		}
		return fmt.Sprintf("%+v args=%s", *v, show(v.Args))
	case nil:
		return "nil"
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		return fmt.Sprintf("&%+v", rv.Elem().Interface())
	}
	return fmt.Sprintf("%+v", v)
}

type goodCase struct {
	in    string
	want  *Command
	conts int
}

func runGood(t *testing.T, cases []goodCase) {
	t.Helper()
	for _, tc := range cases {
		d := newTestDecoder(tc.in+after, Limits{})
		got, err := d.ReadCommand()
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q:\n got %s\nwant %s", tc.in, show(got), show(tc.want))
			continue
		}
		if d.conts != tc.conts {
			t.Errorf("%q: %d continuation requests, want %d", tc.in, d.conts, tc.conts)
		}
		checkAfter(t, d, tc.in)
	}
}

// runBad checks that each input is a ParseError for tag, and that the
// command after it reads fine.
func runBad(t *testing.T, tag string, cases []string) {
	t.Helper()
	for _, in := range cases {
		d := newTestDecoder(in+after, Limits{})
		got, err := d.ReadCommand()
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%q: got %s, %v; want a ParseError", in, show(got), err)
			continue
		}
		if pe.Tag != tag {
			t.Errorf("%q: tag %q, want %q", in, pe.Tag, tag)
		}
		if d.conts != 0 {
			t.Errorf("%q: %d continuation requests", in, d.conts)
		}
		checkAfter(t, d, in)
	}
}

func TestParseSimple(t *testing.T) {
	var cases []goodCase
	for _, name := range []string{"CAPABILITY", "NOOP", "CHECK", "LOGOUT", "STARTTLS", "UNAUTHENTICATE", "NAMESPACE", "IDLE", "CLOSE", "UNSELECT", "EXPUNGE"} {
		cases = append(cases,
			goodCase{in: "a1 " + name + "\r\n", want: &Command{Tag: "a1", Name: name}},
			goodCase{in: "A.b-2 " + strings.ToLower(name) + "\n", want: &Command{Tag: "A.b-2", Name: name}})
	}
	cases = append(cases,
		goodCase{in: "\r\n\r\nt NOOP\r\n", want: &Command{Tag: "t", Name: "NOOP"}},
		goodCase{in: "x]y NOOP\r\n", want: &Command{Tag: "x]y", Name: "NOOP"}},
		goodCase{in: "a LOGIN joe secret\r\n", want: &Command{Tag: "a", Name: "LOGIN", Args: &LoginArgs{"joe", "secret"}}},
		goodCase{in: `a login "joe smith" "p\"a\\ss"` + "\r\n", want: &Command{Tag: "a", Name: "LOGIN", Args: &LoginArgs{"joe smith", `p"a\ss`}}},
		goodCase{in: "a LOGIN {3}\r\njoe {6}\r\nsecret\r\n", want: &Command{Tag: "a", Name: "LOGIN", Args: &LoginArgs{"joe", "secret"}}, conts: 2},
		goodCase{in: "a LOGIN {3+}\r\njoe {6+}\r\nsecret\r\n", want: &Command{Tag: "a", Name: "LOGIN", Args: &LoginArgs{"joe", "secret"}}},
		goodCase{in: "a LOGIN \"j\xc3\xb6\" \"\"\r\n", want: &Command{Tag: "a", Name: "LOGIN", Args: &LoginArgs{"jö", ""}}},
		goodCase{in: "a LOGIN {0}\r\n {0}\r\n\r\n", want: &Command{Tag: "a", Name: "LOGIN", Args: &LoginArgs{"", ""}}, conts: 2},
		goodCase{in: "a AUTHENTICATE plain\r\n", want: &Command{Tag: "a", Name: "AUTHENTICATE", Args: &AuthenticateArgs{Mechanism: "PLAIN"}}},
		goodCase{in: "a AUTHENTICATE PLAIN =\r\n", want: &Command{Tag: "a", Name: "AUTHENTICATE", Args: &AuthenticateArgs{Mechanism: "PLAIN", Initial: []byte{}, HasInitial: true}}},
		goodCase{in: "a AUTHENTICATE PLAIN AGpvZQBzZWNyZXQ=\r\n", want: &Command{Tag: "a", Name: "AUTHENTICATE", Args: &AuthenticateArgs{Mechanism: "PLAIN", Initial: []byte("\x00joe\x00secret"), HasInitial: true}}},
		goodCase{in: "a AUTHENTICATE SCRAM-SHA-256\r\n", want: &Command{Tag: "a", Name: "AUTHENTICATE", Args: &AuthenticateArgs{Mechanism: "SCRAM-SHA-256"}}},
		goodCase{in: "a ENABLE condstore imap4REV2 utf8=accept\r\n", want: &Command{Tag: "a", Name: "ENABLE", Args: &EnableArgs{Caps: []imap.Cap{imap.CapCondStore, imap.CapIMAP4rev2, imap.CapUTF8Accept}}}},
		goodCase{in: "a ID NIL\r\n", want: &Command{Tag: "a", Name: "ID", Args: &IDArgs{}}},
		goodCase{in: "a ID ()\r\n", want: &Command{Tag: "a", Name: "ID", Args: &IDArgs{Params: []IDParam{}}}},
		goodCase{in: `a ID ("name" "Thunderbird" "version" NIL "os" {5}` + "\r\nLinux)\r\n", want: &Command{Tag: "a", Name: "ID", Args: &IDArgs{Params: []IDParam{
			{"name", ptr("Thunderbird")}, {"version", nil}, {"os", ptr("Linux")}}}}, conts: 1},
	)
	runGood(t, cases)
	runBad(t, "a", []string{
		"a FOO\r\n",
		"a NOOP extra\r\n",
		"a NOOP \r\n",
		"a UID NOOP\r\n",
		"a UID\r\n",
		"a LOGIN joe\r\n",
		"a LOGIN joe \r\n",
		"a LOGIN (joe) x\r\n",
		"a LOGIN \"joe x\r\n",
		`a LOGIN "jo\e" x` + "\r\n",
		"a LOGIN joe {3}x\r\n",
		"a LOGIN joe ~{3}\r\n",
		"a LOGIN joe {3+}\r\na\x00b\r\n",
		"a LOGIN \"j\x00e\" x\r\n",
		"a LOGIN \"j\re\" x\r\n",
		"a NOOP\r\r\n",
		"a AUTHENTICATE\r\n",
		"a AUTHENTICATE PLAIN !!!!\r\n",
		"a AUTHENTICATE PLAIN AGpvZQ\r\n",
		"a AUTHENTICATE PLAIN \r\n",
		"a ENABLE\r\n",
		"a ENABLE \r\n",
		"a ID\r\n",
		"a ID (\"name\")\r\n",
		"a ID (\"name\" \"x\"\r\n",
		"a ID \"name\"\r\n",
		"a ID (name x)\r\n",
		"a ID (\"" + strings.Repeat("k", 31) + "\" NIL)\r\n",
		"a ID (\"k\" \"" + strings.Repeat("v", 1025) + "\")\r\n",
		"a ID (" + strings.Repeat(`"k" NIL `, 31) + "\"k\" NIL)\r\n",
	})
	runBad(t, "*", []string{
		"+ NOOP\r\n",
		"NOOP\r\n",
		"(a) NOOP\r\n",
		" a NOOP\r\n",
		"a\r\n",
		"a{3} NOOP\r\n",
		"a\x00 NOOP\r\n",
	})
}

func ptr[T any](v T) *T { return &v }

func sr(a, b uint32) imap.SeqRange   { return imap.SeqRange{Start: a, Stop: b} }
func ur(a, b imap.UID) imap.UIDRange { return imap.UIDRange{Start: a, Stop: b} }

func TestParseMailboxes(t *testing.T) {
	sel := func(mbox string, o SelectOptions) *SelectArgs { return &SelectArgs{Mailbox: mbox, Options: o} }
	runGood(t, []goodCase{
		{in: "a SELECT inbox\r\n", want: &Command{Tag: "a", Name: "SELECT", Args: sel("INBOX", SelectOptions{})}},
		{in: "a SELECT \"InBoX\"\r\n", want: &Command{Tag: "a", Name: "SELECT", Args: sel("INBOX", SelectOptions{})}},
		{in: "a SELECT INBOX.Sent\r\n", want: &Command{Tag: "a", Name: "SELECT", Args: sel("INBOX.Sent", SelectOptions{})}},
		{in: "a SELECT Entw&APw-rfe\r\n", want: &Command{Tag: "a", Name: "SELECT", Args: sel("Entwürfe", SelectOptions{})}},
		{in: "a EXAMINE a]b\r\n", want: &Command{Tag: "a", Name: "EXAMINE", Args: sel("a]b", SelectOptions{ReadOnly: true})}},
		{in: "a SELECT INBOX (CONDSTORE)\r\n", want: &Command{Tag: "a", Name: "SELECT", CondStore: true, Args: sel("INBOX", SelectOptions{CondStore: true})}},
		{in: "a SELECT INBOX ()\r\n", want: &Command{Tag: "a", Name: "SELECT", Args: sel("INBOX", SelectOptions{})}},
		{in: "a SELECT INBOX (QRESYNC (67890007 20050715194045000))\r\n", want: &Command{Tag: "a", Name: "SELECT", CondStore: true,
			Args: sel("INBOX", SelectOptions{QResync: &QResyncParams{UIDValidity: 67890007, ModSeq: 20050715194045000}})}},
		{in: "a EXAMINE INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541))\r\n", want: &Command{Tag: "a", Name: "EXAMINE", CondStore: true,
			Args: sel("INBOX", SelectOptions{ReadOnly: true, QResync: &QResyncParams{UIDValidity: 67890007, ModSeq: 90060115194045000,
				KnownUIDs: imap.UIDSet{ur(41, 211), ur(214, 541)}}})}},
		{in: "a SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))\r\n",
			want: &Command{Tag: "a", Name: "SELECT", CondStore: true, Args: sel("INBOX", SelectOptions{QResync: &QResyncParams{
				UIDValidity: 67890007, ModSeq: 90060115194045000, KnownUIDs: imap.UIDSet{ur(1, 29997)},
				SeqMatchSeqs: imap.SeqSet{sr(5000, 5000), sr(7500, 7500), sr(9000, 9000), sr(9990, 9999)},
				SeqMatchUIDs: imap.UIDSetNum(15000, 22500, 27000, 29970, 29973, 29976, 29979, 29982, 29985, 29988, 29991, 29994, 29997)}})}},
		{in: "a SELECT INBOX (QRESYNC (1 0 (1 7)) CONDSTORE)\r\n", want: &Command{Tag: "a", Name: "SELECT", CondStore: true,
			Args: sel("INBOX", SelectOptions{CondStore: true, QResync: &QResyncParams{UIDValidity: 1, SeqMatchSeqs: imap.SeqSet{sr(1, 1)}, SeqMatchUIDs: imap.UIDSet{ur(7, 7)}}})}},
		{in: "a CREATE foo/bar\r\n", want: &Command{Tag: "a", Name: "CREATE", Args: &CreateArgs{Mailbox: "foo/bar"}}},
		{in: "a CREATE \"My Sent\" (USE (\\sent \\X-Foo))\r\n", want: &Command{Tag: "a", Name: "CREATE",
			Args: &CreateArgs{Mailbox: "My Sent", Options: imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttrSent, `\X-Foo`}}}}},
		{in: "a CREATE x (USE ())\r\n", want: &Command{Tag: "a", Name: "CREATE", Args: &CreateArgs{Mailbox: "x"}}},
		{in: "a DELETE &BBoEPgRABDcEOAQ9BDA-\r\n", want: &Command{Tag: "a", Name: "DELETE", Args: &MailboxArgs{"Корзина"}}},
		{in: "a SUBSCRIBE {5}\r\nInbox\r\n", want: &Command{Tag: "a", Name: "SUBSCRIBE", Args: &MailboxArgs{"INBOX"}}, conts: 1},
		{in: "a UNSUBSCRIBE \"a b\"\r\n", want: &Command{Tag: "a", Name: "UNSUBSCRIBE", Args: &MailboxArgs{"a b"}}},
		{in: "a RENAME old \"new one\"\r\n", want: &Command{Tag: "a", Name: "RENAME", Args: &RenameArgs{"old", "new one"}}},
		{in: "a STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT APPENDLIMIT)\r\n", want: &Command{Tag: "a", Name: "STATUS",
			Args: &StatusArgs{Mailbox: "INBOX", Options: imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, NumUnseen: true,
				NumDeleted: true, Size: true, NumRecent: true, AppendLimit: true}}}},
		{in: "a status x (highestmodseq)\r\n", want: &Command{Tag: "a", Name: "STATUS", CondStore: true,
			Args: &StatusArgs{Mailbox: "x", Options: imap.StatusOptions{HighestModSeq: true}}}},
	})
	runBad(t, "a", []string{
		"a SELECT\r\n",
		"a SELECT \r\n",
		"a SELECT a&b\r\n",         // not modified UTF-7
		"a SELECT Entwürfe\r\n",    // 8-bit without UTF8=ACCEPT
		"a SELECT INBOX (FOO)\r\n", // unknown parameter
		"a SELECT INBOX (CONDSTORE\r\n",
		"a SELECT INBOX CONDSTORE\r\n",
		"a SELECT INBOX (CONDSTORE)x\r\n",
		"a SELECT INBOX (QRESYNC)\r\n",
		"a SELECT INBOX (QRESYNC ())\r\n",
		"a SELECT INBOX (QRESYNC (0 1))\r\n",             // uidvalidity 0
		"a SELECT INBOX (QRESYNC (1 1 1:*))\r\n",         // * in known-uids
		"a SELECT INBOX (QRESYNC (1 1 1:5 (1:3 4)))\r\n", // sizes differ
		"a SELECT INBOX (QRESYNC (1 1 (1 2 3)))\r\n",
		"a SELECT INBOX (QRESYNC (1 99999999999999999999))\r\n",
		"a SELECT \"a\x00b\"\r\n",
		"a CREATE\r\n",
		"a CREATE x (FOO (\\Sent))\r\n",
		"a CREATE x (USE (Sent))\r\n",
		"a CREATE x (USE \\Sent)\r\n",
		"a DELETE\r\n",
		"a RENAME a\r\n",
		"a RENAME a b c\r\n",
		"a STATUS INBOX\r\n",
		"a STATUS INBOX ()\r\n",
		"a STATUS INBOX (MESSAGES FOO)\r\n",
		"a STATUS INBOX MESSAGES\r\n",
		"a STATUS INBOX (MESSAGES\r\n",
	})

	d := newTestDecoder("a SELECT \"Entwürfe\"\r\nb SELECT Entw&APw-rfe\r\nc SELECT Entwürfe\r\n", Limits{})
	d.SetUTF8(true)
	for _, want := range []string{"Entwürfe", "Entw&APw-rfe"} {
		cmd, err := d.ReadCommand()
		if err != nil || cmd.Args.(*SelectArgs).Mailbox != want {
			t.Errorf("UTF8=ACCEPT: %s, %v; want %q", show(cmd), err, want)
		}
	}
	// UTF-8 is allowed in quoted strings only (RFC 6855 §3).
	if cmd, err := d.ReadCommand(); err == nil {
		t.Errorf("UTF8=ACCEPT, 8-bit atom: %s", show(cmd))
	}
}

func TestParseList(t *testing.T) {
	list := func(ref string, pats []string, o imap.ListOptions) *ListArgs {
		return &ListArgs{Ref: ref, Patterns: pats, Options: o}
	}
	runGood(t, []goodCase{
		{in: "a LIST \"\" *\r\n", want: &Command{Tag: "a", Name: "LIST", Args: list("", []string{"*"}, imap.ListOptions{})}},
		{in: "a LIST \"\" \"\"\r\n", want: &Command{Tag: "a", Name: "LIST", Args: list("", []string{""}, imap.ListOptions{})}},
		{in: "a LIST ~/Mail/ %\r\n", want: &Command{Tag: "a", Name: "LIST", Args: list("~/Mail/", []string{"%"}, imap.ListOptions{})}},
		{in: "a list \"\" inbox\r\n", want: &Command{Tag: "a", Name: "LIST", Args: list("", []string{"INBOX"}, imap.ListOptions{})}},
		{in: "a LIST \"\" Entw&APw-rfe*\r\n", want: &Command{Tag: "a", Name: "LIST", Args: list("", []string{"Entwürfe*"}, imap.ListOptions{})}},
		// The pattern: every ATOM-CHAR and wildcards; not
		// modified UTF-7, kept as it is.
		{in: "a LIST \"\" !#$&'+,-.0123456789:;<=>?@^_|[}%*\r\n", want: &Command{Tag: "a", Name: "LIST",
			Args: list("", []string{"!#$&'+,-.0123456789:;<=>?@^_|[}%*"}, imap.ListOptions{})}},
		{in: "a LIST \"\" a]b\r\n", want: &Command{Tag: "a", Name: "LIST", Args: list("", []string{"a]b"}, imap.ListOptions{})}},
		{in: "a LIST () \"\" %\r\n", want: &Command{Tag: "a", Name: "LIST", Args: list("", []string{"%"}, imap.ListOptions{})}},
		{in: "a LIST (SUBSCRIBED) \"\" \"*\"\r\n", want: &Command{Tag: "a", Name: "LIST", Args: list("", []string{"*"}, imap.ListOptions{SelectSubscribed: true})}},
		{in: "a LIST (SUBSCRIBED RECURSIVEMATCH remote) \"\" (% \"foo/*\" {3}\r\nbar) RETURN (CHILDREN)\r\n", conts: 1, want: &Command{Tag: "a", Name: "LIST",
			Args: list("", []string{"%", "foo/*", "bar"}, imap.ListOptions{SelectSubscribed: true, SelectRecursiveMatch: true, SelectRemote: true, ReturnChildren: true})}},
		{in: "a LIST (SPECIAL-USE) \"\" * RETURN (SPECIAL-USE SUBSCRIBED)\r\n", want: &Command{Tag: "a", Name: "LIST",
			Args: list("", []string{"*"}, imap.ListOptions{SelectSpecialUse: true, ReturnSpecialUse: true, ReturnSubscribed: true})}},
		{in: "a LIST \"\" * RETURN ()\r\n", want: &Command{Tag: "a", Name: "LIST", Args: list("", []string{"*"}, imap.ListOptions{})}},
		{in: "a LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN HIGHESTMODSEQ))\r\n", want: &Command{Tag: "a", Name: "LIST", CondStore: true,
			Args: list("", []string{"%"}, imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true, NumUnseen: true, HighestModSeq: true}})}},
		{in: "a LSUB \"\" *\r\n", want: &Command{Tag: "a", Name: "LSUB", Args: list("", []string{"*"}, imap.ListOptions{SelectSubscribed: true})}},
		{in: "a LSUB #news. comp.mail.*\r\n", want: &Command{Tag: "a", Name: "LSUB", Args: list("#news.", []string{"comp.mail.*"}, imap.ListOptions{SelectSubscribed: true})}},
	})
	runBad(t, "a", []string{
		"a LIST\r\n",
		"a LIST \"\"\r\n",
		"a LIST \"\" \r\n",
		"a LIST \"\" a(b\r\n",
		"a LIST (FOO) \"\" *\r\n",
		"a LIST (RECURSIVEMATCH) \"\" *\r\n",
		"a LIST (RECURSIVEMATCH REMOTE) \"\" *\r\n",
		"a LIST \"\" ()\r\n",
		"a LIST \"\" (a\r\n",
		"a LIST \"\" * FOO (CHILDREN)\r\n",
		"a LIST \"\" * RETURN (FOO)\r\n",
		"a LIST \"\" * RETURN (STATUS ())\r\n",
		"a LIST \"\" * RETURN CHILDREN\r\n",
		"a LSUB \"\"\r\n",
		"a LSUB \"\" * x\r\n",
	})
}

func TestParseAppend(t *testing.T) {
	msg := "From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n"
	lit := fmt.Sprintf("{%d}\r\n%s", len(msg), msg)
	litPlus := fmt.Sprintf("{%d+}\r\n%s", len(msg), msg)
	date := time.Date(1994, time.February, 7, 21, 52, 25, 0, time.FixedZone("", -8*3600))
	runGood(t, []goodCase{
		{in: "a APPEND INBOX " + lit + "\r\n", conts: 1, want: &Command{Tag: "a", Name: "APPEND",
			Args: &AppendArgs{Mailbox: "INBOX", Messages: []AppendMessage{{Literal: []byte(msg)}}}}},
		{in: "a APPEND saved-messages (\\Seen $Forwarded) \" 7-Feb-1994 21:52:25 -0800\" " + litPlus + "\r\n", want: &Command{Tag: "a", Name: "APPEND",
			Args: &AppendArgs{Mailbox: "saved-messages", Messages: []AppendMessage{{Flags: []imap.Flag{imap.FlagSeen, imap.FlagForwarded}, Time: date, Literal: []byte(msg)}}}}},
		{in: "a APPEND x () \"07-feb-1994 21:52:25 -0800\" {0}\r\n\r\n", conts: 1, want: &Command{Tag: "a", Name: "APPEND",
			Args: &AppendArgs{Mailbox: "x", Messages: []AppendMessage{{Flags: []imap.Flag{}, Time: date, Literal: []byte{}}}}}},
		{in: "a APPEND x ~{3}\r\na\x00b\r\n", conts: 1, want: &Command{Tag: "a", Name: "APPEND",
			Args: &AppendArgs{Mailbox: "x", Messages: []AppendMessage{{Literal: []byte("a\x00b")}}}}},
		{in: "a APPEND x (\\Draft) UTF8 (~{3+}\r\nabc)\r\n", want: &Command{Tag: "a", Name: "APPEND",
			Args: &AppendArgs{Mailbox: "x", Messages: []AppendMessage{{Flags: []imap.Flag{imap.FlagDraft}, Literal: []byte("abc"), UTF8: true}}}}},
		// MULTIAPPEND (RFC 3502).
		{in: "a APPEND x " + litPlus + " (\\Seen) " + lit + " \"01-Jan-2000 00:00:00 +0000\" {1}\r\nz\r\n", conts: 2, want: &Command{Tag: "a", Name: "APPEND",
			Args: &AppendArgs{Mailbox: "x", Messages: []AppendMessage{
				{Literal: []byte(msg)},
				{Flags: []imap.Flag{imap.FlagSeen}, Literal: []byte(msg)},
				{Time: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), Literal: []byte("z")}}}}},
	})
	runBad(t, "a", []string{
		"a APPEND\r\n",
		"a APPEND x\r\n",
		"a APPEND x \r\n",
		"a APPEND x (\\Seen)\r\n",
		"a APPEND x \"hello\" {1+}\r\nz\r\n",
		"a APPEND x \"31-Feb-2000 00:00:00 +0000\" {1+}\r\nz\r\n",
		"a APPEND x \"01-Foo-2000 00:00:00 +0000\" {1+}\r\nz\r\n",
		"a APPEND x \"01-Jan-2000 24:00:00 +0000\" {1+}\r\nz\r\n",
		"a APPEND x \"01-Jan-2000 00:00:00 0000\" {1+}\r\nz\r\n",
		"a APPEND x (\\Seen {1+}\r\nz\r\n",
		"a APPEND x (\\*) {1+}\r\nz\r\n",
		"a APPEND x \"z\"\r\n",
		"a APPEND x UTF8 {1+}\r\nz\r\n",
		"a APPEND x UTF8 (~{1+}\r\nz\r\n",
		"a APPEND x FOO (~{1+}\r\nz)\r\n",
		"a APPEND x {1+}\r\nzz\r\n",
		"a APPEND x {1+}\r\nz  {1+}\r\nz\r\n",
		"a APPEND x {1+} \r\n", // not a literal: the line ends after it
		"a APPEND a&b {1+}\r\nz\r\n",
	})
}

// TestParseAppendTooBig: over MaxAppend, a synchronizing literal is
// not asked for and a non-synchronizing one is read and dropped with
// the rest of the command; either way the next command reads fine.
func TestParseAppendTooBig(t *testing.T) {
	lim := Limits{MaxAppend: 10, MaxAppendTotal: 15}
	for _, tc := range []struct {
		in    string
		msgs  int
		conts int
	}{
		{"a APPEND x {11}\r\n", 0, 0},
		{"a APPEND x (\\Seen) {11+}\r\n01234567890\r\n", 0, 0},
		{"a APPEND x {11+}\r\n01234567890 {2+}\r\nab ~{3+}\r\nabc\r\n", 0, 0},
		{"a APPEND x {11+}\r\n01234567890 {2}\r\n", 0, 0},
		// MULTIAPPEND over the total.
		{"a APPEND x {10}\r\n0123456789 {6}\r\n", 1, 1},
		{"a APPEND x {10+}\r\n0123456789 {6+}\r\n012345 {1+}\r\nz\r\n", 1, 0},
		{"a APPEND x {10+}\r\n0123456789 UTF8 (~{6+}\r\n012345)\r\n", 1, 0},
	} {
		d := newTestDecoder(tc.in+after, lim)
		cmd, err := d.ReadCommand()
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		a := cmd.Args.(*AppendArgs)
		if !a.TooBig || len(a.Messages) != tc.msgs || d.conts != tc.conts {
			t.Errorf("%q: %s, %d continuations", tc.in, show(a), d.conts)
		}
		checkAfter(t, d, tc.in)
	}
}

func TestParseLimits(t *testing.T) {
	lim := Limits{MaxLine: 100, MaxLiteral: 10}
	long := strings.Repeat("x", 200)
	for _, tc := range []struct {
		in, tag string
	}{
		{"a LOGIN " + long + " y\r\n", "a"},
		{long + "\r\n", "*"},
		{"a ID (\"name\" \"" + long + "\")\r\n", "a"},
		{"a LOGIN {11}\r\n", "a"},
		{"a LOGIN {11+}\r\n01234567890 x\r\n", "a"},
		{"a LOGIN {11+}\r\n01234567890 {5+}\r\nabcde\r\n", "a"},
		{"a LOGIN {11+}\r\n01234567890 {5}\r\n", "a"},
		{"a LOGIN x " + long + "{5+}\r\nabcde\r\n", "a"},
		{"a LOGIN x " + long + "{5}\r\n", "a"},
		{"a LOGIN {99999999999999999999}\r\n", "a"},
		// The limit holds over the lines of one command.
		{"a LOGIN {9+}\r\n012345678 " + strings.Repeat("y", 95) + "\r\n", "a"},
		{"a FOO {5+}\r\nabcde\r\n", "a"},
		{"a FOO {5}\r\n", "a"},
	} {
		d := newTestDecoder(tc.in+after, lim)
		cmd, err := d.ReadCommand()
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Tag != tc.tag || d.conts != 0 {
			t.Errorf("%.40q: %s, %v, %d continuations; want a ParseError for %q", tc.in, show(cmd), err, d.conts, tc.tag)
			continue
		}
		checkAfter(t, d, tc.in)
	}
	// Within the limits.
	d := newTestDecoder("a LOGIN {10}\r\n0123456789 "+strings.Repeat("y", 80)+"\r\n"+after, lim)
	if _, err := d.ReadCommand(); err != nil || d.conts != 1 {
		t.Errorf("within the limits: %v", err)
	}
	checkAfter(t, d, "within")
}

func TestParseReadLine(t *testing.T) {
	d := newTestDecoder("DONE\r\ndone\n"+strings.Repeat("x", 200)+"\r\nAGpvZQBzZWNyZXQ=\r\n", Limits{MaxLine: 100})
	for _, want := range []string{"DONE", "done", "", "AGpvZQBzZWNyZXQ="} {
		got, err := d.ReadLine()
		if want == "" {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("long line: %q, %v", got, err)
			}
			continue
		}
		if got != want || err != nil {
			t.Errorf("got %q, %v; want %q", got, err, want)
		}
	}
	if _, err := d.ReadLine(); err != io.EOF {
		t.Errorf("at the end: %v", err)
	}
}

func TestParseEOF(t *testing.T) {
	for _, in := range []string{"a NOOP", "a LOGIN {5}\r\nab", "a LOGIN {5+}\r\nabcde", "a LOGIN {5+}\r\nabcde x"} {
		d := newTestDecoder(in, Limits{})
		if _, err := d.ReadCommand(); err != io.ErrUnexpectedEOF {
			t.Errorf("%q: %v, want unexpected EOF", in, err)
		}
	}
	d := newTestDecoder("", Limits{})
	if _, err := d.ReadCommand(); err != io.EOF {
		t.Errorf("empty: %v, want EOF", err)
	}
}

// TestParseLiteralMemory: a literal is read as its bytes come, not
// allocated from its declared size.
func TestParseLiteralMemory(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		d := newTestDecoder("a APPEND x {1000000000+}\r\nabc", Limits{MaxAppend: 1 << 40, MaxAppendTotal: 1 << 40})
		if _, err := d.ReadCommand(); err != io.ErrUnexpectedEOF {
			t.Fatalf("got %v", err)
		}
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 10<<20 {
		t.Errorf("%d bytes allocated for 10 short literals", n)
	}
}

// TestParseErrorText: error texts quote the command, but not LOGIN's
// or AUTHENTICATE's.
func TestParseErrorText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a NOOP x\r\n", `unexpected " x" after the command`},
		{"a FETCH 1 FLAGS \"q\\\r\n", `expected '(' at "?q?"`},
		{"a LOGIN joe secret more\r\n", "unexpected byte 19 after the command"},
		{"a LOGIN joe\r\n", "the command ends too early"},
		{"a AUTHENTICATE PLAIN AGpvZQ==x\r\n", "initial response is not base64"},
		{"a SEARCH FROM \r\n", "missing FROM value"},
		{"a SEARCH foo@example.org\r\n", "unknown search key FOO@EXAMPLE.ORG"},
		{"a FOO\r\n", "unknown command FOO"},
	} {
		d := newTestDecoder(tc.in, Limits{})
		_, err := d.ReadCommand()
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Text != tc.want {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
}
