package webui

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// How the page knows its user. Anyone who can read the control token
// (bitmaskctl, the tray in bitmaskd's process) mints a one-time code;
// the browser opened on /auth?code=CODE&next=PATH trades it for a
// session cookie. Every state-changing request then needs the cookie,
// the session's CSRF token in its form, and an Origin (or Referer) that
// is the page's own.

const (
	codeBytes    = 16 // one-time codes: 128 random bits
	sessionBytes = 32
	maxCodes     = 32 // outstanding codes kept; the oldest goes first
	maxSessions  = 16 // page sessions kept; the least recently used goes first
	// maxForm bounds a form's body: an account form is well under 1 KiB.
	maxForm = 64 << 10
)

// secrets is a random value's lookup key: its SHA-256, so a map lookup
// tells a timing observer nothing about the value itself; the value is
// then compared in constant time.
type secretKey [sha256.Size]byte

func keyOf(secret string) secretKey { return sha256.Sum256([]byte(secret)) }

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

type code struct {
	secret  string
	expires time.Time
}

type session struct {
	secret   string
	csrf     string
	lastUsed time.Time
	flash    string // a message shown once, on the next page
	// recoveryCode is the recovery code a signup made, shown once on
	// the next page (recovery.go).
	recoveryCode string
}

// errBadCode is what every failed trade says: a wrong, used and expired
// code are not told apart.
var errBadCode = errors.New("this sign-in link is not valid: it was used already, has expired, or is wrong")

// mint makes a one-time code valid for the configured time.
func (s *Server) mint() (string, time.Time, error) {
	c, err := randomHex(codeBytes)
	if err != nil {
		return "", time.Time{}, err
	}
	now := s.now()
	exp := now.Add(s.cfg.CodeTTL)
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.codes {
		if !now.Before(v.expires) {
			delete(s.codes, k)
		}
	}
	for len(s.codes) >= maxCodes {
		var oldest secretKey
		first := true
		for k, v := range s.codes {
			if first || v.expires.Before(s.codes[oldest].expires) {
				oldest, first = k, false
			}
		}
		delete(s.codes, oldest)
	}
	s.codes[keyOf(c)] = code{secret: c, expires: exp}
	return c, exp, nil
}

// redeem uses up a code: true if it was outstanding and not expired. A
// code is gone after its first presentation, whatever the outcome.
func (s *Server) redeem(given string) bool {
	if given == "" {
		return false
	}
	k := keyOf(given)
	s.mu.Lock()
	c, ok := s.codes[k]
	delete(s.codes, k)
	s.mu.Unlock()
	return ok && subtle.ConstantTimeCompare([]byte(c.secret), []byte(given)) == 1 && s.now().Before(c.expires)
}

// newSession starts a page session and returns its cookie value.
func (s *Server) newSession() (string, error) {
	id, err := randomHex(sessionBytes)
	if err != nil {
		return "", err
	}
	csrf, err := randomHex(sessionBytes)
	if err != nil {
		return "", err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.sessions {
		if now.Sub(v.lastUsed) >= s.cfg.SessionTTL {
			delete(s.sessions, k)
		}
	}
	for len(s.sessions) >= maxSessions {
		var oldest secretKey
		first := true
		for k, v := range s.sessions {
			if first || v.lastUsed.Before(s.sessions[oldest].lastUsed) {
				oldest, first = k, false
			}
		}
		delete(s.sessions, oldest)
	}
	s.sessions[keyOf(id)] = &session{secret: id, csrf: csrf, lastUsed: now}
	return id, nil
}

// sessionOf is the request's live session (a copy), or false.
func (s *Server) sessionOf(r *http.Request) (session, bool) {
	ck, err := r.Cookie(cookieName(r))
	if err != nil || ck.Value == "" {
		return session{}, false
	}
	k := keyOf(ck.Value)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.sessions[k]
	if !ok || subtle.ConstantTimeCompare([]byte(se.secret), []byte(ck.Value)) != 1 {
		return session{}, false
	}
	if now.Sub(se.lastUsed) >= s.cfg.SessionTTL {
		delete(s.sessions, k)
		return session{}, false
	}
	se.lastUsed = now
	return *se, true
}

// setFlash keeps msg for the session's next page.
func (s *Server) setFlash(se session, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.sessions[keyOf(se.secret)]; ok {
		p.flash = msg
	}
}

// takeFlash is the session's kept message, once.
func (s *Server) takeFlash(se session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.sessions[keyOf(se.secret)]
	if !ok {
		return ""
	}
	m := p.flash
	p.flash = ""
	return m
}

// endSession forgets a session.
func (s *Server) endSession(se session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, keyOf(se.secret))
}

// cookieName is the session cookie's name. Browsers keep cookies per
// host, not per port, so the name carries the port: two bitmaskd on one
// machine (a demo beside the real one) keep apart.
func cookieName(r *http.Request) string {
	if _, port, err := net.SplitHostPort(r.Host); err == nil && port != "" {
		return "bitmask_page_" + port
	}
	return "bitmask_page"
}

func sessionCookie(r *http.Request, value string, maxAge int) *http.Cookie {
	// No Secure: the page is plain http on loopback, which browsers
	// treat as a secure context but would not send a Secure cookie to.
	return &http.Cookie{Name: cookieName(r), Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true, SameSite: http.SameSiteStrictMode}
}

// localPath is next as a path of this page, or "/" when it is anything
// else (another site, a scheme, a protocol-relative "//host").
func localPath(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	p := path.Clean(u.Path)
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return "/"
	}
	out := &url.URL{Path: p, RawQuery: u.RawQuery}
	return out.String()
}

// loopbackHost tells whether a Host header names a loopback host
// ("localhost" or a loopback IP literal), with or without a port. The
// control server checks this before the page sees a request; the page
// checks again so that it is never served otherwise.
func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = strings.Trim(hostport, "[]")
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// sameOrigin tells whether a state-changing request comes from the
// page itself: its Origin, or without one its Referer, is
// http://HOST of the request.
func sameOrigin(r *http.Request) bool {
	want := "http://" + r.Host
	if o := r.Header.Get("Origin"); o != "" {
		return o == want
	}
	ref := r.Header.Get("Referer")
	if ref == "" {
		return false
	}
	u, err := url.Parse(ref)
	return err == nil && u.Scheme == "http" && u.Host == r.Host
}

// csrfOK tells whether a form's CSRF token is the session's.
func csrfOK(se session, given string) bool {
	return given != "" && subtle.ConstantTimeCompare([]byte(se.csrf), []byte(given)) == 1
}
