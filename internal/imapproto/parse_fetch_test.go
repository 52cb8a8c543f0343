package imapproto

import (
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestParseFetch(t *testing.T) {
	fetch := func(set imap.NumSet, o FetchOptions) *FetchArgs { return &FetchArgs{NumSet: set, Options: o} }
	seq := func(ranges ...imap.SeqRange) imap.SeqSet { return imap.SeqSet(ranges) }
	uid := func(ranges ...imap.UIDRange) imap.UIDSet { return imap.UIDSet(ranges) }
	bs := func(extended bool) *imap.FetchItemBodyStructure {
		return &imap.FetchItemBodyStructure{Extended: extended}
	}
	fo := func(o imap.FetchOptions) FetchOptions { return FetchOptions{FetchOptions: o} }
	rfc822 := &imap.FetchItemBodySection{}
	rfc822Header := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}
	rfc822Text := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText}
	runGood(t, []goodCase{
		{in: "a FETCH 1 ALL\r\n", want: &Command{Tag: "a", Name: "FETCH", Args: fetch(seq(sr(1, 1)),
			fo(imap.FetchOptions{Flags: true, InternalDate: true, RFC822Size: true, Envelope: true}))}},
		{in: "a FETCH 1:* fast\r\n", want: &Command{Tag: "a", Name: "FETCH", Args: fetch(seq(sr(1, 0)),
			fo(imap.FetchOptions{Flags: true, InternalDate: true, RFC822Size: true}))}},
		{in: "a FETCH *:4,2,1 FULL\r\n", want: &Command{Tag: "a", Name: "FETCH", Args: fetch(seq(sr(1, 2), sr(4, 0)),
			fo(imap.FetchOptions{Flags: true, InternalDate: true, RFC822Size: true, Envelope: true, BodyStructure: bs(false)}))}},
		{in: "a FETCH 2:4 (FLAGS UID ENVELOPE INTERNALDATE RFC822.SIZE BODYSTRUCTURE)\r\n", want: &Command{Tag: "a", Name: "FETCH", Args: fetch(seq(sr(2, 4)),
			fo(imap.FetchOptions{Flags: true, UID: true, Envelope: true, InternalDate: true, RFC822Size: true, BodyStructure: bs(true)}))}},
		{in: "a FETCH 1 body\r\n", want: &Command{Tag: "a", Name: "FETCH", Args: fetch(seq(sr(1, 1)), fo(imap.FetchOptions{BodyStructure: bs(false)}))}},
		{in: "a FETCH 1 (BODYSTRUCTURE BODY)\r\n", want: &Command{Tag: "a", Name: "FETCH", Args: fetch(seq(sr(1, 1)), fo(imap.FetchOptions{BodyStructure: bs(true)}))}},
		{in: "a UID FETCH 1:* FLAGS\r\n", want: &Command{Tag: "a", Name: "FETCH", UID: true, Args: fetch(uid(ur(1, 0)), fo(imap.FetchOptions{Flags: true, UID: true}))}},
		{in: "a FETCH $ (FLAGS)\r\n", want: &Command{Tag: "a", Name: "FETCH", Args: fetch(imap.SearchRes(), fo(imap.FetchOptions{Flags: true}))}},
		{in: "a FETCH 1 (BODY[] BODY.PEEK[HEADER] BODY[TEXT]<0.100> BODY[1.2.MIME] BODY.PEEK[2.HEADER.FIELDS (From \"To\")]<10.5> BODY[HEADER.FIELDS.NOT (X-Spam)] BODY[3] body[1.text])\r\n",
			want: &Command{Tag: "a", Name: "FETCH", Args: fetch(seq(sr(1, 1)), fo(imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{
				{},
				{Specifier: imap.PartSpecifierHeader, Peek: true},
				{Specifier: imap.PartSpecifierText, Partial: &imap.SectionPartial{Offset: 0, Size: 100}},
				{Specifier: imap.PartSpecifierMIME, Part: []int{1, 2}},
				{Specifier: imap.PartSpecifierHeader, Part: []int{2}, HeaderFields: []string{"From", "To"}, Peek: true, Partial: &imap.SectionPartial{Offset: 10, Size: 5}},
				{Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"X-Spam"}},
				{Part: []int{3}},
				{Specifier: imap.PartSpecifierText, Part: []int{1}},
			}}))}},
		{in: "a FETCH 1 (RFC822 RFC822.HEADER RFC822.TEXT)\r\n", want: &Command{Tag: "a", Name: "FETCH", Args: fetch(seq(sr(1, 1)), FetchOptions{
			FetchOptions: imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{rfc822, rfc822Header, rfc822Text}},
			RFC822:       rfc822, RFC822Header: rfc822Header, RFC822Text: rfc822Text})}},
		{in: "a FETCH 1 (BINARY[] BINARY.PEEK[1.2]<0.10> BINARY.SIZE[1] BINARY.SIZE[])\r\n", want: &Command{Tag: "a", Name: "FETCH", Args: fetch(seq(sr(1, 1)), fo(imap.FetchOptions{
			BinarySection: []*imap.FetchItemBinarySection{
				{Part: []int{}},
				{Part: []int{1, 2}, Peek: true, Partial: &imap.SectionPartial{Offset: 0, Size: 10}}},
			BinarySectionSize: []*imap.FetchItemBinarySectionSize{{Part: []int{1}}, {Part: []int{}}},
		}))}},
		{in: "a FETCH 1 MODSEQ\r\n", want: &Command{Tag: "a", Name: "FETCH", CondStore: true, Args: fetch(seq(sr(1, 1)), fo(imap.FetchOptions{ModSeq: true}))}},
		{in: "a FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)\r\n", want: &Command{Tag: "a", Name: "FETCH", CondStore: true,
			Args: fetch(seq(sr(1, 0)), fo(imap.FetchOptions{Flags: true, ModSeq: true, ChangedSince: 12345}))}},
		{in: "a UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n", want: &Command{Tag: "a", Name: "FETCH", UID: true, CondStore: true,
			Args: fetch(uid(ur(300, 500)), FetchOptions{FetchOptions: imap.FetchOptions{Flags: true, UID: true, ModSeq: true, ChangedSince: 12345}, Vanished: true})}},
		{in: "a UID FETCH 1 FLAGS (vanished changedsince 1)\r\n", want: &Command{Tag: "a", Name: "FETCH", UID: true, CondStore: true,
			Args: fetch(uid(ur(1, 1)), FetchOptions{FetchOptions: imap.FetchOptions{Flags: true, UID: true, ModSeq: true, ChangedSince: 1}, Vanished: true})}},
		{in: "a FETCH 4294967295 UID\r\n", want: &Command{Tag: "a", Name: "FETCH", Args: fetch(seq(sr(4294967295, 4294967295)), fo(imap.FetchOptions{UID: true}))}},
	})
	runBad(t, "a", []string{
		"a FETCH\r\n",
		"a FETCH 1\r\n",
		"a FETCH 1 \r\n",
		"a FETCH 0 FLAGS\r\n",
		"a FETCH 01 FLAGS\r\n",
		"a FETCH 4294967296 FLAGS\r\n",
		"a FETCH 1: FLAGS\r\n",
		"a FETCH 1,,2 FLAGS\r\n",
		"a FETCH x FLAGS\r\n",
		"a FETCH $:4 FLAGS\r\n",
		"a FETCH 1 FOO\r\n",
		"a FETCH 1 ()\r\n",
		"a FETCH 1 (ALL)\r\n",
		"a FETCH 1 (FLAGS\r\n",
		"a FETCH 1 (FLAGS  UID)\r\n",
		"a FETCH 1 FLAGS UID\r\n",
		"a FETCH 1 BODY.PEEK\r\n",
		"a FETCH 1 BODY[\r\n",
		"a FETCH 1 BODY[FOO]\r\n",
		"a FETCH 1 BODY[MIME]\r\n",
		"a FETCH 1 BODY[0]\r\n",
		"a FETCH 1 BODY[1.]\r\n",
		"a FETCH 1 BODY[HEADER.FIELDS]\r\n",
		"a FETCH 1 BODY[HEADER.FIELDS ()]\r\n",
		"a FETCH 1 BODY[HEADER.FIELDS (From]\r\n",
		"a FETCH 1 BODY[]<0>\r\n",
		"a FETCH 1 BODY[]<0.0>\r\n",
		"a FETCH 1 BODY[]<x.1>\r\n",
		"a FETCH 1 BODY[]<1.1\r\n",
		"a FETCH 1 BINARY[HEADER]\r\n",
		"a FETCH 1 BINARY\r\n",
		"a FETCH 1 BINARY.SIZE[1]<0.1>\r\n",
		"a FETCH 1 FLAGS (CHANGEDSINCE 0)\r\n",
		"a FETCH 1 FLAGS (CHANGEDSINCE)\r\n",
		"a FETCH 1 FLAGS (VANISHED CHANGEDSINCE 1)\r\n",
		"a UID FETCH 1 FLAGS (VANISHED)\r\n",
		"a FETCH 1 FLAGS (FOO)\r\n",
		"a FETCH 1 FLAGS ()\r\n",
	})
}

func TestParseStoreCopy(t *testing.T) {
	store := func(set imap.NumSet, op imap.StoreFlagsOp, silent bool, flags []imap.Flag) *StoreArgs {
		return &StoreArgs{NumSet: set, Flags: imap.StoreFlags{Op: op, Silent: silent, Flags: flags}}
	}
	runGood(t, []goodCase{
		{in: "a STORE 2:4 +FLAGS (\\Deleted)\r\n", want: &Command{Tag: "a", Name: "STORE",
			Args: store(imap.SeqSet{sr(2, 4)}, imap.StoreFlagsAdd, false, []imap.Flag{imap.FlagDeleted})}},
		{in: "a STORE 1 -flags.silent \\seen $junk Custom\r\n", want: &Command{Tag: "a", Name: "STORE",
			Args: store(imap.SeqSet{sr(1, 1)}, imap.StoreFlagsDel, true, []imap.Flag{imap.FlagSeen, imap.FlagJunk, "Custom"})}},
		{in: "a UID STORE 1:* FLAGS ()\r\n", want: &Command{Tag: "a", Name: "STORE", UID: true,
			Args: store(imap.UIDSet{ur(1, 0)}, imap.StoreFlagsSet, false, []imap.Flag{})}},
		{in: "a STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)\r\n", want: &Command{Tag: "a", Name: "STORE", CondStore: true,
			Args: &StoreArgs{NumSet: imap.SeqSet{sr(5, 5), sr(7, 7), sr(9, 9)}, Flags: imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}},
				Options: imap.StoreOptions{UnchangedSince: 320162338}, HasUnchangedSince: true}}},
		{in: "a STORE $ (UNCHANGEDSINCE 0) FLAGS \\Seen\r\n", want: &Command{Tag: "a", Name: "STORE", CondStore: true,
			Args: &StoreArgs{NumSet: imap.SearchRes(), Flags: imap.StoreFlags{Flags: []imap.Flag{imap.FlagSeen}}, HasUnchangedSince: true}}},
		{in: "a COPY 2:4 MEETING\r\n", want: &Command{Tag: "a", Name: "COPY", Args: &CopyArgs{NumSet: imap.SeqSet{sr(2, 4)}, Dest: "MEETING"}}},
		{in: "a uid copy 1,3 inbox\r\n", want: &Command{Tag: "a", Name: "COPY", UID: true, Args: &CopyArgs{NumSet: imap.UIDSet{ur(1, 1), ur(3, 3)}, Dest: "INBOX"}}},
		{in: "a MOVE $ \"Gel&APY-scht\"\r\n", want: &Command{Tag: "a", Name: "MOVE", Args: &CopyArgs{NumSet: imap.SearchRes(), Dest: "Gelöscht"}}},
		{in: "a UID MOVE 42 Trash\r\n", want: &Command{Tag: "a", Name: "MOVE", UID: true, Args: &CopyArgs{NumSet: imap.UIDSet{ur(42, 42)}, Dest: "Trash"}}},
		{in: "a UID EXPUNGE 3000:3002\r\n", want: &Command{Tag: "a", Name: "EXPUNGE", UID: true, Args: &ExpungeArgs{UIDs: imap.UIDSet{ur(3000, 3002)}}}},
		{in: "a UID EXPUNGE $\r\n", want: &Command{Tag: "a", Name: "EXPUNGE", UID: true, Args: &ExpungeArgs{UIDs: imap.SearchRes()}}},
	})
	runBad(t, "a", []string{
		"a STORE\r\n",
		"a STORE 1\r\n",
		"a STORE 1 FLAGS\r\n",
		"a STORE 1 FLAGS \r\n",
		"a STORE 1 +FLAGS.LOUD (\\Seen)\r\n",
		"a STORE 1 *FLAGS (\\Seen)\r\n",
		"a STORE 1 LABELS (\\Seen)\r\n",
		"a STORE 1 FLAGS (\\Seen\r\n",
		"a STORE 1 FLAGS (\\*)\r\n",
		"a STORE 1 FLAGS \\\r\n",
		"a STORE 1 FLAGS (\"Seen\")\r\n",
		"a STORE 1 (UNCHANGEDSINCE) FLAGS (\\Seen)\r\n",
		"a STORE 1 (FOO 1) FLAGS (\\Seen)\r\n",
		"a STORE 1 (UNCHANGEDSINCE 1) (\\Seen)\r\n",
		"a COPY 1\r\n",
		"a COPY 1 \r\n",
		"a COPY x y\r\n",
		"a COPY 1 a b\r\n",
		"a MOVE 1:2:3 x\r\n",
		"a UID EXPUNGE\r\n",
		"a UID EXPUNGE *x\r\n",
	})
}
