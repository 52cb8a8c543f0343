package mailimport

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readAllMbox(t *testing.T, data string, max int64) []*MboxMessage {
	t.Helper()
	r := NewMboxReader(strings.NewReader(data), max)
	var out []*MboxMessage
	for {
		m, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
}

// TestMbox: From_ lines split messages, their dates read, the empty
// line before the next From_ line is the mbox's, quoted From lines are
// unquoted (mboxrd), LF becomes CRLF.
func TestMbox(t *testing.T) {
	data := "From alice@example.test Sat Jan  3 01:05:34 1996\n" +
		"Subject: one\n\nbody\n>From the start\n>>From here\n>Fromage\n\n" +
		"From bob@example.test Thu Feb 29 23:59:59 2024\r\n" +
		"Subject: two\r\n\r\nline\r\n\r\n"
	ms := readAllMbox(t, data, 1<<20)
	if len(ms) != 2 {
		t.Fatalf("%d messages", len(ms))
	}
	if want := "Subject: one\r\n\r\nbody\r\nFrom the start\r\n>From here\r\n>Fromage\r\n"; string(ms[0].Raw) != want {
		t.Errorf("first: %q\nwant %q", ms[0].Raw, want)
	}
	if want := "Subject: two\r\n\r\nline\r\n"; string(ms[1].Raw) != want {
		t.Errorf("second: %q", ms[1].Raw)
	}
	if !ms[0].Date.Equal(time.Date(1996, 1, 3, 1, 5, 34, 0, time.UTC)) || !ms[1].Date.Equal(time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC)) {
		t.Errorf("dates %v %v", ms[0].Date, ms[1].Date)
	}
	if ms[0].Envelope != "alice@example.test Sat Jan  3 01:05:34 1996" || ms[1].Index != 2 {
		t.Errorf("envelope %q index %d", ms[0].Envelope, ms[1].Index)
	}
	if ms[0].Offset != 0 || ms[1].Offset != ms[0].Size || ms[0].Size+ms[1].Size != int64(len(data)) {
		t.Errorf("offsets/sizes %d+%d %d+%d of %d", ms[0].Offset, ms[0].Size, ms[1].Offset, ms[1].Size, len(data))
	}
	if ms[0].Truncated || ms[1].Truncated {
		t.Error("truncated")
	}
}

// TestMboxTruncatedAndTooBig: a file cut in the middle of its last line
// gives that message as it is, marked; a message over the limit is
// reported and not kept, and the next is read.
func TestMboxTruncatedAndTooBig(t *testing.T) {
	big := strings.Repeat("x", 200<<10) // longer than the reader's buffer, one line
	data := "From a Mon Jan  1 00:00:00 2001\nSubject: big\n\n" + big + "\n" + big + "\n\n" +
		"From b Mon Jan  1 00:00:00 2001\nSubject: ok\n\nfine\n\n" +
		"From c Mon Jan  1 00:00:00 2001\nSubject: cut\n\nhalf a li"
	ms := readAllMbox(t, data, 100<<10)
	if len(ms) != 3 {
		t.Fatalf("%d messages", len(ms))
	}
	if !ms[0].TooBig || ms[0].Raw != nil {
		t.Errorf("big message: TooBig %v, %d bytes kept", ms[0].TooBig, len(ms[0].Raw))
	}
	if string(ms[1].Raw) != "Subject: ok\r\n\r\nfine\r\n" {
		t.Errorf("after the big one: %q", ms[1].Raw)
	}
	if !ms[2].Truncated || string(ms[2].Raw) != "Subject: cut\r\n\r\nhalf a li" {
		t.Errorf("cut message: truncated %v %q", ms[2].Truncated, ms[2].Raw)
	}
}

func TestMboxNotMbox(t *testing.T) {
	r := NewMboxReader(strings.NewReader("Subject: hi\n\nno From_ line\n"), 1<<20)
	if _, err := r.Next(); err != ErrNotMbox {
		t.Fatalf("got %v", err)
	}
	r = NewMboxReader(strings.NewReader(""), 1<<20)
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("empty: got %v", err)
	}
}

func TestParseFileName(t *testing.T) {
	for _, c := range []struct {
		name  string
		flags string
		stamp int64
	}{
		{"1700000000.M1P2Q3.host,S=123:2,FRS", `\Answered \Flagged \Seen`, 1700000000},
		{"1700000000.M1P2Q3.host:2,DT", `\Deleted \Draft`, 1700000000},
		{"1700000000.x.host!2,S", `\Seen`, 1700000000},
		{"1700000000.x.host;2,P", `$Forwarded`, 1700000000},
		{"1700000000.x.host", ``, 1700000000},
		{"99999999999.x:2,S", `\Seen`, 0}, // far future: no stamp
		{"abc:2,ZS", `\Seen`, 0},
		{"", "", 0},
	} {
		fi := ParseFileName(c.name, nil)
		if got := strings.Join(fi.Flags, " "); got != c.flags {
			t.Errorf("%q: flags %q, want %q", c.name, got, c.flags)
		}
		if (c.stamp == 0) != fi.Stamp.IsZero() || c.stamp != 0 && fi.Stamp.Unix() != c.stamp {
			t.Errorf("%q: stamp %v", c.name, fi.Stamp)
		}
	}
}

func writeFile(t *testing.T, path string, data []byte, mod time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if !mod.IsZero() {
		if err := os.Chtimes(path, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
}

func walkAll(t *testing.T, p *Plan) []*Item {
	t.Helper()
	var out []*Item
	if err := p.Walk(context.Background(), func(it *Item) error { out = append(out, it); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMaildirTree: a Maildir++ tree's folders become mailboxes, flags
// and dates come from the names and times, an empty file and one over
// the limit are refused (the big one not read), new/ messages are not
// \Seen, a malformed message is read as it is.
func TestMaildirTree(t *testing.T) {
	root := t.TempDir()
	old := time.Date(2010, 5, 6, 7, 8, 9, 0, time.UTC)
	writeFile(t, filepath.Join(root, "cur", "1300000000.a.h:2,S"), []byte("Subject: in\n\nx\n"), old)
	writeFile(t, filepath.Join(root, "new", "1300000001.b.h"), []byte("Subject: new\r\n\r\ny\r\n"), time.Time{})
	writeFile(t, filepath.Join(root, "cur", "1300000002.c.h:2,"), nil, time.Time{})
	writeFile(t, filepath.Join(root, "tmp", "1300000003.d.h"), []byte("Subject: tmp\n\n"), time.Time{})
	writeFile(t, filepath.Join(root, ".Archive.2019", "cur", "nodate:2,FR"), []byte("Date: Tue, 1 Jan 2019 10:00:00 +0000\nSubject: a\n\nz\n"), time.Unix(1, 0))
	writeFile(t, filepath.Join(root, ".Archive.2019", "cur", "1300000004.e.h:2,S"), []byte("\x00\xff garbage"), time.Time{})
	big := filepath.Join(root, ".Big", "cur", "1300000005.f.h:2,")
	writeFile(t, big, nil, time.Time{})
	if err := os.Truncate(big, 2<<30); err != nil { // sparse: 2 GB that were never written
		t.Fatal(err)
	}
	p, err := Scan(root, Options{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	items := walkAll(t, p)
	byWhere := map[string]*Item{}
	for _, it := range items {
		byWhere[filepath.Base(it.Where)] = it
	}
	if len(items) != 6 {
		for _, it := range items {
			t.Logf("%+v", it)
		}
		t.Fatalf("%d items", len(items))
	}
	in := byWhere["1300000000.a.h:2,S"]
	if in.Mailbox != "INBOX" || string(in.Raw) != "Subject: in\r\n\r\nx\r\n" || !in.Date.Equal(old) || strings.Join(in.Flags, " ") != `\Seen` || in.Malformed {
		t.Errorf("INBOX message: %+v", in)
	}
	nw := byWhere["1300000001.b.h"]
	if len(nw.Flags) != 0 || nw.Date.Unix() != 1300000001 {
		t.Errorf("new message: %+v", nw)
	}
	if e := byWhere["1300000002.c.h:2,"]; !strings.Contains(e.Refused, "empty") {
		t.Errorf("empty file: %+v", e)
	}
	a := byWhere["nodate:2,FR"]
	if a.Mailbox != "Archive/2019" || !a.Date.Equal(time.Date(2019, 1, 1, 10, 0, 0, 0, time.UTC)) || strings.Join(a.Flags, " ") != `\Answered \Flagged` {
		t.Errorf("archive message: %+v", a)
	}
	if g := byWhere["1300000004.e.h:2,S"]; !g.Malformed || string(g.Raw) != "\x00\xff garbage" {
		t.Errorf("garbage: %+v", g)
	}
	if b := byWhere["1300000005.f.h:2,"]; !strings.Contains(b.Refused, "over the limit") || b.Raw != nil {
		t.Errorf("big: %+v", b)
	}
	// --mailbox: everything in one.
	p, err = Scan(root, Options{MaxSize: 1 << 20, Mailbox: "Imported"})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range walkAll(t, p) {
		if it.Refused == "" && it.Mailbox != "Imported" {
			t.Errorf("%s in %s", it.Where, it.Mailbox)
		}
	}
}

func TestScanErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Scan(dir, Options{MaxSize: 1}); err == nil || !strings.Contains(err.Error(), "not a Maildir") {
		t.Errorf("empty folder: %v", err)
	}
	f := filepath.Join(dir, "x.eml")
	writeFile(t, f, []byte("Subject: x\n\n"), time.Time{})
	if _, err := Scan(f, Options{MaxSize: 1}); err == nil || !strings.Contains(err.Error(), "not an mbox") {
		t.Errorf("not an mbox: %v", err)
	}
	if _, err := Scan(filepath.Join(dir, "missing"), Options{MaxSize: 1}); err == nil {
		t.Error("missing path")
	}
	empty := filepath.Join(dir, "empty.mbox")
	writeFile(t, empty, nil, time.Time{})
	p, err := Scan(empty, Options{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	items := walkAll(t, p)
	if len(items) != 1 || !strings.Contains(items[0].Refused, "empty") {
		t.Errorf("empty mbox: %+v", items)
	}
}

func TestWellFormed(t *testing.T) {
	for s, want := range map[string]bool{
		"Subject: x\r\n\r\nbody": true,
		"Subject: x":             true,
		"":                       false,
		"\r\nbody":               false,
		"garbage line\r\n\r\n":   false,
		"Subject: \x00\r\n\r\n":  false,
	} {
		if WellFormed([]byte(s)) != want {
			t.Errorf("%q: want %v", s, want)
		}
	}
	if got := ToCRLF([]byte("a\nb\r\nc\n")); !bytes.Equal(got, []byte("a\r\nb\r\nc\r\n")) {
		t.Errorf("ToCRLF: %q", got)
	}
}
