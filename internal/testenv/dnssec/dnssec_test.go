package dnssec

import (
	"context"
	"testing"

	"github.com/miekg/dns"
)

// TestUnboundValidates proves the zones served here are what a real
// validating resolver accepts as secure (answers, NODATA, NXDOMAIN, an
// empty non-terminal) and that forged and stripped signatures are
// refused, so tests built on this package prove DNSSEC, not its look.
func TestUnboundValidates(t *testing.T) {
	srv := NewServer(t)
	z, err := srv.AddZone("a.test")
	if err != nil {
		t.Fatal(err)
	}
	z.MustAdd(
		"@ IN MX 10 mx",
		"mx IN A 127.0.0.2",
		"_25._tcp.mx IN TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"forged IN A 127.0.0.3",
		"stripped IN A 127.0.0.4",
	)
	z.Forge("forged", dns.TypeA)
	z.Strip("stripped", dns.TypeA)
	b, err := srv.AddZone("b.test")
	if err != nil {
		t.Fatal(err)
	}
	b.MustAdd("@ IN MX 10 mx.b.test.", "mx IN A 127.0.0.5")
	u := StartUnbound(t, srv)
	ctx := context.Background()

	for _, c := range []struct {
		name  string
		typ   uint16
		rcode int
		ad    bool
		n     int // answer records of the type
	}{
		{"a.test", dns.TypeMX, dns.RcodeSuccess, true, 1},
		{"mx.a.test", dns.TypeA, dns.RcodeSuccess, true, 1},
		{"_25._tcp.mx.a.test", dns.TypeTLSA, dns.RcodeSuccess, true, 1},
		{"mx.a.test", dns.TypeTLSA, dns.RcodeSuccess, true, 0},            // NODATA
		{"_tcp.mx.a.test", dns.TypeTLSA, dns.RcodeSuccess, true, 0},       // empty non-terminal
		{"_25._tcp.mx.b.test", dns.TypeTLSA, dns.RcodeNameError, true, 0}, // NXDOMAIN
		{"nothere.a.test", dns.TypeA, dns.RcodeNameError, true, 0},
		{"zzz.a.test", dns.TypeA, dns.RcodeNameError, true, 0}, // after the last name
		{"b.test", dns.TypeMX, dns.RcodeSuccess, true, 1},
		{"forged.a.test", dns.TypeA, dns.RcodeServerFailure, false, 0},
		{"stripped.a.test", dns.TypeA, dns.RcodeServerFailure, false, 0},
	} {
		r, err := u.Query(ctx, c.name, c.typ)
		if err != nil {
			t.Fatalf("%s %s: %v", c.name, dns.TypeToString[c.typ], err)
		}
		n := 0
		for _, rr := range r.Answer {
			if rr.Header().Rrtype == c.typ {
				n++
			}
		}
		if r.Rcode != c.rcode || r.AuthenticatedData != c.ad || n != c.n {
			t.Errorf("%s %s: rcode %s AD %v answers %d, want %s AD %v answers %d\n%s",
				c.name, dns.TypeToString[c.typ], dns.RcodeToString[r.Rcode], r.AuthenticatedData, n,
				dns.RcodeToString[c.rcode], c.ad, c.n, u.Log())
		}
	}

	// A forged record made right again validates at the next lookup:
	// unbound keeps no bogus answer (val-bogus-ttl 0).
	z.Remove("forged", dns.TypeA)
	z.MustAdd("forged IN A 127.0.0.3")
	if r, err := u.Query(ctx, "forged.a.test", dns.TypeA); err != nil || r.Rcode != dns.RcodeSuccess || !r.AuthenticatedData {
		t.Fatalf("forged record repaired: %v %v", r, err)
	}

	// A change is seen at the next lookup (nothing cached).
	z.Remove("mx", dns.TypeA)
	z.MustAdd("mx IN A 127.0.0.9")
	r, err := u.Query(ctx, "mx.a.test", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) == 0 || r.Answer[0].(*dns.A).A.String() != "127.0.0.9" || !r.AuthenticatedData {
		t.Fatalf("after the change: %v", r)
	}
}

func TestCanonicalOrder(t *testing.T) {
	// RFC 4034 §6.1's example order.
	want := []string{"example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.",
		"zABC.a.EXAMPLE.", "z.example.", `\001.z.example.`, "*.z.example.", `\200.z.example.`}
	for i := 0; i+1 < len(want); i++ {
		if !canonicalLess(want[i], want[i+1]) || canonicalLess(want[i+1], want[i]) {
			t.Errorf("%s should sort before %s", want[i], want[i+1])
		}
	}
}
