package webui

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/bitmask-go/bitmask/internal/clientsetup"
	"github.com/bitmask-go/bitmask/internal/controlapi"
)

// referrerPolicy keeps the page's URLs from other sites. It is not
// no-referrer: under that policy a browser sends "Origin: null" with the
// page's own form posts (the Fetch standard's rule for non-CORS POSTs),
// and the Origin check would refuse them all.
const referrerPolicy = "same-origin"

func (s *Server) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /auth", s.hAuth)
	m.Handle("GET /static/", staticFiles())
	m.HandleFunc("GET /{$}", s.page(s.hStatus))
	m.HandleFunc("GET /login", s.page(s.hLoginForm))
	m.HandleFunc("POST /login", s.action(s.hLogin))
	m.HandleFunc("GET /signup", s.page(s.hSignupForm))
	m.HandleFunc("POST /signup", s.action(s.hSignup))
	m.HandleFunc("POST /logout", s.action(s.hLogout))
	m.HandleFunc("GET /passwd", s.page(s.hPasswdForm))
	m.HandleFunc("POST /passwd", s.action(s.hPasswd))
	m.HandleFunc("GET /keys", s.page(s.hKeys))
	m.HandleFunc("POST /keys/trust", s.action(s.hTrust))
	m.HandleFunc("POST /keys/fetch", s.action(s.hFetch))
	m.HandleFunc("GET /setup", s.page(s.hSetup))
	m.HandleFunc("GET /setup/config-v1.1.xml", s.page(s.hThunderbird))
	m.HandleFunc("GET /setup/bitmask.mobileconfig", s.page(s.hApple))
	m.HandleFunc("GET /setup/bitmask-localhost.crt", s.page(s.hCert))
	m.HandleFunc("POST /session/end", s.action(s.hEndSession))
	m.HandleFunc("/", s.page(s.hNotFound))
	return m
}

// view is what a page's template sees.
type view struct {
	Title   string
	Nav     string // the navigation entry of this page
	CSRF    string
	Flash   string
	Error   string
	Refresh bool // reload in a few seconds (an account is syncing)
	// Accounts are the logged-in accounts; Account the one the page is
	// about.
	Accounts []Account
	Account  string
	Form     url.Values // what the user typed, to fill a form shown again (no passwords)
	Data     any
	// RecoveryCode is the code a signup made, shown once (recovery.go).
	RecoveryCode string
}

// page wraps a GET handler: the request needs a session.
func (s *Server) page(h func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		se, ok := s.sessionOf(r)
		if !ok {
			s.refuse(w, r, http.StatusUnauthorized, "")
			return
		}
		h(w, r, se)
	}
}

// action wraps a POST handler: from the page's own origin, with a
// session, a form of bounded size and the session's CSRF token. Nothing
// is done for a request that fails any of them.
func (s *Server) action(h func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !sameOrigin(r) {
			s.refuse(w, r, http.StatusForbidden, "This request did not come from this page (its Origin is another site's or missing). Nothing was changed.")
			return
		}
		se, ok := s.sessionOf(r)
		if !ok {
			s.refuse(w, r, http.StatusUnauthorized, "")
			return
		}
		if r.ContentLength > maxForm {
			s.refuse(w, r, http.StatusRequestEntityTooLarge, "The form is too large. Nothing was changed.")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				s.refuse(w, r, http.StatusRequestEntityTooLarge, "The form is too large. Nothing was changed.")
			} else {
				s.refuse(w, r, http.StatusBadRequest, "The form could not be read. Nothing was changed.")
			}
			return
		}
		if !csrfOK(se, r.PostForm.Get("csrf")) {
			s.refuse(w, r, http.StatusForbidden, "This form is out of date or did not come from this page (its CSRF token is missing or wrong). Nothing was changed; reload the page and try again.")
			return
		}
		h(w, r, se)
	}
}

// refuse answers a refused request with a page that says why; an empty
// why is the page's "open it from bitmaskctl or the tray".
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, why string) {
	s.log.Debug("local page: request refused", "status", status, "method", r.Method)
	title := "Not allowed"
	if status == http.StatusUnauthorized {
		title = "Open Bitmask from your computer"
	}
	s.render(w, status, "message", &view{Title: title, Error: why})
}

// render writes a page.
func (s *Server) render(w http.ResponseWriter, status int, name string, v *view) {
	t := s.pages[name]
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := t.ExecuteTemplate(w, "layout", v); err != nil {
		s.log.Warn("local page: rendering", "page", name, "err", err)
	}
}

// show renders a page of the session, with its flash message and the
// accounts.
func (s *Server) show(w http.ResponseWriter, se session, status int, name string, v *view) {
	v.CSRF = se.csrf
	v.Flash = s.takeFlash(se)
	v.RecoveryCode = s.takeRecoveryCode(se)
	if v.Accounts == nil {
		v.Accounts = s.b.Status()
	}
	s.render(w, status, name, v)
}

// done ends a successful action: the message on the next page, which
// the browser loads with GET.
func (s *Server) done(w http.ResponseWriter, r *http.Request, se session, msg, next string) {
	s.setFlash(se, msg)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// failed shows a form again with the error.
func (s *Server) failed(w http.ResponseWriter, r *http.Request, se session, name string, v *view, err error) {
	status := http.StatusBadRequest
	var ae *controlapi.Error
	if errors.As(err, &ae) && ae.Status >= 400 {
		status = ae.Status
	}
	v.Error = err.Error()
	v.Form = typed(r.PostForm)
	s.show(w, se, status, name, v)
}

// typed is a form without its passwords and token.
func typed(f url.Values) url.Values {
	out := url.Values{}
	for k, vs := range f {
		if k == "csrf" || strings.Contains(k, "password") {
			continue
		}
		out[k] = vs
	}
	return out
}

func (s *Server) hAuth(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !s.redeem(q.Get("code")) {
		s.render(w, http.StatusForbidden, "message", &view{Title: "Sign-in link not valid",
			Error: errBadCode.Error() + ". Open the page again with “bitmaskctl open” or from the tray icon."})
		return
	}
	id, err := s.newSession()
	if err != nil {
		s.render(w, http.StatusInternalServerError, "message", &view{Title: "Error", Error: "Could not start a session."})
		return
	}
	http.SetCookie(w, sessionCookie(r, id, 0))
	http.Redirect(w, r, localPath(q.Get("next")), http.StatusSeeOther)
}

func (s *Server) hEndSession(w http.ResponseWriter, r *http.Request, se session) {
	s.endSession(se)
	http.SetCookie(w, sessionCookie(r, "", -1))
	s.render(w, http.StatusOK, "message", &view{Title: "Session ended",
		Flash: "This browser is no longer signed in to the Bitmask page. Your accounts stay logged in."})
}

func (s *Server) hNotFound(w http.ResponseWriter, r *http.Request, se session) {
	s.show(w, se, http.StatusNotFound, "message", &view{Title: "Not found", Error: "There is no such page."})
}

func (s *Server) hStatus(w http.ResponseWriter, r *http.Request, se session) {
	as := s.b.Status()
	refresh := false
	for _, a := range as {
		refresh = refresh || a.State != "ready" || a.Sync.Syncing
	}
	s.show(w, se, http.StatusOK, "status", &view{Title: "Status", Nav: "status", Accounts: as, Refresh: refresh, Data: statusData{Paused: s.b.SyncPaused()}})
}

// statusData is the status page's besides the accounts.
type statusData struct {
	Paused bool // sync with the provider is paused
}

func (s *Server) hLoginForm(w http.ResponseWriter, r *http.Request, se session) {
	s.show(w, se, http.StatusOK, "login", &view{Title: "Log in", Nav: "login", Form: r.URL.Query()})
}

func (s *Server) hLogin(w http.ResponseWriter, r *http.Request, se session) {
	f := r.PostForm
	addr := strings.TrimSpace(f.Get("address"))
	err := s.b.Login(r.Context(), controlapi.LoginRequest{Address: addr, Password: f.Get("password"), ProviderRef: providerRef(f)})
	if err != nil {
		s.failed(w, r, se, "login", &view{Title: "Log in", Nav: "login"}, err)
		return
	}
	s.done(w, r, se, "Logged in as "+strings.ToLower(addr)+".", "/")
}

func (s *Server) hSignupForm(w http.ResponseWriter, r *http.Request, se session) {
	s.show(w, se, http.StatusOK, "signup", &view{Title: "Sign up", Nav: "signup", Form: r.URL.Query()})
}

func (s *Server) hSignup(w http.ResponseWriter, r *http.Request, se session) {
	f := r.PostForm
	v := &view{Title: "Sign up", Nav: "signup"}
	if f.Get("password") != f.Get("password2") {
		s.failed(w, r, se, "signup", v, errors.New("the two passwords differ"))
		return
	}
	addr := strings.TrimSpace(f.Get("address"))
	err := s.b.CreateUser(r.Context(), controlapi.CreateRequest{Address: addr, Password: f.Get("password"),
		ProviderRef: providerRef(f), Invite: strings.TrimSpace(f.Get("invite"))})
	if err != nil {
		s.failed(w, r, se, "signup", v, err)
		return
	}
	msg := "Created " + strings.ToLower(addr) + ". Set up your mail client next."
	if code := s.signupRecoveryCode(strings.ToLower(addr)); code != "" {
		s.setRecoveryCode(se, code)
		msg = "Created " + strings.ToLower(addr) + ". Write down your recovery code below, then set up your mail client."
	}
	s.done(w, r, se, msg, "/setup?"+url.Values{"account": {strings.ToLower(addr)}}.Encode())
}

func providerRef(f url.Values) controlapi.ProviderRef {
	return controlapi.ProviderRef{URL: strings.TrimSpace(f.Get("provider")), Fingerprint: strings.TrimSpace(f.Get("fingerprint"))}
}

func (s *Server) hLogout(w http.ResponseWriter, r *http.Request, se session) {
	addr := r.PostForm.Get("account")
	if err := s.b.Logout(r.Context(), addr); err != nil {
		s.failed(w, r, se, "status", &view{Title: "Status", Nav: "status"}, err)
		return
	}
	s.done(w, r, se, "Logged out "+addr+". Its mail stays on this computer, encrypted.", "/")
}

func (s *Server) hPasswdForm(w http.ResponseWriter, r *http.Request, se session) {
	s.show(w, se, http.StatusOK, "passwd", s.accountView(r.URL.Query().Get("account"), "Change password", "passwd"))
}

func (s *Server) hPasswd(w http.ResponseWriter, r *http.Request, se session) {
	f := r.PostForm
	v := s.accountView(f.Get("account"), "Change password", "passwd")
	if f.Get("new_password") != f.Get("new_password2") {
		s.failed(w, r, se, "passwd", v, errors.New("the two new passwords differ"))
		return
	}
	err := s.b.ChangePassword(r.Context(), controlapi.PasswdRequest{Address: v.Account, Old: f.Get("old_password"), New: f.Get("new_password")})
	if err != nil {
		s.failed(w, r, se, "passwd", v, err)
		return
	}
	s.done(w, r, se, "The password of "+v.Account+" is changed. Other devices must log in again.", "/")
}

// accountView is a page about one account: the one named, or the only
// one logged in.
func (s *Server) accountView(named, title, nav string) *view {
	as := s.b.Status()
	v := &view{Title: title, Nav: nav, Accounts: as, Account: strings.ToLower(strings.TrimSpace(named))}
	if v.Account == "" && len(as) == 1 {
		v.Account = as[0].Address
	}
	return v
}

// keysData is the keys page: the account's own keys and its contacts'.
type keysData struct {
	Own, Contacts []controlapi.KeyInfo
}

func (s *Server) hKeys(w http.ResponseWriter, r *http.Request, se session) {
	v := s.accountView(r.URL.Query().Get("account"), "Keys", "keys")
	s.keysPage(w, r, se, v, http.StatusOK)
}

func (s *Server) keysPage(w http.ResponseWriter, r *http.Request, se session, v *view, status int) {
	if v.Account != "" {
		ks, err := s.b.Keys(v.Account)
		if err != nil && v.Error == "" {
			v.Error = err.Error()
			status = statusOf(err)
		}
		var d keysData
		for _, k := range ks {
			if k.Own {
				d.Own = append(d.Own, k)
			} else {
				d.Contacts = append(d.Contacts, k)
			}
		}
		v.Data = d
	}
	s.show(w, se, status, "keys", v)
}

func (s *Server) contactAction(w http.ResponseWriter, r *http.Request, se session,
	act func(controlapi.ContactRequest) (controlapi.ContactKey, error), msg string) {
	f := r.PostForm
	v := s.accountView(f.Get("account"), "Keys", "keys")
	contact := strings.ToLower(strings.TrimSpace(f.Get("contact")))
	fpr := strings.NewReplacer(" ", "", ":", "").Replace(strings.TrimSpace(f.Get("fingerprint")))
	k, err := act(controlapi.ContactRequest{Address: v.Account, Contact: contact, Fingerprint: fpr})
	if err != nil {
		v.Error = err.Error()
		v.Form = typed(f)
		s.keysPage(w, r, se, v, statusOf(err))
		return
	}
	s.done(w, r, se, strings.NewReplacer("CONTACT", k.Address, "LEVEL", k.Level, "FPR", k.Fingerprint).Replace(msg),
		"/keys?"+url.Values{"account": {v.Account}}.Encode())
}

func (s *Server) hTrust(w http.ResponseWriter, r *http.Request, se session) {
	s.contactAction(w, r, se, func(req controlapi.ContactRequest) (controlapi.ContactKey, error) {
		return s.b.TrustKey(r.Context(), req)
	}, "The key FPR of CONTACT is now trusted (level LEVEL).")
}

func (s *Server) hFetch(w http.ResponseWriter, r *http.Request, se session) {
	s.contactAction(w, r, se, func(req controlapi.ContactRequest) (controlapi.ContactKey, error) {
		return s.b.FetchKey(r.Context(), req)
	}, "Found the key FPR of CONTACT (level LEVEL).")
}

func statusOf(err error) int {
	var ae *controlapi.Error
	if errors.As(err, &ae) && ae.Status >= 400 {
		return ae.Status
	}
	return http.StatusBadRequest
}

// setupData is the mail client setup page.
type setupData struct {
	controlapi.MailConfig
	// CertSHA256 is the local certificate's SHA-256 fingerprint as
	// mail clients show it (AB:CD:...); empty when there is none.
	CertSHA256 string
}

func (s *Server) hSetup(w http.ResponseWriter, r *http.Request, se session) {
	v := s.accountView(r.URL.Query().Get("account"), "Set up your mail client", "setup")
	status := http.StatusOK
	var d setupData
	if v.Account != "" {
		mc, err := s.b.MailConfig(v.Account)
		if err != nil {
			v.Error, status = err.Error(), statusOf(err)
		}
		d.MailConfig = mc
	}
	if pemBytes, err := s.b.Certificate(); err == nil {
		d.CertSHA256 = certFingerprint(pemBytes)
	}
	v.Data = d
	s.show(w, se, status, "setup", v)
}

// certFingerprint is the SHA-256 of a PEM certificate's DER, as AB:CD:...
func certFingerprint(pemBytes []byte) string {
	b, _ := pem.Decode(pemBytes)
	if b == nil || b.Type != "CERTIFICATE" {
		return ""
	}
	sum := sha256.Sum256(b.Bytes)
	return controlapi.ColonFingerprint(hex.EncodeToString(sum[:]))
}

// download answers a file to save, or the setup page with the error.
func (s *Server) download(w http.ResponseWriter, r *http.Request, se session, name, ctype string, body func(controlapi.MailConfig) []byte) {
	v := s.accountView(r.URL.Query().Get("account"), "Set up your mail client", "setup")
	mc, err := s.b.MailConfig(v.Account)
	if err != nil {
		v.Error = err.Error()
		s.show(w, se, statusOf(err), "setup", v)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	_, _ = w.Write(body(mc))
}

func (s *Server) hThunderbird(w http.ResponseWriter, r *http.Request, se session) {
	s.download(w, r, se, "config-v1.1.xml", "application/xml", clientsetup.ThunderbirdXML)
}

func (s *Server) hApple(w http.ResponseWriter, r *http.Request, se session) {
	s.download(w, r, se, "bitmask.mobileconfig", "application/x-apple-aspen-config", clientsetup.AppleProfile)
}

func (s *Server) hCert(w http.ResponseWriter, r *http.Request, se session) {
	b, err := s.b.Certificate()
	if err != nil || len(b) == 0 {
		s.show(w, se, http.StatusNotFound, "message", &view{Title: "Not found", Error: "bitmaskd has no local certificate."})
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="bitmask-localhost.crt"`)
	_, _ = w.Write(b)
}

// pageNames are the templates in templates/, each with layout.html.
var pageNames = []string{"message", "status", "login", "signup", "passwd", "keys", "setup"}

func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"percent": func(a controlapi.SyncStatus) int {
			if a.Head == 0 || a.LastSeq >= a.Head {
				return 100
			}
			return int(a.LastSeq * 100 / a.Head)
		},
		"contains": slices.Contains[[]string],
	}
	out := map[string]*template.Template{}
	for _, n := range pageNames {
		out[n] = template.Must(template.New(n).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+n+".html"))
	}
	return out
}
