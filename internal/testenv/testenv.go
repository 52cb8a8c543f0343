// Package testenv starts the real parts of the system on loopback for
// tests: a leapd provider on a kernel-chosen port, and bitmaskd daemons
// with their own data directories. It also records HTTP traffic so tests
// can check what crossed the wire.
package testenv

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/foxcpp/go-mockdns"

	"github.com/bitmask-go/bitmask/internal/controlserver"
	"github.com/bitmask-go/bitmask/internal/daemon"
	"github.com/bitmask-go/bitmask/internal/imapd"
	"github.com/bitmask-go/bitmask/internal/localserve"
	"github.com/bitmask-go/bitmask/internal/outbox"
	"github.com/bitmask-go/bitmask/internal/provider"
	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/provider/mx"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/provider/submission"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// Domain is the test provider's mail domain.
const Domain = "example.test"

// Provider is a running leapd (provider.Start). Through the embedded
// API server it is also what the MX and submission take as their
// provider, for tests that start their own.
type Provider struct {
	*httpapi.Server
	// Store is the storage the provider runs over (wrapped, with
	// Options.WrapStore).
	Store storage.Store
	// Leapd is the running provider.
	Leapd       *provider.Provider
	Dir         string
	URL         string // https://127.0.0.1:PORT
	Fingerprint string
	Addr        string
	MXAddr      string // the MX (SMTP) on loopback
	// SubmissionAddr is the submission service (STARTTLS) on loopback.
	SubmissionAddr string
	// Submission is the submission service and outbound queue; nil
	// with Options.NoSubmission.
	Submission *submission.Submission

	subMu     sync.Mutex
	subCancel context.CancelFunc
	subDone   chan error
}

// Ref is how a daemon finds this provider.
func (p *Provider) Ref() daemon.ProviderRef {
	return daemon.ProviderRef{URL: p.URL, Fingerprint: p.Fingerprint}
}

// Options adjust StartProvider.
type Options struct {
	Config httpapi.Config
	// WrapStore lets a test stand a hostile or failing storage in front
	// of the real one.
	WrapStore func(storage.Store) storage.Store
	// NoSubmission leaves the provider's submission service and
	// outbound queue out, for tests that run their own over its
	// storage (a second queue worker would compete for the queue).
	NoSubmission bool
	Dir          string // reuse a data directory (restart)
	Addr         string // reuse an address (restart)
	// DNS is what the provider's outbound relay sees (go-mockdns
	// zones): map an outside domain's MX to 127.0.0.1 and set
	// OutboundPort to the port of a test MTA there.
	DNS          map[string]mockdns.Zone
	OutboundPort int

	// Between real providers (issue 14): MXAddr is where the MX
	// listens (e.g. 127.0.0.5:25, its own loopback address) instead of
	// a kernel-picked port on 127.0.0.1; MXTLS makes it offer STARTTLS
	// with the provider's certificate; Resolver, if set, is the relay's
	// plain DNS (and the MX's, for SPF/DKIM/DMARC) instead of a mockdns
	// over DNS; DNSSECResolver is the relay's validating resolver.
	MXAddr   string
	MXTLS    bool
	Resolver interface {
		submission.Resolver
		mx.DNSResolver
	}
	DNSSECResolver string
}

// Logger is a quiet logger for tests (warnings and errors only).
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// StartProvider starts leapd on 127.0.0.1 and stops it when the test ends.
// The submission service runs on its own listener, apart from the rest,
// so that a test can stop and restart it (StopSubmission).
func StartProvider(t testing.TB, o Options) *Provider {
	t.Helper()
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln := listenRetry(t, addr) // a restart may race the old socket's close
	mxAddr := o.MXAddr
	if mxAddr == "" {
		mxAddr = "127.0.0.1:0"
	}
	mxln := listenRetry(t, mxAddr)
	subln := listenRetry(t, "127.0.0.1:0")
	dir := o.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	lp, err := provider.Start(context.Background(), providerConfig(t, o, dir, ln, mxln, subln))
	if err != nil {
		subln.Close()
		t.Fatal(err)
	}
	pj := lp.ProviderJSON()
	p := &Provider{
		Server: lp.API, Store: lp.Store, Leapd: lp, Dir: dir, URL: pj.APIURI,
		Addr: lp.Addrs.API, MXAddr: lp.Addrs.MX, SubmissionAddr: subln.Addr().String(),
		Fingerprint: pj.CACertFingerprint, Submission: lp.Submission,
	}
	if p.Submission != nil {
		p.startSubmission(subln)
	} else {
		subln.Close()
	}
	t.Cleanup(p.Stop)
	return p
}

// providerConfig is the test provider: the domain Domain unless o says
// otherwise, cheap login rate limits, a plain MX with no DNS, and an
// outbound relay that sees o.DNS and delivers to o.OutboundPort.
func providerConfig(t testing.TB, o Options, dir string, ln, mxln, subln net.Listener) provider.Config {
	api := o.Config
	if api.Domain == "" {
		api.Domain = Domain
	}
	api.APIURL = "https://" + ln.Addr().String()
	api.Submission = subln.Addr().String()
	if api.Logger == nil {
		api.Logger = Logger(t)
	}
	if api.LoginPerClient == 0 {
		api.LoginPerClient = 10000
	}
	port := o.OutboundPort
	if port == 0 {
		port = 1 // nothing listens there: outside delivery fails, retried
	}
	var relayDNS submission.Resolver = &mockdns.Resolver{Zones: o.DNS}
	var mxDNS mx.DNSResolver = &mockdns.Resolver{}
	if o.Resolver != nil {
		relayDNS, mxDNS = o.Resolver, o.Resolver
	}
	return provider.Config{
		DataDir:   dir,
		Logger:    api.Logger,
		API:       api,
		WrapStore: o.WrapStore,
		MX:        mx.Config{Hostname: "mx." + api.Domain, Resolver: mxDNS},
		PlainMX:   !o.MXTLS,
		Submission: submission.Config{
			Hostname: "smtp." + api.Domain, Port: port, Resolver: relayDNS,
			DNSSECResolverAddr: o.DNSSECResolver,
			RetryBase:          100 * time.Millisecond, PollInterval: 50 * time.Millisecond,
		},
		NoSubmission: o.NoSubmission,
		Listeners:    provider.Listeners{API: ln, MX: mxln},
	}
}

// listenRetry listens on addr, retrying for a second while it is taken.
func listenRetry(t testing.TB, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal(err)
	return nil
}

// StopSubmission stops the submission service (the relay is down for
// the user's devices); StartSubmission brings it back on the same
// address.
func (p *Provider) StopSubmission() {
	p.subMu.Lock()
	cancel, done := p.subCancel, p.subDone
	p.subCancel = nil
	p.subMu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// StartSubmission (re)starts the submission service.
func (p *Provider) StartSubmission(t testing.TB) {
	var ln net.Listener
	var err error
	for range 100 {
		if ln, err = net.Listen("tcp", p.SubmissionAddr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	p.startSubmission(ln)
}

func (p *Provider) startSubmission(ln net.Listener) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	p.subMu.Lock()
	p.subCancel, p.subDone = cancel, done
	p.subMu.Unlock()
	go func() { done <- p.Submission.ServeSTARTTLS(ctx, ln) }()
}

// Stop stops the provider (idempotent): the submission service, then
// everything else.
func (p *Provider) Stop() {
	p.StopSubmission()
	_ = p.Leapd.Close()
}

// DaemonOptions adjust NewDaemon.
type DaemonOptions struct {
	Dir      string
	Recorder *Recorder
	// Offline, if set, makes every provider request fail while it
	// reports true (a device without network).
	Offline func() bool
	// WrapRelay sees every copy the device relays.
	WrapRelay func(outbox.Relay) outbox.Relay
	// WrapTransport wraps the device's HTTP transport to the provider
	// (a test can lose answers with it).
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// WKD is the daemon's client for other providers' key directories
	// (daemon.Config.WKD): tests give it their roots and a dialer that
	// maps the test domains to loopback.
	WKD *http.Client
	// FloorKDF makes accounts with Argon2id parameters at
	// seal.MinKDFParams, the weakest a real bitmaskd accepts, instead of
	// the cheaper test parameters: for accounts that the bitmaskd
	// binary logs in to later.
	FloorKDF bool
}

// NewDaemon makes a bitmaskd with cheap Argon2id parameters.
func NewDaemon(t testing.TB, o DaemonOptions) *daemon.Daemon {
	t.Helper()
	dir := o.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	o.Dir = dir
	d, err := daemon.New(daemonConfig(t, o))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func daemonConfig(t testing.TB, o DaemonOptions) daemon.Config {
	co := providerclient.Options{}
	if o.Recorder != nil || o.Offline != nil || o.WrapTransport != nil {
		co.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
			if o.Recorder != nil {
				rt = o.Recorder.Wrap(rt)
			}
			if o.Offline != nil {
				rt = offlineRT{rt, o.Offline}
			}
			if o.WrapTransport != nil {
				rt = o.WrapTransport(rt)
			}
			return rt
		}
	}
	newKDF, floor := seal.FastKDFParams, seal.KDFParams{Time: 1, MemoryKiB: 8 * 1024}
	if o.FloorKDF {
		newKDF = func() (seal.KDFParams, error) {
			p, err := seal.FastKDFParams()
			at := seal.MinKDFParams()
			p.Time, p.MemoryKiB = at.Time, at.MemoryKiB
			return p, err
		}
		floor = seal.MinKDFParams()
	}
	return daemon.Config{
		DataDir:      o.Dir,
		NewKDFParams: newKDF,
		// The fast parameters are below seal.MinKDFParams: lower the
		// floor to them (the floor's own tests set up their daemons).
		KDFFloor:     floor,
		SyncInterval: time.Minute,
		Client:       co,
		Logger:       Logger(t),
		Indexer:      imapd.Indexer,
		OutboxRetry:  200 * time.Millisecond,
		WrapRelay:    o.WrapRelay,
		WKD:          o.WKD,
	}
}

type offlineRT struct {
	rt      http.RoundTripper
	offline func() bool
}

func (o offlineRT) RoundTrip(r *http.Request) (*http.Response, error) {
	if o.offline() {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: io.ErrUnexpectedEOF}
	}
	return o.rt.RoundTrip(r)
}

// Exchange is one recorded request and response.
type Exchange struct {
	Method, URL  string
	ReqHeader    http.Header
	ReqBody      []byte
	Status       int
	RespHeader   http.Header
	RespBody     []byte
	StreamedResp bool
}

// Recorder records HTTP exchanges (bodies in full, streams as far as
// they were read).
type Recorder struct {
	mu        sync.Mutex
	exchanges []*Exchange
}

// Exchanges returns what was recorded so far.
func (r *Recorder) Exchanges() []Exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Exchange, len(r.exchanges))
	for i, e := range r.exchanges {
		out[i] = *e
		out[i].RespBody = append([]byte(nil), e.RespBody...)
	}
	return out
}

// Wrap records through rt.
func (r *Recorder) Wrap(rt http.RoundTripper) http.RoundTripper {
	return recRT{r, rt}
}

type recRT struct {
	r  *Recorder
	rt http.RoundTripper
}

func (x recRT) RoundTrip(req *http.Request) (*http.Response, error) {
	ex := &Exchange{Method: req.Method, URL: req.URL.String(), ReqHeader: req.Header.Clone()}
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		ex.ReqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := x.rt.RoundTrip(req)
	x.r.mu.Lock()
	x.r.exchanges = append(x.r.exchanges, ex)
	x.r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	ex.Status = resp.StatusCode
	ex.RespHeader = resp.Header.Clone()
	resp.Body = &teeBody{rc: resp.Body, r: x.r, ex: ex}
	return resp, nil
}

type teeBody struct {
	rc io.ReadCloser
	r  *Recorder
	ex *Exchange
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	t.r.mu.Lock()
	t.ex.RespBody = append(t.ex.RespBody, p[:n]...)
	t.r.mu.Unlock()
	return n, err
}

func (t *teeBody) Close() error { return t.rc.Close() }

// Eventually polls cond until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Running is a bitmaskd serving its control API, IMAP and SMTP on
// loopback.
type Running struct {
	*daemon.Daemon
	Dir                             string
	ControlAddr, IMAPAddr, SMTPAddr string
	stop                            context.CancelFunc
	done                            chan error
}

// StartDaemon makes a bitmaskd (as NewDaemon) and serves its local
// services on kernel-chosen loopback ports until the test ends.
func StartDaemon(t testing.TB, o DaemonOptions) *Running {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	l, err := localserve.Listen("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := daemonConfig(t, o)
	l.Addrs(&cfg)
	d, err := daemon.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := controlserver.LoadOrCreateToken(o.Dir); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{
		Daemon: d, Dir: o.Dir, ControlAddr: l.Control.Addr().String(), IMAPAddr: cfg.IMAPAddr, SMTPAddr: cfg.SMTPAddr,
		stop: cancel, done: make(chan error, 1),
	}
	go func() { r.done <- localserve.Serve(ctx, d, l) }()
	t.Cleanup(func() {
		r.Stop()
		d.Close()
	})
	return r
}

// Stop stops serving (idempotent); the daemon's accounts stay open.
func (r *Running) Stop() {
	if r.stop == nil {
		return
	}
	r.stop()
	<-r.done
	r.stop = nil
}

// Password is the password of the accounts NewUser makes.
const Password = "correct horse battery staple"

// NewUser signs up address (at Domain) at p from d, with Password, and
// returns the account.
func NewUser(t testing.TB, d *daemon.Daemon, p *Provider, address string) *daemon.Account {
	t.Helper()
	a, err := d.CreateUser(context.Background(), address, []byte(Password), p.Ref(), "")
	if err != nil {
		t.Fatalf("sign up %s: %v", address, err)
	}
	return a
}

// LoginAgain starts a new bitmaskd on the data directory dir, as after a
// restart of the one that used it (the test closes that one first), and
// logs address in again at p with Password.
func LoginAgain(t testing.TB, p *Provider, dir, address string) (*daemon.Daemon, *daemon.Account) {
	t.Helper()
	d := NewDaemon(t, DaemonOptions{Dir: dir})
	a, err := d.Login(context.Background(), address, []byte(Password), p.Ref())
	if err != nil {
		t.Fatalf("log %s in again: %v", address, err)
	}
	return d, a
}
