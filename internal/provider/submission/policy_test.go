package submission_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/foxcpp/go-mockdns"
	"github.com/miekg/dns"

	"github.com/bitmask-go/bitmask/internal/provider/submission"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// stsServer serves policy at https://mta-sts.remote.test/ under a
// certificate from ca; client reaches it whatever the host name.
func stsServer(t *testing.T, ca *testCA, policy string) *http.Client {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "mta-sts."+remote || r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, policy)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{*leaf(t, ca, "mta-sts."+remote)}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
}

func stsZones() map[string]mockdns.Zone {
	z := remoteZones()
	z["_mta-sts."+remote+"."] = mockdns.Zone{TXT: []string{"v=STSv1; id=20250101T000000"}}
	return z
}

const enforce = "version: STSv1\r\nmode: enforce\r\nmx: " + remoteMX + "\r\nmax_age: 86400\r\n"

// waitRetried waits until the one queued item failed at least twice
// and returns the recipient's last status.
func (w *world) waitRetried(t *testing.T) string {
	t.Helper()
	testenv.Eventually(t, wait, "retries", func() bool {
		q := w.queue()
		return len(q) == 1 && q[0].Attempts >= 2
	})
	q := w.queue()
	if r := q[0].Recipients[0]; r.State != "" {
		t.Fatalf("recipient state %q, want still pending: %+v", r.State, r)
	}
	return q[0].Recipients[0].Status
}

func TestMTASTS(t *testing.T) {
	ca := newCA(t)

	t.Run("enforce, bad then good certificate", func(t *testing.T) {
		r := startRemote(t, "127.0.0.1:0", leaf(t, nil, remoteMX)) // self-signed
		w := newWorld(t, worldOptions{zones: stsZones(), cfg: submission.Config{
			Port: r.port, MTASTSClient: stsServer(t, ca, enforce), RootCAs: ca.pool,
		}})
		w.addUser("alice", true)
		if err := w.submit("alice", "alice@"+domain, []string{"dave@" + remote}, message("alice", "dave@"+remote, "sts")); err != nil {
			t.Fatal(err)
		}
		if st := w.waitRetried(t); st != "4.7.5" {
			t.Errorf("status %q, want 4.7.5", st)
		}
		if n := r.mailCount(); n != 0 {
			t.Fatalf("the relay sent MAIL %d times to a server it could not authenticate", n)
		}
		r.cert.Store(leaf(t, ca, remoteMX))
		testenv.Eventually(t, wait, "delivery", func() bool { return len(r.received()) == 1 })
		if !r.received()[0].tls {
			t.Fatal("delivered without TLS")
		}
		if p, _ := w.deliveredWith(t); p != "mta-sts" {
			t.Errorf("delivered under policy %q, want mta-sts", p)
		}
		testenv.Eventually(t, wait, "an empty queue", func() bool { return len(w.queue()) == 0 })
	})

	t.Run("enforce, no STARTTLS", func(t *testing.T) {
		r := startRemote(t, "127.0.0.1:0", nil)
		w := newWorld(t, worldOptions{zones: stsZones(), cfg: submission.Config{
			Port: r.port, MTASTSClient: stsServer(t, ca, enforce), RootCAs: ca.pool,
		}})
		w.addUser("alice", true)
		if err := w.submit("alice", "alice@"+domain, []string{"dave@" + remote}, message("alice", "dave@"+remote, "plain")); err != nil {
			t.Fatal(err)
		}
		if st := w.waitRetried(t); st != "4.7.10" {
			t.Errorf("status %q, want 4.7.10", st)
		}
		if n := r.mailCount(); n != 0 {
			t.Fatalf("plaintext MAIL sent %d times under an enforced policy", n)
		}
	})

	t.Run("enforce, MX not in policy", func(t *testing.T) {
		r := startRemote(t, "127.0.0.1:0", leaf(t, ca, remoteMX))
		policy := strings.Replace(enforce, "mx: "+remoteMX, "mx: *.other.test", 1)
		w := newWorld(t, worldOptions{zones: stsZones(), cfg: submission.Config{
			Port: r.port, MTASTSClient: stsServer(t, ca, policy), RootCAs: ca.pool,
		}})
		w.addUser("alice", true)
		if err := w.submit("alice", "alice@"+domain, []string{"dave@" + remote}, message("alice", "dave@"+remote, "notlisted")); err != nil {
			t.Fatal(err)
		}
		w.waitRetried(t)
		if n := r.mailCount(); n != 0 {
			t.Fatalf("MAIL sent %d times to an MX the policy does not list", n)
		}
	})

	t.Run("testing mode", func(t *testing.T) {
		r := startRemote(t, "127.0.0.1:0", leaf(t, nil, remoteMX))
		policy := strings.Replace(enforce, "enforce", "testing", 1)
		w := newWorld(t, worldOptions{zones: stsZones(), cfg: submission.Config{
			Port: r.port, MTASTSClient: stsServer(t, ca, policy), RootCAs: ca.pool,
		}})
		w.addUser("alice", true)
		if err := w.submit("alice", "alice@"+domain, []string{"dave@" + remote}, message("alice", "dave@"+remote, "testing")); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, wait, "delivery", func() bool { return len(r.received()) == 1 })
		if p, _ := w.deliveredWith(t); p != "opportunistic" {
			t.Errorf("delivered under policy %q, want opportunistic", p)
		}
	})
}

// daneServer is a validating resolver stand-in on loopback: a miekg/dns
// server (go-mockdns) that sets the AD bit when ad is true.
func daneServer(t *testing.T, ad bool, tlsa ...*dns.TLSA) string {
	t.Helper()
	name := "_25._tcp." + remoteMX + "."
	var rrs []dns.RR
	for _, r := range tlsa {
		r.Hdr = dns.RR_Header{Name: name, Rrtype: dns.TypeTLSA, Class: dns.ClassINET, Ttl: 300}
		rrs = append(rrs, r)
	}
	zones := map[string]mockdns.Zone{
		remote + ".":   {AD: ad, MX: []net.MX{{Host: remoteMX + ".", Pref: 10}}},
		remoteMX + ".": {AD: ad, A: []string{"127.0.0.1"}},
		name:           {AD: ad, Misc: map[dns.Type][]dns.RR{dns.Type(dns.TypeTLSA): rrs}},
	}
	srv, err := mockdns.NewServerWithLogger(zones, log.New(io.Discard, "", 0), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.LocalAddr().String()
}

// tlsa311 pins cert's public key (DANE-EE, SPKI, SHA-256).
func tlsa311(cert *tls.Certificate) *dns.TLSA {
	sum := sha256.Sum256(cert.Leaf.RawSubjectPublicKeyInfo)
	return &dns.TLSA{Usage: 3, Selector: 1, MatchingType: 1, Certificate: hex.EncodeToString(sum[:])}
}

func TestDANE(t *testing.T) {
	ca := newCA(t)
	cert := leaf(t, nil, "not-the-mx-name.example") // self-signed: only DANE can vouch for it
	other := leaf(t, nil, remoteMX)
	caSum := sha256.Sum256(ca.cert.Raw)
	for _, tc := range []struct {
		name      string
		ad        bool
		tlsa      []*dns.TLSA
		cert      *tls.Certificate
		delivered bool
		policy    string
		status    string
	}{
		{name: "AD, DANE-EE 3 1 1 matches", ad: true, tlsa: []*dns.TLSA{tlsa311(cert)}, cert: cert, delivered: true, policy: "dane"},
		{name: "AD, DANE-EE 3 1 1 does not match", ad: true, tlsa: []*dns.TLSA{tlsa311(other)}, cert: cert, status: "4.7.5"},
		{name: "AD, DANE-EE 3 0 1 matches", ad: true, cert: cert, delivered: true, policy: "dane", tlsa: []*dns.TLSA{func() *dns.TLSA {
			sum := sha256.Sum256(cert.Leaf.Raw)
			return &dns.TLSA{Usage: 3, Selector: 0, MatchingType: 1, Certificate: hex.EncodeToString(sum[:])}
		}()}},
		{name: "AD, DANE-TA 2 0 1 matches", ad: true, cert: leaf(t, ca, remoteMX), delivered: true, policy: "dane",
			tlsa: []*dns.TLSA{{Usage: 2, Selector: 0, MatchingType: 1, Certificate: hex.EncodeToString(caSum[:])}}},
		{name: "AD, DANE-TA 2 0 1, wrong name", ad: true, cert: leaf(t, ca, "elsewhere.example"), status: "4.7.5",
			tlsa: []*dns.TLSA{{Usage: 2, Selector: 0, MatchingType: 1, Certificate: hex.EncodeToString(caSum[:])}}},
		{name: "AD, no STARTTLS", ad: true, tlsa: []*dns.TLSA{tlsa311(cert)}, status: "4.7.10"},
		{name: "no AD: DANE ignored", ad: false, tlsa: []*dns.TLSA{tlsa311(other)}, cert: cert, delivered: true, policy: "opportunistic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRemote(t, "127.0.0.1:0", tc.cert)
			w := newWorld(t, worldOptions{cfg: submission.Config{
				Port: r.port, DNSSECResolverAddr: daneServer(t, tc.ad, tc.tlsa...),
			}})
			w.addUser("alice", true)
			if err := w.submit("alice", "alice@"+domain, []string{"dave@" + remote}, message("alice", "dave@"+remote, "dane")); err != nil {
				t.Fatal(err)
			}
			if tc.delivered {
				testenv.Eventually(t, wait, "delivery", func() bool { return len(r.received()) == 1 })
				if tc.cert != nil && !r.received()[0].tls {
					t.Fatal("delivered without TLS")
				}
				if p, _ := w.deliveredWith(t); p != tc.policy {
					t.Errorf("delivered under policy %q, want %q", p, tc.policy)
				}
				testenv.Eventually(t, wait, "an empty queue", func() bool { return len(w.queue()) == 0 })
				return
			}
			if st := w.waitRetried(t); st != tc.status {
				t.Errorf("status %q, want %q", st, tc.status)
			}
			if n := r.mailCount(); n != 0 {
				t.Fatalf("MAIL sent %d times against the DANE records", n)
			}
		})
	}
}

// TestDANEBeforeMTASTS: where both apply, DANE decides (RFC 8461 §2):
// a certificate no WebPKI root vouches for, pinned by TLSA, is fine.
func TestDANEBeforeMTASTS(t *testing.T) {
	ca := newCA(t)
	cert := leaf(t, nil, remoteMX)
	r := startRemote(t, "127.0.0.1:0", cert)
	w := newWorld(t, worldOptions{zones: stsZones(), cfg: submission.Config{
		Port: r.port, MTASTSClient: stsServer(t, ca, enforce), RootCAs: ca.pool,
		DNSSECResolverAddr: daneServer(t, true, tlsa311(cert)),
	}})
	w.addUser("alice", true)
	if err := w.submit("alice", "alice@"+domain, []string{"dave@" + remote}, message("alice", "dave@"+remote, "both")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, "delivery", func() bool { return len(r.received()) == 1 })
	if p, _ := w.deliveredWith(t); p != "dane" {
		t.Errorf("delivered under policy %q, want dane", p)
	}
}

func TestDANEResolverMustBeLoopback(t *testing.T) {
	p := startProvider(t, testenv.Options{})
	_, err := submission.New(p, p.Store, nil, submission.Config{DataDir: p.Dir, DNSSECResolverAddr: "192.0.2.53:53", Logger: testenv.Logger(t)})
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("a non-loopback DNSSEC resolver was accepted: %v", err)
	}
}
