package controlserver

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/bitmask-go/bitmask/internal/clientsetup"
	"github.com/bitmask-go/bitmask/internal/contactkeys"
	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/daemon"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
)

// statusOf is the HTTP status of a failed account flow: 401 for a wrong
// password, 502 when the provider could not be reached or failed, 400
// for the rest.
func statusOf(err error) int {
	var ae *providerclient.APIError
	switch {
	case errors.Is(err, providerclient.ErrWrongPassword):
		return http.StatusUnauthorized
	case errors.As(err, &ae) && ae.Status >= 500, daemon.IsOffline(err):
		return http.StatusBadGateway
	default:
		return http.StatusBadRequest
	}
}

func (s *server) hCreate(w http.ResponseWriter, r *http.Request) {
	var req controlapi.CreateRequest
	if !readCtl(w, r, &req) {
		return
	}
	a, err := s.d.CreateUser(r.Context(), req.Address, []byte(req.Password), daemon.ProviderRef(req.ProviderRef), req.Invite)
	if err != nil {
		ctlErr(w, statusOf(err), err)
		return
	}
	// The first recovery code, shown once (recovery.go).
	ctlJSON(w, http.StatusOK, controlapi.CreateResponse{AccountStatus: s.accountStatus(a.Address), RecoveryCode: s.d.TakeSignupRecoveryCode(a.Address)})
}

func (s *server) hLogin(w http.ResponseWriter, r *http.Request) {
	accountFlow(s, w, r, func(req controlapi.LoginRequest) (*daemon.Account, error) {
		return s.d.Login(r.Context(), req.Address, []byte(req.Password), daemon.ProviderRef(req.ProviderRef))
	})
}

func (s *server) hLogout(w http.ResponseWriter, r *http.Request) {
	accountFlow(s, w, r, func(req controlapi.AddressRequest) (*daemon.Account, error) {
		return nil, s.d.Logout(r.Context(), strings.ToLower(req.Address))
	})
}

func (s *server) hPasswd(w http.ResponseWriter, r *http.Request) {
	accountFlow(s, w, r, func(req controlapi.PasswdRequest) (*daemon.Account, error) {
		return nil, s.d.ChangePassword(r.Context(), strings.ToLower(req.Address), []byte(req.Old), []byte(req.New))
	})
}

// accountFlow answers an account flow: it reads the flow's JSON request
// and runs flow with it, then answers with the account's status when
// flow returns one (signup, login), an empty object when it returns none
// (logout, password change), or the error with its statusOf.
func accountFlow[Req any](s *server, w http.ResponseWriter, r *http.Request, flow func(Req) (*daemon.Account, error)) {
	var req Req
	if !readCtl(w, r, &req) {
		return
	}
	a, err := flow(req)
	switch {
	case err != nil:
		ctlErr(w, statusOf(err), err)
	case a != nil:
		ctlJSON(w, http.StatusOK, s.accountStatus(a.Address))
	default:
		ctlJSON(w, http.StatusOK, struct{}{})
	}
}

func (s *server) hStatus(w http.ResponseWriter, r *http.Request) {
	ctlJSON(w, http.StatusOK, controlapi.StatusResponse{Accounts: accountStatuses(s.d.Status()), TLSFingerprint: s.d.LocalServices().TLSFingerprint})
}

// accountStatus is the status of one account (after its signup or
// login).
func (s *server) accountStatus(address string) controlapi.AccountStatus {
	for _, st := range s.d.Status() {
		if st.Address == address {
			return wireStatus(st)
		}
	}
	return controlapi.AccountStatus{Address: address}
}

// pickAddress is the account a request names, or the only one logged
// in when it names none; else it answers 400 or 404.
func (s *server) pickAddress(w http.ResponseWriter, addr string) (*daemon.Account, bool) {
	addr = strings.ToLower(addr)
	if addr == "" {
		if as := s.d.Accounts(); len(as) == 1 {
			return as[0], true
		}
		ctlErr(w, http.StatusBadRequest, errors.New("say which account (address=...)"))
		return nil, false
	}
	a, ok := s.d.Account(addr)
	if !ok {
		ctlErr(w, http.StatusNotFound, fmt.Errorf("%s is not logged in", addr))
		return nil, false
	}
	return a, true
}

// pick is pickAddress of the query's address parameter.
func (s *server) pick(w http.ResponseWriter, r *http.Request) (*daemon.Account, bool) {
	return s.pickAddress(w, r.URL.Query().Get("address"))
}

func (s *server) hKeys(w http.ResponseWriter, r *http.Request) {
	a, ok := s.pick(w, r)
	if !ok {
		return
	}
	out, err := keyList(a)
	if err != nil {
		ctlErr(w, http.StatusInternalServerError, err)
		return
	}
	ctlJSON(w, http.StatusOK, out)
}

func (s *server) hMailConfig(w http.ResponseWriter, r *http.Request) {
	a, ok := s.pick(w, r)
	if !ok {
		return
	}
	mc := mailConfig(s.d, a)
	switch r.URL.Query().Get("format") {
	case "", controlapi.FormatJSON:
		ctlJSON(w, http.StatusOK, mc)
	case controlapi.FormatThunderbird:
		w.Header().Set("Content-Type", "application/xml")
		_, _ = w.Write(clientsetup.ThunderbirdXML(mc))
	case controlapi.FormatApple:
		w.Header().Set("Content-Type", "application/x-apple-aspen-config")
		_, _ = w.Write(clientsetup.AppleProfile(mc))
	case controlapi.FormatText:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, clientsetup.TextConfig(mc))
	default:
		ctlErr(w, http.StatusBadRequest, errors.New("format is thunderbird, apple, text or json"))
	}
}

func (s *server) hExport(w http.ResponseWriter, r *http.Request) {
	a, ok := s.pick(w, r)
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
	ctlJSON(w, http.StatusOK, controlapi.ExportResponse{Address: a.Address, Fingerprint: pgpkey.Fingerprint(e), Armored: armored})
}

func (s *server) hContactKey(w http.ResponseWriter, r *http.Request) {
	a, ok := s.pick(w, r)
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
	ctlJSON(w, http.StatusOK, wireContactKey(k))
}

func (s *server) hFetchKey(w http.ResponseWriter, r *http.Request) {
	s.contactAction(w, r, func(a *daemon.Account, req controlapi.ContactRequest) (int, error) {
		if _, err := a.DiscoverKey(r.Context(), req.Contact); err != nil {
			return http.StatusNotFound, fmt.Errorf("no key found for %s: %w", req.Contact, err)
		}
		return 0, nil
	})
}

func (s *server) hTrustKey(w http.ResponseWriter, r *http.Request) {
	s.contactAction(w, r, func(a *daemon.Account, req controlapi.ContactRequest) (int, error) {
		return http.StatusBadRequest, a.Contacts.Trust(req.Contact, req.Fingerprint, "")
	})
}

// contactAction reads a ContactRequest, runs act on the account, and
// answers with the contact's key as it is then kept.
func (s *server) contactAction(w http.ResponseWriter, r *http.Request, act func(*daemon.Account, controlapi.ContactRequest) (int, error)) {
	var req controlapi.ContactRequest
	if !readCtl(w, r, &req) {
		return
	}
	a, ok := s.pickAddress(w, req.Address)
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
	ctlJSON(w, http.StatusOK, wireContactKey(k))
}
