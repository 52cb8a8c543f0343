package smtpd

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// limitsAccount takes every message.
type limitsAccount struct {
	mu     sync.Mutex
	queued int
}

func (a *limitsAccount) Address() string { return "limits@bitmask.test" }

func (a *limitsAccount) Enqueue(string, []string, []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.queued++
	return nil
}

type limitsAuth struct{ a *limitsAccount }

func (l limitsAuth) CheckSMTP(_ context.Context, user, pass string) (Account, error) {
	if user != l.a.Address() || pass != "tok" {
		return nil, errors.New("no")
	}
	return l.a, nil
}

// limitsSend submits msg over a raw connection (writing it while the
// reply is read: the server may answer before it has read it all) and
// returns the reply to the message and what the server said after it.
func limitsSend(t *testing.T, addr string, msg string) (code int, text string, after error) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	tp := textproto.NewConn(conn)
	step := func(want int, format string, args ...any) {
		t.Helper()
		if format != "" {
			if err := tp.PrintfLine(format, args...); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := tp.ReadResponse(want); err != nil {
			t.Fatalf("%q: %v", format, err)
		}
	}
	step(220, "")
	step(250, "EHLO client.localhost")
	step(235, "AUTH PLAIN %s", base64.StdEncoding.EncodeToString([]byte("\x00limits@bitmask.test\x00tok")))
	step(250, "MAIL FROM:<limits@bitmask.test>")
	step(250, "RCPT TO:<to@example.test>")
	step(354, "DATA")
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		w := bufio.NewWriter(conn)
		_, _ = w.WriteString(msg + ".\r\n")
		_ = w.Flush()
	}()
	code, text, err = tp.ReadResponse(0)
	if err != nil && code == 0 {
		t.Fatalf("reply to the message: %v", err)
	}
	// What comes next: a reply to NOOP, or the end of the connection.
	if err := tp.PrintfLine("NOOP"); err == nil {
		_, _, after = tp.ReadResponse(250)
	} else {
		after = err
	}
	conn.Close()
	<-wrote
	return code, text, after
}

// TestLineLimit: a line of MaxLineLength octets (CRLF included) is
// taken; one octet more gets 500 5.4.0 and the connection ends; the
// server goes on serving.
func TestLineLimit(t *testing.T) {
	acct := &limitsAccount{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(limitsAuth{acct}, Config{}).Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })

	head := "From: limits@bitmask.test\r\nTo: to@example.test\r\nSubject: long\r\n\r\n"
	longest := head + strings.Repeat("a", MaxLineLength-2) + "\r\n"
	if code, text, after := limitsSend(t, ln.Addr().String(), longest); code != 250 || after != nil {
		t.Fatalf("a line of %d octets: %d %s; then %v", MaxLineLength, code, text, after)
	}
	tooLong := head + strings.Repeat("a", MaxLineLength-1) + "\r\nmore\r\n"
	code, text, after := limitsSend(t, ln.Addr().String(), tooLong)
	if code != 500 || !strings.HasPrefix(text, "5.4.0 Line too long") {
		t.Fatalf("a line of %d octets: %d %s", MaxLineLength+1, code, text)
	}
	if after == nil {
		t.Fatal("the session goes on after a line too long")
	}
	// Still serving.
	if code, text, after := limitsSend(t, ln.Addr().String(), head+"short\r\n"); code != 250 || after != nil {
		t.Fatalf("a message after: %d %s; then %v", code, text, after)
	}
	acct.mu.Lock()
	defer acct.mu.Unlock()
	if acct.queued != 2 {
		t.Fatalf("%d messages queued, want 2", acct.queued)
	}
}
