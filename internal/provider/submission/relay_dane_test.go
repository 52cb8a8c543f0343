package submission_test

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/foxcpp/go-mockdns"
	"github.com/miekg/dns"

	"github.com/bitmask-go/bitmask/internal/provider/submission"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// spoofedZones is what an attacker makes a plain resolver answer:
// remote.test's mail goes to his host on 127.0.0.2.
func spoofedZones() map[string]mockdns.Zone {
	return map[string]mockdns.Zone{
		remote + ".":    {MX: []net.MX{{Host: "mx.evil.test.", Pref: 10}}},
		"mx.evil.test.": {A: []string{"127.0.0.2"}},
		remoteMX + ".":  {A: []string{"127.0.0.2"}},
	}
}

// TestSpoofedResolverCannotRedirect: the plain resolver is spoofed
// (MX and address point at the attacker's server, which offers no
// STARTTLS and takes everything); the validating resolver has the
// domain's secure MX RRset and TLSA record. The relay delivers to the
// real MX over DANE-validated TLS, and the attacker sees no MAIL.
func TestSpoofedResolverCannotRedirect(t *testing.T) {
	cert := leaf(t, nil, remoteMX)
	r := startRemote(t, "127.0.0.1:0", cert)
	evil := startRemote(t, "127.0.0.2:"+strconv.Itoa(r.port), nil)
	w := newWorld(t, worldOptions{zones: spoofedZones(), cfg: submission.Config{
		Port: r.port, DNSSECResolverAddr: secureZone(t, tlsa311(cert)).addr,
	}})
	w.addUser("alice", true)
	if err := w.submit("alice", "alice@"+domain, []string{"dave@" + remote}, message("alice", "dave@"+remote, "spoofed")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, "delivery", func() bool { return len(r.received()) == 1 })
	if !r.received()[0].tls {
		t.Fatal("delivered without TLS")
	}
	if p, _ := w.deliveredWith(t); p != "dane" {
		t.Errorf("delivered under policy %q, want dane", p)
	}
	testenv.Eventually(t, wait, "an empty queue", func() bool { return len(w.queue()) == 0 })
	if n := evil.mailCount(); n != 0 {
		t.Fatalf("the spoofed MX got MAIL %d times", n)
	}
}

// TestDANEStrippedSTARTTLS: a proxy on the path removes STARTTLS from
// the secure MX's EHLO reply. The relay does not send in plaintext: it
// defers, and at expiry it returns the message to its sender.
func TestDANEStrippedSTARTTLS(t *testing.T) {
	cert := leaf(t, nil, remoteMX)
	r := startRemote(t, "127.0.0.1:0", cert)
	ln := listen(t, "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	stripProxy(t, "127.0.0.1:"+strconv.Itoa(port), r.ln.Addr().String())
	w := newWorld(t, worldOptions{zones: spoofedZones(), cfg: submission.Config{
		Port: port, DNSSECResolverAddr: secureZone(t, tlsa311(cert)).addr,
		GiveUp: 600 * time.Millisecond, RetryMax: 100 * time.Millisecond,
	}})
	w.addUser("alice", true)
	if err := w.submit("alice", "alice@"+domain, []string{"dave@" + remote}, message("alice", "dave@"+remote, "stripped")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, "a bounce", func() bool { return len(w.incoming("alice")) == 1 })
	testenv.Eventually(t, wait, "an empty queue", func() bool { return len(w.queue()) == 0 })
	if n := r.mailCount(); n != 0 {
		t.Fatalf("MAIL sent %d times without the STARTTLS DANE requires", n)
	}
	dsn := w.incoming("alice")[0]
	for _, want := range []string{"Final-Recipient: rfc822; dave@" + remote + "\r\n", "Status: 4.4.7\r\n", "does not offer STARTTLS, which the dane policy"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("DSN lacks %q:\n%s", want, dsn)
		}
	}
}

// TestDANEManyTLSARecords: a TLSA RRset of 1,000 records (over TCP:
// too large for UDP) with the matching one last is checked in bounded
// time and delivers; one of 1,001 is refused with a clear error and
// the message stays queued.
func TestDANEManyTLSARecords(t *testing.T) {
	cert := leaf(t, nil, remoteMX)
	junk := func(n int) []*dns.TLSA {
		out := make([]*dns.TLSA, n)
		for i := range out {
			b := make([]byte, 32)
			_, _ = rand.Read(b)
			out[i] = &dns.TLSA{Usage: uint8(2 + i%2), Selector: 1, MatchingType: 1, Certificate: hex.EncodeToString(b)}
		}
		return out
	}
	t.Run("1000, the last matches", func(t *testing.T) {
		r := startRemote(t, "127.0.0.1:0", cert)
		w := newWorld(t, worldOptions{cfg: submission.Config{
			Port: r.port, DNSSECResolverAddr: secureZone(t, append(junk(999), tlsa311(cert))...).addr,
		}})
		w.addUser("alice", true)
		start := time.Now()
		if err := w.submit("alice", "alice@"+domain, []string{"dave@" + remote}, message("alice", "dave@"+remote, "many")); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, wait, "delivery", func() bool { return len(r.received()) == 1 })
		t.Logf("submitted and delivered with 1000 TLSA records in %v", time.Since(start))
		if p, _ := w.deliveredWith(t); p != "dane" {
			t.Errorf("delivered under policy %q, want dane", p)
		}
	})
	t.Run("1001", func(t *testing.T) {
		r := startRemote(t, "127.0.0.1:0", cert)
		w := newWorld(t, worldOptions{cfg: submission.Config{
			Port: r.port, DNSSECResolverAddr: secureZone(t, append(junk(1000), tlsa311(cert))...).addr,
		}})
		w.addUser("alice", true)
		if err := w.submit("alice", "alice@"+domain, []string{"dave@" + remote}, message("alice", "dave@"+remote, "toomany")); err != nil {
			t.Fatal(err)
		}
		w.waitRetried(t)
		rc := w.queue()[0].Recipients[0]
		if rc.Status != "4.7.5" || !strings.Contains(rc.Diagnostic, "1001 TLSA records, more than the 1000") {
			t.Errorf("recipient %+v, want a clear error", rc)
		}
		if n := r.mailCount(); n != 0 {
			t.Fatalf("MAIL sent %d times", n)
		}
	})
}
