package submission_test

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/bitmask-go/bitmask/internal/provider/submission"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/internal/testenv/dnssec"
)

// TestRelayThroughUnbound runs the relay against a real validating
// resolver (the system's unbound) for a DNSSEC-signed remote.test: with
// the right TLSA record the message is delivered over DANE-validated
// TLS; with the TLSA record wrong, STARTTLS stripped by a proxy, the MX
// answer forged in the signed zone, or MTA-STS in enforce with a wrong
// certificate, it is deferred and never delivered; a spoofed plain
// resolver changes nothing.
func TestRelayThroughUnbound(t *testing.T) {
	dnssec.NeedUnbound(t)
	srv := dnssec.NewServer(t)
	z, err := srv.AddZone(remote)
	if err != nil {
		t.Fatal(err)
	}
	z.MustAdd("@ 300 IN MX 10 mx", "mx 300 IN A 127.0.0.1")
	u := dnssec.StartUnbound(t, srv)

	cert := leaf(t, nil, remoteMX)
	other := leaf(t, nil, remoteMX)
	setTLSA := func(c *tls311) {
		z.Remove("_25._tcp.mx", dns.TypeTLSA)
		if c != nil {
			z.MustAdd("_25._tcp.mx 300 IN TLSA 3 1 1 " + c.hex)
		}
	}
	ca := newCA(t)

	for _, tc := range []struct {
		name     string
		tlsa     *tls311
		strip    bool
		forgeMX  bool
		sts      bool
		cert     *tls.Certificate
		spoofed  bool
		delivery bool
		status   string
	}{
		{name: "TLSA matches", tlsa: spki(cert), cert: cert, delivery: true},
		{name: "TLSA matches, plain resolver spoofed", tlsa: spki(cert), cert: cert, spoofed: true, delivery: true},
		{name: "TLSA wrong", tlsa: spki(other), cert: cert, status: "4.7.5"},
		{name: "STARTTLS stripped", tlsa: spki(cert), cert: cert, strip: true, status: "4.7.10"},
		{name: "no TLSA, MTA-STS enforce, wrong certificate", cert: cert, sts: true, status: "4.7.5"},
		// Last: unbound keeps a bogus answer for a while.
		{name: "MX answer forged", tlsa: spki(cert), cert: cert, forgeMX: true, status: "4.4.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setTLSA(tc.tlsa)
			z.Remove("@", dns.TypeMX)
			z.MustAdd("@ 300 IN MX 10 mx")
			if tc.forgeMX {
				z.Forge("@", dns.TypeMX)
			}
			r := startRemote(t, "127.0.0.1:0", tc.cert)
			port := r.port
			if tc.strip {
				ln := listen(t, "127.0.0.1:0")
				port = ln.Addr().(*net.TCPAddr).Port
				ln.Close()
				stripProxy(t, "127.0.0.1:"+strconv.Itoa(port), r.ln.Addr().String())
			}
			cfg := submission.Config{Port: port, DNSSECResolverAddr: u.Addr}
			zones := remoteZones()
			if tc.spoofed {
				zones = spoofedZones()
				startRemote(t, "127.0.0.2:"+strconv.Itoa(port), nil)
			}
			if tc.sts {
				zones = stsZones()
				cfg.MTASTSClient, cfg.RootCAs = stsServer(t, ca, enforce), ca.pool
			}
			w := newWorld(t, worldOptions{zones: zones, cfg: cfg})
			w.addUser("alice", true)
			if err := w.submit("alice", "alice@"+domain, []string{"dave@" + remote}, message("alice", "dave@"+remote, "unbound")); err != nil {
				t.Fatal(err)
			}
			if tc.delivery {
				testenv.Eventually(t, wait, "delivery", func() bool { return len(r.received()) == 1 })
				if !r.received()[0].tls {
					t.Fatal("delivered without TLS")
				}
				if p, _ := w.deliveredWith(t); p != "dane" {
					t.Errorf("delivered under policy %q, want dane", p)
				}
				return
			}
			st := w.waitRetried(t)
			if st != tc.status {
				t.Errorf("status %q (%s), want %q", st, w.queue()[0].Recipients[0].Diagnostic, tc.status)
			}
			if n := r.mailCount(); n != 0 {
				t.Fatalf("MAIL sent %d times", n)
			}
			if tc.forgeMX && !strings.Contains(w.queue()[0].Recipients[0].Diagnostic, "SERVFAIL") {
				t.Errorf("diagnostic %q does not say the resolver refused the answer", w.queue()[0].Recipients[0].Diagnostic)
			}
		})
	}
}

type tls311 struct{ hex string }

// spki is the DANE-EE 3 1 1 association data of cert.
func spki(cert *tls.Certificate) *tls311 {
	sum := sha256.Sum256(cert.Leaf.RawSubjectPublicKeyInfo)
	return &tls311{hex: hex.EncodeToString(sum[:])}
}
