package submission

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/provider/mx"
	"github.com/bitmask-go/bitmask/internal/provider/smtpserver"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
)

// Provider is what the submission service needs from the provider.
// *provider.Server implements it.
type Provider interface {
	// Domain is the provider's mail domain: the users' addresses are
	// LOGIN@Domain, and mail signed with DKIM is signed for it.
	Domain() string
	// CheckToken returns the login of a live session token.
	CheckToken(ctx context.Context, token string) (login string, err error)
}

// Queue is the durable outbound queue. storage.Store implements it.
type Queue interface {
	PutOutbound(ctx context.Context, item *storage.OutboundItem) error
	ListDueOutbound(ctx context.Context, now time.Time, limit int) ([]*storage.OutboundItem, error)
	// ClaimDueOutbound takes due items for lease (queue.go): with
	// several leapd instances on one store, one sends each item.
	ClaimDueOutbound(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*storage.OutboundItem, error)
	OutboundMessage(ctx context.Context, id string) ([]byte, error)
	UpdateOutbound(ctx context.Context, item *storage.OutboundItem) error
	DeleteOutbound(ctx context.Context, id string) error
}

// Local delivers to the provider's own users through the MX's path
// (check the account and key, encrypt, store). *mx.MX implements it.
type Local interface {
	CheckLocal(ctx context.Context, address string) (login string, err error)
	DeliverLocal(ctx context.Context, msg mx.LocalMessage) error
}

// Resolver is the DNS the delivery uses for MX, address and TXT
// (MTA-STS) lookups. *net.Resolver and *mockdns.Resolver implement it.
// It need not validate DNSSEC: DANE asks DNSSECResolverAddr instead.
type Resolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// Config adjusts the submission service and the outbound delivery.
type Config struct {
	// Hostname is the name in the greeting, in EHLO towards other
	// servers, in Received fields and in delivery status notifications.
	// Default: the provider's domain.
	Hostname string
	// DataDir holds the DKIM keys (dkim.key, ed25519, and
	// dkim-rsa.key, RSA-2048; made on first start). Required unless
	// DKIMKey is set.
	DataDir string
	// DKIMKey signs outgoing mail instead of the keys in DataDir (an
	// ed25519.PrivateKey or *rsa.PrivateKey), alone.
	DKIMKey crypto.Signer
	// DKIMSelector is the DKIM selector (default "bitmask"): the public
	// key is published at SELECTOR._domainkey.DOMAIN; the RSA key's at
	// SELECTOR-rsa._domainkey.DOMAIN.
	DKIMSelector string
	// TLSConfig is the server certificate for STARTTLS and implicit
	// TLS. Required to serve: AUTH is offered only inside TLS.
	TLSConfig *tls.Config
	// MaxSize is the largest message taken (default 64 MiB; 552 5.3.4
	// for a larger one); MaxRecipients per message (default 1000);
	// MaxConnections per listener (default 100).
	MaxSize        int64
	MaxRecipients  int
	MaxConnections int

	// Port is the remote servers' SMTP port (default 25; tests use
	// another).
	Port int
	// Resolver does the MX, address and MTA-STS TXT lookups. Default:
	// net.DefaultResolver.
	Resolver Resolver
	// DNSSECResolverAddr is a validating resolver on loopback
	// (host:port, e.g. 127.0.0.1:53). When set, every MX, address and
	// TLSA lookup of the delivery goes to it (Resolver then does only
	// the MTA-STS TXT lookups), with the DO bit; its AD bit is trusted
	// only in answers that come from a loopback address. Empty disables
	// DANE.
	DNSSECResolverAddr string
	// MTASTSClient fetches MTA-STS policies. Default: a client with a
	// 30 s timeout. Redirects are never followed.
	MTASTSClient *http.Client
	// RootCAs verifies remote servers under an MTA-STS policy in
	// enforce mode. Default: the system roots.
	RootCAs *x509.CertPool
	// RetryBase is the first delay after a temporary failure (default
	// 1 minute); each further failure doubles it, up to RetryMax
	// (default 1 hour). GiveUp is how long a message is retried
	// (default 5 days) before it is returned to its sender.
	RetryBase time.Duration
	RetryMax  time.Duration
	GiveUp    time.Duration
	// DialTimeout bounds one TCP connect (default 30 s).
	DialTimeout time.Duration
	// PollInterval is how often the queue is looked at when nothing
	// wakes it (default RetryBase, at most 30 s).
	PollInterval time.Duration
	// Concurrency is how many queue items are delivered at once
	// (default 8).
	Concurrency int
	// Logger gets envelope addresses, sizes and outcomes, never
	// content. Default: slog.Default().
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultMaxSize        = 64 << 20
	DefaultMaxRecipients  = 1000
	DefaultMaxConnections = 100
	DefaultPort           = 25
	DefaultSelector       = "bitmask"

	ioTimeout     = 5 * time.Minute
	shutdownGrace = 30 * time.Second
	// maxLineLength bounds an SMTP command line and a message line
	// (go-smtp has one limit for both); RFC 5322 allows 998, real
	// mail sometimes has longer lines.
	maxLineLength = 1 << 20
)

// Submission is the provider's message submission service (RFC 6409)
// and its outbound queue.
type Submission struct {
	p     Provider
	queue Queue
	local Local
	cfg   Config
	log   *slog.Logger

	dkim     []DKIMKey // ed25519, then RSA
	policies []TLSPolicy
	sts      *mtaSTS
	sec      *secResolver // the validating resolver; nil without one
	rpt      *tlsReporter

	wake chan struct{} // a new item is queued
}

// New makes the submission service. It loads (or makes, on first
// start) the DKIM keys, ed25519 and RSA, and logs the DNS records to
// publish for them.
func New(p Provider, queue Queue, local Local, cfg Config) (*Submission, error) {
	if cfg.Hostname == "" {
		cfg.Hostname = p.Domain()
	}
	if cfg.DKIMSelector == "" {
		cfg.DKIMSelector = DefaultSelector
	}
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = DefaultMaxSize
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = DefaultMaxRecipients
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.Port <= 0 {
		cfg.Port = DefaultPort
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.MTASTSClient == nil {
		cfg.MTASTSClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = time.Minute
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = time.Hour
	}
	if cfg.RetryMax < cfg.RetryBase {
		cfg.RetryMax = cfg.RetryBase
	}
	if cfg.GiveUp <= 0 {
		cfg.GiveUp = 5 * 24 * time.Hour
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 30 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = min(cfg.RetryBase, 30*time.Second)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Submission{
		p: p, queue: queue, local: local, cfg: cfg, log: cfg.Logger,
		wake: make(chan struct{}, 1),
	}
	if err := s.loadDKIM(cfg); err != nil {
		return nil, err
	}
	if cfg.DNSSECResolverAddr != "" {
		if err := checkResolverAddr(cfg.DNSSECResolverAddr); err != nil {
			return nil, err
		}
		s.sec = &secResolver{addr: cfg.DNSSECResolverAddr, log: s.log}
	}
	s.sts = newMTASTS(cfg.Resolver, cfg.MTASTSClient, cfg.RootCAs, s.log)
	s.policies = append(s.policies, s.sts)
	if err := s.initRelay(); err != nil {
		return nil, err
	}
	return s, nil
}

// ServeSTARTTLS serves submission on ln (port 587) with STARTTLS until
// ctx ends. AUTH, and so everything else, needs TLS first.
func (s *Submission) ServeSTARTTLS(ctx context.Context, ln net.Listener) error {
	if s.cfg.TLSConfig == nil {
		return errors.New("submission: a TLS configuration is required")
	}
	return s.serve(ctx, ln, false)
}

// ServeTLS serves submission with implicit TLS (RFC 8314, port 465) on
// ln until ctx ends.
func (s *Submission) ServeTLS(ctx context.Context, ln net.Listener) error {
	if s.cfg.TLSConfig == nil {
		return errors.New("submission: a TLS configuration is required")
	}
	return s.serve(ctx, ln, true)
}

func (s *Submission) serve(ctx context.Context, ln net.Listener, implicit bool) error {
	kind := "starttls"
	if implicit {
		kind = "implicit-tls"
	}
	cfg := smtpserver.ServeConfig{
		Name: "submission", Hostname: s.cfg.Hostname,
		TLSConfig: s.cfg.TLSConfig, ImplicitTLS: implicit,
		MaxConnections: s.cfg.MaxConnections,
		MaxSize:        s.cfg.MaxSize,
		MaxRecipients:  s.cfg.MaxRecipients,
		MaxLineLength:  maxLineLength,
		IOTimeout:      ioTimeout,
		RequireTLS:     true, // RFC 8689; see session.Mail and the relay
		// A shutdown closes every connection not in DATA at once and
		// lets those in DATA finish, so a message in DATA is still
		// stored.
		FinishData:    false,
		ShutdownGrace: shutdownGrace,
		Logger:        s.log,
		LogAttrs:      []any{"tls", kind},
	}
	return smtpserver.Serve(ctx, ln, cfg, func(hctx context.Context, l *smtpserver.Listener) smtp.Backend {
		return &backend{s: s, l: l, ctx: hctx}
	})
}

// kick wakes the queue worker.
func (s *Submission) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
