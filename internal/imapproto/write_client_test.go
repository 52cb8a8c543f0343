package imapproto

// What the writer writes, read back by go-imap's client: a fake server
// on a net.Pipe answers each command the client sends with the Encoder.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

const testCaps = "IMAP4rev1 ESEARCH CONDSTORE QRESYNC BINARY LIST-EXTENDED LIST-STATUS NAMESPACE ID UIDPLUS MOVE SEARCHRES"

// dialPipe returns a client talking to a fake server that calls respond
// for each command but CAPABILITY and LOGOUT.
func dialPipe(t *testing.T, respond func(e *Encoder, tag, cmd string)) *imapclient.Client {
	t.Helper()
	cc, sc := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer sc.Close()
		br := bufio.NewReader(sc)
		bw := bufio.NewWriter(sc)
		e := newEncoder(bw)
		e.raw("* OK [CAPABILITY " + testCaps + "] ready\r\n")
		if bw.Flush() != nil {
			return
		}
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			tag, cmd, _ := strings.Cut(line, " ")
			switch verb, _, _ := strings.Cut(cmd, " "); strings.ToUpper(verb) {
			case "CAPABILITY":
				e.raw("* CAPABILITY " + testCaps + "\r\n")
			case "LOGOUT":
				e.raw("* BYE bye\r\n")
			default:
				respond(e, tag, cmd)
			}
			e.writeStatus(&Status{Tag: tag, Type: imap.StatusResponseTypeOK, Text: "done"})
			if bw.Flush() != nil {
				return
			}
		}
	}()
	c := imapclient.New(cc, nil)
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return c
}

// sameJSON compares got and want by their JSON (times as instants).
func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, err := json.MarshalIndent(got, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.MarshalIndent(want, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g, w) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// fetchOne fetches message 1 with opts from a server that answers with
// write, and returns what the client read.
func fetchOne(t *testing.T, opts *imap.FetchOptions, write func(w *FetchResponseWriter)) *imapclient.FetchMessageBuffer {
	t.Helper()
	c := dialPipe(t, func(e *Encoder, tag, cmd string) {
		if err := fetchTo(e, &FetchOptions{FetchOptions: *opts}, 1, write); err != nil {
			t.Error(err)
		}
	})
	msgs, err := c.Fetch(imap.SeqSetNum(1), opts).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	return msgs[0]
}

func TestClientReadsFetch(t *testing.T) {
	date := time.Date(2023, 11, 5, 9, 8, 7, 0, time.FixedZone("", 3600))
	body := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}, Peek: true}
	partial := &imap.FetchItemBodySection{Part: []int{1}, Partial: &imap.SectionPartial{Offset: 2, Size: 3}, Peek: true}
	// go-imap's client reads no origin after BINARY[part] (the golden
	// tests have it): no partial here.
	bin := &imap.FetchItemBinarySection{Part: []int{2}, Peek: true}
	opts := &imap.FetchOptions{
		UID: true, Flags: true, RFC822Size: true, InternalDate: true, ModSeq: true, Envelope: true,
		BodyStructure:     &imap.FetchItemBodyStructure{Extended: true},
		BodySection:       []*imap.FetchItemBodySection{body, partial},
		BinarySection:     []*imap.FetchItemBinarySection{bin},
		BinarySectionSize: []*imap.FetchItemBinarySectionSize{{Part: []int{2}}},
	}
	env := testEnvelope()
	bs := testBodyStructure()
	msg := fetchOne(t, opts, func(w *FetchResponseWriter) {
		w.WriteUID(77)
		w.WriteFlags([]imap.Flag{imap.FlagSeen, "$Label1"})
		w.WriteRFC822Size(12345)
		w.WriteInternalDate(date)
		w.WriteModSeq(1 << 40)
		w.WriteEnvelope(env)
		w.WriteBodyStructure(bs)
		lw := w.WriteBodySection(body, 18)
		io.WriteString(lw, "Subject: x\r\n\r\n\x01\"\\\n")
		lw.Close()
		lw = w.WriteBodySection(partial, 3)
		io.WriteString(lw, "abc")
		lw.Close()
		lw = w.WriteBinarySection8(bin, 4)
		io.WriteString(lw, "\x00\x01\x02\x03")
		lw.Close()
		w.WriteBinarySectionSize(opts.BinarySectionSize[0], 100)
	})
	if msg.UID != 77 || msg.RFC822Size != 12345 || msg.ModSeq != 1<<40 || !msg.InternalDate.Equal(date) {
		t.Errorf("UID %d size %d modseq %d date %v", msg.UID, msg.RFC822Size, msg.ModSeq, msg.InternalDate)
	}
	if !reflect.DeepEqual(msg.Flags, []imap.Flag{imap.FlagSeen, "$Label1"}) {
		t.Errorf("flags %v", msg.Flags)
	}
	// The writer gives Sender and Reply-To From's value (RFC 3501
	// §7.4.2); the client reads the date in the local zone.
	wantEnv := *env
	wantEnv.Sender, wantEnv.ReplyTo = env.From, env.From
	sameJSON(t, "envelope", msg.Envelope, &wantEnv)
	sameJSON(t, "body structure", msg.BodyStructure, bs)
	if got := string(msg.FindBodySection(body)); got != "Subject: x\r\n\r\n\x01\"\\\n" {
		t.Errorf("header section %q", got)
	}
	if got := string(msg.FindBodySection(partial)); got != "abc" {
		t.Errorf("partial section %q", got)
	}
	if got := string(msg.FindBinarySection(bin)); got != "\x00\x01\x02\x03" {
		t.Errorf("binary section %q", got)
	}
	if n, ok := msg.FindBinarySectionSize([]int{2}); !ok || n != 100 {
		t.Errorf("binary size %d %v", n, ok)
	}
}

// The client reads what the writer makes of text of every kind in an
// envelope (quotes, backslashes, CR LF, 8-bit, long) and gets it back.
func TestClientReadsEnvelopeText(t *testing.T) {
	texts := []string{
		"plain", `"`, `\`, `a\"b`, "line\r\nbreak", "tab\there", "ünï €", strings.Repeat("long ", 300),
		strings.Repeat("ü", 600), "=?not?encoded", "(paren) [bracket] {brace}", "NIL",
	}
	for _, utf8 := range []bool{false, true} {
		for _, s := range texts {
			env := &imap.Envelope{Subject: s, From: []imap.Address{{Name: s, Mailbox: "a", Host: "b"}}, MessageID: "x@y"}
			c := dialPipe(t, func(e *Encoder, tag, cmd string) {
				e.utf8 = utf8
				fetchTo(e, nil, 1, func(w *FetchResponseWriter) { w.WriteEnvelope(env) })
			})
			msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true}).Collect()
			if err != nil {
				t.Fatalf("%q: %v", s, err)
			}
			got := msgs[0].Envelope
			want := strings.ReplaceAll(s, "\r\n", "\r\n") // literal keeps it
			if s == "=?not?encoded" {
				continue // taken as an encoded-word by any client: not ours to keep
			}
			if got.Subject != want || got.From[0].Name != want {
				t.Errorf("utf8 %v: %.40q came back as %.40q / %.40q", utf8, s, got.Subject, got.From[0].Name)
			}
		}
	}
}

func TestClientReadsList(t *testing.T) {
	want := []*imap.ListData{
		{Attrs: []imap.MailboxAttr{imap.MailboxAttrHasNoChildren}, Delim: '/', Mailbox: "INBOX",
			Status: &imap.StatusData{Mailbox: "INBOX", NumMessages: u32(3), UIDNext: 10, UIDValidity: 1, NumUnseen: u32(1), HighestModSeq: 8}},
		{Attrs: []imap.MailboxAttr{imap.MailboxAttrNonExistent}, Delim: '/', Mailbox: "Foo", ChildInfo: &imap.ListDataChildInfo{Subscribed: true}},
		{Attrs: []imap.MailboxAttr{imap.MailboxAttrHasChildren, imap.MailboxAttrDrafts}, Delim: '/', Mailbox: "Entwürfe",
			Status: &imap.StatusData{Mailbox: "Entwürfe", NumMessages: u32(0), UIDNext: 1, UIDValidity: 2, NumUnseen: u32(0), HighestModSeq: 1}},
		{Delim: '.', Mailbox: `we"ird\name`, OldName: "Altä"},
	}
	c := dialPipe(t, func(e *Encoder, tag, cmd string) {
		for _, d := range want {
			e.writeList(d, false)
		}
	})
	got, err := c.List("", "*", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, NumUnseen: true, HighestModSeq: true}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		for i := range got {
			t.Logf("got %#v", got[i])
		}
		t.Errorf("LIST read back differs")
	}
}

func TestClientReadsStatusSelectSearch(t *testing.T) {
	status := &imap.StatusData{Mailbox: "Archiv/2024", NumMessages: u32(12), UIDNext: 99, UIDValidity: 5, NumUnseen: u32(2),
		NumDeleted: u32(1), Size: i64(1 << 33), AppendLimit: u32(1 << 20), HighestModSeq: 1 << 50}
	sel := &SelectData{Flags: []imap.Flag{imap.FlagSeen, imap.FlagDeleted}, PermanentFlags: []imap.Flag{imap.FlagSeen, imap.FlagWildcard},
		NumMessages: 12, NumRecent: 1, FirstUnseen: 3, UIDNext: 99, UIDValidity: 5, HighestModSeq: 77}
	all := imap.UIDSet{{Start: 3, Stop: 3}, {Start: 5, Stop: 9}}
	c := dialPipe(t, func(e *Encoder, tag, cmd string) {
		switch {
		case strings.HasPrefix(cmd, "STATUS"):
			e.writeStatusData(status)
		case strings.HasPrefix(cmd, "SELECT"):
			e.writeSelect(sel, false)
		case strings.HasPrefix(cmd, "UID SEARCH RETURN"):
			e.writeSearch(tag, NumKindUID, &imap.SearchData{All: all, ModSeq: 4},
				&SearchArgs{Return: true, Options: imap.SearchOptions{ReturnMin: true, ReturnMax: true, ReturnCount: true, ReturnAll: true}})
		case strings.HasPrefix(cmd, "SEARCH"):
			e.writeSearch(tag, NumKindSeq, &imap.SearchData{All: imap.SeqSet{{Start: 1, Stop: 3}}}, &SearchArgs{})
		case strings.HasPrefix(cmd, "NAMESPACE"):
			e.writeNamespace(&imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Delim: '/'}}})
		case strings.HasPrefix(cmd, "ID"):
			e.writeID(map[string]string{"name": "bitmaskd", "vendor": `"quoted"`})
		default:
			t.Errorf("command %q", cmd)
		}
	})
	gotStatus, err := c.Status(status.Mailbox, &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, NumUnseen: true,
		NumDeleted: true, Size: true, AppendLimit: true, HighestModSeq: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotStatus, status) {
		t.Errorf("STATUS:\n got %#v\nwant %#v", gotStatus, status)
	}

	gotSel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotSel.Flags, sel.Flags) || !reflect.DeepEqual(gotSel.PermanentFlags, sel.PermanentFlags) ||
		gotSel.NumMessages != 12 || gotSel.UIDNext != 99 || gotSel.UIDValidity != 5 || gotSel.HighestModSeq != 77 {
		t.Errorf("SELECT: %#v", gotSel)
	}

	gotSearch, err := c.UIDSearch(&imap.SearchCriteria{}, &imap.SearchOptions{ReturnMin: true, ReturnMax: true, ReturnCount: true, ReturnAll: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if gotSearch.Min != 3 || gotSearch.Max != 9 || gotSearch.Count != 6 || gotSearch.ModSeq != 4 || gotSearch.All.String() != "3,5:9" {
		t.Errorf("ESEARCH: %#v", gotSearch)
	}
	gotSearch, err = c.Search(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if nums := gotSearch.AllSeqNums(); !reflect.DeepEqual(nums, []uint32{1, 2, 3}) {
		t.Errorf("SEARCH: %v", nums)
	}

	ns, err := c.Namespace().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(ns.Personal) != 1 || ns.Personal[0].Delim != '/' || ns.Other != nil {
		t.Errorf("NAMESPACE: %#v", ns)
	}

	id, err := c.ID(&imap.IDData{Name: "test"}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if id.Name != "bitmaskd" || id.Vendor != `"quoted"` {
		t.Errorf("ID: %#v", id)
	}
}
