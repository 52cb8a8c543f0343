package mx

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/provider/smtpserver"
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
	// IncomingRoom is how many more bytes of mail login's storage
	// quota takes now (math.MaxInt64 without a limit; zero or less
	// when the account is full). See quota.go.
	IncomingRoom(ctx context.Context, login string) (int64, error)
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
	// MaxPerAddress is how many of those one client address (an IPv6
	// client: its /64) may hold (default 10; negative: no cap); the
	// one after that gets 421 4.7.0 and is closed.
	MaxPerAddress int
	// Spool bounds what message bodies in DATA cost: the first MiB of
	// a message in memory, the rest in a 0600 temporary file in
	// Spool.Dir (leapd: DATADIR/spool), a memory budget across all
	// sessions (default 256 MiB) and a disk limit (default 4 GiB);
	// see smtpserver.SpoolConfig.
	Spool smtpserver.SpoolConfig
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
	p       Provider
	cfg     Config
	log     *slog.Logger
	partial partial // copies stored by SMTP attempts answered 451
	spool   *smtpserver.Spool
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
	return &MX{p: p, cfg: cfg, log: cfg.Logger, spool: smtpserver.NewSpool(cfg.Spool)}
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

func (m *MX) serve(ctx context.Context, ln net.Listener, lmtp bool) error {
	proto := "smtp"
	if lmtp {
		proto = "lmtp"
	}
	cfg := smtpserver.ServeConfig{
		Name: "mx", Hostname: m.cfg.Hostname, HostnameInRefusal: true, LMTP: lmtp,
		RequireTLS:     !lmtp, // see requiretls.go
		MaxConnections: m.cfg.MaxConnections,
		MaxPerAddress:  m.cfg.MaxPerAddress,
		MaxSize:        m.cfg.MaxSize,
		MaxRecipients:  m.cfg.MaxRecipients,
		// go-smtp has one line limit for commands and message lines
		// alike (and, after STARTTLS, only its own reader sees
		// plaintext lines). A message line longer than RFC 5322
		// allows is still mail, so the limit is generous, but a
		// command line is held in memory whole: maxLineLength bounds
		// that to MaxConnections × 1 MiB.
		MaxLineLength: maxLineLength,
		IOTimeout:     ioTimeout,
		// A DATA command under way when the shutdown begins may still
		// run: the shutdown closes only connections waiting for a
		// command, so a message in DATA is still checked and delivered.
		FinishData:    true,
		ShutdownGrace: shutdownGrace,
		Logger:        m.log,
		LogAttrs:      []any{"proto", proto, "hostname", m.cfg.Hostname},
	}
	if !lmtp {
		cfg.TLSConfig = m.cfg.TLSConfig
	}
	return smtpserver.Serve(ctx, ln, cfg, func(hctx context.Context, l *smtpserver.Listener) smtp.Backend {
		return &backend{m: m, l: l, lmtp: lmtp, ctx: hctx}
	})
}

// maxLineLength is the longest line taken, command or message line
// (1 MiB, and some slack for the line break and a header field's name).
const maxLineLength = 1<<20 + 1024

// Spool reports the MX's spool (its memory budget and disk use).
func (m *MX) Spool() *smtpserver.Spool { return m.spool }
