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
	"net"
	"strings"
	"time"

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
// domain at his own server with his own valid TLSA records. The relay
// looks up the MX RRset through the validating resolver; MX hosts from
// a secure answer (or the domain itself when the secure answer is that
// it has no MX records) get TLSA lookups. Address records of the MX
// host are not checked for being secure (§2.2.2 recommends it).
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

type dane struct {
	addr string
	log  *slog.Logger
}

func newDANE(addr string, log *slog.Logger) (*dane, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("submission: DNSSEC resolver %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("submission: DNSSEC resolver %q must be a validating resolver on loopback (127.0.0.1 or [::1]): the AD bit is trusted from nowhere else", addr)
	}
	return &dane{addr: addr, log: log}, nil
}

func (d *dane) Name() string { return "dane" }

// query asks the validating resolver, with the DO bit (and AD, RFC
// 6840 §5.7, so it reports AD without sending signatures we do not use
// anyway), over UDP and over TCP when the answer is truncated.
func (d *dane) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	m.AuthenticatedData = true
	m.SetEdns0(4096, true)
	c := &dns.Client{Net: "udp", Timeout: 10 * time.Second}
	r, _, err := c.ExchangeContext(ctx, m, d.addr)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, m, d.addr)
	}
	if err != nil {
		return nil, fmt.Errorf("validating resolver: %s %s: %w", dns.TypeToString[qtype], name, err)
	}
	return r, nil
}

func (d *dane) Domain(ctx context.Context, domain string) (DomainPolicy, error) {
	r, err := d.query(ctx, domain, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return nil, fmt.Errorf("validating resolver answered %s for the MX records of %s", dns.RcodeToString[r.Rcode], domain)
	}
	if !r.AuthenticatedData {
		return nil, nil // insecure: DANE does not apply
	}
	hosts := map[string]bool{}
	for _, rr := range r.Answer {
		if mx, ok := rr.(*dns.MX); ok {
			hosts[smtpserver.NormDomain(mx.Mx)] = true
		}
	}
	if len(hosts) == 0 {
		hosts[domain] = true // securely no MX: the domain is its own MX
	}
	return &daneDomain{d: d, domain: domain, hosts: hosts}, nil
}

type daneDomain struct {
	d      *dane
	domain string
	hosts  map[string]bool // MX hosts from a secure answer
}

func (dd *daneDomain) MX(ctx context.Context, host string) (*Requirement, error) {
	host = smtpserver.NormDomain(host)
	if !dd.hosts[host] {
		return nil, nil
	}
	r, err := dd.d.query(ctx, "_25._tcp."+host, dns.TypeTLSA)
	if err != nil {
		return nil, err
	}
	switch r.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, nil
	default:
		return nil, fmt.Errorf("validating resolver answered %s for the TLSA records of %s", dns.RcodeToString[r.Rcode], host)
	}
	if !r.AuthenticatedData {
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
	if len(usable) == 0 {
		dd.d.log.Warn("submission: DANE: no usable TLSA record; TLS required, unauthenticated", "host", host)
		return &Requirement{Policy: "dane"}, nil
	}
	names := []string{host, dd.domain}
	return &Requirement{Policy: "dane", Verify: func(_ string, cs tls.ConnectionState) error {
		return verifyDANE(cs.PeerCertificates, usable, names)
	}}, nil
}

// verifyDANE checks the server's chain against usable TLSA records.
func verifyDANE(certs []*x509.Certificate, recs []*dns.TLSA, names []string) error {
	if len(certs) == 0 {
		return errors.New("DANE: no server certificate")
	}
	for _, t := range recs {
		if t.Usage == 3 && tlsaMatches(t, certs[0]) {
			return nil
		}
	}
	for _, t := range recs {
		if t.Usage != 2 {
			continue
		}
		for i, ta := range certs {
			if !tlsaMatches(t, ta) {
				continue
			}
			roots := x509.NewCertPool()
			roots.AddCert(ta)
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
	}
	return errors.New("DANE: the server's certificate matches no TLSA record")
}

// tlsaMatches compares a certificate (selector 0) or its public key
// (selector 1) with a record's association data.
func tlsaMatches(t *dns.TLSA, c *x509.Certificate) bool {
	var data []byte
	switch t.Selector {
	case 0:
		data = c.Raw
	case 1:
		data = c.RawSubjectPublicKeyInfo
	default:
		return false
	}
	switch t.MatchingType {
	case 1:
		s := sha256.Sum256(data)
		data = s[:]
	case 2:
		s := sha512.Sum512(data)
		data = s[:]
	case 0:
	default:
		return false
	}
	want, err := hex.DecodeString(strings.TrimSpace(t.Certificate))
	return err == nil && len(want) > 0 && bytes.Equal(want, data)
}
