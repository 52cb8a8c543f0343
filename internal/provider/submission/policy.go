package submission

import (
	"context"
	"crypto/tls"
)

// A TLSPolicy is one source of requirements on the TLS of connections
// to a destination's mail servers (maddy's "mx_auth"/"tls" policies, cut
// to what this relay needs). The relay asks its policies in order (DANE,
// then MTA-STS) and, for each MX host, the first that has a requirement
// decides; with none, TLS is opportunistic: used when the server offers
// STARTTLS, unauthenticated, and plaintext when it does not.
type TLSPolicy interface {
	// Name is the policy's name in logs and diagnostics.
	Name() string
	// Domain looks up the policy for a destination domain before its
	// MX hosts are tried. A nil DomainPolicy means the policy has
	// nothing to say about the domain; an error defers delivery to
	// the whole domain (a temporary failure).
	Domain(ctx context.Context, domain string) (DomainPolicy, error)
}

// DomainPolicy is a TLSPolicy's answer for one destination domain.
type DomainPolicy interface {
	// MX returns what a connection to the MX host must satisfy. A nil
	// Requirement means the policy has nothing to say about host (the
	// next policy decides); an error means host must not be used now.
	MX(ctx context.Context, host string) (*Requirement, error)
}

// Requirement is what a policy requires of a connection: STARTTLS, and
// a certificate Verify accepts.
type Requirement struct {
	// Policy names the policy that requires it ("dane", "mta-sts").
	Policy string
	// Verify checks the server's certificates after the handshake;
	// nil means TLS is required but not authenticated.
	Verify func(host string, cs tls.ConnectionState) error
	// PolicyStrings are the policy as TLS-RPT reports it (RFC 8460
	// §4.4, "policy-string"): the TLSA records or the MTA-STS policy's
	// lines.
	PolicyStrings []string
	// MXHosts are the MX host patterns the policy names, for TLS-RPT
	// ("mx-host"); empty for DANE, which names the host it was asked
	// about.
	MXHosts []string
}

// policiesFor looks up every policy for domain.
func (s *Submission) policiesFor(ctx context.Context, domain string) ([]DomainPolicy, *deliveryError) {
	var out []DomainPolicy
	for _, p := range s.policies {
		dp, err := p.Domain(ctx, domain)
		if err != nil {
			return nil, tempErr("4.4.3", p.Name()+": "+err.Error())
		}
		if dp != nil {
			out = append(out, dp)
		}
	}
	return out, nil
}

// requirementFor is the first requirement a domain policy has for host;
// nil for opportunistic TLS.
func requirementFor(ctx context.Context, dps []DomainPolicy, host string) (*Requirement, error) {
	for _, dp := range dps {
		req, err := dp.MX(ctx, host)
		if err != nil || req != nil {
			return req, err
		}
	}
	return nil, nil
}
