package imapproto

import (
	"bytes"

	"bufio"
	"fmt"
	"github.com/emersion/go-imap/v2"
	"net"
	"strings"
	"testing"
)

// BenchmarkAppend measures APPEND with a synchronizing literal as Python's
// imaplib sends it: the command line, the literal after "+", then the
// closing CRLF in a write of its own. A client without TCP_NODELAY holds
// that CRLF back until its literal is acknowledged (Nagle), which with
// delayed ACKs on the server costs tens of milliseconds per APPEND
// unless the server acknowledges at once (TCP_QUICKACK, conn_linux.go).
//
//	go test -run - -bench Append -benchtime 200x ./internal/imapproto/
func BenchmarkAppend(b *testing.B) {
	for _, noDelay := range []bool{true, false} {
		b.Run(fmt.Sprintf("nodelay=%v", noDelay), func(b *testing.B) {
			ts := startServer(b, nil)
			nc, err := net.Dial("tcp", ts.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			if err := nc.(*net.TCPConn).SetNoDelay(noDelay); err != nil {
				b.Fatal(err)
			}
			r := bufio.NewReader(nc)
			readLine := func() string {
				l, err := r.ReadString('\n')
				if err != nil {
					b.Fatal(err)
				}
				return l
			}
			readLine()
			if _, err := nc.Write([]byte("L LOGIN alice pw\r\n")); err != nil {
				b.Fatal(err)
			}
			readLine()
			msg := []byte("From: a@example.org\r\nSubject: x\r\n\r\n" + strings.Repeat("body text line\r\n", 600))
			b.SetBytes(int64(len(msg)))
			b.ResetTimer()
			for i := range b.N {
				tag := fmt.Sprintf("A%d", i)
				if _, err := fmt.Fprintf(nc, "%s APPEND INBOX {%d}\r\n", tag, len(msg)); err != nil {
					b.Fatal(err)
				}
				if l := readLine(); !strings.HasPrefix(l, "+") {
					b.Fatalf("APPEND: %q", l)
				}
				if _, err := nc.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := nc.Write([]byte("\r\n")); err != nil {
					b.Fatal(err)
				}
				for {
					l := readLine()
					if strings.HasPrefix(l, tag+" ") {
						if !strings.HasPrefix(l, tag+" OK") {
							b.Fatalf("APPEND: %q", l)
						}
						break
					}
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		})
	}
}

// BenchmarkFetchFlags measures UID FETCH 1:* (UID FLAGS) over 100,000
// messages through a connection: the loop, the writer and the tracker,
// with the in-memory session.
func BenchmarkFetchFlags(b *testing.B) {
	ts := startServer(b, nil)
	box := ts.b.boxes["INBOX"]
	const n = 100_000
	for i := range n {
		box.msgs = append(box.msgs, &memMsg{uid: imap.UID(i + 1), flags: []imap.Flag{imap.FlagSeen}, modSeq: 1})
	}
	box.uidNext = n + 1
	box.tracker = NewMailboxTracker(n)
	rc := ts.dial(b)
	rc.login()
	rc.cmd("s", "SELECT INBOX")
	b.ResetTimer()
	for range b.N {
		rc.send("f UID FETCH 1:* (UID FLAGS)\r\n")
		lines := 0
		for {
			l, err := rc.r.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			lines++
			if bytes.HasPrefix(l, []byte("f ")) {
				break
			}
		}
		if lines != n+1 {
			b.Fatalf("%d lines", lines)
		}
	}
}
