package maildir

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMailboxToFolder(t *testing.T) {
	for _, c := range []struct{ mailbox, folder string }{
		{"INBOX", ""},
		{"Sent", ".Sent"},
		{"Sent/2024", ".Sent.2024"},
		{"INBOX/x", ".INBOX.x"},
		{"a.b", `.a\2eb`},
		{`back\slash`, `.back\5cslash`},
		{"~home", `.\7ehome`},
		{"a~b", ".a~b"},
		{"Entwürfe", ".Entw&APw-rfe"},
		{"R&D", ".R&-D"},
		{"日本語/メール", ".&ZeVnLIqe-.&MOEw,DDr-"},
		{"..", `.\2e\2e`},
		{"😀", ".&2D3eAA-"},
	} {
		got, err := MailboxToFolder(c.mailbox)
		if err != nil || got != c.folder {
			t.Errorf("MailboxToFolder(%q) = %q, %v; want %q", c.mailbox, got, err, c.folder)
		}
		back, err := FolderToMailbox(c.folder)
		if err != nil || back != c.mailbox {
			t.Errorf("FolderToMailbox(%q) = %q, %v; want %q", c.folder, back, err, c.mailbox)
		}
	}
}

func TestFolderNameErrors(t *testing.T) {
	for _, m := range []string{"", "a//b", "/a", "a/", strings.Repeat("x", 300)} {
		if f, err := MailboxToFolder(m); err == nil {
			t.Errorf("MailboxToFolder(%q) = %q, want an error", m, f)
		}
	}
	for _, f := range []string{
		"Sent", "..a", ".a..b", ".a.", `.a\2`, `.a\zz`, `.a\2Eb`, ".~x", ".&AGE-", ".&Jjo", ".&-&-x&Jjo-&Jjo-",
		".&2D0-", ".INBOX", ".inbox", ".a\x01", ".é", `.\61`, `.a\2fb`,
	} {
		if m, err := FolderToMailbox(f); err == nil {
			t.Errorf("FolderToMailbox(%q) = %q, want an error", f, m)
		}
	}
}

func TestInfoFlags(t *testing.T) {
	k := &Keywords{}
	info, dropped := Info([]string{`\Seen`, `\Answered`, `\Flagged`, `\Draft`, `\Deleted`, `\Recent`, "Junk", "$Forwarded", "bad(kw"}, k)
	if info != "2,DFPRSTab" {
		t.Errorf("info = %q", info)
	}
	if !slices.Equal(dropped, []string{`\Recent`, "bad(kw"}) {
		t.Errorf("dropped = %q", dropped)
	}
	if got := string(k.Marshal()); got != "0 Junk\n1 $Forwarded\n" {
		t.Errorf("keywords file = %q", got)
	}
	flags, unknown, err := Flags(info+"X", k)
	want := []string{`$Forwarded`, `Junk`, `\Answered`, `\Deleted`, `\Draft`, `\Flagged`, `\Seen`}
	if err != nil || unknown != "X" || !slices.Equal(flags, want) {
		t.Errorf("Flags = %q, %q, %v; want %q", flags, unknown, err, want)
	}
	// Without keywords: P alone is $Forwarded, keyword letters unknown.
	flags, unknown, _ = Flags("2,PSc", nil)
	if !slices.Equal(flags, []string{"$Forwarded", `\Seen`}) || unknown != "c" {
		t.Errorf("Flags without keywords = %q, %q", flags, unknown)
	}
	if _, _, err := Flags("3,S", nil); err == nil {
		t.Error(`Flags("3,S") did not fail`)
	}
	if f, _, err := Flags("1,whatever", nil); err != nil || f != nil {
		t.Errorf(`Flags("1,...") = %q, %v`, f, err)
	}
}

func TestKeywordsFull(t *testing.T) {
	k := &Keywords{}
	for i := 0; i < MaxKeywords; i++ {
		if l, ok := k.Letter("kw"+string(rune('A'+i)), true); !ok || l != byte('a'+i) {
			t.Fatalf("keyword %d: %c %v", i, l, ok)
		}
	}
	if l, ok := k.Letter("kwA", false); !ok || l != 'a' {
		t.Errorf("existing keyword: %c %v", l, ok)
	}
	if l, ok := k.Letter("KWB", true); !ok || l != 'b' {
		t.Errorf("keywords compare case insensitively: %c %v", l, ok)
	}
	if _, ok := k.Letter("one-too-many", true); ok {
		t.Error("a 27th keyword got a letter")
	}
	info, dropped := Info([]string{"one-too-many", "kwZ"}, k)
	if info != "2,z" || !slices.Equal(dropped, []string{"one-too-many"}) {
		t.Errorf("Info = %q, %q", info, dropped)
	}
}

func TestReadKeywords(t *testing.T) {
	dir := t.TempDir()
	k, err := ReadKeywords(dir)
	if err != nil || len(k.Marshal()) != 0 {
		t.Fatalf("missing file: %v", err)
	}
	if err := os.WriteFile(dir+"/"+KeywordsFile, []byte("0 $Junk\n3 NonJunk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if k, err = ReadKeywords(dir); err != nil {
		t.Fatal(err)
	}
	if n, ok := k.Name('d'); !ok || n != "NonJunk" {
		t.Errorf("d = %q %v", n, ok)
	}
	if _, ok := k.Name('b'); ok {
		t.Error("b names a keyword")
	}
	if l, _ := k.Letter("new", true); l != 'b' {
		t.Errorf("new keyword got %c, want the first free letter b", l)
	}
	for _, bad := range []string{"x Junk\n", "26 Junk\n", "0\n", "0 \n", "1 a b\n", "-1 a\n"} {
		if _, err := ParseKeywords([]byte(bad)); err == nil {
			t.Errorf("ParseKeywords(%q) did not fail", bad)
		}
	}
}

func TestParseName(t *testing.T) {
	n, err := ParseName("1733112345.M123456P42Q7.host,S=1234,W=1260:2,FS")
	if err != nil {
		t.Fatal(err)
	}
	if n.Base != "1733112345.M123456P42Q7.host" || n.Size != 1234 || n.Info != "2,FS" || !n.HasInfo {
		t.Errorf("parsed %+v", n)
	}
	if want := time.Unix(1733112345, 123456000).UTC(); !n.Time.Equal(want) {
		t.Errorf("time %v, want %v", n.Time, want)
	}
	if got := n.String(); got != "1733112345.M123456P42Q7.host,S=1234:2,FS" {
		t.Errorf("String = %q", got)
	}
	n, err = ParseName("1733112345.B00ff.bitmask,U=17:2,")
	if err != nil || n.Base != "1733112345.B00ff.bitmask" || n.Size != -1 || n.Info != "2," || n.Time.Unix() != 1733112345 {
		t.Errorf("mbsync name: %+v %v", n, err)
	}
	n, err = ParseName("courier-unique")
	if err != nil || n.HasInfo || !n.Time.IsZero() {
		t.Errorf("new/ name: %+v %v", n, err)
	}
	for _, bad := range []string{"", ".hidden", "a/b", "a\x00", ",S=1:2,", "x,S=-1", "x,S=z:2,", strings.Repeat("1", 256)} {
		if n, err := ParseName(bad); err == nil {
			t.Errorf("ParseName(%q) = %+v, want an error", bad, n)
		}
	}
}

func TestUniqueBase(t *testing.T) {
	now := time.Unix(1733112345, 5000)
	a, b := UniqueBase(now, "my/host:1,x"), UniqueBase(now, "my/host:1,x")
	if a == b {
		t.Errorf("two bases alike: %q", a)
	}
	n, err := ParseName(a + ":2,S")
	if err != nil || n.Base != a || n.Time.Unix() != now.Unix() || !strings.HasSuffix(a, `.my\057host\0721\054x`) {
		t.Errorf("UniqueBase %q parsed as %+v, %v", a, n, err)
	}
}

// FuzzParseName: any string parses or fails without a panic, and a
// parsed name written back parses to the same parts.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{
		"1733112345.M123456P42Q7.host,S=1234,W=1260:2,FS",
		"1733112345.B00ff.bitmask,U=17:2,",
		"courier-unique", "1.M9999999x:1,", "x,S=99999999999999999999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseName(s)
		if err != nil {
			return
		}
		back, err := ParseName(n.String())
		if err != nil || back != n {
			t.Fatalf("%q: %+v written as %q parses as %+v, %v", s, n, n.String(), back, err)
		}
		if n.HasInfo {
			_, _, _ = Flags(n.Info, &Keywords{})
		}
	})
}

// FuzzFolderToMailbox: a folder name that reads as a mailbox is that
// mailbox's one folder.
func FuzzFolderToMailbox(f *testing.F) {
	for _, s := range []string{"", ".Sent.2024", `.a\2eb`, ".&ZeVnLIqe-", ".R&-D", `.\7ex`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := FolderToMailbox(s)
		if err != nil {
			return
		}
		back, err := MailboxToFolder(m)
		if err != nil || back != s {
			t.Fatalf("%q reads as %q, which writes as %q, %v", s, m, back, err)
		}
	})
}
