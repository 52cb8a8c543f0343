package imapd

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

func BenchmarkRawFetch100k(b *testing.B) {
	const n = 100_000
	store := newFakeStore()
	store.addGenerated("INBOX", n)
	e := startServerWith(b, store)
	c, _ := net.Dial("tcp", e.addr)
	defer c.Close()
	r := bufio.NewReaderSize(c, 1<<20)
	r.ReadString('\n')
	cmd := func(tag, s string) time.Duration {
		t0 := time.Now()
		c.Write([]byte(tag + " " + s + "\r\n"))
		for {
			l, err := r.ReadSlice('\n')
			if err != nil && err != bufio.ErrBufferFull {
				b.Fatal(err)
			}
			if strings.HasPrefix(string(l), tag+" ") {
				break
			}
		}
		return time.Since(t0)
	}
	cmd("a", `LOGIN "`+testUser+`" "`+testToken+`"`)
	for b.Loop() {
		b.ReportMetric(float64(cmd("s", "SELECT INBOX").Microseconds())/1000, "select-ms")
		b.ReportMetric(float64(cmd("f", "UID FETCH 1:* (FLAGS)").Microseconds())/1000, "flags-ms")
		b.ReportMetric(float64(cmd("e", "UID FETCH 1:* (ENVELOPE)").Microseconds())/1000, "env-ms")
		b.ReportMetric(float64(cmd("b", "UID FETCH 1:* (BODYSTRUCTURE)").Microseconds())/1000, "bs-ms")
		cmd("u", "UNSELECT")
	}
}
