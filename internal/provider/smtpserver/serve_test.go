package smtpserver

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// holdBackend's sessions take any envelope; Data registers with the
// listener, as the MX and the submission service do, tells inData and
// waits for release before it answers.
type holdBackend struct {
	l       *Listener
	inData  chan struct{}
	release chan struct{}
}

func (b *holdBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &holdSession{b: b, tc: ConnOf(c.Conn())}, nil
}

type holdSession struct {
	b  *holdBackend
	tc *Conn
}

func (s *holdSession) Reset()                               {}
func (s *holdSession) Logout() error                        { return nil }
func (s *holdSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *holdSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *holdSession) Data(r io.Reader) error {
	if !s.b.l.BeginData(s.tc) {
		return ErrShuttingDown
	}
	defer s.b.l.EndData(s.tc)
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.b.inData <- struct{}{}
	<-s.b.release
	return nil
}

// startServe runs Serve on a loopback listener with a holdBackend.
func startServe(t *testing.T, ctx context.Context, finishData bool) (addr string, be *holdBackend, done <-chan error) {
	return startServeWith(t, ctx, finishData, func(*ServeConfig) {})
}

// startServeWith is startServe with the config adjusted by adjust.
func startServeWith(t *testing.T, ctx context.Context, finishData bool, adjust func(*ServeConfig)) (addr string, be *holdBackend, done <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	be = &holdBackend{inData: make(chan struct{}, 1), release: make(chan struct{})}
	cfg := ServeConfig{
		Name: "test", Hostname: "mx.test", MaxConnections: 10,
		MaxSize: 1 << 20, MaxRecipients: 10, MaxLineLength: 2000, IOTimeout: time.Minute,
		FinishData: finishData, ShutdownGrace: time.Minute,
		Logger: slog.New(slog.DiscardHandler),
	}
	adjust(&cfg)
	errc := make(chan error, 1)
	go func() {
		errc <- Serve(ctx, ln, cfg, func(_ context.Context, l *Listener) smtp.Backend {
			be.l = l
			return be
		})
	}()
	return ln.Addr().String(), be, errc
}

// TestServeStopsBeforeItStarts: a Serve whose context has already ended
// returns nil and frees its port.
func TestServeStopsBeforeItStarts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	addr, _, done := startServe(t, ctx, true)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return")
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("the listener is still open")
	}
}

// TestServeShutdownDrains: in both shutdown modes, a connection waiting
// for a command is closed at once while a message in DATA finishes and
// gets its 250; then Serve returns nil.
func TestServeShutdownDrains(t *testing.T) {
	for _, finishData := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		addr, be, done := startServe(t, ctx, finishData)

		idle, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		idleR := bufio.NewReader(idle)
		if line, err := idleR.ReadString('\n'); err != nil || !strings.HasPrefix(line, "220 mx.test") {
			t.Fatalf("greeting %q, %v", line, err)
		}

		busy, err := smtp.Dial(addr)
		if err != nil {
			t.Fatal(err)
		}
		sent := make(chan error, 1)
		go func() {
			if err := busy.Mail("a@b.test", nil); err != nil {
				sent <- err
				return
			}
			if err := busy.Rcpt("c@d.test", nil); err != nil {
				sent <- err
				return
			}
			w, err := busy.Data()
			if err != nil {
				sent <- err
				return
			}
			_, _ = io.WriteString(w, "Subject: x\r\n\r\nbody\r\n")
			sent <- w.Close()
		}()
		<-be.inData

		cancel()
		// The idle connection is closed without waiting for the DATA.
		_ = idle.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.ReadAll(idleR); err != nil {
			t.Fatalf("finishData %v: the idle connection was not closed: %v", finishData, err)
		}
		idle.Close()

		close(be.release)
		if err := <-sent; err != nil {
			t.Fatalf("finishData %v: the message in DATA: %v", finishData, err)
		}
		busy.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("finishData %v: %v", finishData, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("finishData %v: Serve did not return", finishData)
		}
	}
}
