package controlserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/daemon"
	"github.com/bitmask-go/bitmask/internal/webui"
)

// The local web page (package webui) is served on the control API's
// address for every path outside /v1/, after the Host check and without
// the bearer token: it has its own one-time codes and sessions, minted
// here by POST /v1/page/code (with the token) or by LoginURL (in
// bitmaskd's process, for the tray). The page does what the API does by
// calling the same daemon flows through pageBackend.

// newPage is the page of d, served at addr (empty when not known).
func newPage(d *daemon.Daemon, addr string) *webui.Server {
	return webui.New(pageBackend{d}, webui.Config{Addr: addr, Logger: d.Logger()})
}

// pages are the pages Serve is serving, by daemon, for LoginURL.
var pages sync.Map // *daemon.Daemon -> *webui.Server

// LoginURL is a one-time URL that opens the local page of d (as Serve
// serves it) at path ("/", "/login", "/signup", "/setup?account=ADDR",
// "/keys?account=ADDR", ...) in a browser: it trades its code for a
// session once, within two minutes. For code in bitmaskd's process
// (the tray); other processes ask POST /v1/page/code.
func LoginURL(d *daemon.Daemon, path string) (string, error) {
	p, ok := pages.Load(d)
	if !ok {
		return "", errors.New("the local page is not being served")
	}
	return p.(*webui.Server).LoginURL(path)
}

// hPageCode is POST /v1/page/code: a one-time URL of the page on the
// address the request came to.
func (s *server) hPageCode(w http.ResponseWriter, r *http.Request) {
	var req controlapi.PageCodeRequest
	if !readCtl(w, r, &req) {
		return
	}
	u, exp, err := s.page.LoginURLFor(r.Host, req.Path)
	if err != nil {
		ctlErr(w, http.StatusInternalServerError, err)
		return
	}
	ctlJSON(w, http.StatusOK, controlapi.PageCode{URL: u, Expires: exp})
}

// pageBackend is the daemon's flows as the page calls them: what the
// API's handlers call, with their errors' HTTP statuses.
type pageBackend struct{ d *daemon.Daemon }

// pageErr is err with the status the API would answer it with.
func pageErr(err error) error {
	if err == nil {
		return nil
	}
	return &controlapi.Error{Status: statusOf(err), Message: err.Error()}
}

func (b pageBackend) Status() []webui.Account {
	var out []webui.Account
	for _, st := range b.d.Status() {
		a := webui.Account{AccountStatus: wireStatus(st)}
		if acct, ok := b.d.Account(st.Address); ok && st.State == "ready" && acct.Outbox != nil {
			a.Outgoing = acct.Outbox.Pending()
		}
		out = append(out, a)
	}
	return out
}

func (b pageBackend) CreateUser(ctx context.Context, req controlapi.CreateRequest) error {
	_, err := b.d.CreateUser(ctx, req.Address, []byte(req.Password), daemon.ProviderRef(req.ProviderRef), req.Invite)
	return pageErr(err)
}

func (b pageBackend) Login(ctx context.Context, req controlapi.LoginRequest) error {
	_, err := b.d.Login(ctx, req.Address, []byte(req.Password), daemon.ProviderRef(req.ProviderRef))
	return pageErr(err)
}

func (b pageBackend) Logout(ctx context.Context, address string) error {
	return pageErr(b.d.Logout(ctx, strings.ToLower(address)))
}

func (b pageBackend) ChangePassword(ctx context.Context, req controlapi.PasswdRequest) error {
	return pageErr(b.d.ChangePassword(ctx, strings.ToLower(req.Address), []byte(req.Old), []byte(req.New)))
}

// account is the named logged-in account, or a 404.
func (b pageBackend) account(address string) (*daemon.Account, error) {
	address = strings.ToLower(address)
	a, ok := b.d.Account(address)
	if !ok {
		return nil, &controlapi.Error{Status: http.StatusNotFound, Message: fmt.Sprintf("%s is not logged in", address)}
	}
	return a, nil
}

func (b pageBackend) Keys(address string) ([]controlapi.KeyInfo, error) {
	a, err := b.account(address)
	if err != nil {
		return nil, err
	}
	ks, err := keyList(a)
	if err != nil {
		return nil, &controlapi.Error{Status: http.StatusInternalServerError, Message: err.Error()}
	}
	return ks, nil
}

func (b pageBackend) contactKey(req controlapi.ContactRequest, status int, act func(*daemon.Account) error) (controlapi.ContactKey, error) {
	a, err := b.account(req.Address)
	if err != nil {
		return controlapi.ContactKey{}, err
	}
	if err := act(a); err != nil {
		return controlapi.ContactKey{}, &controlapi.Error{Status: status, Message: err.Error()}
	}
	k, err := a.Contacts.Get(req.Contact)
	if err != nil {
		return controlapi.ContactKey{}, &controlapi.Error{Status: http.StatusInternalServerError, Message: err.Error()}
	}
	return wireContactKey(k), nil
}

func (b pageBackend) FetchKey(ctx context.Context, req controlapi.ContactRequest) (controlapi.ContactKey, error) {
	return b.contactKey(req, http.StatusNotFound, func(a *daemon.Account) error {
		if _, err := a.DiscoverKey(ctx, req.Contact); err != nil {
			return fmt.Errorf("no key found for %s: %w", req.Contact, err)
		}
		return nil
	})
}

func (b pageBackend) TrustKey(ctx context.Context, req controlapi.ContactRequest) (controlapi.ContactKey, error) {
	return b.contactKey(req, http.StatusBadRequest, func(a *daemon.Account) error {
		return a.Contacts.Trust(req.Contact, req.Fingerprint, "")
	})
}

func (b pageBackend) MailConfig(address string) (controlapi.MailConfig, error) {
	a, err := b.account(address)
	if err != nil {
		return controlapi.MailConfig{}, err
	}
	return mailConfig(b.d, a), nil
}

func (b pageBackend) Certificate() ([]byte, error) {
	pem := b.d.LocalServices().TLSCertPEM
	if len(pem) == 0 {
		return nil, errors.New("no local certificate")
	}
	return pem, nil
}

// keyList is the account's own keys (newest first, level "own"), then
// its contacts' keys: GET /v1/keys and the page's keys.
func keyList(a *daemon.Account) ([]controlapi.KeyInfo, error) {
	ks, err := a.OwnKeys()
	if err != nil {
		return nil, err
	}
	out := []controlapi.KeyInfo{}
	for _, k := range ks {
		out = append(out, controlapi.KeyInfo{Address: k.Address, Fingerprint: k.Fingerprint, Created: k.Created, Expires: k.Expires, Own: true, Private: true, Level: "own"})
	}
	cks, err := a.Contacts.List()
	if err != nil {
		return nil, err
	}
	for _, k := range cks {
		out = append(out, controlapi.KeyInfo{Address: k.Address, Fingerprint: k.Fingerprint, Created: k.Created, Expires: k.Expires, Level: k.Level.String()})
	}
	return out, nil
}

func (b pageBackend) SyncPaused() bool { return b.d.SyncPaused() }
