package imapd

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

var reportMsg = crlf(`From: Alice Example <alice@example.org>
To: Bob <bob@example.net>, carol@example.com
Cc: =?utf-8?q?Dani=C3=ABl?= <daniel@example.com>
Subject: =?utf-8?q?Quarterly_report_=E2=80=94_Q3?=
Date: Tue, 01 Oct 2024 10:30:00 +0200
Message-ID: <report-1@example.org>
In-Reply-To: <prev@example.org>
X-Priority: 3
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

This is the preamble.
--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=utf-8

Hello Bob, the numbers are attached.
Zebra crossing.
--inner
Content-Type: text/html; charset=utf-8

<p>Hello Bob, the <b>numbers</b> are attached.</p>
--inner--
--outer
Content-Type: application/pdf; name="report.pdf"
Content-Disposition: attachment; filename="report.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K
--outer--
`)

const pdfBase64 = "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K"

func simpleMsg(from, to, subject, date, body string) []byte {
	return crlf("From: " + from + "\nTo: " + to + "\nSubject: " + subject + "\nDate: " + date +
		"\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@example.org>\n\n" + body + "\n")
}

func TestLogin(t *testing.T) {
	e := startServer(t)

	c := e.dialNoLogin(nil)
	err := c.Login(testUser, "wrong").Wait()
	if imapCode(err) != imap.ResponseCodeAuthenticationFailed {
		t.Fatalf("bad password: %v", err)
	}
	if err := c.Login("mallory@bitmask.test", testToken).Wait(); imapCode(err) != imap.ResponseCodeAuthenticationFailed {
		t.Fatalf("unknown user: %v", err)
	}
	// The same connection can still log in.
	if err := c.Login(testUser, testToken).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	caps := c.Caps()
	for _, want := range []imap.Cap{imap.CapIMAP4rev1, imap.CapIMAP4rev2, imap.CapIdle, imap.CapMove, imap.CapUIDPlus,
		imap.CapSpecialUse, imap.CapListStatus, imap.CapESearch, imap.CapNamespace, imap.CapUnselect, imap.CapBinary,
		imap.CapChildren, imap.CapSearchRes, imap.CapUnauthenticate, "APPENDLIMIT=67108864"} {
		if !caps.Has(want) {
			t.Errorf("capability %s not advertised (have %v)", want, caps)
		}
	}
	for _, want := range []imap.Cap{imap.CapLiteralPlus, imap.CapCondStore, imap.CapQResync, imap.CapID, imap.CapMultiAppend} {
		if !caps.Has(want) {
			t.Errorf("capability %s not advertised (have %v)", want, caps)
		}
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatalf("logout: %v", err)
	}

	// AUTHENTICATE PLAIN
	c2 := e.dialNoLogin(nil)
	if err := c2.Authenticate(sasl.NewPlainClient("", testUser, "nope")); imapCode(err) != imap.ResponseCodeAuthenticationFailed {
		t.Fatalf("AUTHENTICATE with a bad token: %v", err)
	}
	if err := c2.Authenticate(sasl.NewPlainClient("", testUser, testToken)); err != nil {
		t.Fatalf("AUTHENTICATE PLAIN: %v", err)
	}
	if _, err := c2.List("", "INBOX", nil).Collect(); err != nil {
		t.Fatalf("list after authenticate: %v", err)
	}
	// UNAUTHENTICATE and back.
	if err := c2.Unauthenticate().Wait(); err != nil {
		t.Fatalf("unauthenticate: %v", err)
	}
	if err := c2.Login(testUser, testToken).Wait(); err != nil {
		t.Fatalf("login after unauthenticate: %v", err)
	}
}

func TestStartTLS(t *testing.T) {
	e := startServer(t)
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := imapclient.NewStartTLS(conn, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: e.roots, ServerName: "localhost"}})
	if err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	defer c.Close()
	if _, ok := c.Caps()[imap.CapStartTLS]; ok {
		t.Errorf("STARTTLS still advertised inside TLS")
	}
	if err := c.Login(testUser, testToken).Wait(); err != nil {
		t.Fatalf("login over STARTTLS: %v", err)
	}
	mustSelect(t, c, "INBOX", false)

	// Plain text advertises STARTTLS and allows LOGIN (loopback).
	p := e.dialNoLogin(nil)
	caps, err := p.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !caps.Has(imap.CapStartTLS) || caps.Has(imap.CapLoginDisabled) {
		t.Errorf("plain caps: %v", caps)
	}

	// Implicit TLS.
	tc, err := imapclient.DialTLS(e.tlsAddr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: e.roots, ServerName: "localhost"}})
	if err != nil {
		t.Fatalf("implicit TLS: %v", err)
	}
	defer tc.Close()
	if err := tc.Login(testUser, testToken).Wait(); err != nil {
		t.Fatalf("login over TLS: %v", err)
	}
	if tc.Caps().Has(imap.CapStartTLS) {
		t.Errorf("STARTTLS advertised on implicit TLS")
	}
}

func listMap(t *testing.T, c *imapclient.Client, ref, pattern string, opts *imap.ListOptions) map[string]*imap.ListData {
	t.Helper()
	l, err := c.List(ref, pattern, opts).Collect()
	if err != nil {
		t.Fatalf("list %q: %v", pattern, err)
	}
	m := map[string]*imap.ListData{}
	for _, d := range l {
		m[d.Mailbox] = d
	}
	return m
}

func TestListSpecialUse(t *testing.T) {
	e := startServer(t)
	c := e.dial(nil)
	appendMsg(t, c, "Sent", simpleMsg("a@x.org", "b@y.org", "sent one", "Mon, 1 Jan 2024 10:00:00 +0000", "hi"), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}})
	appendMsg(t, c, "INBOX", simpleMsg("a@x.org", "b@y.org", "in one", "Mon, 1 Jan 2024 10:00:00 +0000", "hi"), nil)

	all := listMap(t, c, "", "*", nil)
	want := map[string]imap.MailboxAttr{"Sent": imap.MailboxAttrSent, "Drafts": imap.MailboxAttrDrafts, "Trash": imap.MailboxAttrTrash,
		"Junk": imap.MailboxAttrJunk, "Archive": imap.MailboxAttrArchive}
	for name, attr := range want {
		d := all[name]
		if d == nil || !slices.Contains(d.Attrs, attr) {
			t.Errorf("LIST %s: %+v, want %s", name, d, attr)
		}
		if d != nil && d.Delim != '/' {
			t.Errorf("delimiter %q", d.Delim)
		}
	}
	if d := all["INBOX"]; d == nil || !slices.Contains(d.Attrs, imap.MailboxAttrHasNoChildren) {
		t.Errorf("INBOX: %+v", d)
	}

	special := listMap(t, c, "", "*", &imap.ListOptions{SelectSpecialUse: true})
	if len(special) != 5 || special["INBOX"] != nil {
		t.Errorf("LIST (SPECIAL-USE): %v", special)
	}

	withStatus := listMap(t, c, "", "%", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true, NumUnseen: true, UIDNext: true}})
	if st := withStatus["Sent"].Status; st == nil || *st.NumMessages != 1 || *st.NumUnseen != 0 || st.UIDNext != 2 {
		t.Errorf("LIST-STATUS Sent: %+v", withStatus["Sent"].Status)
	}
	if st := withStatus["INBOX"].Status; st == nil || *st.NumMessages != 1 || *st.NumUnseen != 1 {
		t.Errorf("LIST-STATUS INBOX: %+v", withStatus["INBOX"].Status)
	}

	// The delimiter query and case-insensitive INBOX.
	l, err := c.List("", "", nil).Collect()
	if err != nil || len(l) != 1 || l[0].Delim != '/' || !slices.Contains(l[0].Attrs, imap.MailboxAttrNoSelect) {
		t.Errorf(`LIST "" "": %+v %v`, l, err)
	}
	if m := listMap(t, c, "", "inbox", nil); m["INBOX"] == nil {
		t.Errorf("LIST inbox: %v", m)
	}

	ns, err := c.Namespace().Wait()
	if err != nil || len(ns.Personal) != 1 || ns.Personal[0].Delim != '/' || ns.Personal[0].Prefix != "" {
		t.Errorf("NAMESPACE: %+v %v", ns, err)
	}

	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true, UIDValidity: true, UIDNext: true, NumUnseen: true, NumDeleted: true, Size: true}).Wait()
	if err != nil || *st.NumMessages != 1 || st.UIDValidity == 0 || *st.NumDeleted != 0 || *st.Size == 0 {
		t.Errorf("STATUS: %+v %v", st, err)
	}
	if _, err := c.Status("Nope", &imap.StatusOptions{NumMessages: true}).Wait(); imapCode(err) != imap.ResponseCodeNonExistent {
		t.Errorf("STATUS of a missing mailbox: %v", err)
	}
}

func TestMailboxHierarchy(t *testing.T) {
	e := startServer(t)
	c := e.dial(nil)
	if err := c.Create("Work/Projects/2024/", nil).Wait(); err != nil {
		t.Fatalf("create nested: %v", err)
	}
	all := listMap(t, c, "", "*", nil)
	for _, n := range []string{"Work", "Work/Projects", "Work/Projects/2024"} {
		if all[n] == nil {
			t.Fatalf("%s missing from %v", n, all)
		}
	}
	if !slices.Contains(all["Work"].Attrs, imap.MailboxAttrHasChildren) || !slices.Contains(all["Work/Projects/2024"].Attrs, imap.MailboxAttrHasNoChildren) {
		t.Errorf("children attributes: %+v %+v", all["Work"], all["Work/Projects/2024"])
	}
	if m := listMap(t, c, "", "Work/%", nil); len(m) != 1 || m["Work/Projects"] == nil {
		t.Errorf("LIST Work/%%: %v", m)
	}
	if m := listMap(t, c, "Work/", "%", nil); len(m) != 1 || m["Work/Projects"] == nil {
		t.Errorf("LIST with reference: %v", m)
	}
	if err := c.Create("Work", nil).Wait(); imapCode(err) != imap.ResponseCodeAlreadyExists {
		t.Errorf("create existing: %v", err)
	}
	if err := c.Create("inbox", nil).Wait(); imapCode(err) != imap.ResponseCodeAlreadyExists {
		t.Errorf("create inbox: %v", err)
	}
	if err := c.Create("Bad*Name", nil).Wait(); err == nil {
		t.Errorf("create with a wildcard succeeded")
	}

	appendMsg(t, c, "Work/Projects", simpleMsg("a@x.org", "b@y.org", "plan", "Mon, 1 Jan 2024 10:00:00 +0000", "the plan"), nil)
	if err := c.Rename("Work", "Jobs", nil).Wait(); err != nil {
		t.Fatalf("rename: %v", err)
	}
	all = listMap(t, c, "", "*", nil)
	if all["Work"] != nil || all["Jobs/Projects/2024"] == nil {
		t.Fatalf("after rename: %v", all)
	}
	if st, err := c.Status("Jobs/Projects", &imap.StatusOptions{NumMessages: true}).Wait(); err != nil || *st.NumMessages != 1 {
		t.Errorf("messages after rename: %+v %v", st, err)
	}
	if err := c.Rename("Nope", "Other", nil).Wait(); imapCode(err) != imap.ResponseCodeNonExistent {
		t.Errorf("rename missing: %v", err)
	}
	if err := c.Rename("Jobs", "Sent", nil).Wait(); imapCode(err) != imap.ResponseCodeAlreadyExists {
		t.Errorf("rename onto existing: %v", err)
	}
	if err := c.Rename("Sent", "Sent2", nil).Wait(); err == nil {
		t.Errorf("renaming a special-use mailbox succeeded")
	}

	if err := c.Delete("Jobs/Projects/2024").Wait(); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := c.Delete("Jobs/Projects/2024").Wait(); imapCode(err) != imap.ResponseCodeNonExistent {
		t.Errorf("delete twice: %v", err)
	}
	if err := c.Delete("INBOX").Wait(); err == nil {
		t.Errorf("deleting INBOX succeeded")
	}
	if err := c.Delete("Trash").Wait(); err == nil {
		t.Errorf("deleting Trash succeeded")
	}

	// A child whose parent was deleted shows the parent as \Noselect.
	if err := c.Delete("Jobs").Wait(); err != nil {
		t.Fatalf("delete parent: %v", err)
	}
	all = listMap(t, c, "", "*", nil)
	if d := all["Jobs"]; d == nil || !slices.Contains(d.Attrs, imap.MailboxAttrNoSelect) || !slices.Contains(d.Attrs, imap.MailboxAttrHasChildren) {
		t.Errorf("implied parent: %+v", d)
	}
	if _, err := c.Select("Jobs", nil).Wait(); err == nil {
		t.Errorf("selected a \\Noselect name")
	}

	// Subscriptions, LSUB and LIST (SUBSCRIBED RECURSIVEMATCH).
	if err := c.Unsubscribe("Jobs/Projects").Wait(); err != nil {
		t.Fatalf("unsubscribe: %v", err)
	}
	subs := listMap(t, c, "", "*", &imap.ListOptions{SelectSubscribed: true})
	if subs["Jobs/Projects"] != nil || subs["INBOX"] == nil || !slices.Contains(subs["INBOX"].Attrs, imap.MailboxAttrSubscribed) {
		t.Errorf("LIST (SUBSCRIBED): %v", subs)
	}
	if err := c.Subscribe("Jobs/Projects").Wait(); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := c.Subscribe("Nope").Wait(); err == nil {
		t.Errorf("subscribing to a missing mailbox succeeded")
	}
	rec := listMap(t, c, "", "%", &imap.ListOptions{SelectSubscribed: true, SelectRecursiveMatch: true})
	if d := rec["Jobs"]; d == nil || d.ChildInfo == nil || !d.ChildInfo.Subscribed {
		t.Errorf("RECURSIVEMATCH: %+v", d)
	}
}

func TestAppend(t *testing.T) {
	e := startServer(t)
	c := e.dial(nil)
	date := time.Date(2023, 5, 17, 8, 9, 10, 0, time.UTC)
	raw := simpleMsg("a@x.org", "b@y.org", "appended", "Wed, 17 May 2023 08:00:00 +0000", "body")
	data := appendMsg(t, c, "INBOX", raw, &imap.AppendOptions{Flags: []imap.Flag{imap.FlagFlagged, "$Work"}, Time: date})
	info, _ := e.store.Mailbox("INBOX")
	if data.UID != 1 || data.UIDValidity != info.UIDValidity {
		t.Fatalf("APPENDUID %+v, want 1 %d", data, info.UIDValidity)
	}
	sel := mustSelect(t, c, "INBOX", false)
	if sel.NumMessages != 1 || sel.UIDNext != 2 || !slices.Contains(sel.Flags, "$Work") || !slices.Contains(sel.PermanentFlags, imap.FlagWildcard) {
		t.Errorf("SELECT: %+v", sel)
	}
	msgs := fetchAll(t, c, imap.SeqSetNum(1), &imap.FetchOptions{Flags: true, InternalDate: true, RFC822Size: true, UID: true})
	m := msgs[0]
	if !slices.Equal(noRecent(m.Flags), []imap.Flag{"$Work", imap.FlagFlagged}) || !m.InternalDate.Equal(date) || m.RFC822Size != int64(len(raw)) || m.UID != 1 {
		t.Errorf("fetched %+v", m)
	}

	// Appending to the selected mailbox reports EXISTS before the OK.
	appendMsg(t, c, "inbox", raw, nil)
	if n := c.Mailbox().NumMessages; n != 2 {
		t.Errorf("EXISTS after APPEND: %d", n)
	}

	cmd := c.Append("Nope", int64(len(raw)), nil)
	cmd.Write(raw)
	cmd.Close()
	if _, err := cmd.Wait(); imapCode(err) != imap.ResponseCodeTryCreate {
		t.Errorf("append to missing mailbox: %v", err)
	}
	cmd = c.Append("INBOX", int64(len(raw)), &imap.AppendOptions{Flags: []imap.Flag{`\Bogus`}})
	cmd.Write(raw)
	cmd.Close()
	if _, err := cmd.Wait(); err == nil {
		t.Errorf("append with an unknown system flag succeeded")
	}
}

func TestFetchItems(t *testing.T) {
	e := startServer(t)
	c := e.dial(nil)
	appendMsg(t, c, "INBOX", reportMsg, &imap.AppendOptions{Time: time.Date(2024, 10, 1, 9, 0, 0, 0, time.UTC)})
	mustSelect(t, c, "INBOX", false)

	secPartial := &imap.FetchItemBodySection{Part: []int{1, 2}, Partial: &imap.SectionPartial{Offset: 0, Size: 10}, Peek: true}
	secHTML := &imap.FetchItemBodySection{Part: []int{1, 2}, Peek: true}
	secSubject := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}, Peek: true}
	secNot := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"Subject", "Cc", "To", "From", "Date", "Message-ID", "In-Reply-To", "MIME-Version", "Content-Type"}, Peek: true}
	secMIME := &imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierMIME, Peek: true}
	secText := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText, Peek: true}
	secAll := &imap.FetchItemBodySection{Peek: true}
	secPart11 := &imap.FetchItemBodySection{Part: []int{1, 1}, Peek: true}
	secMissing := &imap.FetchItemBodySection{Part: []int{9}, Peek: true}
	bin2 := &imap.FetchItemBinarySection{Part: []int{2}, Peek: true}
	msgs := fetchAll(t, c, imap.SeqSetNum(1), &imap.FetchOptions{
		UID: true, Flags: true, Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		RFC822Size: true, InternalDate: true,
		BodySection:       []*imap.FetchItemBodySection{secPartial, secHTML, secSubject, secNot, secMIME, secText, secAll, secPart11, secMissing},
		BinarySection:     []*imap.FetchItemBinarySection{bin2},
		BinarySectionSize: []*imap.FetchItemBinarySectionSize{{Part: []int{2}}},
	})
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	env := m.Envelope
	if env == nil || env.Subject != "Quarterly report — Q3" || env.MessageID != "report-1@example.org" ||
		len(env.From) != 1 || env.From[0].Name != "Alice Example" || env.From[0].Addr() != "alice@example.org" ||
		len(env.To) != 2 || env.To[1].Addr() != "carol@example.com" || len(env.Cc) != 1 || env.Cc[0].Name != "Daniël" ||
		!slices.Equal(env.InReplyTo, []string{"prev@example.org"}) {
		t.Errorf("envelope: %+v", env)
	}
	if _, off := env.Date.Zone(); !env.Date.Equal(time.Date(2024, 10, 1, 8, 30, 0, 0, time.UTC)) || off != 7200 {
		t.Errorf("envelope date %v", env.Date)
	}
	if len(env.Sender) != 1 || env.Sender[0].Addr() != "alice@example.org" || len(env.ReplyTo) != 1 {
		t.Errorf("sender/reply-to default to From: %+v %+v", env.Sender, env.ReplyTo)
	}

	mixed, ok := m.BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || mixed.Subtype != "mixed" || len(mixed.Children) != 2 {
		t.Fatalf("BODYSTRUCTURE: %#v", m.BodyStructure)
	}
	alt, ok := mixed.Children[0].(*imap.BodyStructureMultiPart)
	if !ok || alt.Subtype != "alternative" || len(alt.Children) != 2 {
		t.Fatalf("alternative: %#v", mixed.Children[0])
	}
	plain := alt.Children[0].(*imap.BodyStructureSinglePart)
	if plain.MediaType() != "text/plain" || plain.Params["charset"] != "utf-8" || plain.Text == nil || plain.Text.NumLines != 1 {
		t.Errorf("text part: %+v %+v", plain, plain.Text)
	}
	pdf := mixed.Children[1].(*imap.BodyStructureSinglePart)
	if pdf.MediaType() != "application/pdf" || pdf.Filename() != "report.pdf" || pdf.Encoding != "base64" ||
		pdf.Disposition() == nil || pdf.Disposition().Value != "attachment" || pdf.Size != uint32(len(pdfBase64)) {
		t.Errorf("attachment: %+v disposition %+v", pdf, pdf.Disposition())
	}

	html := "<p>Hello Bob, the <b>numbers</b> are attached.</p>"
	if got := string(m.FindBodySection(secPartial)); got != html[:10] {
		t.Errorf("BODY[1.2]<0.10> = %q", got)
	}
	if got := string(m.FindBodySection(secHTML)); got != html {
		t.Errorf("BODY[1.2] = %q", got)
	}
	if got := string(m.FindBodySection(secSubject)); got != "Subject: =?utf-8?q?Quarterly_report_=E2=80=94_Q3?=\r\n\r\n" {
		t.Errorf("BODY[HEADER.FIELDS (Subject)] = %q", got)
	}
	if got := string(m.FindBodySection(secNot)); got != "X-Priority: 3\r\n\r\n" {
		t.Errorf("BODY[HEADER.FIELDS.NOT ...] = %q", got)
	}
	if got := string(m.FindBodySection(secMIME)); !strings.HasPrefix(got, "Content-Type: application/pdf") || !strings.HasSuffix(got, "base64\r\n\r\n") {
		t.Errorf("BODY[2.MIME] = %q", got)
	}
	if got := m.FindBodySection(secText); !bytes.HasPrefix(got, []byte("This is the preamble.")) || !bytes.HasSuffix(reportMsg, got) {
		t.Errorf("BODY[TEXT] = %q", got)
	}
	if got := m.FindBodySection(secAll); !bytes.Equal(got, reportMsg) || int64(len(got)) != m.RFC822Size {
		t.Errorf("BODY[] differs from the message (%d bytes, RFC822.SIZE %d)", len(got), m.RFC822Size)
	}
	if got := string(m.FindBodySection(secPart11)); got != "Hello Bob, the numbers are attached.\r\nZebra crossing." {
		t.Errorf("BODY[1.1] = %q", got)
	}
	if got := m.FindBodySection(secMissing); len(got) != 0 {
		t.Errorf("BODY[9] = %q", got)
	}
	wantPDF, _ := base64.StdEncoding.DecodeString(pdfBase64)
	if got := m.FindBinarySection(bin2); !bytes.Equal(got, wantPDF) {
		t.Errorf("BINARY[2] = %q", got)
	}
	if n, ok := m.FindBinarySectionSize([]int{2}); !ok || n != uint32(len(wantPDF)) {
		t.Errorf("BINARY.SIZE[2] = %d %v", n, ok)
	}
	if len(noRecent(m.Flags)) != 0 {
		t.Errorf("PEEK set flags: %v", m.Flags)
	}

	// BODY (non-extended) and the FULL macro parse too.
	msgs = fetchAll(t, c, imap.SeqSetNum(1), &imap.FetchOptions{BodyStructure: &imap.FetchItemBodyStructure{}})
	if _, ok := msgs[0].BodyStructure.(*imap.BodyStructureMultiPart); !ok {
		t.Errorf("BODY: %#v", msgs[0].BodyStructure)
	}

	// A non-PEEK section sets \Seen and reports it.
	msgs = fetchAll(t, c, imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader}}})
	if !slices.Contains(msgs[0].Flags, imap.FlagSeen) {
		t.Errorf("BODY[HEADER] did not report \\Seen: %v", msgs[0].Flags)
	}
	msgs = fetchAll(t, c, imap.UIDSetNum(1), &imap.FetchOptions{Flags: true})
	if !slices.Contains(msgs[0].Flags, imap.FlagSeen) || msgs[0].UID != 1 {
		t.Errorf("flags after BODY[HEADER]: %+v", msgs[0])
	}

	// Unknown UIDs and sequence numbers give nothing, not an error.
	if msgs := fetchAll(t, c, imap.UIDSetNum(99999), &imap.FetchOptions{Flags: true}); len(msgs) != 0 {
		t.Errorf("UID FETCH 99999: %v", msgs)
	}
	if msgs := fetchAll(t, c, imap.SeqSetNum(5), &imap.FetchOptions{Flags: true}); len(msgs) != 0 {
		t.Errorf("FETCH 5: %v", msgs)
	}
}

func TestFetchNestedMessage(t *testing.T) {
	e := startServer(t)
	c := e.dial(nil)
	inner := "From: Inner <inner@example.org>\nSubject: inner subject\n\ninner body line\n"
	raw := crlf("From: outer@example.org\nSubject: fwd\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee attached\n--b\nContent-Type: message/rfc822\n\n" + inner + "--b--\n")
	appendMsg(t, c, "INBOX", raw, nil)
	mustSelect(t, c, "INBOX", true)
	hdr := &imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierHeader, Peek: true}
	body := &imap.FetchItemBodySection{Part: []int{2, 1}, Peek: true}
	msgs := fetchAll(t, c, imap.SeqSetNum(1), &imap.FetchOptions{BodyStructure: &imap.FetchItemBodyStructure{Extended: true}, BodySection: []*imap.FetchItemBodySection{hdr, body}})
	mp := msgs[0].BodyStructure.(*imap.BodyStructureMultiPart)
	msgPart := mp.Children[1].(*imap.BodyStructureSinglePart)
	if msgPart.MessageRFC822 == nil || msgPart.MessageRFC822.Envelope.Subject != "inner subject" || msgPart.MessageRFC822.NumLines != 3 {
		t.Fatalf("message/rfc822 part: %+v", msgPart.MessageRFC822)
	}
	if got := string(msgs[0].FindBodySection(hdr)); got != "From: Inner <inner@example.org>\r\nSubject: inner subject\r\n\r\n" {
		t.Errorf("BODY[2.HEADER] = %q", got)
	}
	// The line break before a boundary belongs to the boundary.
	if got := string(msgs[0].FindBodySection(body)); got != "inner body line" {
		t.Errorf("BODY[2.1] = %q", got)
	}
}

func TestSearch(t *testing.T) {
	e := startServer(t)
	c := e.dial(nil)
	day := func(d int) time.Time { return time.Date(2024, 3, d, 12, 0, 0, 0, time.UTC) }
	msgs := []struct {
		raw   []byte
		flags []imap.Flag
		date  time.Time
	}{
		{simpleMsg("Alice <alice@example.org>", "bob@example.net", "lunch on friday", "Fri, 1 Mar 2024 09:00:00 +0000", "Let us meet at noon."), nil, day(1)},
		{simpleMsg("carol@example.com", "bob@example.net", "Invoice 42", "Sat, 2 Mar 2024 09:00:00 +0000", "Please pay the invoice."), []imap.Flag{imap.FlagSeen, "$Invoice"}, day(2)},
		{reportMsg, []imap.Flag{imap.FlagFlagged}, day(3)},
		{simpleMsg("alice@example.org", "dave@example.org", "big news", "Mon, 4 Mar 2024 09:00:00 +0000", strings.Repeat("padding ", 500)+"\nQP-free text"), []imap.Flag{imap.FlagSeen, imap.FlagDeleted}, day(4)},
	}
	for _, m := range msgs {
		appendMsg(t, c, "INBOX", m.raw, &imap.AppendOptions{Flags: m.flags, Time: m.date})
	}
	mustSelect(t, c, "INBOX", false)

	search := func(uid bool, cr *imap.SearchCriteria) []uint32 {
		t.Helper()
		var data *imap.SearchData
		var err error
		if uid {
			data, err = c.UIDSearch(cr, nil).Wait()
		} else {
			data, err = c.Search(cr, nil).Wait()
		}
		if err != nil {
			t.Fatalf("search %+v: %v", cr, err)
		}
		if uid {
			var out []uint32
			for _, u := range data.AllUIDs() {
				out = append(out, uint32(u))
			}
			return out
		}
		return data.AllSeqNums()
	}
	cases := []struct {
		name string
		cr   imap.SearchCriteria
		want []uint32
	}{
		{"all", imap.SearchCriteria{}, []uint32{1, 2, 3, 4}},
		{"from", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "ALICE"}}}, []uint32{1, 3, 4}},
		{"to", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "To", Value: "dave@"}}}, []uint32{4}},
		{"cc decoded", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Cc", Value: "daniël"}}}, []uint32{3}},
		{"subject", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "invoice"}}}, []uint32{2}},
		{"subject decoded", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "report — q3"}}}, []uint32{3}},
		{"header", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "X-Priority", Value: "3"}}}, []uint32{3}},
		{"header present", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "In-Reply-To", Value: ""}}}, []uint32{3}},
		{"body", imap.SearchCriteria{Body: []string{"NOON"}}, []uint32{1}},
		{"body in a multipart", imap.SearchCriteria{Body: []string{"zebra"}}, []uint32{3}},
		{"body is not header", imap.SearchCriteria{Body: []string{"lunch"}}, nil},
		{"text has header", imap.SearchCriteria{Text: []string{"lunch"}}, []uint32{1}},
		{"seen", imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}, []uint32{2, 4}},
		{"unseen", imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, []uint32{1, 3}},
		{"keyword", imap.SearchCriteria{Flag: []imap.Flag{"$invoice"}}, []uint32{2}},
		// This session selected INBOX first: every message is \Recent
		// for it (RFC 3501 §2.3.2).
		{"recent", imap.SearchCriteria{Flag: []imap.Flag{`\Recent`}}, []uint32{1, 2, 3, 4}},
		{"new", imap.SearchCriteria{Flag: []imap.Flag{`\Recent`}, NotFlag: []imap.Flag{imap.FlagSeen}}, []uint32{1, 3}},
		{"old", imap.SearchCriteria{NotFlag: []imap.Flag{`\Recent`}}, nil},
		{"since", imap.SearchCriteria{Since: day(3)}, []uint32{3, 4}},
		{"before", imap.SearchCriteria{Before: day(2)}, []uint32{1}},
		{"on", imap.SearchCriteria{Since: day(2), Before: day(3)}, []uint32{2}},
		{"sentsince", imap.SearchCriteria{SentSince: time.Date(2024, 3, 2, 0, 0, 0, 0, time.UTC)}, []uint32{2, 3, 4}},
		{"sentbefore", imap.SearchCriteria{SentBefore: time.Date(2024, 3, 2, 0, 0, 0, 0, time.UTC)}, []uint32{1}},
		{"larger", imap.SearchCriteria{Larger: 900}, []uint32{3, 4}},
		{"smaller", imap.SearchCriteria{Smaller: 300}, []uint32{1, 2}},
		{"seq set", imap.SearchCriteria{SeqNum: []imap.SeqSet{{{Start: 2, Stop: 0}}}}, []uint32{2, 3, 4}},
		{"uid set", imap.SearchCriteria{UID: []imap.UIDSet{imap.UIDSetNum(1, 3, 77)}}, []uint32{1, 3}},
		{"not", imap.SearchCriteria{Not: []imap.SearchCriteria{{Flag: []imap.Flag{imap.FlagDeleted}}}}, []uint32{1, 2, 3}},
		{"or", imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{Body: []string{"noon"}}, {Flag: []imap.Flag{imap.FlagFlagged}}}}}, []uint32{1, 3}},
		{"sent on", imap.SearchCriteria{SentSince: time.Date(2024, 10, 1, 0, 0, 0, 0, time.UTC), SentBefore: time.Date(2024, 10, 2, 0, 0, 0, 0, time.UTC)}, []uint32{3}},
		{"and of or and not", imap.SearchCriteria{
			Or:  [][2]imap.SearchCriteria{{{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "alice"}}}, {Flag: []imap.Flag{imap.FlagSeen}}}},
			Not: []imap.SearchCriteria{{Larger: 3000}},
		}, []uint32{1, 2, 3}},
	}
	for _, tc := range cases {
		if got := search(false, &tc.cr); !slices.Equal(got, tc.want) {
			t.Errorf("SEARCH %s = %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := search(true, &imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}); !slices.Equal(got, []uint32{2, 4}) {
		t.Errorf("UID SEARCH SEEN = %v", got)
	}

	// ESEARCH with RETURN, and SEARCHRES.
	data, err := c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagDeleted}}, &imap.SearchOptions{ReturnMin: true, ReturnMax: true, ReturnCount: true}).Wait()
	if err != nil || data.Min != 1 || data.Max != 3 || data.Count != 3 {
		t.Errorf("ESEARCH: %+v %v", data, err)
	}

	// imapclient sends neither SAVE nor "n:*" as asked (it filters the
	// answers): speak them by hand.
	rc := e.raw()
	rc.cmd("l", `LOGIN "`+testUser+`" "`+testToken+`"`)
	rc.cmd("s", "SELECT INBOX")
	for _, tc := range []struct{ cmd, want string }{
		{"UID SEARCH RETURN (SAVE) SEEN", ""},
		{"UID FETCH $ (FLAGS)", "* 2 FETCH (UID 2 FLAGS ($Invoice \\Seen))|* 4 FETCH (UID 4 FLAGS (\\Deleted \\Seen))"},
		{"SEARCH RETURN (MIN SAVE) UNSEEN", "* ESEARCH (TAG \"t\") MIN 1"},
		{"FETCH $ (UID)", "* 1 FETCH (UID 1)"},
		{"UID SEARCH $ SMALLER 300", "* SEARCH 1"},
		{"UID FETCH 50:* (UID)", "* 4 FETCH (UID 4)"},
		{"FETCH * (UID)", "* 4 FETCH (UID 4)"},
		{"FETCH 3:2 (UID)", "* 2 FETCH (UID 2)|* 3 FETCH (UID 3)"},
	} {
		untagged, st := rc.cmd("t", tc.cmd)
		if !strings.HasPrefix(st, "t OK") || (tc.want != "" && strings.Join(untagged, "|") != tc.want) {
			t.Errorf("%s: %q %q, want %q", tc.cmd, untagged, st, tc.want)
		}
	}
}

func TestStoreExpunge(t *testing.T) {
	e := startServer(t)
	a := e.dial(nil)
	for i := range 5 {
		appendMsg(t, a, "INBOX", simpleMsg("x@example.org", "y@example.org", "m"+string(rune('a'+i)), "Mon, 1 Jan 2024 10:00:00 +0000", "body"), nil)
	}
	mustSelect(t, a, "INBOX", false)

	var bFetch = make(chan *imapclient.FetchMessageData, 16)
	var bExpunge = make(chan uint32, 16)
	b := e.dial(&imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Fetch: func(msg *imapclient.FetchMessageData) {
			msg.Collect()
			bFetch <- msg
		},
		Expunge: func(seq uint32) { bExpunge <- seq },
	}})
	mustSelect(t, b, "INBOX", false)

	// Non-silent STORE answers with the new flags.
	res, err := a.Store(imap.SeqSet{{Start: 2, Stop: 3}}, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted, "$Keep"}}, nil).Collect()
	if err != nil || len(res) != 2 || !slices.Contains(res[0].Flags, imap.FlagDeleted) || res[1].SeqNum != 3 || res[0].UID != 2 {
		t.Fatalf("STORE: %+v %v", res, err)
	}
	// .SILENT answers with nothing.
	res, err = a.Store(imap.SeqSetNum(5), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect()
	if err != nil || len(res) != 0 {
		t.Fatalf("STORE.SILENT answered %+v %v", res, err)
	}
	// Replace and remove.
	res, err = a.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsSet, Flags: []imap.Flag{imap.FlagAnswered, imap.FlagSeen}}, nil).Collect()
	if err != nil || !slices.Equal(noRecent(res[0].Flags), []imap.Flag{imap.FlagAnswered, imap.FlagSeen}) {
		t.Fatalf("STORE FLAGS: %+v %v", res, err)
	}
	res, err = a.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsDel, Flags: []imap.Flag{imap.FlagAnswered}}, nil).Collect()
	if err != nil || !slices.Equal(noRecent(res[0].Flags), []imap.Flag{imap.FlagSeen}) {
		t.Fatalf("STORE -FLAGS: %+v %v", res, err)
	}
	if _, err := a.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{`\Bogus`}}, nil).Collect(); err == nil {
		t.Errorf("STORE of an unknown system flag succeeded")
	}
	if n := len(a.Mailbox().Flags); n == 0 || !slices.Contains(a.Mailbox().Flags, "$Keep") {
		t.Errorf("FLAGS after a new keyword: %v", a.Mailbox().Flags)
	}

	// B hears of A's changes (four flag changes) at its next command.
	if err := b.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	seenB := map[uint32]bool{}
	for len(seenB) < 4 {
		select {
		case m := <-bFetch:
			seenB[m.SeqNum] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("B got FETCH for %v only", seenB)
		}
	}

	// UID EXPUNGE removes only the given \Deleted messages.
	seqs, err := a.UIDExpunge(imap.UIDSetNum(2, 4)).Collect()
	if err != nil || !slices.Equal(seqs, []uint32{2}) {
		t.Fatalf("UID EXPUNGE 2,4: %v %v", seqs, err)
	}
	// EXPUNGE removes the rest: UIDs 3 and 5, now at 2 and 4. Highest
	// first (4, 2) when the session applies its own expunge, or one by
	// one as the store's events reach the mailbox first (2, then UID 5
	// at 3): both name the same messages.
	seqs, err = a.Expunge().Collect()
	if err != nil || !slices.Equal(seqs, []uint32{4, 2}) && !slices.Equal(seqs, []uint32{2, 3}) {
		t.Fatalf("EXPUNGE: %v %v", seqs, err)
	}
	if n := a.Mailbox().NumMessages; n != 2 {
		t.Errorf("%d messages left", n)
	}
	left := fetchAll(t, a, imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true})
	if len(left) != 2 || left[0].UID != 1 || left[1].UID != 4 {
		t.Errorf("left: %+v", left)
	}

	// B: no EXPUNGE during FETCH by sequence number; given at NOOP.
	// The messages expunged meanwhile are still answered, under the
	// numbers B knows (RFC 2180 §4.1.1).
	got := fetchAll(t, b, imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true})
	var gotUIDs []imap.UID
	for _, m := range got {
		gotUIDs = append(gotUIDs, m.UID)
	}
	if !slices.Equal(gotUIDs, []imap.UID{1, 2, 3, 4}) {
		t.Errorf("B FETCH 1:* before EXPUNGE news: UIDs %v, want 1 2 3 4", gotUIDs)
	}
	select {
	case s := <-bExpunge:
		t.Fatalf("EXPUNGE %d sent during FETCH", s)
	default:
	}
	if err := b.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	var bs []uint32
	for len(bs) < 3 {
		select {
		case s := <-bExpunge:
			bs = append(bs, s)
		case <-time.After(10 * time.Second):
			t.Fatalf("B got EXPUNGE %v only", bs)
		}
	}
	// UID 2 at 2; then UIDs 3 and 5, at 2 and 4: 4, 2 when A's second
	// EXPUNGE came highest first, or 2, 3 when one by one (above).
	if !slices.Equal(bs, []uint32{2, 4, 2}) && !slices.Equal(bs, []uint32{2, 2, 3}) {
		t.Errorf("B EXPUNGE sequence %v", bs)
	}
	if n := b.Mailbox().NumMessages; n != 2 {
		t.Errorf("B sees %d messages", n)
	}
}

func TestSilentStoreNotEchoed(t *testing.T) {
	e := startServer(t)
	fetches := make(chan uint32, 16)
	a := e.dial(&imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Fetch: func(msg *imapclient.FetchMessageData) { fetches <- msg.SeqNum; msg.Collect() },
	}})
	appendMsg(t, a, "INBOX", simpleMsg("x@example.org", "y@example.org", "s", "Mon, 1 Jan 2024 10:00:00 +0000", "b"), nil)
	mustSelect(t, a, "INBOX", false)
	for range 20 {
		if _, err := a.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{"$A"}}, nil).Collect(); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsDel, Silent: true, Flags: []imap.Flag{"$A"}}, nil).Collect(); err != nil {
			t.Fatal(err)
		}
	}
	// A change from elsewhere is reported: it also proves the own events
	// above were processed before it.
	e.store.setFlags("INBOX", 1, `\Flagged`)
	deadline := time.After(10 * time.Second)
	for {
		if err := a.Noop().Wait(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-fetches:
			msgs := fetchAll(t, a, imap.SeqSetNum(1), &imap.FetchOptions{Flags: true})
			if !slices.Equal(noRecent(msgs[0].Flags), []imap.Flag{imap.FlagFlagged}) {
				t.Fatalf("flags %v", msgs[0].Flags)
			}
			select {
			case <-fetches:
				t.Fatalf("own .SILENT change echoed")
			default:
			}
			return
		case <-deadline:
			t.Fatal("no FETCH for the other device's change")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestCopyMove(t *testing.T) {
	e := startServer(t)
	c := e.dial(nil)
	for i := range 4 {
		appendMsg(t, c, "INBOX", simpleMsg("x@example.org", "y@example.org", "c"+string(rune('a'+i)), "Mon, 1 Jan 2024 10:00:00 +0000", "b"), &imap.AppendOptions{Flags: []imap.Flag{"$K"}})
	}
	mustSelect(t, c, "INBOX", false)
	archive, _ := e.store.Mailbox("Archive")

	data, err := c.Copy(imap.SeqSet{{Start: 1, Stop: 2}}, "Archive").Wait()
	if err != nil || data.UIDValidity != archive.UIDValidity || data.SourceUIDs.String() != "1:2" || data.DestUIDs.String() != "1:2" {
		t.Fatalf("COPY: %+v %v", data, err)
	}
	if _, err := c.Copy(imap.SeqSetNum(1), "Nope").Wait(); imapCode(err) != imap.ResponseCodeTryCreate {
		t.Errorf("COPY to missing: %v", err)
	}
	// COPY into the selected mailbox reports EXISTS.
	if _, err := c.Copy(imap.SeqSetNum(1), "INBOX").Wait(); err != nil {
		t.Fatalf("COPY to itself: %v", err)
	}
	if n := c.Mailbox().NumMessages; n != 5 {
		t.Errorf("EXISTS after COPY to INBOX: %d", n)
	}

	mv, err := c.Move(imap.UIDSetNum(3, 4), "Trash").Wait()
	if err != nil || mv.SourceUIDs.String() != "3:4" || mv.DestUIDs.String() != "1:2" {
		t.Fatalf("UID MOVE: %+v %v", mv, err)
	}
	if n := c.Mailbox().NumMessages; n != 3 {
		t.Errorf("%d messages after MOVE", n)
	}
	// MOVE into the mailbox the message is in: a new UID (RFC 6851
	// allows it; Dovecot does the same).
	same, err := c.Move(imap.UIDSetNum(1), "INBOX").Wait()
	if err != nil || same.SourceUIDs.String() != "1" || same.DestUIDs.String() != "6" {
		t.Errorf("MOVE to the same mailbox: %+v %v", same, err)
	}
	if n := c.Mailbox().NumMessages; n != 3 {
		t.Errorf("%d messages after MOVE to the same mailbox", n)
	}
	msgs, _ := e.store.Messages("Trash")
	if len(msgs) != 2 || !slices.Contains(msgs[0].Flags, "$K") {
		t.Errorf("Trash: %+v", msgs)
	}
	// Nothing to move: OK without COPYUID.
	if _, err := c.Move(imap.UIDSetNum(999), "Trash").Wait(); err != nil {
		t.Errorf("MOVE of nothing: %v", err)
	}
}

func TestExamineReadOnly(t *testing.T) {
	e := startServer(t)
	c := e.dial(nil)
	appendMsg(t, c, "INBOX", reportMsg, &imap.AppendOptions{Flags: []imap.Flag{imap.FlagDeleted}})
	sel := mustSelect(t, c, "INBOX", true)
	if len(sel.PermanentFlags) != 0 {
		t.Errorf("PERMANENTFLAGS on EXAMINE: %v", sel.PermanentFlags)
	}
	if _, err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Collect(); imapType(err) != imap.StatusResponseTypeNo {
		t.Errorf("STORE on EXAMINE: %v", err)
	}
	if _, err := c.Expunge().Collect(); imapType(err) != imap.StatusResponseTypeNo {
		t.Errorf("EXPUNGE on EXAMINE: %v", err)
	}
	if _, err := c.Move(imap.SeqSetNum(1), "Trash").Wait(); err == nil {
		t.Errorf("MOVE on EXAMINE succeeded")
	}
	msgs := fetchAll(t, c, imap.SeqSetNum(1), &imap.FetchOptions{Flags: true, BodySection: []*imap.FetchItemBodySection{{}}})
	if slices.Contains(msgs[0].Flags, imap.FlagSeen) {
		t.Errorf("FETCH BODY[] on EXAMINE set \\Seen")
	}
	if _, err := c.Copy(imap.SeqSetNum(1), "Archive").Wait(); err != nil {
		t.Errorf("COPY from EXAMINE: %v", err)
	}
	// CLOSE of a read-only mailbox expunges nothing and succeeds.
	if err := c.UnselectAndExpunge().Wait(); err != nil {
		t.Fatalf("CLOSE: %v", err)
	}
	if m, _ := e.store.Messages("INBOX"); len(m) != 1 {
		t.Errorf("CLOSE after EXAMINE expunged")
	}
	// CLOSE after SELECT does expunge.
	mustSelect(t, c, "INBOX", false)
	if err := c.UnselectAndExpunge().Wait(); err != nil {
		t.Fatalf("CLOSE: %v", err)
	}
	if m, _ := e.store.Messages("INBOX"); len(m) != 0 {
		t.Errorf("CLOSE after SELECT did not expunge")
	}
}

func TestIdle(t *testing.T) {
	e := startServer(t)
	exists := make(chan uint32, 16)
	expunged := make(chan uint32, 16)
	flags := make(chan uint32, 16)
	a := e.dial(&imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
		Expunge: func(seq uint32) { expunged <- seq },
		Fetch:   func(m *imapclient.FetchMessageData) { flags <- m.SeqNum; m.Collect() },
	}})
	mustSelect(t, a, "INBOX", false)
	idle, err := a.Idle()
	if err != nil {
		t.Fatalf("IDLE: %v", err)
	}
	wait := func(ch chan uint32, want uint32, what string) {
		t.Helper()
		select {
		case got := <-ch:
			if got != want {
				t.Fatalf("%s: %d, want %d", what, got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s while idling", what)
		}
	}

	// Another session appends.
	b := e.dial(nil)
	appendMsg(t, b, "INBOX", simpleMsg("x@example.org", "y@example.org", "one", "Mon, 1 Jan 2024 10:00:00 +0000", "b"), nil)
	wait(exists, 1, "EXISTS after APPEND")

	// Sync delivers a message.
	e.store.deliver("INBOX", simpleMsg("x@example.org", "y@example.org", "two", "Mon, 1 Jan 2024 10:00:00 +0000", "b"))
	wait(exists, 2, "EXISTS after sync")

	// Another session changes flags and expunges.
	mustSelect(t, b, "INBOX", false)
	if _, err := b.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	wait(flags, 1, "FETCH FLAGS")
	if _, err := b.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	wait(expunged, 1, "EXPUNGE")

	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("IDLE done: %v", err)
	}
	if n := a.Mailbox().NumMessages; n != 1 {
		t.Errorf("%d messages after IDLE", n)
	}
}

func TestSelectedMailboxDeleted(t *testing.T) {
	e := startServer(t)
	a := e.dial(nil)
	if err := a.Create("Work", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	mustSelect(t, a, "Work", false)
	b := e.dial(nil)
	if err := b.Delete("Work").Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Closed():
	case <-time.After(10 * time.Second):
		t.Fatal("session on a deleted mailbox not ended")
	}
	// The server goes on.
	if _, err := b.List("", "*", nil).Collect(); err != nil {
		t.Fatal(err)
	}
}

func TestBadInput(t *testing.T) {
	e := startServer(t)

	// Before login, an unknown command ends the connection (go-imap's
	// guard against cross-protocol attacks).
	rc := e.raw()
	_, status := rc.cmd("a0", "GET / HTTP/1.1")
	if !strings.HasPrefix(status, "a0 BAD") {
		t.Errorf("unknown command before login: %q", status)
	}

	rc = e.raw()
	if _, st := rc.cmd("a1", `LOGIN "`+testUser+`" "`+testToken+`"`); !strings.HasPrefix(st, "a1 OK") {
		t.Fatalf("login: %q", st)
	}
	for _, tc := range []struct{ cmd, want string }{
		{"FETCH 1 (FLAGS)", "BAD"}, // not selected
		{"SELECT", "BAD"},
		{"SELECT Nope", "NO"},
		{"SELECT INBOX", "OK"},
		{"FETCH 1:* FLAGS)", "BAD"},
		{"FETCH 1 (NOSUCHITEM)", "BAD"},
		{"FETCH 1:* (BODY[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25.26.27.28.29.30.31.32.33.34])", "OK"},
		{"UID FETCH 99999 (FLAGS)", "OK"},
		{"UID FETCH 1:4294967295 (FLAGS)", "OK"},
		{"FETCH 1:4294967295 (FLAGS)", "OK"},
		{"STORE 1 +FLAGS (\\Bogus)", "BAD"},
		{"STORE 1 +FOO (\\Seen)", "BAD"},
		{"UID EXPUNGE 1:4294967295", "OK"},
		{"SEARCH CHARSET KOI8-R TEXT x", "NO"},
		{"SEARCH OR", "BAD"},
		{"SEARCH NOT NOT NOT NOT ALL", "OK"},
		{"UID SEARCH UID 1:* SINCE 1-Feb-1994 LARGER 4294967295", "OK"},
		{"COPY 1 Nope", "OK"}, // empty mailbox: nothing to copy
		{"XYZZY", "BAD"},
		{"FETCH xyz (FLAGS)", "BAD"}, // not a sequence set: a syntax error
		{"CREATE \"\"", "NO"},
		{"RENAME INBOX INBOX", "NO"},
		{"NOOP", "OK"},
	} {
		_, st := rc.cmd("t", tc.cmd)
		if !strings.HasPrefix(st, "t "+tc.want) {
			t.Errorf("%s: %q, want %s", tc.cmd, st, tc.want)
		}
	}

	// An APPEND larger than APPENDLIMIT is refused before the literal is
	// sent.
	rc.send("big APPEND INBOX {70000000}\r\n")
	if _, st := rc.until("big"); !strings.HasPrefix(st, "big NO [TOOBIG]") {
		t.Errorf("huge literal: %q", st)
	}
	if _, st := rc.cmd("n", "NOOP"); !strings.HasPrefix(st, "n OK") {
		t.Errorf("after huge literal: %q", st)
	}

	// Hostile MIME is stored and served.
	deep := "Content-Type: multipart/mixed; boundary=b0\r\n\r\n"
	for i := 1; i < 200; i++ {
		deep += "--b" + string(rune('0'+i%10)) + "\r\nContent-Type: multipart/mixed; boundary=b" + string(rune('0'+(i+1)%10)) + "\r\n\r\n"
	}
	for _, raw := range []string{deep, "no header at all", "", "Content-Type: multipart/mixed\r\n\r\nno boundary", "Content-Type: message/rfc822\r\n\r\n", "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x--\r\n"} {
		rc.send("ap APPEND INBOX {" + itoa(len(raw)) + "}\r\n")
		if l := rc.line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("continuation: %q", l)
		}
		rc.send(raw + "\r\n")
		if _, st := rc.until("ap"); !strings.HasPrefix(st, "ap OK") {
			t.Fatalf("append hostile: %q", st)
		}
	}
	rc.send("f FETCH 1:* (BODYSTRUCTURE ENVELOPE BODY.PEEK[1.1] BINARY.PEEK[1] BINARY.SIZE[1])\r\n")
	for {
		l := rc.line()
		if strings.HasPrefix(l, "f ") {
			if !strings.HasPrefix(l, "f OK") {
				t.Errorf("fetch hostile: %q", l)
			}
			break
		}
		if strings.HasPrefix(l, "EOF") {
			t.Fatalf("connection lost: %s", l)
		}
		// Skip literal contents.
		if i := strings.LastIndex(l, "{"); i >= 0 && strings.HasSuffix(l, "}") {
			n := atoi(l[i+1 : len(l)-1])
			buf := make([]byte, n)
			if _, err := ioReadFull(rc, buf); err != nil {
				t.Fatal(err)
			}
		}
	}

	// A line that is not a command ends that connection only.
	rc.send("(((\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "EOF") && !strings.Contains(l, "BAD") {
		t.Logf("after garbage: %q", l)
	}
	c := e.dial(nil)
	mustSelect(t, c, "INBOX", false)
}

// TestSearchLargeMailbox: a search over more messages than one worker
// takes (it runs on every core) finds exactly what a message-by-message
// search would, in order, with Unicode case folding.
func TestSearchLargeMailbox(t *testing.T) {
	const n = 2000
	store := newFakeStore()
	store.addGenerated("INBOX", n)
	e := startServerWith(t, store)
	c := e.dial(nil)
	mustSelect(t, c, "INBOX", true)
	count := func(cr *imap.SearchCriteria) []imap.UID {
		t.Helper()
		data, err := c.UIDSearch(cr, nil).Wait()
		if err != nil {
			t.Fatalf("search %+v: %v", cr, err)
		}
		return data.AllUIDs()
	}
	if got := count(&imap.SearchCriteria{Body: []string{"Caching LAYER again"}}); len(got) != n {
		t.Fatalf("BODY in every message: %d", len(got))
	}
	// i = 1234 is UID 1235; "café" is in the encoded Subject.
	one := &imap.SearchCriteria{Text: []string{"STATUS 1234: deployment, budget and CAFÉ"}}
	if got := count(one); len(got) != 1 || got[0] != 1235 {
		t.Fatalf("TEXT in one message: %v", got)
	}
	got := count(&imap.SearchCriteria{Not: []imap.SearchCriteria{*one}})
	if len(got) != n-1 || slices.Contains(got, 1235) || !slices.IsSorted(got) {
		t.Fatalf("NOT TEXT: %d results", len(got))
	}
	if got := count(&imap.SearchCriteria{Body: []string{"café plans"}}); len(got) != 0 {
		t.Fatalf("BODY does not read the header: %d results", len(got))
	}
}
