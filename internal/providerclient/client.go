// Package providerclient speaks the provider API (docs/provider-api.md) for
// bitmaskd: bootstrap with a pinned CA, SRP signup and login, the document
// store, blobs, the notification stream and nicknym.
//
// Bootstrap trusts nothing but the provider's CA: provider.json names the
// CA and its SHA-256 fingerprint; the CA is fetched and refused unless its
// fingerprint matches (and matches the one the user gave, if any). Every
// later connection trusts only that CA.
package providerclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bitmask-go/bitmask/internal/providerapi"
)

// Options tune a client; the zero value is fine.
type Options struct {
	// WrapTransport, if set, wraps the HTTP transport (tests record the
	// traffic with it).
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// Timeout of one ordinary request (default 60s); streams have none.
	Timeout time.Duration
}

// Provider is what bootstrap learned and pinned.
type Provider struct {
	JSON  providerapi.ProviderJSON `json:"provider"`
	CAPEM []byte                   `json:"ca_pem"`
}

// APIError is an error answer of the provider.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("provider: %s (HTTP %d)", e.Message, e.Status)
}

// IsCode reports whether err is an APIError with the code.
func IsCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

// NormalizeFingerprint accepts "SHA256: hex", "sha256:hex", hex with or
// without colons, and returns lowercase hex.
func NormalizeFingerprint(fp string) (string, error) {
	s := strings.TrimSpace(fp)
	if i := strings.IndexByte(s, ':'); i >= 0 && strings.EqualFold(strings.TrimSpace(s[:i]), "sha256") {
		s = s[i+1:]
	}
	s = strings.ToLower(strings.NewReplacer(":", "", " ", "").Replace(s))
	if b, err := hex.DecodeString(s); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("fingerprint %q is not a SHA-256 hex digest", fp)
	}
	return s, nil
}

func fingerprintHex(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// pinnedTLS verifies the server's chain against the one CA whose SHA-256
// fingerprint is pin; the server sends the CA in its chain.
func pinnedTLS(pin string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			pool := x509.NewCertPool()
			found := false
			for _, c := range cs.PeerCertificates {
				if fingerprintHex(c.Raw) == pin {
					pool.AddCert(c)
					found = true
				}
			}
			if !found || len(cs.PeerCertificates) == 0 {
				return errors.New("bootstrap: no certificate in the server's chain matches the pinned CA fingerprint")
			}
			if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: cs.ServerName, Roots: pool}); err != nil {
				return fmt.Errorf("bootstrap: verifying the server's certificate against the pinned CA: %w", err)
			}
			return nil
		},
	}
}

func transport(tc *tls.Config, o Options) http.RoundTripper {
	var rt http.RoundTripper = &http.Transport{
		TLSClientConfig:     tc,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 15 * time.Second,
	}
	if o.WrapTransport != nil {
		rt = o.WrapTransport(rt)
	}
	return rt
}

// BaseURL turns what a user types (a domain, or a URL) into the URL
// provider.json is fetched from.
func BaseURL(s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("bootstrap: provider %q must be a domain or an https URL", s)
	}
	return strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/"), nil
}

// Bootstrap fetches provider.json from base, then the CA, and refuses
// unless the CA's SHA-256 fingerprint matches provider.json's (and pin,
// when the user gave one). With a pin, even provider.json is fetched over
// a connection verified against the pinned CA; without one, the system's
// roots vouch for provider.json as in LEAP.
func Bootstrap(ctx context.Context, base, pin string, o Options) (*Provider, error) {
	base, err := BaseURL(base)
	if err != nil {
		return nil, err
	}
	var tc *tls.Config
	if pin != "" {
		if pin, err = NormalizeFingerprint(pin); err != nil {
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
		tc = pinnedTLS(pin)
	} else {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	hc := &http.Client{Transport: transport(tc, o), Timeout: 30 * time.Second}
	body, err := getSmall(ctx, hc, base+"/provider.json", 64<<10)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: provider.json: %w", err)
	}
	var pj providerapi.ProviderJSON
	if err := json.Unmarshal(body, &pj); err != nil {
		return nil, fmt.Errorf("bootstrap: provider.json is not valid JSON: %w", err)
	}
	if err := checkProviderJSON(&pj); err != nil {
		return nil, fmt.Errorf("bootstrap: provider.json: %w", err)
	}
	want, err := NormalizeFingerprint(pj.CACertFingerprint)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: provider.json ca_cert_fingerprint: %w", err)
	}
	if pin != "" && want != pin {
		return nil, fmt.Errorf("bootstrap: provider.json names CA fingerprint %s, not the pinned %s", want, pin)
	}
	caPEM, err := getSmall(ctx, hc, pj.CACertURI, 64<<10)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: CA certificate: %w", err)
	}
	blk, _ := pem.Decode(caPEM)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("bootstrap: CA certificate is not PEM")
	}
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: CA certificate: %w", err)
	}
	if got := fingerprintHex(ca.Raw); got != want {
		return nil, fmt.Errorf("bootstrap: CA fingerprint mismatch: provider.json says %s, the CA served is %s; refusing this provider", want, got)
	}
	if !ca.IsCA {
		return nil, errors.New("bootstrap: the CA certificate is not a CA")
	}
	return &Provider{JSON: pj, CAPEM: pem.EncodeToMemory(blk)}, nil
}

func checkProviderJSON(pj *providerapi.ProviderJSON) error {
	if pj.Domain == "" {
		return errors.New("missing domain")
	}
	if pj.APIVersion != providerapi.Version {
		return fmt.Errorf("api_version %q is not supported (want %q)", pj.APIVersion, providerapi.Version)
	}
	for name, v := range map[string]string{"api_uri": pj.APIURI, "ca_cert_uri": pj.CACertURI} {
		u, err := url.Parse(v)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("%s %q is not an https URL", name, v)
		}
	}
	if pj.CACertFingerprint == "" {
		return errors.New("missing ca_cert_fingerprint")
	}
	return nil
}

func getSmall(ctx context.Context, hc *http.Client, u string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("GET %s: more than %d bytes", u, limit)
	}
	return b, nil
}

// Client talks to one provider's API, trusting only its pinned CA.
type Client struct {
	base   string
	hc     *http.Client // with a timeout
	stream *http.Client // without, for the event stream and long polls

	mu      sync.Mutex
	token   string
	device  *providerapi.Device // sent at login (devices.go)
	onEnded func(code string)   // told of a session ended on purpose (devices.go)
}

// New makes a client for a bootstrapped provider.
func New(p *Provider, o Options) (*Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(p.CAPEM) {
		return nil, errors.New("client: provider CA is not a PEM certificate")
	}
	rt := transport(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, o)
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	return &Client{
		base:   strings.TrimSuffix(p.JSON.APIURI, "/") + "/" + p.JSON.APIVersion,
		hc:     &http.Client{Transport: rt, Timeout: o.Timeout},
		stream: &http.Client{Transport: rt},
	}, nil
}

// SetToken sets the session token sent with every request.
func (c *Client) SetToken(tok string) {
	c.mu.Lock()
	c.token = tok
	c.mu.Unlock()
}

// Token is the current session token.
func (c *Client) Token() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// Renew swaps the session for a fresh one and uses it from now on.
func (c *Client) Renew(ctx context.Context) (time.Time, error) {
	var out providerapi.RenewResponse
	if err := c.do(ctx, c.hc, http.MethodPost, "/sessions/current/renew", nil, &out); err != nil {
		return time.Time{}, err
	}
	c.SetToken(out.Token)
	return out.Expires, nil
}

func (c *Client) do(ctx context.Context, hc *http.Client, method, path string, in, out any) error {
	// Error texts name the route without its query, which can hold an
	// address (a nicknym lookup).
	route, _, _ := strings.Cut(path, "?")
	var body io.Reader
	ctype := ""
	switch v := in.(type) {
	case nil:
	case []byte:
		body, ctype = bytes.NewReader(v), "application/octet-stream"
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encoding %s %s: %w", method, route, err)
		}
		body, ctype = bytes.NewReader(b), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("building %s %s: %w", method, route, err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if tok := c.Token(); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = c.base + route
		}
		return fmt.Errorf("reaching the provider: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var ae providerapi.Error
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &ae) != nil || ae.Error == "" {
			ae.Error = http.StatusText(resp.StatusCode)
		}
		if resp.StatusCode == http.StatusUnauthorized {
			c.sessionEnded(ae.Code)
		}
		return &APIError{Status: resp.StatusCode, Code: ae.Code, Message: ae.Error}
	}
	switch v := out.(type) {
	case nil:
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	case *[]byte:
		if *v, err = io.ReadAll(resp.Body); err != nil {
			return fmt.Errorf("reading the answer to %s %s: %w", method, route, err)
		}
		return nil
	default:
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("decoding %s %s: %w", method, route, err)
		}
		return nil
	}
}

// Signup creates an account.
func (c *Client) Signup(ctx context.Context, req *providerapi.SignupRequest) (*providerapi.SignupResponse, error) {
	var out providerapi.SignupResponse
	if err := c.do(ctx, c.hc, http.MethodPost, "/users", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// LoginStart sends the first SRP message.
func (c *Client) LoginStart(ctx context.Context, login string, A []byte) (*providerapi.LoginStartResponse, error) {
	var out providerapi.LoginStartResponse
	err := c.do(ctx, c.hc, http.MethodPost, "/sessions", &providerapi.LoginStartRequest{Login: login, A: A}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// LoginFinish sends the client's proof.
func (c *Client) LoginFinish(ctx context.Context, handshake string, M1 []byte) (*providerapi.LoginFinishResponse, error) {
	var out providerapi.LoginFinishResponse
	if len(handshake) > 64 || strings.ContainsAny(handshake, "/?#") {
		return nil, errors.New("client: malformed handshake id from provider")
	}
	err := c.do(ctx, c.hc, http.MethodPost, "/sessions/"+url.PathEscape(handshake), &providerapi.LoginFinishRequest{M1: M1, Device: c.Device()}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Logout ends the session.
func (c *Client) Logout(ctx context.Context) error {
	return c.do(ctx, c.hc, http.MethodDelete, "/sessions/current", nil, nil)
}

// SetCredentials replaces verifier and wrapped secret (password change).
func (c *Client) SetCredentials(ctx context.Context, cr *providerapi.Credentials) error {
	return c.do(ctx, c.hc, http.MethodPut, "/users/self", cr, nil)
}

// Secret fetches the wrapped storage secret.
func (c *Client) Secret(ctx context.Context) (*providerapi.SecretResponse, error) {
	var out providerapi.SecretResponse
	if err := c.do(ctx, c.hc, http.MethodGet, "/users/self/secret", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Push sends a batch of documents.
func (c *Client) Push(ctx context.Context, docs []providerapi.DocPush) (*providerapi.PushResponse, error) {
	var out providerapi.PushResponse
	if err := c.do(ctx, c.hc, http.MethodPost, "/docs", &providerapi.PushRequest{Docs: docs}, &out); err != nil {
		return nil, err
	}
	if len(out.Results) != len(docs) {
		return nil, fmt.Errorf("client: push of %d documents got %d results", len(docs), len(out.Results))
	}
	return &out, nil
}

// Changes fetches a page of the changes feed; with wait > 0 the provider
// holds the request until a change lands or wait passes (long poll).
func (c *Client) Changes(ctx context.Context, since uint64, limit int, wait time.Duration) (*providerapi.ChangesResponse, error) {
	var out providerapi.ChangesResponse
	path := fmt.Sprintf("/docs/changes?since=%d&limit=%d", since, limit)
	hc := c.hc
	if wait > 0 {
		path += fmt.Sprintf("&wait=%d", int(wait.Seconds()))
		hc = c.stream
	}
	if err := c.do(ctx, hc, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Doc fetches one document.
func (c *Client) Doc(ctx context.Context, id string) (*providerapi.Doc, error) {
	var out providerapi.Doc
	if err := c.do(ctx, c.hc, http.MethodGet, "/docs/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PutBlob uploads an encrypted blob.
func (c *Client) PutBlob(ctx context.Context, id string, ct []byte) error {
	return c.do(ctx, c.hc, http.MethodPut, "/blobs/"+url.PathEscape(id), ct, nil)
}

// Blob downloads an encrypted blob.
func (c *Client) Blob(ctx context.Context, id string) ([]byte, error) {
	var out []byte
	if err := c.do(ctx, c.hc, http.MethodGet, "/blobs/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// PublishKey publishes the user's armored public key to nicknym.
func (c *Client) PublishKey(ctx context.Context, armored string) error {
	return c.do(ctx, c.hc, http.MethodPut, "/keys", &providerapi.KeyRequest{OpenPGP: armored}, nil)
}

// LookupKey asks nicknym for address's key.
func (c *Client) LookupKey(ctx context.Context, address string) (*providerapi.KeyResponse, error) {
	var out providerapi.KeyResponse
	if err := c.do(ctx, c.hc, http.MethodGet, "/keys?address="+url.QueryEscape(address), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListIncoming lists the incoming queue, oldest first.
func (c *Client) ListIncoming(ctx context.Context, limit int) (*providerapi.IncomingList, error) {
	var out providerapi.IncomingList
	if err := c.do(ctx, c.hc, http.MethodGet, fmt.Sprintf("/incoming?limit=%d", limit), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Incoming downloads one incoming item (an OpenPGP message).
func (c *Client) Incoming(ctx context.Context, id string) ([]byte, error) {
	var out []byte
	if err := c.do(ctx, c.hc, http.MethodGet, "/incoming/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteIncoming removes an item from the incoming queue.
func (c *Client) DeleteIncoming(ctx context.Context, id string) error {
	return c.do(ctx, c.hc, http.MethodDelete, "/incoming/"+url.PathEscape(id), nil, nil)
}

// Events follows the notification stream, calling fn with each event,
// until ctx ends or the stream breaks (then it returns the error; the
// caller reconnects).
func (c *Client) Events(ctx context.Context, fn func(providerapi.Event)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/events", nil)
	if err != nil {
		return fmt.Errorf("building the event stream request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token())
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.stream.Do(req)
	if err != nil {
		return fmt.Errorf("opening the event stream: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var ae providerapi.Error
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = json.Unmarshal(b, &ae)
		if resp.StatusCode == http.StatusUnauthorized {
			c.sessionEnded(ae.Code)
		}
		return &APIError{Status: resp.StatusCode, Code: ae.Code, Message: "event stream refused"}
	}
	return readSSE(resp.Body, func(event string, data []byte) {
		if event != "change" {
			return
		}
		var ev providerapi.Event
		if json.Unmarshal(data, &ev) == nil {
			fn(ev)
		}
	})
}
