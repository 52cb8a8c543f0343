package contactkeys_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/bitmask-go/bitmask/internal/contactkeys"
	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
	"github.com/bitmask-go/bitmask/pkg/wkd"
)

// The test "system roots": one CA, whose leaf names the test domains and
// their subdomains (openpgpkey.DOMAIN) and 127.0.0.1.
var (
	caOnce sync.Once
	caPool *x509.CertPool
	caLeaf tls.Certificate
)

var testNames = []string{"wkd.example", "*.wkd.example", "remote.test", "*.remote.test", "evil.test", "*.evil.test"}

func testCA(t testing.TB) (*x509.CertPool, tls.Certificate) {
	caOnce.Do(func() {
		caPool, caLeaf = makeCA(t, testNames)
	})
	return caPool, caLeaf
}

func makeCA(t testing.TB, names []string) (*x509.CertPool, tls.Certificate) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test roots"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: names, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}
}

// newTLSServer serves h over TLS with the test CA's leaf.
func newTLSServer(t testing.TB, h http.Handler) *httptest.Server {
	_, leaf := testCA(t)
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// dialingOnly is an HTTP client trusting the test CA that reaches srv
// whatever the host asked for (WKD hosts are the recipients' domains).
func dialingOnly(srv *httptest.Server, timeout time.Duration) *http.Client {
	return dialing(map[string]string{"*": srv.Listener.Addr().String()}, timeout)
}

// dialing is the name-resolution seam of these tests: an HTTP client
// trusting the test CA, which dials hosts[name] for a name it has (or
// hosts["*"]), and anything else (127.0.0.1:PORT) as asked.
func dialing(hosts map[string]string, timeout time.Duration) *http.Client {
	pool := caPool
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, _ := net.SplitHostPort(addr)
			if to, ok := hosts[host]; ok {
				addr = to
			} else if to, ok := hosts["*"]; ok {
				addr = to
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}}
}

func binaryKey(t testing.TB, es ...*openpgp.Entity) []byte {
	var b bytes.Buffer
	for _, e := range es {
		if err := e.Serialize(&b); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func genKey(t testing.TB, address string, created time.Time, lifetime time.Duration) *openpgp.Entity {
	e, err := pgpkey.Generate(address, lifetime, created)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// newManager is a contact key store of a fresh account.
func newManager(t *testing.T) *contactkeys.Manager {
	p := testenv.StartProvider(t, testenv.Options{})
	d := testenv.NewDaemon(t, testenv.DaemonOptions{})
	A := testenv.NewUser(t, d, p, "ruth@"+testenv.Domain)
	return contactkeys.New(A.Docs, A.Keys())
}

// TestRemoteBadAnswers: a WKD answer that is huge, slow, malformed, for
// another address, with two usable keys, from another host by redirect,
// or over TLS that does not verify gives no key (and a key already
// kept stays); a revoked-or-expired key beside a good one, and a
// redirect within the host, are fine.
func TestRemoteBadAnswers(t *testing.T) {
	ctx := context.Background()
	km := newManager(t)
	now := time.Now()
	const addr = "zoe@remote.test"
	good := genKey(t, addr, now, 365*24*time.Hour)
	other := genKey(t, "eve@remote.test", now, 365*24*time.Hour)
	second := genKey(t, addr, now, 365*24*time.Hour)
	expired := genKey(t, addr, now.Add(-48*time.Hour), 24*time.Hour)
	// The key at the "evil" host a redirect points to.
	evil := newTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(binaryKey(t, good))
	}))
	// A server with a certificate of another CA.
	_, strangerLeaf := makeCA(t, testNames)
	stranger := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(binaryKey(t, good))
	}))
	stranger.TLS = &tls.Config{Certificates: []tls.Certificate{strangerLeaf}}
	stranger.StartTLS()
	t.Cleanup(stranger.Close)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })

	cases := []struct {
		name  string
		serve func(w http.ResponseWriter, r *http.Request)
		want  *openpgp.Entity // nil: no key
		// unreached: the lookup is not definite (not remembered).
		unreached bool
	}{
		{"good", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(binaryKey(t, good)) }, good, false},
		{"armored", func(w http.ResponseWriter, r *http.Request) {
			a, _ := pgpkey.ArmorPublic(good)
			_, _ = w.Write([]byte(a))
		}, good, false},
		{"huge", func(w http.ResponseWriter, r *http.Request) {
			b := binaryKey(t, good)
			_, _ = w.Write(append(b, make([]byte, wkd.MaxKeyBytes)...))
		}, nil, false},
		{"malformed", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("\x99\x01\x0dnot a key at all")) }, nil, false},
		{"another address", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(binaryKey(t, other)) }, nil, false},
		{"two usable keys", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(binaryKey(t, good, second)) }, nil, false},
		{"expired beside good", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(binaryKey(t, expired, good, other)) }, good, false},
		{"redirect to another host", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://evil.test/key", http.StatusFound)
		}, nil, false},
		{"redirect within the host", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("moved") == "" {
				http.Redirect(w, r, r.URL.Path+"?moved=1", http.StatusFound)
				return
			}
			_, _ = w.Write(binaryKey(t, good))
		}, good, false},
		{"slow", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}, nil, true},
		{"server error", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusInternalServerError) }, nil, false},
		{"unverified TLS", nil, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hc *http.Client
			if c.serve == nil {
				hc = dialing(map[string]string{"remote.test": stranger.Listener.Addr().String(),
					"openpgpkey.remote.test": stranger.Listener.Addr().String()}, 5*time.Second)
			} else {
				srv := newTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if strings.HasPrefix(r.Host, "openpgpkey.") || !strings.HasPrefix(r.URL.Path, "/.well-known/openpgpkey/hu/") {
						http.NotFound(w, r) // the direct method answers
						return
					}
					c.serve(w, r)
				}))
				timeout := 5 * time.Second
				if c.unreached {
					timeout = 100 * time.Millisecond
				}
				hc = dialing(map[string]string{"remote.test": srv.Listener.Addr().String(),
					"openpgpkey.remote.test": srv.Listener.Addr().String(),
					"evil.test":              evil.Listener.Addr().String()}, timeout)
			}
			r := &contactkeys.Remote{HTTP: hc}
			e, src, err := r.Lookup(ctx, addr, now)
			switch {
			case c.want != nil:
				if err != nil || src != "wkd" || pgpkey.Fingerprint(e) != pgpkey.Fingerprint(c.want) {
					t.Fatalf("got %v from %q, want the key: %v", e != nil, src, err)
				}
				if got := pgpkey.Addresses(e); len(got) != 1 || got[0] != addr {
					t.Fatalf("user IDs %v", got)
				}
			case c.unreached:
				if !errors.Is(err, contactkeys.ErrUnreachable) {
					t.Fatalf("want unreachable, got %v", err)
				}
			default:
				if !errors.Is(err, contactkeys.ErrNoKey) {
					t.Fatalf("want no key, got %v (%v)", err, e != nil)
				}
				t.Logf("refused: %v", err)
			}
			// Through Discovery with the good key kept at
			// provider_trust: a bad answer leaves it (refresh due).
			clock := now.Add(25 * time.Hour)
			disc := &contactkeys.Discovery{Keys: km, ProviderDomain: testenv.Domain, WKD: hc, Now: func() time.Time { return clock }}
			arm, _ := pgpkey.ArmorPublic(good)
			if _, err := km.Learn(addr, arm, contactkeys.ProviderTrust, "wkd"); err != nil {
				t.Fatal(err)
			}
			got, err := disc.Find(ctx, addr)
			if err != nil || pgpkey.Fingerprint(got) != pgpkey.Fingerprint(good) {
				t.Fatalf("the kept key was not used: %v", err)
			}
		})
	}
}

// TestRemoteNicknymThroughProviderJSON: a domain whose web host has no
// WKD but names its provider in provider.json: the key comes from that
// provider's nicknym (a real leapd, whose API the test roots do not
// vouch for: its CA is pinned by the fingerprint provider.json names),
// at provider_trust. A provider.json for another domain, or naming
// another CA, gives no key.
func TestRemoteNicknymThroughProviderJSON(t *testing.T) {
	ctx := context.Background()
	b := testenv.StartProvider(t, testenv.Options{Config: httpapi.Config{Domain: "remote.test"}})
	db := testenv.NewDaemon(t, testenv.DaemonOptions{})
	bob := testenv.NewUser(t, db, b, "bob@remote.test")
	bobKey, err := bob.Own.Current()
	if err != nil {
		t.Fatal(err)
	}
	pj := b.ProviderJSON()
	var serve atomic.Value
	serve.Store(pj)
	web := newTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/provider.json" || strings.HasPrefix(r.Host, "openpgpkey.") {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(serve.Load().(providerapi.ProviderJSON))
	}))
	hc := dialing(map[string]string{"remote.test": web.Listener.Addr().String(), "openpgpkey.remote.test": web.Listener.Addr().String()}, 10*time.Second)
	r := &contactkeys.Remote{HTTP: hc}
	e, src, err := r.Lookup(ctx, "Bob@Remote.test", time.Now())
	if err != nil || src != "nicknym" || pgpkey.Fingerprint(e) != pgpkey.Fingerprint(bobKey) {
		t.Fatalf("nicknym through provider.json: %q %v", src, err)
	}
	if _, _, err := r.Lookup(ctx, "nobody@remote.test", time.Now()); !errors.Is(err, contactkeys.ErrNoKey) {
		t.Fatalf("unknown user: %v", err)
	}
	// Through Discovery: kept at provider_trust.
	km := newManager(t)
	disc := &contactkeys.Discovery{Keys: km, ProviderDomain: testenv.Domain, WKD: hc}
	if _, err := disc.Find(ctx, "bob@remote.test"); err != nil {
		t.Fatal(err)
	}
	if k, err := km.Get("bob@remote.test"); err != nil || k.Level != contactkeys.ProviderTrust || k.Source != "nicknym" {
		t.Fatalf("kept %+v %v", k, err)
	}
	for name, alter := range map[string]func(*providerapi.ProviderJSON){
		"another domain": func(p *providerapi.ProviderJSON) { p.Domain = "evil.test" },
		"another CA": func(p *providerapi.ProviderJSON) {
			p.CACertFingerprint = "SHA256: " + strings.Repeat("ab", 32)
		},
		"plain http": func(p *providerapi.ProviderJSON) { p.APIURI = strings.Replace(p.APIURI, "https:", "http:", 1) },
		"version":    func(p *providerapi.ProviderJSON) { p.APIVersion = "2" },
	} {
		bad := pj
		alter(&bad)
		serve.Store(bad)
		if _, _, err := r.Lookup(ctx, "bob@remote.test", time.Now()); !errors.Is(err, contactkeys.ErrNoKey) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestDiscoveryRefreshAndLadder: a provider_trust key is used from the
// cache until RefreshTTL, then asked for again; a different key offered
// then is refused by the replacement rules (the kept one stays), an
// unreachable directory leaves the kept key in use, and a key learned
// from mail (weaker) is replaced by the directory's.
func TestDiscoveryRefreshAndLadder(t *testing.T) {
	ctx := context.Background()
	km := newManager(t)
	now := time.Now()
	const addr = "una@wkd.example"
	k1 := genKey(t, addr, now, 365*24*time.Hour)
	k2 := genKey(t, addr, now, 365*24*time.Hour)
	var serving atomic.Value
	serving.Store(binaryKey(t, k1))
	var hits atomic.Int32
	var down atomic.Bool
	srv := newTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/hu/") {
			http.NotFound(w, r)
			return
		}
		hits.Add(1)
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(serving.Load().([]byte))
	}))
	clock := now
	disc := &contactkeys.Discovery{Keys: km, ProviderDomain: testenv.Domain, WKD: dialingOnly(srv, 5*time.Second),
		Now: func() time.Time { return clock }}
	find := func(want *openpgp.Entity) {
		t.Helper()
		e, err := disc.Find(ctx, addr)
		if err != nil || pgpkey.Fingerprint(e) != pgpkey.Fingerprint(want) {
			t.Fatalf("find: %v", err)
		}
	}
	find(k1)
	if k, _ := km.Get(addr); k.Level != contactkeys.ProviderTrust || k.Source != "wkd" {
		t.Fatalf("kept %+v", k)
	}
	serving.Store(binaryKey(t, k2))
	clock = now.Add(23 * time.Hour)
	n := hits.Load()
	find(k1)
	if hits.Load() != n {
		t.Fatal("asked again before RefreshTTL")
	}
	clock = now.Add(25 * time.Hour)
	find(k1) // k2 offered at the same level, not certified by k1: refused
	if hits.Load() == n {
		t.Fatal("not asked again after RefreshTTL")
	}
	n = hits.Load()
	find(k1)
	if hits.Load() != n {
		t.Fatal("asked again right after a refresh")
	}
	// The directory down at the next refresh: the kept key is used.
	down.Store(true)
	clock = now.Add(50 * time.Hour)
	find(k1)
	if hits.Load() == n {
		t.Fatal("not asked at the second refresh")
	}
	// A weaker key learned from mail for another address is replaced
	// by the directory's once it is asked.
	down.Store(false)
	const addr2 = "ugo@wkd.example"
	mailKey := genKey(t, addr2, now, 365*24*time.Hour)
	dirKey := genKey(t, addr2, now, 365*24*time.Hour)
	arm, _ := pgpkey.ArmorPublic(mailKey)
	if _, err := km.Learn(addr2, arm, contactkeys.Unvouched, "autocrypt"); err != nil {
		t.Fatal(err)
	}
	serving.Store(binaryKey(t, dirKey))
	e, err := disc.Find(ctx, addr2)
	if err != nil || pgpkey.Fingerprint(e) != pgpkey.Fingerprint(dirKey) {
		t.Fatalf("the directory's key did not replace the unvouched one: %v", err)
	}
	if k, _ := km.Get(addr2); k.Level != contactkeys.ProviderTrust {
		t.Fatalf("level %v", k.Level)
	}
}
