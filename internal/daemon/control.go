package daemon

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bitmask-go/bitmask/internal/contactkeys"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
)

// The control API: JSON over HTTP on a loopback address (127.0.0.1:7070),
// every request with "Authorization: Bearer TOKEN", TOKEN being the
// content of DATA/control.token (mode 0600). docs/control-api.md lists the
// endpoints; bitmaskctl is its client.

// TokenFile is the control token's path in a data directory.
func TokenFile(dataDir string) string { return filepath.Join(dataDir, "control.token") }

// LoadOrCreateToken returns the control token, creating the 0600 file on
// first use.
func LoadOrCreateToken(dataDir string) (string, error) {
	path := TokenFile(dataDir)
	b, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if len(tok) < 32 {
			return "", fmt.Errorf("control token in %s is too short", path)
		}
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return "", err
	}
	return tok, f.Close()
}

// ListenLoopback listens on addr and refuses any address that is not
// loopback: local services are for this machine only.
func ListenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("refusing to listen on %s: local services bind to loopback only", addr)
	}
	return net.Listen("tcp", addr)
}

// Control request bodies.
type (
	CreateRequest struct {
		Address  string `json:"address"`
		Password string `json:"password"`
		ProviderRef
		Invite string `json:"invite,omitempty"`
	}
	LoginRequest struct {
		Address  string `json:"address"`
		Password string `json:"password"`
		ProviderRef
	}
	AddressRequest struct {
		Address string `json:"address"`
	}
	PasswdRequest struct {
		Address string `json:"address"`
		Old     string `json:"old_password"`
		New     string `json:"new_password"`
	}
	StatusResponse struct {
		Accounts []AccountStatus `json:"accounts"`
	}
	KeyInfo struct {
		Address     string    `json:"address"`
		Fingerprint string    `json:"fingerprint"`
		Created     time.Time `json:"created"`
		Expires     time.Time `json:"expires,omitzero"`
		Own         bool      `json:"own"`
		Private     bool      `json:"private"`
		Level       string    `json:"validation"`
	}
	ExportResponse struct {
		Address     string `json:"address"`
		Fingerprint string `json:"fingerprint"`
		Armored     string `json:"armored"`
	}
	ErrorResponse struct {
		Error string `json:"error"`
	}
	// ContactRequest names a contact's key for an account.
	ContactRequest struct {
		Address     string `json:"address,omitempty"` // the account (optional with one account)
		Contact     string `json:"contact"`
		Fingerprint string `json:"fingerprint,omitempty"`
	}
	// ContactKey is a contact's key as bitmaskctl shows it.
	ContactKey struct {
		Address     string    `json:"address"`
		Fingerprint string    `json:"fingerprint"`
		Level       string    `json:"validation"`
		Source      string    `json:"source"`
		Created     time.Time `json:"created"`
		Expires     time.Time `json:"expires,omitzero"`
		Updated     time.Time `json:"updated"`
	}
	// MailConfig is what to type into a mail client.
	MailConfig struct {
		Address        string `json:"address"`
		Username       string `json:"username"`
		Password       string `json:"password"` // the local token
		IMAPHost       string `json:"imap_host"`
		IMAPPort       int    `json:"imap_port"`
		SMTPHost       string `json:"smtp_host"`
		SMTPPort       int    `json:"smtp_port"`
		Security       string `json:"security"` // "STARTTLS"
		TLSFingerprint string `json:"tls_sha256,omitempty"`
	}
)

// ControlHandler serves the control API, requiring token.
func (d *Daemon) ControlHandler(token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/users", d.hCreate)
	mux.HandleFunc("POST /v1/login", d.hLogin)
	mux.HandleFunc("POST /v1/logout", d.hLogout)
	mux.HandleFunc("POST /v1/passwd", d.hPasswd)
	mux.HandleFunc("GET /v1/status", d.hStatus)
	mux.HandleFunc("GET /v1/keys", d.hKeys)
	mux.HandleFunc("GET /v1/keys/export", d.hExport)
	mux.HandleFunc("GET /v1/keys/contact", d.hContactKey)
	mux.HandleFunc("POST /v1/keys/fetch", d.hFetchKey)
	mux.HandleFunc("POST /v1/keys/trust", d.hTrustKey)
	mux.HandleFunc("GET /v1/mail/config", d.hMailConfig)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A web page elsewhere must not be able to drive the API
		// through a rebinding host name.
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = strings.Trim(r.Host, "[]")
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			ctlErr(w, http.StatusForbidden, errors.New("bad Host"))
			return
		}
		if r.Method == http.MethodGet && (r.URL.Path == "/mail/config-v1.1.xml" || r.URL.Path == "/.well-known/autoconfig/mail/config-v1.1.xml") {
			d.autoconfigHandler(w, r)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			ctlErr(w, http.StatusUnauthorized, errors.New("missing or wrong control token"))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// ServeControl serves the control API on ln until ctx ends.
func (d *Daemon) ServeControl(ctx context.Context, ln net.Listener, token string) error {
	hs := &http.Server{Handler: d.ControlHandler(token), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func ctlJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func ctlErr(w http.ResponseWriter, status int, err error) {
	ctlJSON(w, status, ErrorResponse{Error: err.Error()})
}

func readCtl(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	if err := dec.Decode(v); err != nil {
		ctlErr(w, http.StatusBadRequest, fmt.Errorf("malformed request: %w", err))
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		ctlErr(w, http.StatusBadRequest, errors.New("malformed request: trailing data"))
		return false
	}
	return true
}

func statusOf(err error) int {
	var ae *providerclient.APIError
	switch {
	case errors.Is(err, providerclient.ErrWrongPassword):
		return http.StatusUnauthorized
	case errors.As(err, &ae) && ae.Status >= 500, isOffline(err):
		return http.StatusBadGateway
	default:
		return http.StatusBadRequest
	}
}

func (d *Daemon) accountStatus(address string) AccountStatus {
	for _, s := range d.Status() {
		if s.Address == address {
			return s
		}
	}
	return AccountStatus{Address: address}
}

func (d *Daemon) hCreate(w http.ResponseWriter, r *http.Request) {
	var req CreateRequest
	if !readCtl(w, r, &req) {
		return
	}
	a, err := d.CreateUser(r.Context(), req.Address, []byte(req.Password), req.ProviderRef, req.Invite)
	if err != nil {
		ctlErr(w, statusOf(err), err)
		return
	}
	ctlJSON(w, http.StatusOK, d.accountStatus(a.Address))
}

func (d *Daemon) hLogin(w http.ResponseWriter, r *http.Request) {
	var req LoginRequest
	if !readCtl(w, r, &req) {
		return
	}
	a, err := d.Login(r.Context(), req.Address, []byte(req.Password), req.ProviderRef)
	if err != nil {
		ctlErr(w, statusOf(err), err)
		return
	}
	ctlJSON(w, http.StatusOK, d.accountStatus(a.Address))
}

func (d *Daemon) hLogout(w http.ResponseWriter, r *http.Request) {
	var req AddressRequest
	if !readCtl(w, r, &req) {
		return
	}
	if err := d.Logout(r.Context(), strings.ToLower(req.Address)); err != nil {
		ctlErr(w, statusOf(err), err)
		return
	}
	ctlJSON(w, http.StatusOK, struct{}{})
}

func (d *Daemon) hPasswd(w http.ResponseWriter, r *http.Request) {
	var req PasswdRequest
	if !readCtl(w, r, &req) {
		return
	}
	if err := d.ChangePassword(r.Context(), strings.ToLower(req.Address), []byte(req.Old), []byte(req.New)); err != nil {
		ctlErr(w, statusOf(err), err)
		return
	}
	ctlJSON(w, http.StatusOK, struct{}{})
}

func (d *Daemon) hStatus(w http.ResponseWriter, r *http.Request) {
	ctlJSON(w, http.StatusOK, StatusResponse{Accounts: d.Status()})
}

func (d *Daemon) pick(w http.ResponseWriter, r *http.Request) (*Account, bool) {
	addr := strings.ToLower(r.URL.Query().Get("address"))
	if addr == "" {
		if as := d.Accounts(); len(as) == 1 {
			return as[0], true
		}
		ctlErr(w, http.StatusBadRequest, errors.New("say which account (address=...)"))
		return nil, false
	}
	a, ok := d.Account(addr)
	if !ok {
		ctlErr(w, http.StatusNotFound, fmt.Errorf("%s is not logged in", addr))
		return nil, false
	}
	return a, true
}

func (d *Daemon) hKeys(w http.ResponseWriter, r *http.Request) {
	a, ok := d.pick(w, r)
	if !ok {
		return
	}
	ks, err := a.OwnKeys()
	if err != nil {
		ctlErr(w, http.StatusInternalServerError, err)
		return
	}
	out := []KeyInfo{}
	for _, k := range ks {
		out = append(out, KeyInfo{Address: k.Address, Fingerprint: k.Fingerprint, Created: k.Created, Expires: k.Expires, Own: true, Private: true, Level: "own"})
	}
	cks, err := a.Contacts.List()
	if err != nil {
		ctlErr(w, http.StatusInternalServerError, err)
		return
	}
	for _, k := range cks {
		out = append(out, KeyInfo{Address: k.Address, Fingerprint: k.Fingerprint, Created: k.Created, Expires: k.Expires, Level: k.Level.String()})
	}
	ctlJSON(w, http.StatusOK, out)
}

func (d *Daemon) hMailConfig(w http.ResponseWriter, r *http.Request) {
	a, ok := d.pick(w, r)
	if !ok {
		return
	}
	mc := d.MailConfig(a)
	switch r.URL.Query().Get("format") {
	case "", "json":
		ctlJSON(w, http.StatusOK, mc)
	case "thunderbird":
		w.Header().Set("Content-Type", "application/xml")
		_, _ = w.Write(ThunderbirdXML(mc))
	case "apple":
		w.Header().Set("Content-Type", "application/x-apple-aspen-config")
		_, _ = w.Write(AppleProfile(mc))
	case "text":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, TextConfig(mc))
	default:
		ctlErr(w, http.StatusBadRequest, errors.New("format is thunderbird, apple, text or json"))
	}
}

// MailConfig is the account's mail client settings.
func (d *Daemon) MailConfig(a *Account) MailConfig {
	mc := MailConfig{Address: a.Address, Username: a.Address, Password: a.LocalToken(), Security: "STARTTLS", TLSFingerprint: d.cfg.TLSFingerprint}
	if h, p, err := net.SplitHostPort(d.cfg.IMAPAddr); err == nil {
		mc.IMAPHost, mc.IMAPPort = h, atoiOr(p, 1984)
	}
	if h, p, err := net.SplitHostPort(d.cfg.SMTPAddr); err == nil {
		mc.SMTPHost, mc.SMTPPort = h, atoiOr(p, 2013)
	}
	return mc
}

func atoiOr(s string, def int) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return def
		}
		n = n*10 + int(c-'0')
	}
	if n == 0 {
		return def
	}
	return n
}

func (d *Daemon) hExport(w http.ResponseWriter, r *http.Request) {
	a, ok := d.pick(w, r)
	if !ok {
		return
	}
	e, err := a.CurrentKey()
	if err != nil {
		ctlErr(w, http.StatusNotFound, err)
		return
	}
	var armored string
	if r.URL.Query().Get("secret") == "1" {
		armored, err = pgpkey.ArmorPrivate(e)
	} else {
		armored, err = pgpkey.ArmorPublic(e)
	}
	if err != nil {
		ctlErr(w, http.StatusInternalServerError, err)
		return
	}
	ctlJSON(w, http.StatusOK, ExportResponse{Address: a.Address, Fingerprint: pgpkey.Fingerprint(e), Armored: armored})
}

func contactKey(k *contactkeys.Key) ContactKey {
	return ContactKey{Address: k.Address, Fingerprint: k.Fingerprint, Level: k.Level.String(), Source: k.Source,
		Created: k.Created, Expires: k.Expires, Updated: k.Updated}
}

func (d *Daemon) pickAccount(w http.ResponseWriter, addr string) (*Account, bool) {
	r := &http.Request{URL: &url.URL{RawQuery: url.Values{"address": {addr}}.Encode()}}
	return d.pick(w, r)
}

func (d *Daemon) hContactKey(w http.ResponseWriter, r *http.Request) {
	a, ok := d.pick(w, r)
	if !ok {
		return
	}
	k, err := a.Contacts.Get(r.URL.Query().Get("contact"))
	if errors.Is(err, contactkeys.ErrNoKey) {
		ctlErr(w, http.StatusNotFound, fmt.Errorf("no key known for %s (try keys fetch)", r.URL.Query().Get("contact")))
		return
	} else if err != nil {
		ctlErr(w, http.StatusInternalServerError, err)
		return
	}
	ctlJSON(w, http.StatusOK, contactKey(k))
}

func (d *Daemon) hFetchKey(w http.ResponseWriter, r *http.Request) {
	d.contactAction(w, r, func(a *Account, req ContactRequest) (int, error) {
		if _, err := a.discovery.Find(r.Context(), req.Contact); err != nil {
			return http.StatusNotFound, fmt.Errorf("no key found for %s: %w", req.Contact, err)
		}
		return 0, nil
	})
}

func (d *Daemon) hTrustKey(w http.ResponseWriter, r *http.Request) {
	d.contactAction(w, r, func(a *Account, req ContactRequest) (int, error) {
		return http.StatusBadRequest, a.Contacts.Trust(req.Contact, req.Fingerprint, "")
	})
}

// contactAction reads a ContactRequest, runs act on the account, and
// answers with the contact's key as it is then kept.
func (d *Daemon) contactAction(w http.ResponseWriter, r *http.Request, act func(*Account, ContactRequest) (int, error)) {
	var req ContactRequest
	if !readCtl(w, r, &req) {
		return
	}
	a, ok := d.pickAccount(w, req.Address)
	if !ok {
		return
	}
	if status, err := act(a, req); err != nil {
		ctlErr(w, status, err)
		return
	}
	k, err := a.Contacts.Get(req.Contact)
	if err != nil {
		ctlErr(w, http.StatusInternalServerError, err)
		return
	}
	ctlJSON(w, http.StatusOK, contactKey(k))
}
