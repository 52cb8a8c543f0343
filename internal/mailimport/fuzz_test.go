package mailimport

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// FuzzMboxReader feeds the mbox reader any file: it must not fail but
// with ErrNotMbox, every byte must belong to one message, no message
// kept may be over the limit or hold a bare LF, and a message written
// with mboxrd quoting must read back as it was.
func FuzzMboxReader(f *testing.F) {
	f.Add([]byte("From a Sat Jan  3 01:05:34 1996\nSubject: x\n\nbody\n>From y\n\n"), []byte("Subject: y\r\n\r\nFrom here\r\n>From there\r\n"))
	f.Add([]byte("From a\r\n\r\nFrom b\r\nx"), []byte(""))
	f.Add([]byte("\n\nFrom \n>>>From \n"), []byte("a\n\nb"))
	f.Add([]byte("garbage"), []byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, data, msg []byte) {
		const max = 4096
		r := NewMboxReader(bytes.NewReader(data), max)
		var total int64
		for {
			m, err := r.Next()
			if err == io.EOF {
				break
			}
			if err == ErrNotMbox {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Index == 1 {
				total = m.Offset // after empty lines
			}
			if m.Offset != total {
				t.Fatalf("message %d at %d, want %d", m.Index, m.Offset, total)
			}
			total += m.Size
			if len(m.Raw) > max {
				t.Fatalf("%d bytes kept over a limit of %d", len(m.Raw), max)
			}
			if bytes.Contains(bytes.ReplaceAll(m.Raw, []byte("\r\n"), nil), []byte("\n")) {
				t.Fatalf("bare LF in %q", m.Raw)
			}
		}
		if total != 0 && total != int64(len(data)) {
			t.Fatalf("messages cover %d of %d bytes", total, len(data))
		}
		// Round trip: msg as an mboxrd message (CRLF, ending in a
		// line break) reads back as it was.
		body := ToCRLF(msg)
		if len(body) > 0 && !bytes.HasSuffix(body, []byte("\r\n")) {
			body = append(body, '\r', '\n')
		}
		if bytes.Contains(body, []byte("\r\r")) || bytes.Contains(bytes.ReplaceAll(body, []byte("\r\n"), nil), []byte("\r")) {
			return // a bare CR before a line break is not kept apart
		}
		var mbox bytes.Buffer
		mbox.WriteString("From x Mon Jan  1 00:00:00 2001\n")
		for _, line := range strings.SplitAfter(string(body), "\r\n") {
			if strings.HasPrefix(strings.TrimLeft(line, ">"), "From ") {
				mbox.WriteByte('>')
			}
			mbox.WriteString(line)
		}
		mbox.WriteString("\n")
		r = NewMboxReader(&mbox, 1<<20)
		m, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Raw, body) {
			t.Fatalf("round trip: %q, want %q", m.Raw, body)
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("a second message: %v", err)
		}
	})
}

// FuzzParseFileName: any file name gives flags without failing, each a
// system flag or $Forwarded.
func FuzzParseFileName(f *testing.F) {
	for _, s := range []string{"1700000000.M1P2Q3.host,S=123:2,FRS", "x!2,DT", "1;2,P", "", ":", "1.2:1,", "12345678901234567890.a:2,abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		fi := ParseFileName(name, nil)
		for _, fl := range fi.Flags {
			if !strings.HasPrefix(fl, `\`) && fl != "$Forwarded" {
				t.Fatalf("%q: flag %q", name, fl)
			}
		}
		if !fi.Stamp.IsZero() && fi.Stamp.Before(earliest) {
			t.Fatalf("%q: stamp %v", name, fi.Stamp)
		}
	})
}
