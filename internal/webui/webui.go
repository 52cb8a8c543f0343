// Package webui is bitmaskd's local web page: sign up, log in and out,
// change a password, see each account's status, the own and the
// contacts' keys (and trust one by fingerprint), and set up a mail
// client. bitmaskd serves it on the control API's loopback address
// (package controlserver mounts it for every path outside /v1/), from
// html/template pages and embedded CSS and JavaScript: no build step,
// nothing loaded from outside the machine.
//
// The page is not open to every local process or web site: a browser
// gets in with a one-time code that a holder of the control token mints
// (bitmaskctl open, the tray) and trades it for a session cookie
// (HttpOnly, SameSite=Strict). Every state-changing request carries the
// session's CSRF token and comes from the page's own origin; the Host
// must be a loopback name. docs/local-page.md says it all.
package webui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/bitmask-go/bitmask/internal/controlapi"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Backend is what the page does, in the daemon's process: the control
// server's flows, called in-process. An error that is a
// *controlapi.Error carries the HTTP status the page answers with; any
// other error is a 400.
type Backend interface {
	// Status is every logged-in account (and those in their first
	// sync).
	Status() []Account
	CreateUser(ctx context.Context, req controlapi.CreateRequest) error
	Login(ctx context.Context, req controlapi.LoginRequest) error
	Logout(ctx context.Context, address string) error
	ChangePassword(ctx context.Context, req controlapi.PasswdRequest) error
	// Keys is the account's own keys, then its contacts' keys.
	Keys(address string) ([]controlapi.KeyInfo, error)
	FetchKey(ctx context.Context, req controlapi.ContactRequest) (controlapi.ContactKey, error)
	TrustKey(ctx context.Context, req controlapi.ContactRequest) (controlapi.ContactKey, error)
	// MailConfig is the account's mail client settings, the local
	// token as password.
	MailConfig(address string) (controlapi.MailConfig, error)
	// Certificate is the local IMAP and SMTP certificate, PEM (no key).
	Certificate() ([]byte, error)
	// SyncPaused tells whether sync with the provider is paused (from
	// the tray).
	SyncPaused() bool
}

// Account is one account as the status page shows it.
type Account struct {
	controlapi.AccountStatus
	// Outgoing is the mail waiting in the outbox to be handed to the
	// provider.
	Outgoing int
}

// Config adjusts a Server.
type Config struct {
	// Addr is the page's host:port, the base of LoginURL's URLs.
	Addr string
	// CodeTTL is how long a one-time code is good for (default 2
	// minutes); SessionTTL how long a session lasts unused (default
	// 12 hours).
	CodeTTL, SessionTTL time.Duration
	// Now is the clock (default time.Now), for tests of expiry.
	Now    func() time.Time
	Logger *slog.Logger
}

// Server serves the page over one backend.
type Server struct {
	b     Backend
	cfg   Config
	log   *slog.Logger
	pages map[string]*template.Template
	mux   *http.ServeMux

	mu       sync.Mutex
	codes    map[secretKey]code
	sessions map[secretKey]*session
}

// New is the page over b.
func New(b Backend, cfg Config) *Server {
	if cfg.CodeTTL <= 0 {
		cfg.CodeTTL = 2 * time.Minute
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{b: b, cfg: cfg, log: log, pages: parsePages(), codes: map[secretKey]code{}, sessions: map[secretKey]*session{}}
	s.mux = s.routes()
	return s
}

func (s *Server) now() time.Time { return s.cfg.Now() }

// LoginURL mints a one-time code and is the URL that trades it for a
// page session, then shows path (a path of the page such as "/setup";
// anything else shows "/"). It is for a process that holds the control
// token or runs inside bitmaskd (the tray); the URL is a credential
// until it is used or expires.
func (s *Server) LoginURL(path string) (string, error) {
	if s.cfg.Addr == "" {
		return "", errors.New("the local page has no address")
	}
	u, _, err := s.LoginURLFor(s.cfg.Addr, path)
	return u, err
}

// LoginURLFor is LoginURL on the page at host (a host:port), with the
// code's expiry.
func (s *Server) LoginURLFor(host, path string) (string, time.Time, error) {
	if !loopbackHost(host) {
		return "", time.Time{}, fmt.Errorf("the local page is served on loopback only, not %q", host)
	}
	c, exp, err := s.mint()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("making a one-time code: %w", err)
	}
	q := url.Values{"code": {c}, "next": {localPath(path)}}
	return "http://" + host + "/auth?" + q.Encode(), exp, nil
}

// Security headers of every answer: nothing from outside the machine,
// no framing, forms only to the page, no inline script or style.
const csp = "default-src 'self'; frame-ancestors 'none'; form-action 'self'"

// ServeHTTP serves the page.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", referrerPolicy)
	h.Set("Cache-Control", "no-store")
	if !loopbackHost(r.Host) {
		s.refuse(w, r, http.StatusForbidden, "This page is served to this computer only (the Host is not a loopback name).")
		return
	}
	s.mux.ServeHTTP(w, r)
}

// staticFiles are the page's CSS and script.
func staticFiles() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	return http.StripPrefix("/static/", http.FileServerFS(sub))
}
