package provider

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
)

// ACME has leapd take certificates for its public names from an ACME CA
// (RFC 8555; Let's Encrypt by default) with
// golang.org/x/crypto/acme/autocert, proving control of each name by
// tls-alpn-01 (RFC 8737) on the HTTPS listener, which must then be
// reachable on port 443 of each name.
//
// Only those names get the ACME certificate. Every other name, and a
// TLS hello without a name, still gets the certificate of the
// provider's own CA, which the devices pin: the API host, the submission
// address that provider.json announces, IP addresses. The MX is the
// exception: a sender that names no host gets the first name's ACME
// certificate there, since the MX's TLSA record is made from that one.
//
// autocert keeps the certificates and its account key in CacheDir,
// asks for a certificate at the first TLS hello that names one of the
// names (a few seconds; the hello waits), and renews it in the
// background before it expires (RenewBefore; by default 30 days or a
// third of its lifetime) with the same key, so that a TLSA 3 1 1 record
// stays valid across renewals.
type ACME struct {
	// Names are the host names to take certificates for; the first is
	// the public name (the MX host). At least one.
	Names []string
	// DirectoryURL is the ACME directory (default Let's Encrypt's
	// production directory).
	DirectoryURL string
	// Email is the contact address given to the CA ("" for none).
	Email string
	// CacheDir holds the account key and the certificates (default
	// DataDir/acme, made mode 0700).
	CacheDir string
	// HTTPClient talks to the ACME server (a test's, trusting its
	// CA); default http.DefaultClient.
	HTTPClient *http.Client
	// RenewBefore: see autocert.Manager.RenewBefore.
	RenewBefore time.Duration
}

// ACMECacheDir is the default ACME cache directory under the data
// directory.
const ACMECacheDir = "acme"

// acmeTLS is the running ACME side: the manager, and the names it
// answers for.
type acmeTLS struct {
	m      *autocert.Manager
	names  []string // lower case, the public name first
	exempt []string // names that keep the provider's certificate
}

// newACME makes the manager for cfg. exempt are names the devices reach
// with the provider's CA pinned (the API host, the submission host):
// they are never given an ACME certificate, even when listed.
func newACME(cfg *ACME, dataDir string, exempt []string) (*acmeTLS, error) {
	a := &acmeTLS{}
	for _, n := range exempt {
		a.exempt = append(a.exempt, normName(n))
	}
	for i, n := range cfg.Names {
		n = normName(n)
		if i == 0 && slices.Contains(a.exempt, n) {
			return nil, fmt.Errorf("provider: ACME: the public name %s is also the API or submission host, which keeps the provider's own certificate (the devices pin its CA); give the API another name", n)
		}
		if n == "" || strings.ContainsAny(n, ":/ ") || !strings.Contains(n, ".") {
			return nil, fmt.Errorf("provider: ACME: %q is not a host name", n)
		}
		if !slices.Contains(a.names, n) && !slices.Contains(a.exempt, n) {
			a.names = append(a.names, n)
		}
	}
	if len(a.names) == 0 {
		return nil, errors.New("provider: ACME: no name to take a certificate for (the API and submission hosts keep the provider's own)")
	}
	dir := cfg.CacheDir
	if dir == "" {
		dir = filepath.Join(dataDir, ACMECacheDir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("provider: ACME cache: %w", err)
	}
	client := &acme.Client{DirectoryURL: cfg.DirectoryURL, HTTPClient: cfg.HTTPClient}
	if client.DirectoryURL == "" {
		client.DirectoryURL = autocert.DefaultACMEDirectory
	}
	a.m = &autocert.Manager{
		Prompt:      autocert.AcceptTOS,
		Cache:       autocert.DirCache(dir),
		HostPolicy:  autocert.HostWhitelist(a.names...),
		RenewBefore: cfg.RenewBefore,
		Client:      client,
		Email:       cfg.Email,
	}
	return a, nil
}

func normName(n string) string { return strings.TrimSuffix(strings.ToLower(n), ".") }

// wrap is base (the provider's own certificate) with the ACME
// certificates for the ACME names. With https, the tls-alpn-01
// challenge is answered (a hello that offers only acme-tls/1 gets its
// own config, so ALPN stays as base has it for everyone else); with
// mx, a hello without a name gets the public name's certificate.
func (a *acmeTLS) wrap(base *tls.Config, https, mx bool) *tls.Config {
	c := base.Clone()
	own := base.Certificates[0]
	c.Certificates = nil
	c.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		name := normName(hello.ServerName)
		if name == "" && mx {
			h := *hello
			h.ServerName = a.names[0]
			return a.m.GetCertificate(&h)
		}
		if slices.Contains(a.names, name) {
			return a.m.GetCertificate(hello)
		}
		return &own, nil
	}
	if https {
		challenge := &tls.Config{
			MinVersion:     tls.VersionTLS12,
			NextProtos:     []string{acme.ALPNProto},
			GetCertificate: a.m.GetCertificate,
		}
		c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acme.ALPNProto {
				return challenge, nil
			}
			return nil, nil
		}
	}
	return c
}

// devicesHosts are the hosts bitmaskd reaches with the provider's CA
// pinned: the API URL's and the announced submission address's.
func devicesHosts(api httpapi.Config) []string {
	var hosts []string
	if u, err := url.Parse(api.APIURL); err == nil && u.Hostname() != "" {
		hosts = append(hosts, u.Hostname())
	}
	if h, _, err := net.SplitHostPort(api.Submission); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	return hosts
}
