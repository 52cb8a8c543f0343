package submission

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/smtpserver"
)

// MTA-STS (RFC 8461). A domain announces a policy with a TXT record at
// _mta-sts.DOMAIN ("v=STSv1; id=..."); the policy itself is served at
// https://mta-sts.DOMAIN/.well-known/mta-sts.txt, under a certificate
// valid in the WebPKI, so an attacker who controls DNS still cannot
// forge it. It lists the MX host patterns the domain uses, a mode and a
// max_age. In mode enforce the sender delivers only to an MX host that
// matches a pattern, only over STARTTLS, and only when the server's
// certificate chains to a trusted root and is valid for the MX host
// name; otherwise the message stays queued. Mode testing (failures are
// only reported: counted for TLS-RPT like every session, tlsrpt.go)
// and none change nothing for delivery.
//
// Policies are cached for max_age (§5.1): the TXT record's id tells
// whether the cached policy is still current; when the TXT record or the
// HTTPS fetch fails, an unexpired cached policy still applies, so an
// attacker who blocks the lookups cannot strip it. The cache is kept in
// the data directory (mta-sts.json, see stscache.go), so it survives a
// restart, and a policy is fetched again once half its max_age has
// passed (at use, and by Run in the background), so one in use does not
// expire while the domain still publishes it (§5.1, §10.2).

const (
	stsMaxPolicySize = 64 << 10
	stsMaxAge        = 31557600 // one year, the RFC's maximum
)

type stsMode string

const (
	stsEnforce stsMode = "enforce"
	stsTesting stsMode = "testing"
	stsNone    stsMode = "none"
)

// stsPolicy is a parsed policy (RFC 8461 §3.2).
type stsPolicy struct {
	mode   stsMode
	mx     []string
	maxAge time.Duration
	lines  []string // the policy's lines, for TLS-RPT
}

type stsCached struct {
	id      string
	policy  *stsPolicy
	body    string // the policy as fetched, for the cache file
	fetched time.Time
	expires time.Time
}

// stale reports whether c is past half its max_age at now: time to
// fetch it again.
func (c *stsCached) stale(now time.Time) bool {
	return !now.Before(c.fetched.Add(c.policy.maxAge / 2))
}

// mtaSTS is the MTA-STS TLSPolicy.
type mtaSTS struct {
	resolver Resolver
	client   *http.Client
	roots    *x509.CertPool
	log      *slog.Logger
	now      func() time.Time

	mu    sync.Mutex
	cache map[string]*stsCached

	// path is the cache file; "" keeps the cache in memory only.
	path   string
	saveMu sync.Mutex
	// report counts a policy failure for TLS-RPT (nil: not counted;
	// nor when ctx has ended, tlsReporter.failure).
	report func(ctx context.Context, domain, result, detail string)
}

func newMTASTS(r Resolver, client *http.Client, roots *x509.CertPool, log *slog.Logger) *mtaSTS {
	c := *client
	// §3.3: "HTTP 3xx redirects MUST NOT be followed".
	c.CheckRedirect = func(*http.Request, []*http.Request) error {
		return errors.New("MTA-STS policy fetch: redirects are not followed")
	}
	return &mtaSTS{resolver: r, client: &c, roots: roots, log: log, now: time.Now, cache: map[string]*stsCached{}}
}

func (m *mtaSTS) Name() string { return "mta-sts" }

func (m *mtaSTS) Domain(ctx context.Context, domain string) (DomainPolicy, error) {
	p := m.policy(ctx, domain)
	if p == nil || p.mode != stsEnforce {
		return nil, nil
	}
	return &stsDomain{m: m, p: p, domain: domain}, nil
}

// policy is domain's current policy, or nil when it has none.
func (m *mtaSTS) policy(ctx context.Context, domain string) *stsPolicy {
	now := m.now()
	m.mu.Lock()
	cached := m.cache[domain]
	if cached != nil && now.After(cached.expires) {
		delete(m.cache, domain)
		cached = nil
		m.mu.Unlock()
		m.save()
	} else {
		m.mu.Unlock()
	}

	id, err := m.lookupID(ctx, domain)
	if err != nil {
		if cached != nil {
			return cached.policy
		}
		return nil
	}
	if cached != nil && cached.id == id && !cached.stale(now) {
		return cached.policy
	}
	body, p, err := m.fetch(ctx, domain)
	if err != nil {
		m.log.Warn("submission: MTA-STS policy fetch failed", "domain", domain, "err", err, "cached", cached != nil)
		if m.report != nil {
			result := "sts-policy-fetch-error"
			var pe *stsParseError
			if errors.As(err, &pe) {
				result = "sts-policy-invalid"
			}
			m.report(ctx, domain, result, err.Error())
		}
		if cached != nil {
			return cached.policy
		}
		return nil
	}
	m.mu.Lock()
	m.cache[domain] = &stsCached{id: id, policy: p, body: body, fetched: now, expires: now.Add(p.maxAge)}
	m.mu.Unlock()
	m.save()
	m.log.Info("submission: MTA-STS policy", "domain", domain, "mode", string(p.mode), "mx", p.mx, "max_age", p.maxAge)
	return p
}

// refreshStale fetches again every cached policy past half its max_age
// (Run calls it from time to time): a policy is renewed while its
// domain still publishes it, even when no mail goes there meanwhile.
func (m *mtaSTS) refreshStale(ctx context.Context) {
	now := m.now()
	var due []string
	m.mu.Lock()
	for d, c := range m.cache {
		if c.stale(now) {
			due = append(due, d)
		}
	}
	m.mu.Unlock()
	for _, d := range due {
		if ctx.Err() != nil {
			return
		}
		m.policy(ctx, d)
	}
}

// lookupID reads the id of domain's _mta-sts TXT record (§3.1); an
// error when there is none, or more than one.
func (m *mtaSTS) lookupID(ctx context.Context, domain string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	txts, err := m.resolver.LookupTXT(ctx, "_mta-sts."+domain)
	if err != nil {
		return "", err
	}
	var ids []string
	for _, t := range txts {
		if !strings.HasPrefix(t, "v=STSv1") {
			continue
		}
		id := ""
		for _, f := range strings.Split(t, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
			if k == "id" {
				id = v
			}
		}
		ids = append(ids, id)
	}
	if len(ids) != 1 || ids[0] == "" || len(ids[0]) > 32 {
		return "", fmt.Errorf("no single valid MTA-STS record at _mta-sts.%s", domain)
	}
	return ids[0], nil
}

// fetch gets and parses the policy over HTTPS (§3.3).
func (m *mtaSTS) fetch(ctx context.Context, domain string) (string, *stsPolicy, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://mta-sts."+domain+"/.well-known/mta-sts.txt", nil)
	if err != nil {
		return "", nil, err
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "text/plain" {
		return "", nil, fmt.Errorf("policy served as %q, not text/plain", resp.Header.Get("Content-Type"))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, stsMaxPolicySize+1))
	if err != nil {
		return "", nil, err
	}
	if len(b) > stsMaxPolicySize {
		return "", nil, &stsParseError{errors.New("policy larger than 64 KiB")}
	}
	p, err := parseSTSPolicy(string(b))
	if err != nil {
		return "", nil, &stsParseError{err}
	}
	return string(b), p, nil
}

// stsParseError is a policy that was fetched but is not valid.
type stsParseError struct{ err error }

func (e *stsParseError) Error() string { return "invalid policy: " + e.err.Error() }
func (e *stsParseError) Unwrap() error { return e.err }

// parseSTSPolicy reads a policy body (§3.2): "key: value" lines, CRLF
// or LF, unknown keys ignored.
func parseSTSPolicy(body string) (*stsPolicy, error) {
	p := &stsPolicy{}
	version, maxAge := false, false
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		if len(p.lines) < 100 {
			p.lines = append(p.lines, printable(strings.TrimSpace(line), 300))
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("malformed policy line %q", printable(line, 80))
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "version":
			if v != "STSv1" {
				return nil, fmt.Errorf("policy version %q", printable(v, 40))
			}
			version = true
		case "mode":
			switch stsMode(v) {
			case stsEnforce, stsTesting, stsNone:
				p.mode = stsMode(v)
			default:
				return nil, fmt.Errorf("policy mode %q", printable(v, 40))
			}
		case "max_age":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || len(v) > 10 {
				return nil, fmt.Errorf("policy max_age %q", printable(v, 40))
			}
			p.maxAge = time.Duration(min(n, stsMaxAge)) * time.Second
			maxAge = true
		case "mx":
			p.mx = append(p.mx, strings.ToLower(strings.TrimSuffix(v, ".")))
		}
	}
	switch {
	case !version:
		return nil, errors.New("policy has no version")
	case p.mode == "":
		return nil, errors.New("policy has no mode")
	case !maxAge:
		return nil, errors.New("policy has no max_age")
	case p.mode != stsNone && len(p.mx) == 0:
		return nil, errors.New("policy has no mx")
	}
	return p, nil
}

// matchMX reports whether host matches one of the patterns (§4.1): a
// name, or "*." and a name, matching exactly one more leftmost label.
func matchMX(patterns []string, host string) bool {
	host = smtpserver.NormDomain(host)
	for _, p := range patterns {
		if rest, ok := strings.CutPrefix(p, "*."); ok {
			label, parent, found := strings.Cut(host, ".")
			if found && label != "" && parent == rest {
				return true
			}
			continue
		}
		if p == host {
			return true
		}
	}
	return false
}

type stsDomain struct {
	m      *mtaSTS
	p      *stsPolicy
	domain string
}

// MX in enforce mode: host must match the policy, and its certificate
// must chain to a trusted root and be valid for host (§4.2).
func (d *stsDomain) MX(ctx context.Context, host string) (*Requirement, error) {
	if !matchMX(d.p.mx, host) {
		if d.m.report != nil {
			d.m.report(ctx, d.domain, "validation-failure", "MX host "+host+" is not in the policy")
		}
		return nil, fmt.Errorf("MX host %s is not in the domain's MTA-STS policy", host)
	}
	roots := d.m.roots
	return &Requirement{Policy: "mta-sts", PolicyStrings: d.p.lines, MXHosts: d.p.mx, Verify: func(host string, cs tls.ConnectionState) error {
		return verifyPKIX(cs, roots, host)
	}}, nil
}

// verifyPKIX verifies the chain the server sent against roots (nil: the
// system's) for the name host.
func verifyPKIX(cs tls.ConnectionState, roots *x509.CertPool, host string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no server certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		DNSName:       smtpserver.NormDomain(host),
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}
