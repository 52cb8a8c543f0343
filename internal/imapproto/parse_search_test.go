package imapproto

import (
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

func TestParseSearch(t *testing.T) {
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	search := func(c imap.SearchCriteria) *SearchArgs { return &SearchArgs{Criteria: c} }
	cmd := func(in string, c imap.SearchCriteria) goodCase {
		return goodCase{in: "a SEARCH " + in + "\r\n", want: &Command{Tag: "a", Name: "SEARCH", Args: search(c)}}
	}
	flags := func(f ...imap.Flag) []imap.Flag { return f }
	runGood(t, []goodCase{
		cmd("ALL", imap.SearchCriteria{}),
		cmd("all", imap.SearchCriteria{}),
		cmd("ANSWERED DELETED DRAFT FLAGGED SEEN", imap.SearchCriteria{Flag: flags(imap.FlagAnswered, imap.FlagDeleted, imap.FlagDraft, imap.FlagFlagged, imap.FlagSeen)}),
		cmd("UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN", imap.SearchCriteria{NotFlag: flags(imap.FlagAnswered, imap.FlagDeleted, imap.FlagDraft, imap.FlagFlagged, imap.FlagSeen)}),
		cmd("RECENT", imap.SearchCriteria{Flag: flags(`\Recent`)}),
		cmd("NEW", imap.SearchCriteria{Flag: flags(`\Recent`), NotFlag: flags(imap.FlagSeen)}),
		cmd("OLD", imap.SearchCriteria{NotFlag: flags(`\Recent`)}),
		cmd("KEYWORD $Forwarded UNKEYWORD Work keyword \\seen", imap.SearchCriteria{Flag: flags(imap.FlagForwarded, imap.FlagSeen), NotFlag: flags("Work")}),
		cmd(`FROM "Smith" TO bob CC {3+}`+"\r\nann BCC x SUBJECT \"re: hi\"", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{
			{Key: "From", Value: "Smith"}, {Key: "To", Value: "bob"}, {Key: "Cc", Value: "ann"}, {Key: "Bcc", Value: "x"}, {Key: "Subject", Value: "re: hi"}}}),
		cmd(`HEADER Message-ID "<a@b>" HEADER X-Empty ""`, imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{
			{Key: "Message-ID", Value: "<a@b>"}, {Key: "X-Empty", Value: ""}}}),
		cmd(`BODY hello TEXT "two words"`, imap.SearchCriteria{Body: []string{"hello"}, Text: []string{"two words"}}),
		cmd(`SINCE 1-Feb-1994 BEFORE "15-feb-1994"`, imap.SearchCriteria{Since: day(1994, 2, 1), Before: day(1994, 2, 15)}),
		cmd(`ON 29-Feb-2024`, imap.SearchCriteria{Since: day(2024, 2, 29), Before: day(2024, 3, 1)}),
		cmd(`SENTON 31-Dec-1999 SENTSINCE 1-Jan-1990`, imap.SearchCriteria{SentSince: day(1999, 12, 31), SentBefore: day(2000, 1, 1)}),
		cmd(`SENTBEFORE 2-Jan-2000 SENTBEFORE 1-Jan-2000 SINCE 1-Jan-2000 SINCE 2-Jan-2000`, imap.SearchCriteria{SentBefore: day(2000, 1, 1), Since: day(2000, 1, 2)}),
		cmd(`LARGER 100 SMALLER 5000 LARGER 200 SMALLER 4000`, imap.SearchCriteria{Larger: 200, Smaller: 4000}),
		cmd(`SMALLER 0`, imap.SearchCriteria{Not: []imap.SearchCriteria{{}}}),
		cmd(`LARGER 0`, imap.SearchCriteria{Not: []imap.SearchCriteria{{Smaller: 1}}}),
		cmd(`LARGER 9223372036854775807`, imap.SearchCriteria{Larger: 9223372036854775807}),
		cmd(`1:3,5 UID 2:* *`, imap.SearchCriteria{SeqNum: []imap.SeqSet{{sr(1, 3), sr(5, 5)}, {sr(0, 0)}}, UID: []imap.UIDSet{{ur(2, 0)}}}),
		cmd(`$ UID $`, imap.SearchCriteria{UID: []imap.UIDSet{imap.SearchRes(), imap.SearchRes()}}),
		cmd(`NOT SEEN NOT (FROM a TO b)`, imap.SearchCriteria{Not: []imap.SearchCriteria{{Flag: flags(imap.FlagSeen)}, {Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "a"}, {Key: "To", Value: "b"}}}}}),
		cmd(`OR SEEN FLAGGED`, imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{Flag: flags(imap.FlagSeen)}, {Flag: flags(imap.FlagFlagged)}}}}),
		cmd(`OR OR FROM a FROM b (TO c ((CC d)))`, imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{
			{Or: [][2]imap.SearchCriteria{{{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "a"}}}, {Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "b"}}}}}},
			{Header: []imap.SearchCriteriaHeaderField{{Key: "To", Value: "c"}, {Key: "Cc", Value: "d"}}}}}}),
		cmd(`(SEEN FLAGGED) (DELETED)`, imap.SearchCriteria{Flag: flags(imap.FlagSeen, imap.FlagFlagged, imap.FlagDeleted)}),
		{in: "a UID SEARCH CHARSET UTF-8 TEXT {6+}\r\nXXXXXX\r\n", want: &Command{Tag: "a", Name: "SEARCH", UID: true,
			Args: &SearchArgs{Charset: "UTF-8", Criteria: imap.SearchCriteria{Text: []string{"XXXXXX"}}}}},
		{in: "a SEARCH charset \"iso-8859-1\" SUBJECT \"\xe9t\xe9\"\r\n", want: &Command{Tag: "a", Name: "SEARCH",
			Args: &SearchArgs{Charset: "iso-8859-1", Criteria: imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "\xe9t\xe9"}}}}}},
		{in: "a SEARCH RETURN (MIN MAX ALL COUNT SAVE) FLAGGED\r\n", want: &Command{Tag: "a", Name: "SEARCH",
			Args: &SearchArgs{Return: true, Options: imap.SearchOptions{ReturnMin: true, ReturnMax: true, ReturnAll: true, ReturnCount: true, ReturnSave: true},
				Criteria: imap.SearchCriteria{Flag: flags(imap.FlagFlagged)}}}},
		{in: "a SEARCH RETURN () CHARSET us-ascii ALL\r\n", want: &Command{Tag: "a", Name: "SEARCH", Args: &SearchArgs{Return: true, Charset: "us-ascii"}}},
		{in: "a SEARCH MODSEQ 620162338\r\n", want: &Command{Tag: "a", Name: "SEARCH", CondStore: true,
			Args: search(imap.SearchCriteria{ModSeq: &imap.SearchCriteriaModSeq{ModSeq: 620162338}})}},
		{in: "a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338 MODSEQ \"/flags/$Junk\" PRIV 0\r\n", want: &Command{Tag: "a", Name: "SEARCH", CondStore: true,
			Args: search(imap.SearchCriteria{
				ModSeq: &imap.SearchCriteriaModSeq{ModSeq: 620162338, MetadataName: `/flags/\draft`, MetadataType: imap.SearchCriteriaMetadataAll},
				Not:    []imap.SearchCriteria{{Not: []imap.SearchCriteria{{ModSeq: &imap.SearchCriteriaModSeq{MetadataName: "/flags/$Junk", MetadataType: imap.SearchCriteriaMetadataPrivate}}}}}})}},
		{in: "a SEARCH NOT MODSEQ 5\r\n", want: &Command{Tag: "a", Name: "SEARCH", CondStore: true,
			Args: search(imap.SearchCriteria{Not: []imap.SearchCriteria{{ModSeq: &imap.SearchCriteriaModSeq{ModSeq: 5}}}})}},
	})
	runBad(t, "a", []string{
		"a SEARCH\r\n",
		"a SEARCH \r\n",
		"a SEARCH FOO\r\n",
		"a SEARCH SEEN \r\n",
		"a SEARCH SEEN  FLAGGED\r\n",
		"a SEARCH FROM\r\n",
		"a SEARCH FROM \r\n",
		"a SEARCH HEADER From\r\n",
		"a SEARCH (SEEN\r\n",
		"a SEARCH ()\r\n",
		"a SEARCH SEEN)\r\n",
		"a SEARCH (SEEN)(FLAGGED)\r\n",
		"a SEARCH NOT\r\n",
		"a SEARCH OR SEEN\r\n",
		"a SEARCH KEYWORD\r\n",
		"a SEARCH KEYWORD (x)\r\n",
		"a SEARCH SINCE 1-Foo-2000\r\n",
		"a SEARCH SINCE 30-Feb-2000\r\n",
		"a SEARCH SINCE 1-Feb-00\r\n",
		"a SEARCH SINCE 100-Feb-2000\r\n",
		"a SEARCH SINCE \"1-Feb-2000\r\n",
		"a SEARCH SINCE 2000-02-01\r\n",
		"a SEARCH LARGER\r\n",
		"a SEARCH LARGER -1\r\n",
		"a SEARCH LARGER 9223372036854775808\r\n",
		"a SEARCH UID\r\n",
		"a SEARCH UID x\r\n",
		"a SEARCH 0\r\n",
		"a SEARCH 1:\r\n",
		"a SEARCH 1x\r\n",
		"a SEARCH $$\r\n",
		"a SEARCH CHARSET\r\n",
		"a SEARCH CHARSET UTF-8\r\n",
		"a SEARCH RETURN ALL\r\n",
		"a SEARCH RETURN (FOO) ALL\r\n",
		"a SEARCH RETURN (ALL)\r\n",
		"a SEARCH MODSEQ\r\n",
		"a SEARCH MODSEQ x\r\n",
		"a SEARCH MODSEQ \"/flags/\\\\Seen\" 5\r\n",
		"a SEARCH MODSEQ \"/flags/\\\\Seen\" foo 5\r\n",
		"a SEARCH MODSEQ \"/other\" all 5\r\n",
		"a SEARCH TEXT {3}x\r\n",
		"a SEARCH " + strings.Repeat("NOT ", maxSearchDepth) + "SEEN\r\n",
		"a SEARCH " + strings.Repeat("(", maxSearchDepth+1) + "SEEN" + strings.Repeat(")", maxSearchDepth+1) + "\r\n",
	})

	// Deep, but within the bound.
	d := newTestDecoder("a SEARCH "+strings.Repeat("NOT ", maxSearchDepth-1)+"SEEN\r\n", Limits{})
	if _, err := d.ReadCommand(); err != nil {
		t.Errorf("%d NOTs: %v", maxSearchDepth-1, err)
	}
}
