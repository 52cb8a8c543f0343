// Package fuzzconn lets a fuzz target be the client of a real server: it
// writes the fuzzer's bytes on a real connection, closes its sending
// side, reads all that the server answers until it closes the
// connection, and checks the answer's form (SMTP reply lines). It also
// catches the panics that go-smtp and go-imap recover in a session and
// only log, so that a fuzz target fails on them. Test code only.
package fuzzconn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Transcript is what the server sent in one session.
type Transcript struct {
	Out []byte
	// Reset: the server closed the connection with input of ours
	// unread (a TCP reset), so the end of Out may be missing.
	Reset bool
}

// halfCloser is a connection whose sending side can be closed alone
// (*net.TCPConn, *tls.Conn).
type halfCloser interface {
	CloseWrite() error
}

// Session writes in on c, closes c's sending side, and reads until the
// server closes the connection or timeout passes. Reading runs beside
// writing, so a server that answers pipelined input as it comes never
// blocks on a full buffer. It returns an error when the server did not
// end the session within timeout after the end of the input: it hangs.
// It closes c.
func Session(c net.Conn, in []byte, timeout time.Duration) (*Transcript, error) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	var out bytes.Buffer
	readErr := make(chan error, 1)
	go func() {
		_, err := io.Copy(&out, c)
		readErr <- err
	}()
	_, werr := c.Write(in)
	if werr == nil {
		if hc, ok := c.(halfCloser); ok {
			werr = hc.CloseWrite()
		} else {
			werr = errors.New("fuzzconn: connection cannot close its sending side")
		}
	}
	err := <-readErr
	tr := &Transcript{Out: out.Bytes()}
	switch {
	case err == nil:
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		tr.Reset = true
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return tr, fmt.Errorf("fuzzconn: the server did not end the session within %v of the end of the input (%d bytes answered)", timeout, out.Len())
	default:
		// A write error after the server closed (it stopped reading
		// our input): the answer is what it sent before.
		if werr != nil {
			tr.Reset = true
			break
		}
		return tr, fmt.Errorf("fuzzconn: reading the answer: %w", err)
	}
	return tr, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// SMTPReplies checks that an SMTP server's output is a sequence of reply
// lines (RFC 5321 §4.2: three digits, then a space on the last line of a
// reply or a hyphen on the others, text without a line break) and returns
// the final reply of each. When the output may be cut short (a reset),
// an incomplete last line is dropped.
func SMTPReplies(tr *Transcript) ([]string, error) {
	out := tr.Out
	if !bytes.HasSuffix(out, []byte("\r\n")) {
		i := bytes.LastIndex(out, []byte("\r\n"))
		if !tr.Reset {
			return nil, fmt.Errorf("fuzzconn: the answer ends inside a line: %q", tail(out))
		}
		out = out[:i+2] // i = -1: nothing complete
	}
	var finals []string
	for _, line := range strings.SplitAfter(string(out), "\r\n") {
		if line == "" {
			continue
		}
		l := strings.TrimSuffix(line, "\r\n")
		if len(l) < 4 || !digit3(l) || l[3] != ' ' && l[3] != '-' {
			return nil, fmt.Errorf("fuzzconn: not an SMTP reply line: %q", l)
		}
		if l[0] < '2' || l[0] > '5' {
			return nil, fmt.Errorf("fuzzconn: reply code out of range: %q", l)
		}
		// A bare CR is let through: go-smtp (v0.25) echoes an unknown
		// command in its reply as the client wrote it, CR included.
		// Lines end at CRLF, so a CR alone starts no reply of its own.
		if strings.ContainsRune(l, '\n') {
			return nil, fmt.Errorf("fuzzconn: LF inside a reply line: %q", l)
		}
		if l[3] == ' ' {
			finals = append(finals, l)
		}
	}
	return finals, nil
}

func digit3(s string) bool {
	for i := range 3 {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func tail(b []byte) []byte {
	if len(b) > 200 {
		return b[len(b)-200:]
	}
	return b
}

// PanicLog is a slog handler that keeps the records that report a
// recovered panic (go-smtp's "panic serving", go-imap's "panic handling
// command" and "panic idling", or any record mentioning a panic) and
// drops the rest.
type PanicLog struct {
	mu     sync.Mutex
	panics []string
}

// Logger is a logger that writes to l.
func (l *PanicLog) Logger() *slog.Logger { return slog.New(l) }

// Enabled is true: go-smtp's error log may come at any level.
func (l *PanicLog) Enabled(context.Context, slog.Level) bool { return true }

// Handle keeps r when it reports a panic.
func (l *PanicLog) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		msg += " " + a.Key + "=" + a.Value.String()
		return true
	})
	if strings.Contains(strings.ToLower(msg), "panic") && !goSMTPBdatRace(msg) {
		l.mu.Lock()
		l.panics = append(l.panics, msg)
		l.mu.Unlock()
	}
	return nil
}

// goSMTPBdatRace reports whether a logged panic is go-smtp's own (v0.25
// and v0.26): BDAT runs the session's Data in a goroutine that calls
// Conn.Session() when it starts; when the client has already gone and
// the connection was closed, that is nil, and the call panics in
// go-smtp before reaching our code. go-smtp recovers it; the session was
// over anyway. A panic in our Data has our frames above go-smtp's.
func goSMTPBdatRace(msg string) bool {
	if !strings.Contains(msg, "nil pointer dereference") {
		return false
	}
	_, after, ok := strings.Cut(msg, "\npanic(")
	if !ok {
		return false
	}
	// The frame that panicked: the first function line after panic's
	// own (each frame is a function line and a file line).
	lines := strings.SplitN(after, "\n", 4)
	return len(lines) >= 3 && strings.HasPrefix(lines[2], "github.com/emersion/go-smtp.(*Conn).handleBdat.func")
}

// WithAttrs returns l: the attributes are not needed to spot a panic.
func (l *PanicLog) WithAttrs([]slog.Attr) slog.Handler { return l }

// WithGroup returns l.
func (l *PanicLog) WithGroup(string) slog.Handler { return l }

// Take returns the panics logged since the last call and forgets them.
func (l *PanicLog) Take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.panics
	l.panics = nil
	return p
}

// SMTPProbe checks that an SMTP server still serves on c: a 220
// greeting, 250 to NOOP, 221 to QUIT. It closes c.
func SMTPProbe(c net.Conn, timeout time.Duration) error {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	tp := textproto.NewConn(c)
	if _, msg, err := tp.ReadResponse(220); err != nil {
		return fmt.Errorf("fuzzconn: probe greeting: %q: %w", msg, err)
	}
	for _, s := range []struct {
		cmd  string
		code int
	}{{"NOOP", 250}, {"QUIT", 221}} {
		if err := tp.PrintfLine("%s", s.cmd); err != nil {
			return fmt.Errorf("fuzzconn: probe %s: %w", s.cmd, err)
		}
		if _, msg, err := tp.ReadResponse(s.code); err != nil {
			return fmt.Errorf("fuzzconn: probe %s: %q: %w", s.cmd, msg, err)
		}
	}
	return nil
}

// IMAPResponses checks that an IMAP server's output is a sequence of
// responses (RFC 9051 §7): lines starting with "* ", "+ " or a tag and
// OK, NO or BAD, with no CR or LF inside a line but in the literals
// ({N} at the end of a line, then N bytes) they carry. It returns the
// tagged status lines. When the output may be cut short (a reset), an
// incomplete last response is dropped.
func IMAPResponses(tr *Transcript) ([]string, error) {
	out := tr.Out
	var tagged []string
	for len(out) > 0 {
		start := out
		var line []byte // the response without its literals
		for {
			i := bytes.Index(out, []byte("\r\n"))
			if i < 0 {
				if tr.Reset {
					return tagged, nil
				}
				return nil, fmt.Errorf("fuzzconn: the answer ends inside a response: %q", tail(start))
			}
			part := out[:i]
			out = out[i+2:]
			if bytes.ContainsAny(part, "\r\n") {
				return nil, fmt.Errorf("fuzzconn: CR or LF inside a response line: %q", part)
			}
			line = append(line, part...)
			n, ok := literalSize(part)
			if !ok {
				break
			}
			if int64(len(out)) < n {
				if tr.Reset {
					return tagged, nil
				}
				return nil, fmt.Errorf("fuzzconn: the answer ends inside a literal of %d bytes", n)
			}
			out = out[n:]
		}
		switch {
		case bytes.HasPrefix(line, []byte("* ")), bytes.HasPrefix(line, []byte("+ ")), string(line) == "+":
		default:
			tag, rest, ok := bytes.Cut(line, []byte(" "))
			status, _, _ := bytes.Cut(rest, []byte(" "))
			if !ok || len(tag) == 0 || bytes.ContainsFunc(tag, func(r rune) bool { return r < 0x21 || r == 0x7f }) {
				return nil, fmt.Errorf("fuzzconn: not an IMAP response: %q", line)
			}
			switch string(status) {
			case "OK", "NO", "BAD":
			default:
				return nil, fmt.Errorf("fuzzconn: tagged response with status %q: %q", status, line)
			}
			tagged = append(tagged, string(line))
		}
	}
	return tagged, nil
}

// literalSize is N when line ends with a literal's {N}, {N+} or ~{N}.
func literalSize(line []byte) (int64, bool) {
	if !bytes.HasSuffix(line, []byte("}")) {
		return 0, false
	}
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false
	}
	num := bytes.TrimSuffix(line[open+1:len(line)-1], []byte("+"))
	if len(num) == 0 || len(num) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// Serve runs serve on a loopback listener until the test (or fuzz
// target) ends, failing it if serve returns an error, and returns a
// function that opens a connection to it.
func Serve(tb testing.TB, serve func(ctx context.Context, ln net.Listener) error) (dial func(t testing.TB) net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Serve: %v", err)
		}
	})
	return func(t testing.TB) net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

// CheckSMTP checks an SMTP session's transcript for the input in: well
// formed replies, and, unless the server reset the connection, a 220
// greeting and a reply to a command line. It returns the replies.
func CheckSMTP(t testing.TB, in []byte, tr *Transcript) []string {
	t.Helper()
	replies, err := SMTPReplies(tr)
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Reset {
		if len(replies) == 0 || !strings.HasPrefix(replies[0], "220 ") {
			t.Fatalf("no greeting: %q", replies)
		}
		if bytes.Contains(in, []byte("\n")) && len(replies) < 2 {
			t.Fatalf("a command line and no reply to it: %q", tr.Out)
		}
	}
	return replies
}
