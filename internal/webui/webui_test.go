package webui_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/webui"
)

// fake is a backend that records what the page asked it to change.
type fake struct {
	mu       sync.Mutex
	calls    []string
	pem      []byte
	loggedIn map[string]bool
}

func newFake(t *testing.T) *fake {
	return &fake{pem: testCert(t), loggedIn: map[string]bool{"alice@example.test": true}}
}

func (f *fake) record(c string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

func (f *fake) changes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fake) Status() []webui.Account {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []webui.Account
	for a := range f.loggedIn {
		out = append(out, webui.Account{AccountStatus: controlapi.AccountStatus{Address: a, State: "ready", Online: true,
			Sync: controlapi.SyncStatus{LastSeq: 3, Head: 3, Online: true}, Key: "817C159755EB5556AC7106420F0C6C022ACDEE65"}, Outgoing: 2})
	}
	return out
}

func (f *fake) CreateUser(_ context.Context, req controlapi.CreateRequest) error {
	f.record("create " + req.Address + " " + req.Invite)
	return nil
}

func (f *fake) Login(_ context.Context, req controlapi.LoginRequest) error {
	if req.Password != "right password" {
		return &controlapi.Error{Status: 401, Message: "wrong username or password"}
	}
	f.record("login " + req.Address)
	return nil
}

func (f *fake) Logout(_ context.Context, address string) error {
	f.record("logout " + address)
	f.mu.Lock()
	delete(f.loggedIn, address)
	f.mu.Unlock()
	return nil
}

func (f *fake) ChangePassword(_ context.Context, req controlapi.PasswdRequest) error {
	f.record("passwd " + req.Address)
	return nil
}

func (f *fake) Keys(address string) ([]controlapi.KeyInfo, error) {
	return []controlapi.KeyInfo{{Address: address, Fingerprint: "817C159755EB5556AC7106420F0C6C022ACDEE65", Own: true, Level: "own"},
		{Address: "bob@example.test", Fingerprint: "6B74E0C3D1A9F2B85C4E7D90A1B2C3D4E5F60718", Level: "provider_trust"}}, nil
}

func (f *fake) FetchKey(_ context.Context, req controlapi.ContactRequest) (controlapi.ContactKey, error) {
	f.record("fetch " + req.Contact)
	return controlapi.ContactKey{Address: req.Contact, Level: "provider_trust"}, nil
}

func (f *fake) TrustKey(_ context.Context, req controlapi.ContactRequest) (controlapi.ContactKey, error) {
	f.record("trust " + req.Contact + " " + req.Fingerprint)
	return controlapi.ContactKey{Address: req.Contact, Fingerprint: req.Fingerprint, Level: "fingerprint"}, nil
}

func (f *fake) MailConfig(address string) (controlapi.MailConfig, error) {
	return controlapi.MailConfig{Address: address, Username: address, Password: "local-token-0123", IMAPHost: "127.0.0.1", IMAPPort: 1984,
		SMTPHost: "127.0.0.1", SMTPPort: 2013, Security: "STARTTLS"}, nil
}

func (f *fake) Certificate() ([]byte, error) { return f.pem, nil }

func (f *fake) SyncPaused() bool { return true }

func testCert(t *testing.T) []byte {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is a page over a fake backend on a loopback test server.
type env struct {
	t     *testing.T
	s     *webui.Server
	b     *fake
	url   string // http://127.0.0.1:PORT
	host  string
	clock *clock
}

func newEnv(t *testing.T) *env {
	b := newFake(t)
	c := &clock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	s := webui.New(b, webui.Config{Now: c.Now})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &env{t: t, s: s, b: b, url: srv.URL, host: strings.TrimPrefix(srv.URL, "http://"), clock: c}
}

// noRedirect does not follow redirects.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

type answer struct {
	status int
	header http.Header
	body   string
}

func (e *env) do(req *http.Request) answer {
	e.t.Helper()
	resp, err := noRedirect.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func (e *env) get(path string, cookie *http.Cookie) answer {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.url+path, nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	return e.do(req)
}

// code mints a one-time URL and returns its path and query.
func (e *env) code(next string) string {
	e.t.Helper()
	u, _, err := e.s.LoginURLFor(e.host, next)
	if err != nil {
		e.t.Fatal(err)
	}
	if !strings.HasPrefix(u, e.url+"/auth?code=") {
		e.t.Fatalf("login URL %s", u)
	}
	return strings.TrimPrefix(u, e.url)
}

// login trades a fresh code for a session and returns its cookie and
// CSRF token.
func (e *env) login() (*http.Cookie, string) {
	e.t.Helper()
	a := e.get(e.code("/"), nil)
	if a.status != http.StatusSeeOther {
		e.t.Fatalf("auth: %d %s", a.status, a.body)
	}
	resp := http.Response{Header: a.header}
	cs := resp.Cookies()
	if len(cs) != 1 {
		e.t.Fatalf("auth set cookies %v", cs)
	}
	page := e.get("/", cs[0])
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(page.body)
	if page.status != 200 || m == nil {
		e.t.Fatalf("status page: %d %s", page.status, page.body)
	}
	return cs[0], m[1]
}

// post sends a form as the page's own.
func (e *env) post(path string, cookie *http.Cookie, form url.Values, mod func(*http.Request)) answer {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.url)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	if mod != nil {
		mod(req)
	}
	return e.do(req)
}

// A code is traded once for an HttpOnly, SameSite=Strict session
// cookie on Path=/, without Secure, then the browser goes to next.
func TestCodeForSession(t *testing.T) {
	e := newEnv(t)
	a := e.get(e.code("/setup?account=alice@example.test"), nil)
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/setup?account=alice@example.test" {
		t.Fatalf("auth: %d %v", a.status, a.header)
	}
	sc := a.header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(sc, want) {
			t.Errorf("cookie %q lacks %s", sc, want)
		}
	}
	if strings.Contains(sc, "Secure") || strings.Contains(sc, "Domain") {
		t.Errorf("cookie %q", sc)
	}
	ck := (&http.Response{Header: a.header}).Cookies()[0]
	if got := e.get("/", ck); got.status != 200 || !strings.Contains(got.body, "alice@example.test") || !strings.Contains(got.body, "Sync is paused") {
		t.Errorf("status page: %d %s", got.status, got.body)
	}
}

// A wrong, reused or expired code gets no session.
func TestBadCodes(t *testing.T) {
	e := newEnv(t)
	refused := func(what, path string) {
		t.Helper()
		a := e.get(path, nil)
		if a.status != http.StatusForbidden || a.header.Get("Set-Cookie") != "" || !strings.Contains(a.body, "not valid") {
			t.Errorf("%s: %d %v %s", what, a.status, a.header, a.body)
		}
	}
	good := e.code("/")
	refused("wrong code", "/auth?code=00112233445566778899aabbccddeeff&next=/")
	refused("no code", "/auth?next=/")
	if a := e.get(good, nil); a.status != http.StatusSeeOther {
		t.Fatalf("good code: %d", a.status)
	}
	refused("reused code", good)
	late := e.code("/")
	e.clock.add(2*time.Minute + time.Second)
	refused("expired code", late)
	// Codes are compared exactly: the same hex in upper case is wrong.
	c := e.code("/")
	refused("upper-case code", "/auth?code="+strings.ToUpper(c[len("/auth?code="):len("/auth?code=")+32])+"&next=/")
}

// next is a path of the page only.
func TestNextIsLocal(t *testing.T) {
	e := newEnv(t)
	for next, want := range map[string]string{
		"/keys?account=a@b.c":  "/keys?account=a@b.c",
		"//evil.example/x":     "/",
		"http://evil.example/": "/",
		"/\\evil.example":      "/",
		"javascript:alert(1)":  "/",
		"/../../etc/passwd":    "/etc/passwd",
		"":                     "/",
	} {
		u, _, err := e.s.LoginURLFor(e.host, "/")
		if err != nil {
			t.Fatal(err)
		}
		pu, _ := url.Parse(u)
		q := pu.Query()
		q.Set("next", next)
		a := e.get("/auth?"+q.Encode(), nil)
		if a.status != http.StatusSeeOther || a.header.Get("Location") != want {
			t.Errorf("next %q: %d %q, want %q", next, a.status, a.header.Get("Location"), want)
		}
	}
}

// Without a session every page is refused, and nothing of an account
// shows.
func TestNoSession(t *testing.T) {
	e := newEnv(t)
	stale := &http.Cookie{Name: "bitmask_page_" + e.host[strings.LastIndex(e.host, ":")+1:], Value: strings.Repeat("ab", 32)}
	for _, ck := range []*http.Cookie{nil, stale} {
		for _, p := range []string{"/", "/setup?account=alice@example.test", "/setup/bitmask.mobileconfig?account=alice@example.test", "/keys", "/nothing"} {
			a := e.get(p, ck)
			if a.status != http.StatusUnauthorized || strings.Contains(a.body, "local-token-0123") || strings.Contains(a.body, "alice") {
				t.Errorf("GET %s (cookie %v): %d %s", p, ck != nil, a.status, a.body)
			}
		}
	}
	// The style sheet and script need none.
	if a := e.get("/static/style.css", nil); a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/css") {
		t.Errorf("style: %d %v", a.status, a.header)
	}
}

// Every answer forbids outside resources, framing and sniffing, and
// none allows another origin to read it.
func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	ck, _ := e.login()
	for _, p := range []string{"/", "/auth?code=x", "/static/app.js", "/setup", "/nothing"} {
		for _, c := range []*http.Cookie{nil, ck} {
			a := e.get(p, c)
			h := a.header
			if h.Get("Content-Security-Policy") != "default-src 'self'; frame-ancestors 'none'; form-action 'self'" ||
				h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") == "" {
				t.Errorf("GET %s: headers %v", p, h)
			}
			for k := range h {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("GET %s: %s", p, k)
				}
			}
		}
	}
	req, _ := http.NewRequest("OPTIONS", e.url+"/login", nil)
	req.Header.Set("Origin", "http://evil.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	if a := e.do(req); a.header.Get("Access-Control-Allow-Origin") != "" || a.status == 200 {
		t.Errorf("preflight: %d %v", a.status, a.header)
	}
}

// A state-changing request is refused, and changes nothing, unless it
// comes from the page's origin with the session's cookie and CSRF token,
// to a loopback Host, with a form of bounded size.
func TestActionChecks(t *testing.T) {
	e := newEnv(t)
	ck, csrf := e.login()
	form := func(csrf string) url.Values {
		return url.Values{"csrf": {csrf}, "account": {"alice@example.test"}}
	}
	big := url.Values{"csrf": {csrf}, "account": {"alice@example.test"}, "pad": {strings.Repeat("x", 10<<20)}}
	for _, tc := range []struct {
		what   string
		cookie *http.Cookie
		form   url.Values
		mod    func(*http.Request)
		status int
	}{
		{"no CSRF token", ck, url.Values{"account": {"alice@example.test"}}, nil, 403},
		{"wrong CSRF token", ck, form(strings.Repeat("0", len(csrf))), nil, 403},
		{"another session's token", ck, form(csrf[1:] + "0"), nil, 403},
		{"other Origin", ck, form(csrf), func(r *http.Request) { r.Header.Set("Origin", "http://evil.example") }, 403},
		{"other port", ck, form(csrf), func(r *http.Request) { r.Header.Set("Origin", "http://127.0.0.1:1") }, 403},
		{"Origin null", ck, form(csrf), func(r *http.Request) { r.Header.Set("Origin", "null") }, 403},
		{"no Origin, no Referer", ck, form(csrf), func(r *http.Request) { r.Header.Del("Origin") }, 403},
		{"no Origin, other Referer", ck, form(csrf), func(r *http.Request) {
			r.Header.Del("Origin")
			r.Header.Set("Referer", "http://evil.example/x")
		}, 403},
		{"no cookie", nil, form(csrf), nil, 401},
		{"non-loopback Host", ck, form(csrf), func(r *http.Request) {
			r.Host = "evil.example:" + e.host[strings.LastIndex(e.host, ":")+1:]
			r.Header.Set("Origin", "http://"+r.Host)
		}, 403},
		{"rebinding Host", ck, form(csrf), func(r *http.Request) {
			r.Host = "127.0.0.1.evil.example"
			r.Header.Set("Origin", "http://"+r.Host)
		}, 403},
		{"10 MB form", ck, big, nil, 413},
		{"10 MB form, chunked", ck, big, func(r *http.Request) { r.ContentLength = -1 }, 413},
	} {
		a := e.post("/logout", tc.cookie, tc.form, tc.mod)
		if a.status != tc.status || !strings.Contains(a.body, "<h1>") {
			t.Errorf("%s: %d, want %d\n%.300s", tc.what, a.status, tc.status, a.body)
		}
		if tc.status != 401 && !strings.Contains(a.body, "Nothing was changed") && tc.what != "non-loopback Host" && tc.what != "rebinding Host" {
			t.Errorf("%s: the answer does not say nothing changed: %.300s", tc.what, a.body)
		}
		if c := e.b.changes(); len(c) != 0 {
			t.Fatalf("%s: changed %v", tc.what, c)
		}
	}
	// The same request as the page sends it is done.
	if a := e.post("/logout", ck, form(csrf), nil); a.status != http.StatusSeeOther || a.header.Get("Location") != "/" {
		t.Fatalf("logout: %d %s", a.status, a.body)
	}
	if c := e.b.changes(); len(c) != 1 || c[0] != "logout alice@example.test" {
		t.Fatalf("changes %v", c)
	}
	// A Referer of the page stands in for a missing Origin.
	a := e.post("/keys/trust", ck, url.Values{"csrf": {csrf}, "account": {"alice@example.test"}, "contact": {"Bob@example.test"}, "fingerprint": {"6B74 E0C3:D1A9"}},
		func(r *http.Request) {
			r.Header.Del("Origin")
			r.Header.Set("Referer", e.url+"/keys")
		})
	if a.status != http.StatusSeeOther {
		t.Fatalf("trust: %d %s", a.status, a.body)
	}
	if c := e.b.changes(); c[1] != "trust bob@example.test 6B74E0C3D1A9" {
		t.Fatalf("changes %v", c)
	}
	// The flash message is shown once.
	if p := e.get("/keys", ck); !strings.Contains(p.body, "now trusted") {
		t.Errorf("no message after trust: %s", p.body)
	}
	if p := e.get("/keys", ck); strings.Contains(p.body, "now trusted") {
		t.Errorf("message shown twice")
	}
}

// A failed login shows the form again with the error and the status,
// the address kept and the password not.
func TestFailedLogin(t *testing.T) {
	e := newEnv(t)
	ck, csrf := e.login()
	a := e.post("/login", ck, url.Values{"csrf": {csrf}, "address": {"carol@example.test"}, "password": {"wrong password"}}, nil)
	if a.status != http.StatusUnauthorized || !strings.Contains(a.body, "wrong username or password") ||
		!strings.Contains(a.body, `value="carol@example.test"`) || strings.Contains(a.body, "wrong password\"") {
		t.Fatalf("login: %d %s", a.status, a.body)
	}
	a = e.post("/signup", ck, url.Values{"csrf": {csrf}, "address": {"carol@example.test"}, "password": {"one password"}, "password2": {"another one"}}, nil)
	if a.status != http.StatusBadRequest || !strings.Contains(a.body, "the two passwords differ") || len(e.b.changes()) != 0 {
		t.Fatalf("signup: %d %s", a.status, a.body)
	}
	a = e.post("/login", ck, url.Values{"csrf": {csrf}, "address": {"carol@example.test"}, "password": {"right password"}}, nil)
	if a.status != http.StatusSeeOther {
		t.Fatalf("login: %d %s", a.status, a.body)
	}
}

// The setup page shows the settings with copy buttons and the
// certificate's fingerprint; the downloads are the files.
func TestSetup(t *testing.T) {
	e := newEnv(t)
	ck, _ := e.login()
	a := e.get("/setup", ck)
	der, _ := pem.Decode(e.b.pem)
	sum := sha256.Sum256(der.Bytes)
	var pairs []string
	for _, b := range sum {
		pairs = append(pairs, fmt.Sprintf("%02X", b))
	}
	for _, want := range []string{"local-token-0123", "1984", "2013", "STARTTLS", `data-copy="v-pass"`, strings.Join(pairs, ":"),
		"/setup/config-v1.1.xml?account=alice%40example.test", "/setup/bitmask.mobileconfig?account=alice%40example.test", "/setup/bitmask-localhost.crt"} {
		if !strings.Contains(a.body, want) {
			t.Errorf("setup page lacks %q", want)
		}
	}
	for p, want := range map[string]string{
		"/setup/config-v1.1.xml?account=alice@example.test":      "<clientConfig",
		"/setup/bitmask.mobileconfig?account=alice@example.test": "local-token-0123",
		"/setup/bitmask-localhost.crt":                           "BEGIN CERTIFICATE",
	} {
		d := e.get(p, ck)
		if d.status != 200 || !strings.Contains(d.body, want) || !strings.HasPrefix(d.header.Get("Content-Disposition"), "attachment") {
			t.Errorf("GET %s: %d %v %.200s", p, d.status, d.header, d.body)
		}
	}
}

// Ending the page session signs the browser out.
func TestEndSession(t *testing.T) {
	e := newEnv(t)
	ck, csrf := e.login()
	if a := e.post("/session/end", ck, url.Values{"csrf": {csrf}}, nil); a.status != 200 || !strings.Contains(a.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("end: %d %v", a.status, a.header)
	}
	if a := e.get("/", ck); a.status != http.StatusUnauthorized {
		t.Fatalf("after end: %d", a.status)
	}
}

// A session unused for its lifetime is gone.
func TestSessionExpires(t *testing.T) {
	e := newEnv(t)
	ck, _ := e.login()
	e.clock.add(11 * time.Hour)
	if a := e.get("/", ck); a.status != 200 {
		t.Fatalf("after 11h: %d", a.status)
	}
	e.clock.add(12*time.Hour + time.Second)
	if a := e.get("/", ck); a.status != http.StatusUnauthorized {
		t.Fatalf("after 12h unused: %d", a.status)
	}
}

// LoginURL needs the page's address, and codes are for loopback only.
func TestLoginURL(t *testing.T) {
	if _, err := webui.New(newFake(t), webui.Config{}).LoginURL("/"); err == nil {
		t.Error("LoginURL without an address")
	}
	s := webui.New(newFake(t), webui.Config{Addr: "127.0.0.1:7070"})
	u, err := s.LoginURL("/keys")
	if err != nil || !regexp.MustCompile(`^http://127\.0\.0\.1:7070/auth\?code=[0-9a-f]{32}&next=%2Fkeys$`).MatchString(u) {
		t.Errorf("LoginURL: %s %v", u, err)
	}
	if _, _, err := s.LoginURLFor("evil.example:7070", "/"); err == nil {
		t.Error("LoginURLFor a non-loopback host")
	}
}
