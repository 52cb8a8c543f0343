package submission_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/foxcpp/go-mockdns"

	"github.com/bitmask-go/bitmask/internal/provider/mx"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/provider/submission"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
)

const (
	domain   = testenv.Domain // example.test
	hostname = "smtp.example.test"
	remote   = "remote.test"
	remoteMX = "mx.remote.test"
)

// remoteZones is the DNS the relay sees: remote.test has one MX on
// 127.0.0.1 (the test's stand-in server listens on Config.Port there).
func remoteZones() map[string]mockdns.Zone {
	return map[string]mockdns.Zone{
		remote + ".":   {MX: []net.MX{{Host: remoteMX + ".", Pref: 10}}},
		remoteMX + ".": {A: []string{"127.0.0.1"}},
	}
}

// world is a real leapd with its MX and the submission service.
type world struct {
	t       testing.TB
	p       *testenv.Provider
	sub     *submission.Submission
	addr    string // submission with STARTTLS
	tlsAddr string // submission with implicit TLS
	roots   *x509.CertPool
	keys    map[string]*openpgp.Entity
	tokens  map[string]string
	logs    *logRecorder

	cancel context.CancelFunc
	done   chan error
}

type worldOptions struct {
	cfg   submission.Config
	zones map[string]mockdns.Zone
	// provider reuses a running provider (a restart of the service).
	provider *testenv.Provider
}

func newWorld(t testing.TB, o worldOptions) *world {
	t.Helper()
	p := o.provider
	if p == nil {
		p = startProvider(t, testenv.Options{})
	}
	w := &world{t: t, p: p, keys: map[string]*openpgp.Entity{}, tokens: map[string]string{}}
	w.roots = x509.NewCertPool()
	w.roots.AddCert(p.TLSFiles().CACert)
	zones := o.zones
	if zones == nil {
		zones = remoteZones()
	}
	m := mx.New(p, mx.Config{Hostname: hostname, Resolver: &mockdns.Resolver{Zones: map[string]mockdns.Zone{}}, Logger: testenv.Logger(t)})
	cfg := o.cfg
	if cfg.Hostname == "" {
		cfg.Hostname = hostname
	}
	if cfg.DataDir == "" {
		cfg.DataDir = p.Dir
	}
	if cfg.TLSConfig == nil {
		cfg.TLSConfig = p.TLSConfig()
	}
	if cfg.Resolver == nil {
		cfg.Resolver = &mockdns.Resolver{Zones: zones}
	}
	if cfg.RetryBase == 0 {
		cfg.RetryBase = 50 * time.Millisecond
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 200 * time.Millisecond
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 2 * time.Second
	}
	w.logs = newLogRecorder(t)
	if cfg.Logger == nil {
		cfg.Logger = w.logs.logger()
	}
	sub, err := submission.New(p, p.Store, m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.sub = sub
	ln1 := listen(t, "127.0.0.1:0")
	ln2 := listen(t, "127.0.0.1:0")
	w.addr, w.tlsAddr = ln1.Addr().String(), ln2.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.done = make(chan error, 3)
	go func() { w.done <- sub.ServeSTARTTLS(ctx, ln1) }()
	go func() { w.done <- sub.ServeTLS(ctx, ln2) }()
	go func() { w.done <- sub.Run(ctx) }()
	t.Cleanup(w.stop) // before the provider's cleanup: last in, first out
	return w
}

// stop stops the service (idempotent).
func (w *world) stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	for range 3 {
		if err := <-w.done; err != nil {
			w.t.Errorf("submission returned %v", err)
		}
	}
	w.cancel = nil
}

// startProvider starts leapd without its submission service: that
// one's queue worker would compete with the one under test for the same
// queue; these tests run theirs, configured for each test.
func startProvider(t testing.TB, o testenv.Options) *testenv.Provider {
	t.Helper()
	o.NoSubmission = true
	p := testenv.StartProvider(t, o)
	if p.Submission != nil {
		t.Fatal("testenv started a submission service of its own")
	}
	return p
}

func listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// addUser makes an account with a session token; with a key, publishes
// it and remembers the private half.
func (w *world) addUser(login string, withKey bool) {
	w.t.Helper()
	ctx := context.Background()
	u := &storage.User{Login: login, SRPSalt: []byte("salt"), SRPVerifier: []byte("verifier"), Created: time.Now()}
	if err := w.p.Store.CreateUser(ctx, u, ""); err != nil {
		w.t.Fatal(err)
	}
	w.tokens[login] = w.newSession(login, time.Hour)
	if !withKey {
		return
	}
	e, err := pgpkey.Generate(login+"@"+domain, 0, time.Now())
	if err != nil {
		w.t.Fatal(err)
	}
	pub, err := pgpkey.ArmorPublic(e)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.p.Store.PutKey(ctx, login+"@"+domain, []byte(pub)); err != nil {
		w.t.Fatal(err)
	}
	w.keys[login] = e
}

// newSession stores a session for login, as a login through the API
// does, and returns its token.
func (w *world) newSession(login string, ttl time.Duration) string {
	w.t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	sum := sha256.Sum256([]byte(tok))
	se := &storage.Session{TokenHash: sum[:], Login: login, Expires: time.Now().Add(ttl)}
	if err := w.p.Store.CreateSession(context.Background(), se); err != nil {
		w.t.Fatal(err)
	}
	return tok
}

// clientTLS trusts the provider's CA, as bitmaskd's relay does.
func (w *world) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: w.roots, ServerName: "127.0.0.1"}
}

// dial connects with STARTTLS and, unless user is "", authenticates.
func (w *world) dial(user, token string) (*smtp.Client, error) {
	w.t.Helper()
	conn, err := net.Dial("tcp", w.addr)
	if err != nil {
		w.t.Fatal(err)
	}
	c, err := smtp.NewClientStartTLS(conn, w.clientTLS())
	if err != nil {
		conn.Close()
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { c.Close() })
	if user == "" {
		return c, nil
	}
	return c, c.Auth(sasl.NewPlainClient("", user, token))
}

// submit sends msg as login on a new connection.
func (w *world) submit(login, from string, to []string, msg string) error {
	w.t.Helper()
	c, err := w.dial(login, w.tokens[login])
	if err != nil {
		return err
	}
	if err := c.SendMail(from, to, strings.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}

// message is a small message from login.
func message(login, to, subject string) string {
	return "From: " + strings.ToUpper(login[:1]) + login[1:] + " <" + login + "@" + domain + ">\r\n" +
		"To: <" + to + ">\r\n" +
		"Subject: " + subject + "\r\n" +
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n" +
		"Message-ID: <" + subject + "@client.example>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" +
		"Hello, this is " + subject + ".\r\n"
}

// incoming is login's incoming queue, decrypted with login's key.
func (w *world) incoming(login string) []string {
	w.t.Helper()
	ctx := context.Background()
	list, _, err := w.p.Store.ListIncoming(ctx, login, 1000)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []string
	for _, it := range list {
		ct, err := w.p.Store.Incoming(ctx, login, it.ID)
		if err != nil {
			w.t.Fatal(err)
		}
		md, err := openpgp.ReadMessage(bytes.NewReader(ct), openpgp.EntityList{w.keys[login]}, nil, nil)
		if err != nil {
			w.t.Fatalf("%s's item %s does not decrypt: %v", login, it.ID, err)
		}
		if !md.IsEncrypted {
			w.t.Fatalf("%s's item %s is not encrypted", login, it.ID)
		}
		b, err := io.ReadAll(md.UnverifiedBody)
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// queue is everything in the outbound queue.
func (w *world) queue() []*storage.OutboundItem {
	w.t.Helper()
	items, err := w.p.Store.ListDueOutbound(context.Background(), time.Now().Add(1000*time.Hour), 1000)
	if err != nil {
		w.t.Fatal(err)
	}
	return items
}

// dkimVerify checks msg's DKIM signatures against our published
// records: one per record (ed25519 and RSA), each valid.
func (w *world) dkimVerify(msg []byte) error {
	recs, err := w.sub.DKIMRecords()
	if err != nil {
		return err
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{
		LookupTXT: func(q string) ([]string, error) {
			for _, r := range recs {
				if strings.EqualFold(strings.TrimSuffix(q, "."), r.Name) {
					return []string{r.Value}, nil
				}
			}
			return nil, &net.DNSError{Err: "not found", Name: q, IsNotFound: true}
		},
	})
	if err != nil {
		return err
	}
	if len(vs) != len(recs) {
		return fmt.Errorf("%d DKIM signatures, want %d", len(vs), len(recs))
	}
	for _, v := range vs {
		if v.Err != nil {
			return v.Err
		}
		if v.Domain != domain {
			return fmt.Errorf("signed for %q, want %q", v.Domain, domain)
		}
	}
	return nil
}

// wantReply checks err is the SMTP reply code with enhanced code enh.
func wantReply(t testing.TB, err error, code int, enh string) {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want SMTP reply %d %s", err, code, enh)
	}
	got := fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	if se.Code != code || (enh != "" && got != enh) {
		t.Fatalf("got reply %d %s %q, want %d %s", se.Code, got, se.Message, code, enh)
	}
}

// --- the other provider's MX, a go-smtp server on loopback

type received struct {
	from       string
	to         []string
	data       []byte
	tls        bool
	helo       string
	requireTLS bool // MAIL FROM had REQUIRETLS
}

type remoteServer struct {
	t    testing.TB
	ln   net.Listener
	srv  *smtp.Server
	port int

	cert atomic.Pointer[tls.Certificate]

	mu    sync.Mutex
	msgs  []received
	mails int // MAIL commands seen
	// rcptErr, when set, refuses recipients.
	rcptErr func(to string) error
}

// startRemote serves SMTP on addr ("127.0.0.1:0" for a new port),
// offering STARTTLS with cert when it is not nil.
func startRemote(t testing.TB, addr string, cert *tls.Certificate) *remoteServer {
	t.Helper()
	return startRemoteWith(t, addr, cert, nil)
}

// startRemoteWith is startRemote with configure called on the server
// before it serves.
func startRemoteWith(t testing.TB, addr string, cert *tls.Certificate, configure func(*smtp.Server)) *remoteServer {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 100; i++ { // a reused port may still be closing
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	r := &remoteServer{t: t, ln: ln, port: ln.Addr().(*net.TCPAddr).Port}
	r.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &remoteSession{r: r, c: c}, nil
	}))
	r.srv.Domain = remoteMX
	r.srv.ErrorLog = log.New(io.Discard, "", 0)
	if cert != nil {
		r.cert.Store(cert)
		r.srv.TLSConfig = &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return r.cert.Load(), nil
		}}
	}
	if configure != nil {
		configure(r.srv)
	}
	go func() { _ = r.srv.Serve(ln) }()
	t.Cleanup(r.close)
	return r
}

func (r *remoteServer) close() { _ = r.srv.Close() }

func (r *remoteServer) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.msgs...)
}

func (r *remoteServer) mailCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mails
}

type remoteSession struct {
	r          *remoteServer
	c          *smtp.Conn
	from       string
	to         []string
	requireTLS bool
}

func (s *remoteSession) Reset()        { s.from, s.to, s.requireTLS = "", nil, false }
func (s *remoteSession) Logout() error { return nil }
func (s *remoteSession) Mail(from string, opts *smtp.MailOptions) error {
	s.r.mu.Lock()
	s.r.mails++
	s.r.mu.Unlock()
	s.from = from
	s.requireTLS = opts != nil && opts.RequireTLS
	return nil
}
func (s *remoteSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.r.mu.Lock()
	f := s.r.rcptErr
	s.r.mu.Unlock()
	if f != nil {
		if err := f(to); err != nil {
			return err
		}
	}
	s.to = append(s.to, to)
	return nil
}
func (s *remoteSession) Data(rd io.Reader) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	_, isTLS := s.c.TLSConnectionState()
	s.r.mu.Lock()
	s.r.msgs = append(s.r.msgs, received{from: s.from, to: s.to, data: b, tls: isTLS, helo: s.c.Hostname(), requireTLS: s.requireTLS})
	s.r.mu.Unlock()
	return nil
}

// --- certificates

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// leaf issues a server certificate for names; with ca nil it is
// self-signed.
func leaf(t testing.TB, ca *testCA, names ...string) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sn, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: sn, Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	parent, signer := tmpl, any(key)
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	chain := [][]byte{der}
	if ca != nil {
		chain = append(chain, ca.cert.Raw)
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: c}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// logRecorder keeps the service's log records, so a test can tell how
// something happened (which TLS policy a delivery used), and passes
// warnings on to the test log.
type logRecorder struct {
	t    testing.TB
	mu   *sync.Mutex
	recs *[]map[string]string
	with []slog.Attr
}

func newLogRecorder(t testing.TB) *logRecorder {
	return &logRecorder{t: t, mu: &sync.Mutex{}, recs: &[]map[string]string{}}
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	c := *l
	c.with = append(append([]slog.Attr(nil), l.with...), as...)
	return &c
}
func (l *logRecorder) WithGroup(string) slog.Handler { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{"msg": r.Message}
	for _, a := range l.with {
		m[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	l.mu.Lock()
	*l.recs = append(*l.recs, m)
	l.mu.Unlock()
	if r.Level >= slog.LevelWarn {
		l.t.Logf("%s %s %v", r.Level, r.Message, m)
	}
	return nil
}

func (l *logRecorder) logger() *slog.Logger { return slog.New(l) }

// find returns the first record with message msg.
func (l *logRecorder) find(msg string) map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range *l.recs {
		if m["msg"] == msg {
			return m
		}
	}
	return nil
}

// deliveredWith is the TLS policy and version of the first delivery.
func (w *world) deliveredWith(t testing.TB) (policy, version string) {
	t.Helper()
	var rec map[string]string
	testenv.Eventually(t, wait, "the delivery's log record", func() bool {
		rec = w.logs.find("submission: delivered")
		return rec != nil
	})
	return rec["policy"], rec["tls"]
}
