package mx

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// Provider is what the MX needs from the provider. *provider.Server
// implements it.
type Provider interface {
	// Domain is the mail domain the MX accepts mail for.
	Domain() string
	// UserExists reports whether login has an account.
	UserExists(ctx context.Context, login string) (bool, error)
	// PublicKey is the armored OpenPGP public key published for
	// address, or an error wrapping storage.ErrNotFound when there is
	// none.
	PublicKey(ctx context.Context, address string) ([]byte, error)
	// Deliver puts encrypted in login's incoming queue. The item is
	// durable when Deliver returns nil; it wakes the user's devices.
	Deliver(ctx context.Context, login string, encrypted []byte) error
}

// DNSResolver is the part of *net.Resolver the checks use (SPF needs
// all four, DKIM and DMARC only LookupTXT). *mockdns.Resolver implements
// it too.
type DNSResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// Config adjusts the MX. The zero value is usable.
type Config struct {
	// Hostname is announced in the greeting and is the authserv-id of
	// the Authentication-Results field. Default: the provider's domain.
	Hostname string
	// MaxSize is the largest message taken, in bytes (default 64 MiB);
	// a bigger one gets 552 5.3.4.
	MaxSize int64
	// MaxRecipients per message (default 100); more get 452 4.5.3.
	MaxRecipients int
	// MaxConnections open at once per listener (default 100); the
	// connection after that gets 421 and is closed.
	MaxConnections int
	// Resolver serves the SPF, DKIM and DMARC lookups. Default:
	// net.DefaultResolver.
	Resolver DNSResolver
	// TLSConfig, when set, is offered with STARTTLS (RFC 3207) on SMTP.
	TLSConfig *tls.Config
	// Logger gets envelope addresses, sizes and results, never content.
	// Default: slog.Default().
	Logger *slog.Logger
}

// Defaults and fixed limits.
const (
	DefaultMaxSize        = 64 << 20
	DefaultMaxRecipients  = 100
	DefaultMaxConnections = 100

	ioTimeout = 5 * time.Minute
	// shutdownGrace is how long a shutdown waits for transactions in
	// DATA to finish before closing their connections (their senders
	// then retry: nothing is lost, something may arrive twice).
	shutdownGrace = 30 * time.Second
	// authTimeout bounds all DNS work for one message.
	authTimeout = 30 * time.Second
)

// MX is the provider's mail exchanger. One MX may serve SMTP and LMTP
// on several listeners at once.
type MX struct {
	p   Provider
	cfg Config
	log *slog.Logger
}

// New makes an MX delivering into p.
func New(p Provider, cfg Config) *MX {
	if cfg.Hostname == "" {
		cfg.Hostname = p.Domain()
	}
	cfg.Hostname = cleanToken(cfg.Hostname) // it goes into header fields
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = DefaultMaxSize
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = DefaultMaxRecipients
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &MX{p: p, cfg: cfg, log: cfg.Logger}
}

// ServeSMTP serves SMTP on ln until ctx ends. Then it stops accepting,
// closes idle connections, lets transactions in DATA finish (for at most
// shutdownGrace) and returns nil.
func (m *MX) ServeSMTP(ctx context.Context, ln net.Listener) error {
	return m.serve(ctx, ln, false)
}

// ServeLMTP serves LMTP (RFC 2033) on ln, typically a unix socket that a
// front MTA delivers to, until ctx ends; see ServeSMTP.
func (m *MX) ServeLMTP(ctx context.Context, ln net.Listener) error {
	return m.serve(ctx, ln, true)
}

// listener tracks the connections of one Serve call.
type listener struct {
	net.Listener
	m    *MX
	sem  chan struct{}
	lmtp bool

	mu    sync.Mutex
	conns map[*conn]struct{}
	// closed: shutting down, no new connections or transactions.
	closed bool
	// dataClosed: no new DATA either (set once the grace is over or
	// every connection is gone).
	dataClosed bool
	// inData counts Data calls running, so the store is not closed
	// under a delivery when the Serve call returns.
	inData sync.WaitGroup
}

func (m *MX) serve(ctx context.Context, ln net.Listener, lmtp bool) error {
	// Transactions run under hctx: it outlives ctx for the shutdown
	// grace, so a message in DATA when ctx ends is still checked and
	// delivered, and ends when the grace is over.
	hctx, hardStop := context.WithCancel(context.WithoutCancel(ctx))
	defer hardStop()
	l := &listener{
		Listener: ln, m: m, lmtp: lmtp,
		sem:   make(chan struct{}, m.cfg.MaxConnections),
		conns: map[*conn]struct{}{},
	}
	srv := smtp.NewServer(&backend{m: m, l: l, ctx: hctx})
	srv.Domain = m.cfg.Hostname
	srv.LMTP = lmtp
	// go-smtp refuses a message of exactly MaxMessageBytes (it reports
	// "too large" before it sees the end of data), so it gets one byte
	// more and readMessage enforces MaxSize exactly. EHLO announces SIZE
	// MaxSize+1 as a consequence.
	srv.MaxMessageBytes = m.cfg.MaxSize + 1
	srv.MaxRecipients = m.cfg.MaxRecipients
	// go-smtp has one line limit for commands and message lines alike
	// (and, after STARTTLS, only its own reader sees plaintext lines),
	// so it is the message limit: a message with a line longer than RFC
	// 5322 allows is still mail. A command line can then hold as much
	// memory as a message does; that bound is MaxConnections × MaxSize.
	srv.MaxLineLength = maxLine(m.cfg.MaxSize)
	srv.ReadTimeout = ioTimeout
	srv.WriteTimeout = ioTimeout
	srv.AllowInsecureAuth = false
	srv.ErrorLog = errorLog{m.log}
	if !lmtp {
		srv.TLSConfig = m.cfg.TLSConfig
	}

	proto := "smtp"
	if lmtp {
		proto = "lmtp"
	}
	m.log.Info("mx: serving", "proto", proto, "addr", ln.Addr().String(), "hostname", m.cfg.Hostname)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		l.closeAll()
		hardStop()
		l.inData.Wait()
		return err
	case <-ctx.Done():
	}

	// Shutdown: stop accepting (Shutdown closes the listener) and
	// taking new transactions, close the connections waiting for a
	// command, and let those in DATA finish and get their reply.
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	gctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(gctx) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		l.closeIdle()
		select {
		case <-shut:
			done = true
		case <-tick.C:
		}
	}
	if gctx.Err() != nil {
		// The grace is over: whatever is still in DATA is abandoned
		// before it is delivered; its sender retries.
		hardStop()
		_ = srv.Close()
	}
	l.closeAll()
	<-errc
	l.inData.Wait()
	m.log.Info("mx: stopped", "proto", proto, "addr", ln.Addr().String())
	return nil
}

// beginData registers a Data call, unless the listener is done.
func (l *listener) beginData() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dataClosed {
		return false
	}
	l.inData.Add(1)
	return true
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.sem <- struct{}{}:
		default:
			l.m.log.Warn("mx: too many connections", "remote", c.RemoteAddr().String())
			go func() {
				_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				_, _ = io.WriteString(c, "421 4.7.0 "+l.m.cfg.Hostname+" too many connections, try again later\r\n")
				c.Close()
			}()
			continue
		}
		tc := &conn{Conn: c, l: l}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			<-l.sem
			c.Close()
			return nil, net.ErrClosed
		}
		l.conns[tc] = struct{}{}
		l.mu.Unlock()
		return tc, nil
	}
}

// closeIdle closes the connections that wait for a command outside DATA.
func (l *listener) closeIdle() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		if c.reading.Load() && c.busy.Load() == 0 {
			c.Conn.Close()
		}
	}
}

func (l *listener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.dataClosed = true
	for c := range l.conns {
		c.Conn.Close()
	}
}

// conn is one client connection. It lets a shutdown tell a connection
// waiting for a command from one in DATA.
type conn struct {
	net.Conn
	l *listener

	reading atomic.Bool  // inside Read (for TLS: of the TLS records)
	busy    atomic.Int32 // inside Data
	closed  atomic.Bool
}

func (c *conn) Read(b []byte) (int, error) {
	c.reading.Store(true)
	defer c.reading.Store(false)
	return c.Conn.Read(b)
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		<-c.l.sem
	}
	return err
}

// connOf finds our conn under what go-smtp holds (a *tls.Conn after
// STARTTLS).
func connOf(nc net.Conn) *conn {
	for {
		switch c := nc.(type) {
		case *conn:
			return c
		case *tls.Conn:
			nc = c.NetConn()
		default:
			return nil
		}
	}
}

// errorLog takes go-smtp's internal errors (connection errors, a
// recovered panic with its stack) to the logger.
type errorLog struct{ log *slog.Logger }

func (e errorLog) Printf(format string, v ...any) {
	e.log.Warn("mx: smtp server: " + strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (e errorLog) Println(v ...any) {
	e.log.Warn("mx: smtp server: " + strings.TrimSpace(fmt.Sprintln(v...)))
}

// smtpErr makes a reply.
func smtpErr(code int, enh smtp.EnhancedCode, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
}

var (
	errShuttingDown = smtpErr(421, smtp.EnhancedCode{4, 3, 2}, "Service shutting down, try again later")
	errTooBig       = smtpErr(552, smtp.EnhancedCode{5, 3, 4}, "Message too big")
	errTempFail     = smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "Temporary failure storing the message, try again later")
)

// maxLine is the line limit for a message limit of size.
func maxLine(size int64) int {
	const slack = 1024
	if size > int64(math.MaxInt32)-slack {
		return math.MaxInt32
	}
	return int(size) + slack
}
