package submission

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foxcpp/go-mockdns"
	"github.com/miekg/dns"
)

func TestParseSTSPolicy(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		mode       stsMode
		mx         []string
		maxAge     time.Duration
		err        bool
	}{
		{name: "enforce CRLF", body: "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n",
			mode: stsEnforce, mx: []string{"mx1.example.com", "*.example.net"}, maxAge: 7 * 24 * time.Hour},
		{name: "testing LF, unknown key", body: "version: STSv1\nmode: testing\nmx: MX.Example.com.\nmax_age: 86400\nfoo: bar\n",
			mode: stsTesting, mx: []string{"mx.example.com"}, maxAge: 24 * time.Hour},
		{name: "none without mx", body: "version: STSv1\nmode: none\nmax_age: 60", mode: stsNone, maxAge: time.Minute},
		{name: "max_age capped", body: "version: STSv1\nmode: none\nmax_age: 9999999999", mode: stsNone, maxAge: stsMaxAge * time.Second},
		{name: "no version", body: "mode: enforce\nmx: a.example\nmax_age: 1", err: true},
		{name: "wrong version", body: "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1", err: true},
		{name: "bad mode", body: "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1", err: true},
		{name: "no max_age", body: "version: STSv1\nmode: enforce\nmx: a.example", err: true},
		{name: "bad max_age", body: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1", err: true},
		{name: "enforce without mx", body: "version: STSv1\nmode: enforce\nmax_age: 1", err: true},
		{name: "garbage", body: "<html>not a policy</html>", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseSTSPolicy(tc.body)
			if tc.err {
				if err == nil {
					t.Fatalf("parsed %+v", p)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.mode != tc.mode || p.maxAge != tc.maxAge || strings.Join(p.mx, ",") != strings.Join(tc.mx, ",") {
				t.Fatalf("got %+v", p)
			}
		})
	}
}

func TestMatchMX(t *testing.T) {
	patterns := []string{"mail.example.com", "*.example.net"}
	for host, want := range map[string]bool{
		"mail.example.com":   true,
		"MAIL.example.com.":  true,
		"mx.example.com":     false,
		"mx1.example.net":    true,
		"a.b.example.net":    false,
		"example.net":        false,
		".example.net":       false,
		"mx1.example.net.nz": false,
	} {
		if got := matchMX(patterns, host); got != want {
			t.Errorf("matchMX(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestMTASTSCache: a policy is fetched once and then served from the
// cache while the TXT id is unchanged, kept when the TXT record or the
// fetch fails, and fetched again when the id changes or it expires.
func TestMTASTSCache(t *testing.T) {
	var fetches atomic.Int32
	policy := atomic.Value{}
	policy.Store("version: STSv1\nmode: enforce\nmx: mx.remote.test\nmax_age: 3600\n")
	fail := atomic.Bool{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, policy.Load().(string))
	}))
	defer srv.Close()
	client := srv.Client()
	client.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Listener.Addr().String())
	}
	client.Transport.(*http.Transport).TLSClientConfig.InsecureSkipVerify = true // the test server's own certificate

	zones := map[string]mockdns.Zone{"_mta-sts.remote.test.": {TXT: []string{"v=STSv1; id=1"}}}
	res := &switchResolver{}
	res.r.Store(&mockdns.Resolver{Zones: zones})
	now := time.Now()
	m := newMTASTS(res, client, nil, slog.New(slog.DiscardHandler))
	m.now = func() time.Time { return now }
	ctx := context.Background()
	get := func() *stsPolicy { return m.policy(ctx, "remote.test") }

	if p := get(); p == nil || p.mode != stsEnforce {
		t.Fatalf("policy %+v", p)
	}
	get()
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches with an unchanged id, want 1", n)
	}
	// The TXT record vanishes (an attacker blocks it): the cached
	// policy still applies.
	res.r.Store(&mockdns.Resolver{Zones: map[string]mockdns.Zone{}})
	if p := get(); p == nil || p.mode != stsEnforce {
		t.Fatal("cached policy dropped when the TXT record went away")
	}
	// A new id with a failing fetch: the cached policy applies.
	res.r.Store(&mockdns.Resolver{Zones: map[string]mockdns.Zone{"_mta-sts.remote.test.": {TXT: []string{"v=STSv1; id=2"}}}})
	fail.Store(true)
	if p := get(); p == nil || p.mode != stsEnforce {
		t.Fatal("cached policy dropped when a refetch failed")
	}
	// The fetch works again: the new policy replaces the old.
	fail.Store(false)
	policy.Store("version: STSv1\nmode: none\nmax_age: 3600\n")
	if p := get(); p == nil || p.mode != stsNone {
		t.Fatalf("new policy not taken: %+v", p)
	}
	// Expired, the TXT record gone: no policy.
	res.r.Store(&mockdns.Resolver{Zones: map[string]mockdns.Zone{}})
	now = now.Add(2 * time.Hour)
	if p := get(); p != nil {
		t.Fatalf("expired policy still applies: %+v", p)
	}
	// Redirects are not followed.
	if err := m.client.CheckRedirect(nil, nil); err == nil {
		t.Fatal("the policy client follows redirects")
	}
}

type switchResolver struct {
	r atomic.Pointer[mockdns.Resolver]
}

func (s *switchResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return s.r.Load().LookupMX(ctx, name)
}
func (s *switchResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	return s.r.Load().LookupIPAddr(ctx, host)
}
func (s *switchResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return s.r.Load().LookupTXT(ctx, name)
}

func mkCert(t *testing.T, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, ca bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		BasicConstraintsValid: true, IsCA: ca,
	}
	if !ca {
		tmpl.DNSNames = []string{name}
	} else {
		tmpl.KeyUsage = x509.KeyUsageCertSign
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func TestVerifyDANE(t *testing.T) {
	root, rootKey := mkCert(t, "root", nil, nil, true)
	inter, interKey := mkCert(t, "intermediate", root, rootKey, true)
	mx, _ := mkCert(t, "mx.example.org", inter, interKey, false)
	self, _ := mkCert(t, "self", nil, nil, false)
	chain := []*x509.Certificate{mx, inter, root}

	sha := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	sha5 := func(b []byte) string { s := sha512.Sum512(b); return hex.EncodeToString(s[:]) }
	rec := func(u, s, m uint8, data string) *dns.TLSA {
		return &dns.TLSA{Usage: u, Selector: s, MatchingType: m, Certificate: data}
	}
	names := []string{"mx.example.org", "example.org"}
	for _, tc := range []struct {
		name  string
		certs []*x509.Certificate
		recs  []*dns.TLSA
		names []string
		ok    bool
	}{
		{"3 1 1", chain, []*dns.TLSA{rec(3, 1, 1, sha(mx.RawSubjectPublicKeyInfo))}, names, true},
		{"3 0 1", chain, []*dns.TLSA{rec(3, 0, 1, sha(mx.Raw))}, names, true},
		{"3 1 2", chain, []*dns.TLSA{rec(3, 1, 2, sha5(mx.RawSubjectPublicKeyInfo))}, names, true},
		{"3 0 0", chain, []*dns.TLSA{rec(3, 0, 0, hex.EncodeToString(mx.Raw))}, names, true},
		{"3 1 1 of a self-signed cert, any name", []*x509.Certificate{self}, []*dns.TLSA{rec(3, 1, 1, sha(self.RawSubjectPublicKeyInfo))}, names, true},
		{"3 1 1 of another key", chain, []*dns.TLSA{rec(3, 1, 1, sha(self.RawSubjectPublicKeyInfo))}, names, false},
		{"3 1 1 of the intermediate", chain, []*dns.TLSA{rec(3, 1, 1, sha(inter.RawSubjectPublicKeyInfo))}, names, false},
		{"2 0 1 root in chain", chain, []*dns.TLSA{rec(2, 0, 1, sha(root.Raw))}, names, true},
		{"2 1 1 intermediate", chain, []*dns.TLSA{rec(2, 1, 1, sha(inter.RawSubjectPublicKeyInfo))}, names, true},
		{"2 0 1 root not sent", chain[:2], []*dns.TLSA{rec(2, 0, 1, sha(root.Raw))}, names, false},
		{"2 0 1 wrong name", chain, []*dns.TLSA{rec(2, 0, 1, sha(root.Raw))}, []string{"other.example"}, false},
		{"mismatch then match", chain, []*dns.TLSA{rec(3, 1, 1, "00"), rec(2, 0, 1, sha(root.Raw))}, names, true},
		{"no certificates", nil, []*dns.TLSA{rec(3, 1, 1, sha(mx.RawSubjectPublicKeyInfo))}, names, false},
		{"bad hex", chain, []*dns.TLSA{rec(3, 1, 1, "zz")}, names, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verifyDANE(tc.certs, tc.recs, tc.names)
			if (err == nil) != tc.ok {
				t.Fatalf("verifyDANE = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestReadReply(t *testing.T) {
	for _, tc := range []struct {
		in     string
		code   int
		status string
		text   string
		err    bool
	}{
		{in: "250 OK\r\n", code: 250, text: "OK"},
		{in: "550 5.1.1 No such user\r\n", code: 550, status: "5.1.1", text: "No such user"},
		{in: "451-4.3.0 first\r\n451-4.3.0 second\r\n451 4.3.0 third\r\n", code: 451, status: "4.3.0", text: "first; second; third"},
		{in: "550 4.1.1 class mismatch\r\n", code: 550, text: "4.1.1 class mismatch"},
		{in: "250-mx.example hello\r\n250-PIPELINING\r\n250 STARTTLS\r\n", code: 250, text: "mx.example hello; PIPELINING; STARTTLS"},
		{in: "354\r\n", code: 354},
		{in: "25 short\r\n", err: true},
		{in: "abc text\r\n", err: true},
		{in: "250-a\r\n550 b\r\n", err: true},
		{in: "999 no\r\n", err: true},
		{in: "220 " + strings.Repeat("x", 5000) + "\r\n", err: true},
		{in: strings.Repeat("250-x\r\n", 200) + "250 x\r\n", err: true},
	} {
		c := &smtpConn{conn: nopConn{}, br: bufio.NewReader(strings.NewReader(tc.in))}
		r, err := c.readReply(time.Second)
		if tc.err {
			if err == nil {
				t.Errorf("%q: parsed %+v", tc.in, r)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if r.code != tc.code || r.status != tc.status || r.text != tc.text {
			t.Errorf("%q: got %d %q %q", tc.in, r.code, r.status, r.text)
		}
	}
}

type nopConn struct{ net.Conn }

func (nopConn) SetReadDeadline(time.Time) error  { return nil }
func (nopConn) SetWriteDeadline(time.Time) error { return nil }

func TestBackoff(t *testing.T) {
	s := &Submission{cfg: Config{RetryBase: time.Minute, RetryMax: time.Hour}}
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour}
	for i, w := range want {
		if got := s.backoff(i + 1); got != w {
			t.Errorf("after attempt %d: %v, want %v", i+1, got, w)
		}
	}
	if got := s.backoff(10000); got != time.Hour {
		t.Errorf("after many attempts: %v", got)
	}
}

func TestFieldsToSign(t *testing.T) {
	msg := []byte("Received: x\r\nFrom: a@b\r\nTo: c@d\r\nTo: e@f\r\nSubject: s\r\nX-Other: y\r\nautocrypt: addr=a@b; keydata=AA\r\n\r\nFrom: not a header\r\n")
	got := strings.Join(fieldsToSign(msg), ",")
	if want := "From,Subject,To,To,Autocrypt"; got != want {
		t.Fatalf("signed fields %s, want %s", got, want)
	}
	if got := strings.Join(fieldsToSign([]byte("Subject: no from\r\n\r\n")), ","); got != "From,Subject" {
		t.Fatalf("without From: %s", got)
	}
}

func TestNullMXAndImplicitMX(t *testing.T) {
	s := &Submission{cfg: Config{Resolver: &mockdns.Resolver{Zones: map[string]mockdns.Zone{
		"null.test.":     {MX: []net.MX{{Host: ".", Pref: 0}}},
		"implicit.test.": {A: []string{"192.0.2.1"}},
		"prefs.test.":    {MX: []net.MX{{Host: "b.prefs.test.", Pref: 20}, {Host: "a.prefs.test.", Pref: 10}, {Host: "c.prefs.test.", Pref: 30}}},
		"temp.test.":     {Err: &net.DNSError{Err: "server failure", Name: "temp.test", IsTemporary: true}},
	}}}}
	ctx := context.Background()
	if _, err := s.mxHosts(ctx, "null.test"); err == nil || !err.perm || err.status != "5.1.10" {
		t.Errorf("null MX: %v", err)
	}
	if h, err := s.mxHosts(ctx, "implicit.test"); err != nil || len(h) != 1 || h[0] != "implicit.test" {
		t.Errorf("implicit MX: %v %v", h, err)
	}
	if h, err := s.mxHosts(ctx, "prefs.test"); err != nil || strings.Join(h, " ") != "a.prefs.test b.prefs.test c.prefs.test" {
		t.Errorf("by preference: %v %v", h, err)
	}
	if _, err := s.mxHosts(ctx, "nonexistent.test"); err == nil || !err.perm {
		t.Errorf("no such domain: %v", err)
	}
	if _, err := s.mxHosts(ctx, "temp.test"); err == nil || err.perm {
		t.Errorf("DNS failure: %v", err)
	}
	var de *deliveryError
	if !errors.As(error(tempErr("4.0.0", "x")), &de) {
		t.Fatal("deliveryError is not an error")
	}
}
