// Package provider starts leapd: one call that opens the provider's data
// directory and runs every part of it together.
//
// The parts live in the subpackages: storage (accounts, documents,
// queues; bbolt), httpapi (the HTTPS API the devices talk to), mx (mail
// from other providers, encrypted to the recipient's key on arrival) and
// submission (mail from the users, and the outbound queue that relays it
// to other providers). They meet here:
//
//   - the storage is opened once, and everything runs over it: the API
//     serves it, the MX appends to its incoming queues (through the API
//     server, which also wakes the devices), submission queues outbound
//     mail in it;
//   - the TLS certificate the API serves (issued by the provider's own
//     CA, which the devices pin) is also the certificate of submission's
//     STARTTLS and implicit TLS and of the MX's STARTTLS; with ACME
//     (acme.go), the public names get a certificate from a public CA on
//     each of them instead, and the MX gives that one to senders that
//     name no host;
//   - provider.json announces the submission address the devices relay
//     through, so the STARTTLS submission listener is open before the API
//     is made;
//   - the storage is closed only after every serve loop and the queue
//     worker stopped, so no delivery they are finishing meets a closed
//     store.
//
// leapd, the one-command demo and the tests (internal/testenv) all start
// a provider with Start.
package provider

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/provider/mx"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/provider/submission"
	"github.com/bitmask-go/bitmask/internal/providerapi"
)

// Config is what a provider is started with: what leapd's flags and
// config file set, and what tests override.
type Config struct {
	// DataDir holds the storage (leapd.db), the CA and the server
	// certificate, the secret behind the answers for unknown logins and
	// the DKIM key. It is made (0700) if missing.
	DataDir string
	// Logger is every part's logger unless its own config sets one.
	// Default: slog.Default().
	Logger *slog.Logger

	// API configures the HTTPS API: domain, display name, enrollment,
	// session lifetime, rate limits. APIURL defaults to
	// https://ADDRESS of the API listener; Submission (the address
	// provider.json announces) to the STARTTLS submission listener's
	// address, with the domain in place of an unspecified host.
	API httpapi.Config
	// MX configures the MX. TLSConfig defaults to the provider's
	// certificate (offered with STARTTLS) unless PlainMX is set.
	MX      mx.Config
	PlainMX bool
	// Submission configures the submission service and the outbound
	// relay (hostname, DKIM, DANE resolver, retries, remote port and
	// DNS). DataDir and TLSConfig default to the provider's.
	Submission submission.Config
	// NoSubmission leaves the submission service and the outbound
	// queue worker out (tests that run their own over the same store);
	// no submission listener may be set then.
	NoSubmission bool

	// WrapStore, if set, stands something in front of the storage (a
	// test's hostile or failing store); every part runs over what it
	// returns.
	WrapStore func(storage.Store) storage.Store

	// Listen is where each service listens; Listeners are listeners
	// the caller opened already (a listener set there is used instead
	// of its address, and belongs to the provider from then on, also
	// when Start fails). The API is required; every other service is
	// off when it has neither.
	Listen    Addrs
	Listeners Listeners

	// ACME, if set, takes certificates for the provider's public names
	// from an ACME CA (acme.go); the devices' names keep the provider's
	// own.
	ACME *ACME
}

// Provider is a running provider.
type Provider struct {
	// API is the HTTPS API's server; it is also what the MX and
	// submission call on the provider (domain, sessions, delivery).
	API *httpapi.Server
	// Store is the storage every part runs over (wrapped, with
	// Config.WrapStore). It is closed when the provider stops.
	Store storage.Store
	MX    *mx.MX
	// Submission is the submission service and outbound queue; nil
	// with Config.NoSubmission.
	Submission *submission.Submission
	// Addrs is where each service listens ("" where it is off).
	Addrs Addrs

	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done is closed
}

// ProviderJSON is the bootstrap document the API serves.
func (p *Provider) ProviderJSON() providerapi.ProviderJSON { return p.API.ProviderJSON() }

// TLSFiles are the provider's CA (the one devices pin) and its server
// certificate.
func (p *Provider) TLSFiles() *httpapi.TLSFiles { return p.API.TLSFiles() }

// TLSConfig is the server side of the provider's TLS, as the API,
// submission and the MX serve it.
func (p *Provider) TLSConfig() *tls.Config { return p.API.TLSConfig() }

// Start opens the provider in cfg.DataDir and starts serving: the API,
// the MX on SMTP and LMTP, submission with STARTTLS and implicit TLS,
// and the outbound queue worker, each where cfg says. The provider runs
// until ctx ends, Close is called, or one of the services stops (a
// listener failing); then they all stop, and the storage is closed once
// they did. Wait says why.
func Start(ctx context.Context, cfg Config) (*Provider, error) {
	if cfg.DataDir == "" {
		cfg.Listeners.close()
		return nil, errors.New("provider: a data directory is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	lns, err := listenFirst(cfg)
	if err != nil {
		return nil, err
	}
	p, err := build(cfg, &lns)
	if err != nil {
		lns.close()
		return nil, err
	}
	p.Addrs = lns.addrs()
	p.serve(ctx, lns)
	return p, nil
}

// listenFirst opens the listeners that must exist before the API is
// made: submission's, whose address provider.json announces.
func listenFirst(cfg Config) (Listeners, error) {
	lns := cfg.Listeners
	if cfg.NoSubmission && (lns.Submission != nil || lns.Submissions != nil || cfg.Listen.Submission != "" || cfg.Listen.Submissions != "") {
		lns.close()
		return lns, errors.New("provider: a submission listener is set, but submission is off")
	}
	if err := listenTCP(&lns.Submission, cfg.Listen.Submission, "submission"); err != nil {
		lns.close()
		return lns, err
	}
	if err := listenTCP(&lns.Submissions, cfg.Listen.Submissions, "submissions"); err != nil {
		lns.close()
		return lns, err
	}
	return lns, nil
}

// build opens the storage and makes the API, the MX and submission. The
// API listener comes first, since its address is the default API URL
// that provider.json announces; the MX and LMTP listeners are opened once
// the storage is: the storage's lock keeps a second leapd on the same
// data directory out before it replaces the LMTP socket of the first.
func build(cfg Config, lns *Listeners) (*Provider, error) {
	api := cfg.API
	if api.Logger == nil {
		api.Logger = cfg.Logger
	}
	if api.Submission == "" && lns.Submission != nil {
		api.Submission = announced(lns.Submission.Addr().String(), api.Domain)
	}
	if err := listenTCP(&lns.API, cfg.Listen.API, "api"); err != nil {
		return nil, err
	}
	if lns.API == nil {
		return nil, errors.New("provider: an API listener or address is required")
	}
	if api.APIURL == "" {
		api.APIURL = "https://" + lns.API.Addr().String()
	}
	var ac *acmeTLS
	if cfg.ACME != nil {
		var err error
		if ac, err = newACME(cfg.ACME, cfg.DataDir, devicesHosts(api)); err != nil {
			return nil, err
		}
		api.WrapTLS = func(c *tls.Config) *tls.Config { return ac.wrap(c, true, false) }
	}
	srv, st, err := httpapi.Open(cfg.DataDir, api, cfg.WrapStore)
	if err != nil {
		return nil, fmt.Errorf("provider: open the API: %w", err)
	}
	p := &Provider{API: srv, Store: st, done: make(chan struct{})}
	if err := p.listenRest(cfg, lns); err != nil {
		st.Close()
		return nil, err
	}
	mc := cfg.MX
	if mc.Logger == nil {
		mc.Logger = cfg.Logger
	}
	if mc.TLSConfig == nil && !cfg.PlainMX {
		mc.TLSConfig = srv.TLSConfig()
		if ac != nil {
			mc.TLSConfig = ac.wrap(mc.TLSConfig, false, true)
		}
	}
	if mc.Spool.Dir == "" {
		// Message bodies past the in-memory part (the submission
		// service shares the MX's spool and budget).
		mc.Spool.Dir = filepath.Join(cfg.DataDir, "spool")
	}
	p.MX = mx.New(srv, mc)
	if cfg.NoSubmission {
		return p, nil
	}
	sc := cfg.Submission
	if sc.Logger == nil {
		sc.Logger = cfg.Logger
	}
	if sc.DataDir == "" {
		sc.DataDir = cfg.DataDir
	}
	if sc.TLSConfig == nil {
		sc.TLSConfig = srv.TLSConfig()
		if ac != nil {
			sc.TLSConfig = ac.wrap(sc.TLSConfig, false, false)
		}
	}
	if p.Submission, err = submission.New(srv, st, p.MX, sc); err != nil {
		st.Close()
		return nil, fmt.Errorf("provider: submission: %w", err)
	}
	return p, nil
}

// listenRest opens the MX's SMTP and LMTP listeners.
func (p *Provider) listenRest(cfg Config, lns *Listeners) error {
	if err := listenTCP(&lns.MX, cfg.Listen.MX, "mx"); err != nil {
		return err
	}
	if lns.LMTP == nil && cfg.Listen.LMTP != "" {
		ln, err := listenUnix(cfg.Listen.LMTP)
		if err != nil {
			return fmt.Errorf("provider: lmtp: %w", err)
		}
		lns.LMTP = ln
	}
	return nil
}

// serve starts every service on its listener and, once all stopped,
// closes the storage.
func (p *Provider) serve(ctx context.Context, lns Listeners) {
	ctx, p.cancel = context.WithCancel(ctx)
	type result struct {
		name string
		err  error
	}
	var loops []func() result
	add := func(name string, serve func() error) {
		loops = append(loops, func() result { return result{name, serve()} })
	}
	add("api", func() error { return p.API.Serve(ctx, lns.API) })
	if lns.MX != nil {
		add("mx", func() error { return p.MX.ServeSMTP(ctx, lns.MX) })
	}
	if lns.LMTP != nil {
		add("lmtp", func() error { return p.MX.ServeLMTP(ctx, lns.LMTP) })
	}
	if p.Submission != nil {
		if lns.Submission != nil {
			add("submission", func() error { return p.Submission.ServeSTARTTLS(ctx, lns.Submission) })
		}
		if lns.Submissions != nil {
			add("submissions", func() error { return p.Submission.ServeTLS(ctx, lns.Submissions) })
		}
		add("outbound queue", func() error { return p.Submission.Run(ctx) })
	}
	results := make(chan result, len(loops))
	for _, loop := range loops {
		go func() { results <- loop() }()
	}
	go func() {
		// The first service to return, with an error or without, stops
		// the others: a provider missing a part is not one to keep
		// running.
		var first error
		for range loops {
			r := <-results
			if r.err != nil && first == nil {
				first = fmt.Errorf("provider: %s: %w", r.name, r.err)
			}
			p.cancel()
		}
		if err := p.Store.Close(); err != nil && first == nil {
			first = fmt.Errorf("provider: close the storage: %w", err)
		}
		p.err = first
		close(p.done)
	}()
}

// Done is closed when the provider stopped (its storage closed).
func (p *Provider) Done() <-chan struct{} { return p.done }

// Wait waits until the provider stopped and returns the first error of
// a service, or of closing the storage.
func (p *Provider) Wait() error {
	<-p.done
	return p.err
}

// Close stops every service, waits for them and for the storage to
// close, and returns what Wait does. It may be called more than once.
func (p *Provider) Close() error {
	p.cancel()
	return p.Wait()
}
