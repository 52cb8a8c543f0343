package submission

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

func TestReadReply(t *testing.T) {
	for _, tc := range []struct {
		in     string
		code   int
		status string
		text   string
		err    bool
	}{
		{in: "250 OK\r\n", code: 250, text: "OK"},
		{in: "550 5.1.1 No such user\r\n", code: 550, status: "5.1.1", text: "No such user"},
		{in: "451-4.3.0 first\r\n451-4.3.0 second\r\n451 4.3.0 third\r\n", code: 451, status: "4.3.0", text: "first; second; third"},
		{in: "550 4.1.1 class mismatch\r\n", code: 550, text: "4.1.1 class mismatch"},
		{in: "250-mx.example hello\r\n250-PIPELINING\r\n250 STARTTLS\r\n", code: 250, text: "mx.example hello; PIPELINING; STARTTLS"},
		{in: "354\r\n", code: 354},
		{in: "25 short\r\n", err: true},
		{in: "abc text\r\n", err: true},
		{in: "250-a\r\n550 b\r\n", err: true},
		{in: "999 no\r\n", err: true},
		{in: "220 " + strings.Repeat("x", 5000) + "\r\n", err: true},
		{in: strings.Repeat("250-x\r\n", 200) + "250 x\r\n", err: true},
	} {
		c := &smtpConn{conn: nopConn{}, br: bufio.NewReader(strings.NewReader(tc.in))}
		r, err := c.readReply(time.Second)
		if tc.err {
			if err == nil {
				t.Errorf("%q: parsed %+v", tc.in, r)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if r.code != tc.code || r.status != tc.status || r.text != tc.text {
			t.Errorf("%q: got %d %q %q", tc.in, r.code, r.status, r.text)
		}
	}
}

// nopConn is a connection whose deadlines readReply may set; the reply
// itself comes from the reader beside it.
type nopConn struct{ net.Conn }

func (nopConn) SetReadDeadline(time.Time) error  { return nil }
func (nopConn) SetWriteDeadline(time.Time) error { return nil }
