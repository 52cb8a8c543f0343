package smtpd

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/testlog"
)

const (
	addr  = "me@bitmask.test"
	token = "local-token"
)

// account's Enqueue panics on a message whose subject says so, as a bug
// in the outbox on some message would.
type account struct {
	mu     sync.Mutex
	queued [][]byte
}

func (a *account) Address() string { return addr }

func (a *account) Enqueue(_ string, _ []string, raw []byte) error {
	if bytes.Contains(raw, []byte("Subject: poison")) {
		var parts []string
		_ = parts[len(raw)%3] // an index out of range
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.queued = append(a.queued, raw)
	return nil
}

type authFunc func(user, pass string) (Account, error)

func (f authFunc) CheckSMTP(_ context.Context, user, pass string) (Account, error) {
	return f(user, pass)
}

func dial(t *testing.T, srvAddr, user string) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(srvAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Auth(sasl.NewPlainClient("", user, token)); err != nil {
		t.Fatalf("auth: %v", err)
	}
	return c
}

// send submits one message and returns the server's answer.
func send(t *testing.T, c *smtp.Client, subject string) error {
	t.Helper()
	if err := c.Mail(addr, nil); err != nil {
		return err
	}
	if err := c.Rcpt("you@remote.test", nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte("From: " + addr + "\r\nTo: you@remote.test\r\nSubject: " + subject + "\r\n\r\nbody of " + subject + "\r\n")); err != nil {
		return err
	}
	return w.Close()
}

func code(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// TestPanicInASession: a message whose handling panics (here in Enqueue)
// is refused with 554 and a reason; the same session then sends another,
// and so does a session that was open meanwhile. A panic while checking
// a login answers 454. The log says what panicked and where, never the
// message or the address.
func TestPanicInASession(t *testing.T) {
	acct := &account{}
	var logs testlog.Buffer
	srv := New(authFunc(func(user, pass string) (Account, error) {
		if user == "crash@bitmask.test" {
			var a *account
			return a, errors.New(a.Address() + string(rune(len(a.queued)))) // a nil dereference
		}
		if user != addr || pass != token {
			return nil, errors.New("no")
		}
		return acct, nil
	}), Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	other := dial(t, ln.Addr().String(), addr)
	c := dial(t, ln.Addr().String(), addr)

	err = send(t, c, "poison pill")
	if code(err) != 554 || !strings.Contains(err.Error(), "could not process this message: internal error") {
		t.Fatalf("the message that panicked: %v", err)
	}
	if err := send(t, c, "after"); err != nil {
		t.Fatalf("the same session, next message: %v", err)
	}
	if err := send(t, other, "meanwhile"); err != nil {
		t.Fatalf("another session: %v", err)
	}
	acct.mu.Lock()
	n := len(acct.queued)
	acct.mu.Unlock()
	if n != 2 {
		t.Fatalf("%d messages queued, want 2", n)
	}

	c2, err := smtp.Dial(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Auth(sasl.NewPlainClient("", "crash@bitmask.test", token)); code(err) != 454 {
		t.Fatalf("a login whose check panicked: %v", err)
	}
	if err := c2.Noop(); err != nil {
		t.Fatalf("that session after: %v", err)
	}

	log := logs.String()
	if strings.Count(log, "smtpd: a command panicked") != 2 || !strings.Contains(log, "index out of range") ||
		!strings.Contains(log, "nil pointer dereference") || !strings.Contains(log, "stack=") {
		t.Fatalf("log:\n%s", log)
	}
	for _, secret := range []string{"poison pill", "body of", "remote.test", addr, "crash@"} {
		if strings.Contains(log, secret) {
			t.Fatalf("the log holds %q:\n%s", secret, log)
		}
	}
}

// TestGoSMTPPanicsAreLogged: the panics go-smtp recovers itself are
// logged as errors, without the panic's text.
func TestGoSMTPPanicsAreLogged(t *testing.T) {
	var logs testlog.Buffer
	l := errorLog{slog.New(slog.NewTextHandler(&logs, nil))}
	l.Printf("panic serving %v: %v\n%s", "127.0.0.1:1", "Subject: secret", []byte("goroutine 1 [running]:\nmain.f()"))
	log := logs.String()
	if !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "panic=string") || !strings.Contains(log, "main.f()") || strings.Contains(log, "secret") {
		t.Fatalf("log:\n%s", log)
	}
}
