package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/pkg/srp"
)

// The recovery code (docs/provider-api.md §4.7): an account can keep a
// second SRP verifier, derived from a recovery code, with the storage
// secret wrapped under a key from the same code. Proving the code with
// SRP (a handshake like login's, rate limited like it, and answered for
// unknown accounts and accounts without a code exactly as for real ones)
// gives the client the recovery-wrapped secret and a one-time reset
// token, with which it sets a new password: new verifier, parameters and
// password-wrapped secret, every earlier session ended.

// resetTTL is how long a reset token lasts after the proof.
const resetTTL = 10 * time.Minute

func init() {
	extraRoutes = append(extraRoutes, func(s *Server, mux *http.ServeMux, v string) {
		mux.HandleFunc("GET "+v+"/users/self/recovery", s.auth(s.handleRecoveryStatus))
		mux.HandleFunc("PUT "+v+"/users/self/recovery", s.auth(s.handleSetRecovery))
		mux.HandleFunc("POST "+v+"/recovery", s.handleRecoveryStart)
		mux.HandleFunc("POST "+v+"/recovery/{handshake}", s.handleRecoveryFinish)
		mux.HandleFunc("PUT "+v+"/recovery/credentials", s.handleRecoveryReset)
	})
}

// The recovery handshakes and the reset tokens are kept in the store like
// the login handshakes (handshake.go): a recovery may start on one
// instance and go on at another. A reset token is kept under the hex
// SHA-256 of the token (hsState with only Login set).

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func (s *Server) handleRecoveryStatus(w http.ResponseWriter, r *http.Request, a authed) {
	rec, err := s.store.Recovery(r.Context(), a.login)
	if errors.Is(err, storage.ErrNotFound) {
		writeJSON(w, http.StatusOK, providerapi.RecoveryStatus{})
		return
	} else if err != nil {
		s.internal(w, "recovery status", err)
		return
	}
	writeJSON(w, http.StatusOK, providerapi.RecoveryStatus{
		Enabled: true, Updated: rec.Updated, Failures: rec.Failures, LastFailure: rec.LastFailure,
	})
}

// handleSetRecovery sets or replaces the account's recovery data; the
// earlier code stops working.
func (s *Server) handleSetRecovery(w http.ResponseWriter, r *http.Request, a authed) {
	var req providerapi.Credentials
	if !readJSON(w, r, maxJSONBody, &req) {
		return
	}
	if err := validCredentials(req.SRPSalt, req.SRPVerifier, req.KDF, req.WrappedSecret); err != nil {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, err.Error())
		return
	}
	if err := s.store.SetRecovery(r.Context(), a.login, req, time.Now()); err != nil {
		s.internal(w, "set recovery", err)
		return
	}
	s.log.Info("recovery code set", "login", a.login)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleRecoveryStart(w http.ResponseWriter, r *http.Request) {
	var req providerapi.RecoveryStartRequest
	if !readJSON(w, r, maxJSONBody, &req) {
		return
	}
	if !ValidLogin(req.Login) {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, "invalid login")
		return
	}
	// Recoveries count apart from logins: per client at the start, and
	// failed proofs per (client, login) pair (enum.go).
	if !s.perClient.allow("recovery " + clientKey(r)) {
		writeErr(w, http.StatusTooManyRequests, providerapi.CodeRateLimited, "too many recovery attempts, try again later")
		return
	}
	if wait := s.guard().wait("recovery", clientKey(r), req.Login); wait > 0 {
		tooSoon(w, wait, "recovery")
		return
	}
	if len(req.A) == 0 || len(req.A) > 1024 {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, "invalid A")
		return
	}
	rec, err := s.store.Recovery(r.Context(), req.Login)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.internal(w, "recovery", err)
		return
	}
	p := srp.DefaultParams()
	h := &hsState{Login: req.Login, Fake: rec == nil, A: append([]byte(nil), req.A...)}
	var (
		resp providerapi.RecoveryStartResponse
		srv  *srp.Server
	)
	if rec != nil {
		srv, err = srp.NewServer(p, []byte(req.Login), rec.SRPSalt, rec.SRPVerifier)
		resp = providerapi.RecoveryStartResponse{SRPSalt: rec.SRPSalt, KDF: rec.KDF}
	} else {
		// No such account, or one without a recovery code: an answer
		// shaped like a real one, the same at every attempt, whose
		// proof then fails like a wrong code.
		salt, verifier, kdf := s.fakeAccount("recovery-", req.Login, p)
		srv, err = srp.NewServer(p, []byte(req.Login), salt, verifier)
		resp = providerapi.RecoveryStartResponse{SRPSalt: salt, KDF: kdf}
	}
	if err != nil {
		s.internal(w, "srp", err)
		return
	}
	resp.B = srv.B()
	if h.SRP, err = srv.MarshalBinary(); err != nil {
		s.internal(w, "srp", err)
		return
	}
	if resp.Handshake, err = randomHex(16); err != nil {
		s.internal(w, "rand", err)
		return
	}
	if err := s.putHandshake(r.Context(), hsRecovery, resp.Handshake, h, handshakeTTL); err != nil {
		s.handshakePutFailed(w, "recovery", err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleRecoveryFinish(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("handshake")
	var req providerapi.RecoveryFinishRequest
	if !readJSON(w, r, maxJSONBody, &req) {
		return
	}
	h, err := s.takeHandshake(r.Context(), hsRecovery, id) // one proof per handshake
	if errors.Is(err, storage.ErrNotFound) {
		writeErr(w, http.StatusUnauthorized, providerapi.CodeUnauthorized, "unknown or expired recovery handshake")
		return
	} else if err != nil {
		s.internal(w, "recovery handshake", err)
		return
	}
	srv, err := h.srpServer()
	if err != nil {
		s.internal(w, "recovery handshake", err)
		return
	}
	// The made-up handshakes verify too, so they take as long; a
	// failure slows the client's pair down (enum.go).
	m2, err := s.checkProof(w, r, "recovery", srv, h.Login, h.Fake, h.A, req.M1)
	if errors.Is(err, errBadProof) {
		writeErr(w, http.StatusUnauthorized, providerapi.CodeUnauthorized, "wrong login or recovery code")
		// Counted for the account's owner once the answer is out,
		// and asked for made-up answers too (the store finds nothing
		// to count), so the write does not tell accounts apart. A
		// client that hangs up on the answer is still counted.
		_ = http.NewResponseController(w).Flush()
		n, cerr := s.store.RecoveryFailed(context.WithoutCancel(r.Context()), h.Login, time.Now())
		if cerr != nil && !errors.Is(cerr, storage.ErrNotFound) {
			s.log.Warn("provider: counting a failed recovery", "err", cerr)
		} else if cerr == nil {
			s.log.Info("failed recovery counted", "login", h.Login, "failures", n)
		}
		return
	} else if err != nil {
		return // answered
	}
	rec, err := s.store.Recovery(r.Context(), h.Login)
	if err != nil {
		// Replaced or removed since the first step.
		writeErr(w, http.StatusUnauthorized, providerapi.CodeUnauthorized, "wrong login or recovery code")
		return
	}
	token, err := randomHex(32)
	if err != nil {
		s.internal(w, "rand", err)
		return
	}
	expires := time.Now().Add(resetTTL).UTC()
	if err := s.putHandshake(r.Context(), hsReset, hex.EncodeToString(hashToken(token)), &hsState{Login: h.Login}, resetTTL); err != nil {
		s.handshakePutFailed(w, "recovery", err)
		return
	}
	s.log.Info("recovery code proved", "login", h.Login)
	writeJSON(w, http.StatusOK, providerapi.RecoveryFinishResponse{
		M2: m2, WrappedSecret: rec.WrappedSecret, ResetToken: token, Expires: expires,
	})
}

// handleRecoveryReset sets the new password's credentials with a reset
// token: in one transaction of the store, every session of the account
// ends; then the account's one new session is made.
func (s *Server) handleRecoveryReset(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" || len(tok) > 256 {
		writeErr(w, http.StatusUnauthorized, providerapi.CodeUnauthorized, "missing reset token")
		return
	}
	var req providerapi.RecoveryResetRequest
	if !readJSON(w, r, maxJSONBody, &req) || !validDevice(w, req.Device) {
		return
	}
	if err := validCredentials(req.SRPSalt, req.SRPVerifier, req.KDF, req.WrappedSecret); err != nil {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, err.Error())
		return
	}
	rt, err := s.takeHandshake(r.Context(), hsReset, hex.EncodeToString(hashToken(tok))) // one use
	if errors.Is(err, storage.ErrNotFound) {
		writeErr(w, http.StatusUnauthorized, providerapi.CodeUnauthorized, "unknown, used or expired reset token")
		return
	} else if err != nil {
		s.internal(w, "recovery reset", err)
		return
	}
	if err := s.store.UpdateCredentials(r.Context(), rt.Login, req.Credentials, nil); err != nil {
		s.internal(w, "recovery reset", err)
		return
	}
	token, se, err := s.newSession(r.Context(), rt.Login, deviceOf(req.Device))
	if err != nil {
		s.internal(w, "session", err)
		return
	}
	s.log.Info("password reset with the recovery code; every other session ended", "login", rt.Login)
	writeJSON(w, http.StatusOK, providerapi.RecoveryResetResponse{Token: token, Expires: se.Expires, Address: s.Address(rt.Login)})
}
