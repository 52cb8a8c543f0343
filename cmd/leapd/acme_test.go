package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"

	"github.com/bitmask-go/bitmask/internal/provider"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// pebble is a real ACME server (Let's Encrypt's Pebble), run in the
// test's process from its packages: its VA checks tls-alpn-01 by
// connecting to tlsPort on the address that resolver gives for the
// name, so every name is made to point at loopback.
type pebble struct {
	dirURL string
	client *http.Client // trusts the ACME server's own HTTPS
	roots  *x509.CertPool
	srv    *httptest.Server
}

func startPebble(t *testing.T, tlsPort int) *pebble {
	t.Helper()
	// No random sleeps before validating, no nonces refused at random.
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	logger := log.New(io.Discard, "", 0)
	if testing.Verbose() {
		logger = log.New(os.Stderr, "pebble ", log.Lmicroseconds)
	}
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "test"}})
	validator := va.New(logger, 0, tlsPort, false, loopbackDNS(t), store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	srv := httptest.NewTLSServer(front.Handler())
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(authority.GetRootCert(0).Cert)
	return &pebble{dirURL: srv.URL + wfe.DirectoryPath, client: srv.Client(), roots: roots, srv: srv}
}

// loopbackDNS is a DNS server over TCP on loopback (Pebble's VA asks
// over TCP) that puts every name at 127.0.0.1 and has no other record.
func loopbackDNS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		for _, question := range q.Question {
			if question.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// startLeapd starts leapd as its flags configure it, on the API
// listener given, with the ACME client trusting Pebble's HTTPS.
func startLeapd(t *testing.T, args []string, api net.Listener, pb *pebble) *provider.Provider {
	t.Helper()
	fc, err := parseConfig(args)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := providerConfig(fc, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pc.Logger = testenv.Logger(t)
	pc.Listeners.API = api
	pc.ACME.HTTPClient = pb.client
	p, err := provider.Start(context.Background(), pc)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// With a public name, leapd takes certificates by ACME from a real ACME
// server that validates each name by tls-alpn-01 on leapd's HTTPS
// listener; it serves them for those names (HTTPS and the MX, whose
// TLSA record leapd dns prints from the same certificate) while the API
// host and nameless hellos keep the provider's own CA; after a restart
// the certificate comes from the data directory, with the ACME server
// gone.
func TestACMEWithPebble(t *testing.T) {
	api, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	apiAddr := api.Addr().String()
	_, port, _ := net.SplitHostPort(apiAddr)
	var tlsPort int
	for _, c := range port {
		tlsPort = tlsPort*10 + int(c-'0')
	}
	pb := startPebble(t, tlsPort)
	dir := t.TempDir()
	args := []string{
		"-data", dir, "-domain", "example.test", "-public-name", "mail.example.test",
		"-listen", apiAddr, "-api-url", "https://api.example.test:" + port,
		"-mx", "127.0.0.1:0", "-submission", "127.0.0.1:0",
		"-acme-dir", pb.dirURL, "-acme-email", "admin@example.test",
	}
	p := startLeapd(t, args, api, pb)

	handshake := func(addr, name string, roots *x509.CertPool) (*x509.Certificate, error) {
		t.Helper()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Minute}, "tcp", addr, &tls.Config{ServerName: name, RootCAs: roots})
		if err != nil {
			return nil, err
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0], nil
	}
	// The first hello naming mail.example.test waits while leapd asks
	// Pebble, which connects back to validate; the chain then verifies
	// to Pebble's root for the name.
	start := time.Now()
	leaf, err := handshake(apiAddr, "mail.example.test", pb.roots)
	if err != nil {
		t.Fatalf("HTTPS for the public name: %v", err)
	}
	t.Logf("first certificate by ACME (account, order, tls-alpn-01, issue) in %v", time.Since(start).Round(time.Millisecond))
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "mail.example.test" {
		t.Fatalf("certificate for %v", leaf.DNSNames)
	}

	// The MTA-STS policy, fetched as a sender does: over TLS that
	// verifies to a public (here: Pebble's) root.
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, apiAddr)
		},
		TLSClientConfig: &tls.Config{RootCAs: pb.roots},
	}}
	resp, err := hc.Get("https://mta-sts.example.test/.well-known/mta-sts.txt")
	if err != nil {
		t.Fatalf("MTA-STS policy over ACME TLS: %v", err)
	}
	policy, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(policy), "mx: mail.example.test\r\n") {
		t.Fatalf("policy %d %q", resp.StatusCode, policy)
	}

	// The devices' names keep the pinned CA's certificate.
	own := x509.NewCertPool()
	own.AddCert(p.TLSFiles().CACert)
	if _, err := handshake(apiAddr, "api.example.test", own); err != nil {
		t.Errorf("API host with the provider's CA: %v", err)
	}
	if c, err := tls.Dial("tcp", apiAddr, &tls.Config{InsecureSkipVerify: true}); err != nil {
		t.Error(err)
	} else {
		if got := c.ConnectionState().PeerCertificates[0]; !bytes.Equal(got.Raw, p.TLSFiles().ServerCert.Leaf.Raw) {
			t.Errorf("a nameless hello to the API got %v", got.DNSNames)
		}
		c.Close()
	}

	// The MX: a sender naming no host gets the ACME certificate too,
	// and leapd dns's TLSA record is its key's.
	mxLeaf := starttls(t, p.Addrs.MX, "", pb.roots, "mail.example.test")
	var out bytes.Buffer
	if err := run(context.Background(), append([]string{"dns"}, args...), &out); err != nil {
		t.Fatal(err)
	}
	rrs := parseZone(t, out.String())
	spki := sha256.Sum256(mxLeaf.RawSubjectPublicKeyInfo)
	if tlsa := one(t, rrs, "_25._tcp.mail.example.test. TLSA").(*dns.TLSA); tlsa.Certificate != hex.EncodeToString(spki[:]) {
		t.Errorf("TLSA %s, MX key %x", tlsa, spki)
	}
	if _, err := os.Stat(filepath.Join(dir, provider.ACMECacheDir, "mail.example.test")); err != nil {
		t.Error(err)
	}

	// Restart with the ACME server gone: the certificate is the one
	// kept in the data directory.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	pb.srv.Close()
	api2, err := net.Listen("tcp", apiAddr)
	if err != nil {
		t.Fatal(err)
	}
	p2 := startLeapd(t, args, api2, pb)
	defer p2.Close()
	again, err := handshake(apiAddr, "mail.example.test", pb.roots)
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if !bytes.Equal(again.Raw, leaf.Raw) {
		t.Error("after the restart, another certificate")
	}
}

// starttls says EHLO and STARTTLS to the SMTP server at addr with
// server name sni ("" for none) and returns the certificate, verified
// for name against roots.
func starttls(t *testing.T, addr, sni string, roots *x509.CertPool, name string) *x509.Certificate {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartTLS(&tls.Config{ServerName: sni, InsecureSkipVerify: true}); err != nil {
		t.Fatal(err)
	}
	cs, _ := c.TLSConnectionState()
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, ic := range cs.PeerCertificates[1:] {
		inter.AddCert(ic)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter}); err != nil {
		t.Fatalf("MX certificate: %v", err)
	}
	return leaf
}
