package controlapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
)

// Client talks to bitmaskd's control API: one method per endpoint. It is
// safe for concurrent use.
type Client struct {
	addr    string // host:port of the control API
	dataDir string // where to read the token, if not given
	hc      *http.Client

	mu    sync.Mutex
	token string
}

// NewClient is a client of the control API at addr (host:port) with the
// control token.
func NewClient(addr, token string) *Client {
	return &Client{addr: addr, token: token, hc: &http.Client{}}
}

// NewLocalClient is a client of the control API at addr of the bitmaskd
// whose data directory is dataDir: it reads the control token there
// (ReadToken) at its first request, so a client made before bitmaskd
// first started works once it has.
func NewLocalClient(addr, dataDir string) *Client {
	return &Client{addr: addr, dataDir: dataDir, hc: &http.Client{}}
}

// bearer is the control token, read at the first request when the
// client was made with a data directory.
func (c *Client) bearer() (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == "" && c.dataDir != "" {
		tok, err := ReadToken(c.dataDir)
		if err != nil {
			return "", err
		}
		c.token = tok
	}
	return c.token, nil
}

// Error is an error answer of the API: the HTTP status and the server's
// message, which is the error's whole text.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// CreateUser signs up an account (POST /v1/users); the answer carries
// the account's first recovery code (recovery.go).
func (c *Client) CreateUser(ctx context.Context, req CreateRequest) (CreateResponse, error) {
	return call[CreateResponse](ctx, c, http.MethodPost, "/v1/users", req)
}

// Login logs an account in (POST /v1/login).
func (c *Client) Login(ctx context.Context, req LoginRequest) (AccountStatus, error) {
	return call[AccountStatus](ctx, c, http.MethodPost, "/v1/login", req)
}

// Logout logs an account out (POST /v1/logout).
func (c *Client) Logout(ctx context.Context, address string) error {
	return c.do(ctx, http.MethodPost, "/v1/logout", AddressRequest{Address: address}, nil)
}

// ChangePassword changes an account's password (POST /v1/passwd).
func (c *Client) ChangePassword(ctx context.Context, req PasswdRequest) error {
	return c.do(ctx, http.MethodPost, "/v1/passwd", req, nil)
}

// Status reports the logged-in accounts (GET /v1/status).
func (c *Client) Status(ctx context.Context) (StatusResponse, error) {
	return call[StatusResponse](ctx, c, http.MethodGet, "/v1/status", nil)
}

// Keys lists an account's own keys and its contacts' keys (GET
// /v1/keys); address may be empty when one account is logged in.
func (c *Client) Keys(ctx context.Context, address string) ([]KeyInfo, error) {
	return call[[]KeyInfo](ctx, c, http.MethodGet, "/v1/keys?"+query("address", address), nil)
}

// Export exports an account's newest key, the private key too when
// secret is set (GET /v1/keys/export).
func (c *Client) Export(ctx context.Context, address string, secret bool) (ExportResponse, error) {
	q := "?" + query("address", address)
	if secret {
		q += "&secret=1"
	}
	return call[ExportResponse](ctx, c, http.MethodGet, "/v1/keys/export"+q, nil)
}

// ContactKey is the key an account keeps for contact (GET
// /v1/keys/contact); account may be empty when one account is logged in.
func (c *Client) ContactKey(ctx context.Context, account, contact string) (ContactKey, error) {
	return call[ContactKey](ctx, c, http.MethodGet, "/v1/keys/contact?"+query("address", account)+"&"+query("contact", contact), nil)
}

// FetchKey runs key discovery for a contact and answers with the key
// then kept (POST /v1/keys/fetch).
func (c *Client) FetchKey(ctx context.Context, req ContactRequest) (ContactKey, error) {
	return call[ContactKey](ctx, c, http.MethodPost, "/v1/keys/fetch", req)
}

// TrustKey raises a contact's key to fingerprint level, the user having
// confirmed req.Fingerprint (POST /v1/keys/trust).
func (c *Client) TrustKey(ctx context.Context, req ContactRequest) (ContactKey, error) {
	return call[ContactKey](ctx, c, http.MethodPost, "/v1/keys/trust", req)
}

// MailConfig is an account's mail client settings (GET
// /v1/mail/config, format json).
func (c *Client) MailConfig(ctx context.Context, address string) (MailConfig, error) {
	return call[MailConfig](ctx, c, http.MethodGet, mailConfigPath(address, FormatJSON), nil)
}

// MailConfigFile is an account's mail client settings as a file in
// format (FormatText, FormatThunderbird or FormatApple), as served.
func (c *Client) MailConfigFile(ctx context.Context, address, format string) ([]byte, error) {
	return call[[]byte](ctx, c, http.MethodGet, mailConfigPath(address, format), nil)
}

func mailConfigPath(address, format string) string {
	return "/v1/mail/config?" + query("address", address) + "&" + query("format", format)
}

// call is do for an endpoint that answers with a T.
func call[T any](ctx context.Context, c *Client, method, path string, in any) (T, error) {
	var out T
	err := c.do(ctx, method, path, in, &out)
	return out, err
}

func query(name, value string) string { return name + "=" + url.QueryEscape(value) }

// do sends one request with the token, in as its JSON body (nil: none),
// and decodes a 200 answer into out (nil: ignored; *[]byte: the raw
// body). Any other status is an *Error.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	token, err := c.bearer()
	if err != nil {
		return err
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding the request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.addr+path, body)
	if err != nil {
		return fmt.Errorf("making the request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach bitmaskd at %s: %w", c.addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e ErrorResponse
		if json.NewDecoder(resp.Body).Decode(&e) != nil || e.Error == "" {
			e.Error = resp.Status
		}
		return &Error{Status: resp.StatusCode, Message: e.Error}
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*[]byte); ok {
		if *raw, err = io.ReadAll(resp.Body); err != nil {
			return fmt.Errorf("reading the answer: %w", err)
		}
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	return nil
}
