package imapproto

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// benchParse reads the same command b.N times from one stream.
func benchParse(b *testing.B, cmd string) {
	b.Helper()
	in := []byte(strings.Repeat(cmd, 1000))
	r := bytes.NewReader(in)
	br := bufio.NewReaderSize(r, 64<<10)
	d := NewDecoder(br, Limits{}, nil)
	b.SetBytes(int64(len(cmd)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%1000 == 0 {
			r.Reset(in)
			br.Reset(r)
		}
		if _, err := d.ReadCommand(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseFetch(b *testing.B) {
	benchParse(b, "a12 UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY.PEEK[HEADER.FIELDS (From To Subject Date)]) (CHANGEDSINCE 123456)\r\n")
}

func BenchmarkParseSearch(b *testing.B) {
	benchParse(b, "a13 UID SEARCH RETURN (ALL COUNT) CHARSET UTF-8 OR (FROM alice SINCE 1-Jan-2024) NOT (SEEN DELETED) 1:1000 TEXT \"hello world\"\r\n")
}

// BenchmarkParseAppend: one 10 KB message sent as a non-synchronizing
// literal (LITERAL+).
func BenchmarkParseAppend(b *testing.B) {
	msg := strings.Repeat("0123456789abcdef", 640)
	benchParse(b, fmt.Sprintf("a14 APPEND INBOX (\\Seen) \"07-Feb-1994 21:52:25 -0800\" {%d+}\r\n%s\r\n", len(msg), msg))
}
