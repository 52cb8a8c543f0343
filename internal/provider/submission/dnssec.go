package submission

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/miekg/dns"

	"github.com/bitmask-go/bitmask/internal/provider/smtpserver"
)

// The validating resolver (Config.DNSSECResolverAddr). When one is
// configured, every DNS lookup that decides where a message goes (the
// MX records, the MX hosts' addresses, the implicit MX's addresses) and
// every TLSA lookup go to it, and the plain Resolver is used only for
// the MTA-STS TXT record (whose policy is authenticated by HTTPS, not
// DNS). So a DNSSEC-secure MX RRset and the addresses the relay then
// connects to come from the same validated source: a spoofed answer on
// the path to a plain resolver can no longer redirect delivery (RFC
// 7672 §2.2.1).
//
// What makes an answer secure: the AD bit, and only from a resolver on
// loopback. The check is made on each query's connection (its remote
// address must be a loopback address), not only when the address is
// configured, so an answer with AD from anywhere else (a resolver on
// the network, whose AD an attacker on the path can set) is taken as
// insecure. A lookup that fails (SERVFAIL, which a validating resolver
// returns for a "bogus" answer, or a timeout) is a temporary failure:
// never a reason to fall back to a less protected route.

// secResolver asks the validating resolver.
type secResolver struct {
	addr string
	log  *slog.Logger
}

// dnsTimeout bounds one query (both tries, UDP then TCP).
const dnsTimeout = 15 * time.Second

// query asks for name's qtype records, with the DO bit (and AD, RFC
// 6840 §5.7, so the resolver reports AD without sending signatures we
// do not use), over UDP and over TCP when the answer is truncated. It
// returns the answer and whether it is secure: AD set by a resolver
// the connection shows to be on loopback.
func (r *secResolver) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, dnsTimeout)
	defer cancel()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	m.AuthenticatedData = true
	m.SetEdns0(4096, true)
	resp, loopback, err := r.exchange(ctx, "udp", m)
	if err == nil && resp.Truncated {
		resp, loopback, err = r.exchange(ctx, "tcp", m)
	}
	if err != nil {
		return nil, false, fmt.Errorf("validating resolver: %s %s: %w", dns.TypeToString[qtype], name, err)
	}
	if resp.AuthenticatedData && !loopback {
		r.log.Warn("submission: AD bit from a resolver not on loopback ignored", "resolver", r.addr)
	}
	return resp, resp.AuthenticatedData && loopback, nil
}

// exchange sends m over network and reports whether the peer that
// answered is on loopback.
func (r *secResolver) exchange(ctx context.Context, network string, m *dns.Msg) (*dns.Msg, bool, error) {
	c := &dns.Client{Net: network, Timeout: 10 * time.Second}
	conn, err := c.DialContext(ctx, r.addr)
	if err != nil {
		return nil, false, err
	}
	defer conn.Close()
	// The exchange obeys only ctx's deadline: closing the connection is
	// how the relay's shutdown ends a query a silent resolver would
	// keep for the whole timeout.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	resp, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		return nil, false, err
	}
	return resp, isLoopbackAddr(conn.RemoteAddr()), nil
}

// isLoopbackAddr reports whether a is an address on loopback.
func isLoopbackAddr(a net.Addr) bool {
	if a == nil {
		return false
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return false
	}
	return ap.Addr().Unmap().IsLoopback()
}

// rcodeErr is the error for an answer that is neither an answer nor a
// name error.
func rcodeErr(resp *dns.Msg, what, name string) error {
	return fmt.Errorf("validating resolver answered %s for the %s of %s", dns.RcodeToString[resp.Rcode], what, name)
}

// secMX is the result of an MX lookup through the validating resolver.
type secMX struct {
	hosts  []*net.MX // as in the answer; empty when there are none
	secure bool
	nx     bool // the domain does not exist
}

func (r *secResolver) lookupMX(ctx context.Context, domain string) (*secMX, error) {
	resp, secure, err := r.query(ctx, domain, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	switch resp.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return &secMX{secure: secure, nx: true}, nil
	default:
		return nil, rcodeErr(resp, "MX records", domain)
	}
	out := &secMX{secure: secure}
	for _, rr := range resp.Answer {
		if mx, ok := rr.(*dns.MX); ok && smtpserver.NormDomain(rr.Header().Name) == smtpserver.NormDomain(domain) {
			out.hosts = append(out.hosts, &net.MX{Host: mx.Mx, Pref: mx.Preference})
		}
	}
	return out, nil
}

// lookupIP asks for host's A and AAAA records. notFound is set when the
// host has neither (or does not exist).
func (r *secResolver) lookupIP(ctx context.Context, host string) (ips []net.IP, notFound bool, err error) {
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		resp, _, err := r.query(ctx, host, qt)
		if err != nil {
			return nil, false, err
		}
		switch resp.Rcode {
		case dns.RcodeSuccess:
		case dns.RcodeNameError:
			continue
		default:
			return nil, false, rcodeErr(resp, "addresses", host)
		}
		// Follow a CNAME chain within the answer: the records that count
		// are those for the last name.
		name := dns.Fqdn(host)
		for range 8 {
			next := ""
			for _, rr := range resp.Answer {
				if c, ok := rr.(*dns.CNAME); ok && dns.CanonicalName(rr.Header().Name) == dns.CanonicalName(name) {
					next = c.Target
				}
			}
			if next == "" {
				break
			}
			name = next
		}
		for _, rr := range resp.Answer {
			if dns.CanonicalName(rr.Header().Name) != dns.CanonicalName(name) {
				continue
			}
			switch a := rr.(type) {
			case *dns.A:
				ips = append(ips, a.A)
			case *dns.AAAA:
				ips = append(ips, a.AAAA)
			}
		}
	}
	ips = slices.DeleteFunc(ips, func(ip net.IP) bool { return ip == nil || ip.IsUnspecified() })
	return ips, len(ips) == 0, nil
}

// checkResolverAddr refuses a validating resolver that is not on
// loopback: its AD bit could be set by anyone on the path.
func checkResolverAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("submission: DNSSEC resolver %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("submission: DNSSEC resolver %q must be a validating resolver on loopback (127.0.0.1 or [::1]): the AD bit is trusted from nowhere else", addr)
	}
	return nil
}
