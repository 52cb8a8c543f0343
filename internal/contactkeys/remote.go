package contactkeys

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/pkg/wkd"
)

// Remote finds the key of another provider's user at that user's own
// provider (docs/design.md, "Keys"), in this order:
//
//  1. WKD, advanced method (https://openpgpkey.DOMAIN/...);
//  2. WKD, direct method (https://DOMAIN/...);
//  3. the provider's nicknym: https://DOMAIN/provider.json names its
//     domain (which must be DOMAIN), api_uri and CA fingerprint; then
//     GET api_uri/1/keys?address=, over TLS verified against the roots or
//     against the CA with that fingerprint in the server's chain (as
//     bitmaskd's own bootstrap pins it).
//
// Every answer must come over TLS that verifies (the roots of HTTP's
// transport: the system's, or a test's), is capped (keys 256 KiB,
// provider.json 64 KiB), may redirect only within its https host, and
// must hold exactly one usable key with a user ID of the address
// (wkd.Select), which is all that is kept of it. A bad answer counts as
// no key at that step and the next is tried; a key found is
// provider_trust.
type Remote struct {
	// HTTP reaches the recipient domain's hosts; its *http.Transport
	// (when it is one) gives the roots, the dialer and the timeouts, and
	// is cloned for the nicknym step. Tests set the roots and a dialer
	// that maps the test domains to loopback (the name-resolution seam).
	HTTP *http.Client
}

// ErrUnreachable wraps the error of a lookup that could not ask every
// step (a timeout, the context's end): its "no key" is not definite.
var ErrUnreachable = errors.New("contactkeys: a key directory could not be reached")

// Lookup returns address's key and where it came from ("wkd" or
// "nicknym"). It returns an error wrapping ErrNoKey when every step
// answered without a usable key, or ErrUnreachable when one could not
// be asked and none had a key.
func (r *Remote) Lookup(ctx context.Context, address string, now time.Time) (*openpgp.Entity, string, error) {
	address = normAddr(address)
	_, domain, ok := strings.Cut(address, "@")
	adv, dir, err := wkd.URLs(address)
	if !ok || err != nil {
		return nil, "", fmt.Errorf("%w: %q is not an address", ErrNoKey, address)
	}
	var errs []error
	unreachable := false
	note := func(step string, err error) {
		errs = append(errs, fmt.Errorf("%s: %w", step, err))
		var ne net.Error
		if ctx.Err() != nil || errors.As(err, &ne) && ne.Timeout() {
			unreachable = true
		}
	}
	for _, step := range []struct{ name, url string }{{"wkd advanced", adv}, {"wkd direct", dir}} {
		raw, err := wkd.Get(ctx, r.HTTP, step.url)
		if err == nil {
			var e *openpgp.Entity
			if e, err = wkd.Select(raw, address, now); err == nil {
				return e, "wkd", nil
			}
		}
		note(step.name, err)
	}
	e, err := r.nicknym(ctx, domain, address, now)
	if err == nil {
		return e, "nicknym", nil
	}
	note("nicknym", err)
	if unreachable {
		return nil, "", fmt.Errorf("%w: %w", ErrUnreachable, errors.Join(errs...))
	}
	return nil, "", fmt.Errorf("%w: %w", ErrNoKey, errors.Join(errs...))
}

// nicknym asks the domain's provider, found through its provider.json.
func (r *Remote) nicknym(ctx context.Context, domain, address string, now time.Time) (*openpgp.Entity, error) {
	raw, err := wkd.Get(ctx, r.HTTP, "https://"+domain+"/provider.json")
	if err != nil {
		return nil, fmt.Errorf("provider.json: %w", err)
	}
	base, pin, err := parseProviderJSON(raw, domain)
	if err != nil {
		return nil, err
	}
	hc := r.pinnedClient(pin)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/keys?address="+url.QueryEscape(address), nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reaching the provider's nicknym: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, wkd.ErrNotFound
	default:
		return nil, fmt.Errorf("the provider's nicknym answered HTTP %d", resp.StatusCode)
	}
	body, err := wkd.ReadCapped(resp.Body, wkd.MaxKeyBytes)
	if err != nil {
		return nil, err
	}
	return parseKeyAnswer(body, address, now)
}

// parseProviderJSON checks a remote provider.json for domain and returns
// its API's versioned base URL and CA fingerprint (lowercase hex).
func parseProviderJSON(raw []byte, domain string) (base, pin string, err error) {
	if len(raw) > 64<<10 {
		return "", "", errors.New("provider.json over 64 KiB")
	}
	var pj providerapi.ProviderJSON
	if err := json.Unmarshal(raw, &pj); err != nil {
		return "", "", fmt.Errorf("provider.json is not valid JSON: %w", err)
	}
	if !strings.EqualFold(strings.TrimSuffix(pj.Domain, "."), domain) {
		return "", "", fmt.Errorf("provider.json is for the domain %q, not %q", pj.Domain, domain)
	}
	if pj.APIVersion != providerapi.Version {
		return "", "", fmt.Errorf("provider.json: api_version %q is not %q", pj.APIVersion, providerapi.Version)
	}
	u, err := url.Parse(pj.APIURI)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("provider.json: api_uri %q is not an https URL", pj.APIURI)
	}
	if pin, err = providerclient.NormalizeFingerprint(pj.CACertFingerprint); err != nil {
		return "", "", fmt.Errorf("provider.json: ca_cert_fingerprint: %w", err)
	}
	return strings.TrimSuffix(u.String(), "/") + "/" + providerapi.Version, pin, nil
}

// parseKeyAnswer reads nicknym's answer for address.
func parseKeyAnswer(raw []byte, address string, now time.Time) (*openpgp.Entity, error) {
	var kr providerapi.KeyResponse
	if err := json.Unmarshal(raw, &kr); err != nil {
		return nil, fmt.Errorf("the nicknym answer is not valid JSON: %w", err)
	}
	if normAddr(kr.Address) != normAddr(address) {
		return nil, errors.New("the nicknym answer is for another address")
	}
	return wkd.Select([]byte(kr.OpenPGP), address, now)
}

// pinnedClient is HTTP's client for the provider's API: its chain must
// verify against the roots, or against the CA of fingerprint pin that
// the server sends in its chain. Redirects stay on the host.
func (r *Remote) pinnedClient(pin string) *http.Client {
	var tr *http.Transport
	if t, ok := r.HTTP.Transport.(*http.Transport); ok && t != nil {
		tr = t.Clone()
	} else {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	// A transport of its own per lookup: keep no idle connections.
	tr.DisableKeepAlives = true
	var roots *x509.CertPool
	if tr.TLSClientConfig != nil {
		roots = tr.TLSClientConfig.RootCAs
	}
	tr.TLSClientConfig = &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // VerifyConnection verifies
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no server certificate")
			}
			inter := x509.NewCertPool()
			pinned := x509.NewCertPool()
			found := false
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			for _, c := range cs.PeerCertificates {
				sum := sha256.Sum256(c.Raw)
				if hex.EncodeToString(sum[:]) == pin {
					pinned.AddCert(c)
					found = true
				}
			}
			leaf := cs.PeerCertificates[0]
			if _, err := leaf.Verify(x509.VerifyOptions{DNSName: cs.ServerName, Roots: roots, Intermediates: inter}); err == nil {
				return nil
			}
			if !found {
				return errors.New("the provider's certificate verifies neither against the roots nor against its CA's fingerprint")
			}
			_, err := leaf.Verify(x509.VerifyOptions{DNSName: cs.ServerName, Roots: pinned})
			return err
		},
	}
	return &http.Client{Transport: tr, Timeout: r.HTTP.Timeout, CheckRedirect: wkd.SameHostRedirects}
}
