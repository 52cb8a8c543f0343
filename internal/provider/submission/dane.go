package submission

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/miekg/dns"

	"github.com/bitmask-go/bitmask/internal/provider/smtpserver"
)

// DANE for SMTP (RFC 7672). A domain whose DNS is signed (DNSSEC) can
// publish, next to each MX host, TLSA records (RFC 6698) at
// _25._tcp.MXHOST saying which certificate or public key that server
// presents. Since only the zone's owner can sign them, they tell a
// sending server two things an attacker on the path cannot forge: that
// the MX supports STARTTLS (so a stripped STARTTLS is an attack, never a
// reason to send in plaintext) and how to authenticate it, without any
// certificate authority.
//
// What is trusted: DNSSEC validation is left to a validating resolver
// that must run on loopback (Config.DNSSECResolverAddr, e.g. unbound
// on 127.0.0.1:53), so nobody on the network can set the AD
// ("authenticated data") bit in its answers; the relay asks it with the
// DO bit and believes an answer only when AD is set. An answer without
// AD is "insecure": DANE does not apply and the next policy (MTA-STS)
// or opportunistic TLS decides. A failed lookup (SERVFAIL, timeout;
// also what a validating resolver returns for a forged, "bogus" answer)
// defers delivery: falling back would let whoever breaks DNS also
// break TLS.
//
// Which MX hosts: DANE applies only when the destination's MX RRset is
// itself secure (§2.2.1); otherwise an attacker could point the
// domain at his own server with his own valid TLSA records. With a
// validating resolver the relay takes the MX RRset, and the hosts'
// addresses, from it alone (dnssec.go), so the hosts it connects to are
// the hosts of the secure answer; those (or the domain itself when the
// secure answer is that it has no MX records) get TLSA lookups. The
// address records of the MX host are not required to be secure (§2.2.2
// recommends it); the TLSA check authenticates the server.
//
// Which records: DANE-EE (usage 3) pins the server's own certificate
// (selector 0) or public key (selector 1), by value (matching type 0),
// SHA-256 (1) or SHA-512 (2); a match is all that is checked: no name,
// no expiry (§3.1.1). DANE-TA (usage 2) pins a trust anchor, which
// must be in the chain the server sends; the leaf must then chain to it
// and be valid for the MX host name or the destination domain (§3.2.2).
// PKIX-TA and PKIX-EE (usages 0 and 1) are unusable for SMTP (§3.1.3).
// When TLSA records exist but none is usable, STARTTLS is still
// required but the server is not authenticated (§2.2).

// maxTLSA bounds the TLSA records one MX host may have: more is an
// error (a temporary failure: the domain's admin has to fix it), so a
// huge RRset costs bounded work. maxChain bounds the certificates of a
// server's chain looked at for a DANE-TA match.
const (
	maxTLSA  = 1000
	maxChain = 10
)

// daneDomain is DANE for one destination whose MX RRset came secure from
// the validating resolver.
type daneDomain struct {
	r      *secResolver
	log    *slog.Logger
	domain string
	hosts  map[string]bool // MX hosts from the secure answer
	tlsrpt func(ctx context.Context, failure string)
}

func (dd *daneDomain) MX(ctx context.Context, host string) (*Requirement, error) {
	host = smtpserver.NormDomain(host)
	if !dd.hosts[host] {
		return nil, nil
	}
	r, secure, err := dd.r.query(ctx, "_25._tcp."+host, dns.TypeTLSA)
	if err != nil {
		dd.report(ctx, "dnssec-invalid")
		return nil, err
	}
	switch r.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, nil
	default:
		dd.report(ctx, "dnssec-invalid")
		return nil, rcodeErr(r, "TLSA records", host)
	}
	if !secure {
		return nil, nil
	}
	var all, usable []*dns.TLSA
	for _, rr := range r.Answer {
		t, ok := rr.(*dns.TLSA)
		if !ok {
			continue
		}
		all = append(all, t)
		if (t.Usage == 2 || t.Usage == 3) && t.Selector <= 1 && t.MatchingType <= 2 {
			usable = append(usable, t)
		}
	}
	if len(all) == 0 {
		return nil, nil
	}
	if len(all) > maxTLSA {
		dd.report(ctx, "tlsa-invalid")
		return nil, fmt.Errorf("DANE: %s has %d TLSA records, more than the %d this relay checks", host, len(all), maxTLSA)
	}
	strs := make([]string, 0, min(len(all), 10))
	for _, t := range all[:min(len(all), 10)] {
		strs = append(strs, t.String())
	}
	if len(usable) == 0 {
		dd.report(ctx, "tlsa-invalid")
		dd.log.Warn("submission: DANE: no usable TLSA record; TLS required, unauthenticated", "host", host)
		return &Requirement{Policy: "dane", PolicyStrings: strs}, nil
	}
	names := []string{host, dd.domain}
	return &Requirement{Policy: "dane", PolicyStrings: strs, Verify: func(_ string, cs tls.ConnectionState) error {
		return verifyDANE(cs.PeerCertificates, usable, names)
	}}, nil
}

func (dd *daneDomain) report(ctx context.Context, failure string) {
	if dd.tlsrpt != nil {
		dd.tlsrpt(ctx, failure)
	}
}

// verifyDANE checks the server's chain against usable TLSA records.
// The work is bounded: each certificate (at most maxChain) is hashed
// once per selector and matching type, each record is compared once,
// and a chain is verified at most once per trust anchor that matched.
func verifyDANE(certs []*x509.Certificate, recs []*dns.TLSA, names []string) error {
	if len(certs) == 0 {
		return errors.New("DANE: no server certificate")
	}
	if len(recs) > maxTLSA {
		return fmt.Errorf("DANE: %d TLSA records, more than %d", len(recs), maxTLSA)
	}
	certs = certs[:min(len(certs), maxChain)]
	digests := make([][3][2][]byte, len(certs)) // [cert][matching][selector]
	for i, c := range certs {
		for sel, data := range [2][]byte{c.Raw, c.RawSubjectPublicKeyInfo} {
			s256 := sha256.Sum256(data)
			s512 := sha512.Sum512(data)
			digests[i][0][sel] = data
			digests[i][1][sel] = s256[:]
			digests[i][2][sel] = s512[:]
		}
	}
	matches := func(t *dns.TLSA, i int) bool {
		if t.Selector > 1 || t.MatchingType > 2 {
			return false
		}
		want, err := hex.DecodeString(strings.TrimSpace(t.Certificate))
		return err == nil && len(want) > 0 && bytes.Equal(want, digests[i][t.MatchingType][t.Selector])
	}
	anchors := make([]bool, len(certs))
	for _, t := range recs {
		switch t.Usage {
		case 3:
			if matches(t, 0) {
				return nil
			}
		case 2:
			for i := range certs {
				if !anchors[i] && matches(t, i) {
					anchors[i] = true
				}
			}
		}
	}
	for i, ok := range anchors {
		if !ok {
			continue
		}
		roots := x509.NewCertPool()
		roots.AddCert(certs[i])
		inter := x509.NewCertPool()
		for j := 1; j < i; j++ {
			inter.AddCert(certs[j])
		}
		for _, name := range names {
			_, err := certs[0].Verify(x509.VerifyOptions{
				DNSName: name, Roots: roots, Intermediates: inter,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
			})
			if err == nil {
				return nil
			}
		}
	}
	return errors.New("DANE: the server's certificate matches no TLSA record")
}
