package httpapi

import (
	"errors"
	"net/http"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
)

// Account deletion (docs/provider-api.md §4.9). A session alone is not
// enough: a stolen token or an unlocked laptop left alone must not be
// able to destroy the account. The request carries a fresh proof of the
// password, made on an SRP handshake the device starts with POST
// /1/sessions for its own login (rate limited like every login), and is
// answered with the provider's proof M2. Then everything of the user
// goes in one transaction, the sessions of every device end (401
// account_deleted), and a tombstone keeps the login from being signed
// up again.

func init() {
	extraRoutes = append(extraRoutes, func(s *Server, mux *http.ServeMux, v string) {
		mux.HandleFunc("DELETE "+v+"/users/self", s.auth(s.handleDeleteAccount))
	})
}

func (s *Server) handleDeleteAccount(w http.ResponseWriter, r *http.Request, a authed) {
	var req providerapi.DeleteAccountRequest
	if !readJSON(w, r, maxJSONBody, &req) {
		return
	}
	if req.Handshake == "" || len(req.M1) == 0 {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, "a deletion needs a handshake and the proof M1")
		return
	}
	// One proof per handshake (taken from the store, handshake.go;
	// one named for another login is used up too: its id is a secret
	// of whoever started it).
	h, err := s.takeHandshake(r.Context(), hsLogin, req.Handshake)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.internal(w, "delete account handshake", err)
		return
	}
	if h == nil || h.Login != a.login {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, "unknown or expired handshake for this account; start one with POST /1/sessions")
		return
	}
	srv, err := h.srpServer()
	if err != nil {
		s.internal(w, "delete account handshake", err)
		return
	}
	// A proof of the password like a login's, counted with them
	// (enum.go): a stolen token does not guess faster.
	m2, err := s.checkProof(w, r, "login", srv, h.Login, h.Fake, h.A, req.M1)
	if errors.Is(err, errTooSoon) {
		return // answered 429
	}
	if err != nil {
		s.log.Info("account deletion refused: wrong password", "login", a.login, "client", clientAddr(r))
		writeErr(w, http.StatusForbidden, providerapi.CodeWrongPassword, "wrong password; nothing was deleted")
		return
	}
	n, err := s.store.DeleteAccount(r.Context(), a.login, s.Address(a.login), providerapi.CodeAccountDeleted)
	if errors.Is(err, storage.ErrNotFound) {
		writeErr(w, http.StatusNotFound, providerapi.CodeNotFound, "no such account")
		return
	} else if err != nil {
		s.internal(w, "delete account", err)
		return
	}
	s.log.Info("account deleted", "login", a.login, "docs", n.Docs, "blobs", n.Blobs,
		"incoming", n.Incoming, "outbound", n.Outbound, "sessions", len(n.Ended), "key", n.Key)
	// The answer first, then the other devices' requests in flight end
	// (this one's too, once answered).
	writeJSON(w, http.StatusOK, providerapi.DeleteAccountResponse{M2: m2})
	s.live.cancel(n.Ended)
}
