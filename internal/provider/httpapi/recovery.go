package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/pkg/seal"
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

const (
	// resetTTL is how long a reset token lasts after the proof.
	resetTTL = 10 * time.Minute
	// maxResets bounds the reset tokens waiting to be used.
	maxResets = 1000
)

func init() {
	extraRoutes = append(extraRoutes, func(s *Server, mux *http.ServeMux, v string) {
		mux.HandleFunc("GET "+v+"/users/self/recovery", s.auth(s.handleRecoveryStatus))
		mux.HandleFunc("PUT "+v+"/users/self/recovery", s.auth(s.handleSetRecovery))
		mux.HandleFunc("POST "+v+"/recovery", s.handleRecoveryStart)
		mux.HandleFunc("POST "+v+"/recovery/{handshake}", s.handleRecoveryFinish)
		mux.HandleFunc("PUT "+v+"/recovery/credentials", s.handleRecoveryReset)
	})
}

// recoveryState is a server's recovery handshakes and reset tokens, in
// memory like the login handshakes (a restart voids them).
type recoveryState struct {
	mu         sync.Mutex
	handshakes map[string]*recoveryHandshake
	resets     map[string]*resetToken // by SHA-256 of the token, hex
}

type recoveryHandshake struct {
	login   string
	srv     *srp.Server
	real    bool // the account has recovery data (else the answer was made up)
	A       []byte
	expires time.Time
}

type resetToken struct {
	login   string
	expires time.Time
}

// recoveryStates keeps each Server's recoveryState (the Server type is
// shared with the rest of the API; this file keeps its own state).
var recoveryStates sync.Map // *Server -> *recoveryState

func (s *Server) recovery() *recoveryState {
	if st, ok := recoveryStates.Load(s); ok {
		return st.(*recoveryState)
	}
	st, _ := recoveryStates.LoadOrStore(s, &recoveryState{
		handshakes: map[string]*recoveryHandshake{},
		resets:     map[string]*resetToken{},
	})
	return st.(*recoveryState)
}

// sweep drops expired handshakes and reset tokens; st.mu is held.
func (st *recoveryState) sweep(now time.Time) {
	for id, h := range st.handshakes {
		if now.After(h.expires) {
			delete(st.handshakes, id)
		}
	}
	for id, r := range st.resets {
		if now.After(r.expires) {
			delete(st.resets, id)
		}
	}
}

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
	// The recovery buckets are the login limiters' with their own keys
	// (a login has no space), so recoveries and logins count apart.
	if !s.perAccount.allow("recovery "+req.Login) || !s.perClient.allow("recovery "+clientAddr(r)) {
		writeErr(w, http.StatusTooManyRequests, providerapi.CodeRateLimited, "too many recovery attempts, try again later")
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
	h := &recoveryHandshake{login: req.Login, A: append([]byte(nil), req.A...), expires: time.Now().Add(handshakeTTL)}
	var resp providerapi.RecoveryStartResponse
	if rec != nil {
		h.srv, err = srp.NewServer(p, []byte(req.Login), rec.SRPSalt, rec.SRPVerifier)
		h.real = true
		resp = providerapi.RecoveryStartResponse{SRPSalt: rec.SRPSalt, KDF: rec.KDF}
	} else {
		// No such account, or one without a recovery code: an answer
		// shaped like a real one, the same at every attempt, whose
		// proof then fails like a wrong code.
		var kdf seal.KDFParams
		kdf, err = seal.DefaultKDFParams()
		if err != nil {
			s.internal(w, "kdf", err)
			return
		}
		kdf.Salt = s.fakeBytes("recovery-kdf", req.Login, 16)
		salt := s.fakeBytes("recovery-srp", req.Login, 16)
		h.srv, err = srp.NewServer(p, []byte(req.Login), salt, p.Verifier(s.fakeBytes("recovery-x", req.Login, 32)))
		resp = providerapi.RecoveryStartResponse{SRPSalt: salt, KDF: kdf}
	}
	if err != nil {
		s.internal(w, "srp", err)
		return
	}
	resp.B = h.srv.B()
	if resp.Handshake, err = randomHex(16); err != nil {
		s.internal(w, "rand", err)
		return
	}
	st := s.recovery()
	st.mu.Lock()
	if len(st.handshakes) >= maxHandshake {
		st.sweep(time.Now())
	}
	if len(st.handshakes) >= maxHandshake {
		st.mu.Unlock()
		writeErr(w, http.StatusServiceUnavailable, providerapi.CodeRateLimited, "too many recoveries in progress, try again")
		return
	}
	st.handshakes[resp.Handshake] = h
	st.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleRecoveryFinish(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("handshake")
	var req providerapi.RecoveryFinishRequest
	if !readJSON(w, r, maxJSONBody, &req) {
		return
	}
	st := s.recovery()
	st.mu.Lock()
	h := st.handshakes[id]
	delete(st.handshakes, id) // one proof per handshake
	st.mu.Unlock()
	if h == nil || time.Now().After(h.expires) {
		writeErr(w, http.StatusUnauthorized, providerapi.CodeUnauthorized, "unknown or expired recovery handshake")
		return
	}
	// The made-up handshakes verify too, so they take as long.
	m2, err := h.srv.Verify(h.A, req.M1)
	if err != nil || !h.real {
		if h.real {
			n, cerr := s.store.RecoveryFailed(r.Context(), h.login, time.Now())
			if cerr != nil && !errors.Is(cerr, storage.ErrNotFound) {
				s.log.Warn("provider: counting a failed recovery", "err", cerr)
			}
			s.log.Info("recovery failed", "login", h.login, "client", clientAddr(r), "failures", n)
		} else {
			s.log.Info("recovery failed", "login", h.login, "client", clientAddr(r))
		}
		writeErr(w, http.StatusUnauthorized, providerapi.CodeUnauthorized, "wrong login or recovery code")
		return
	}
	rec, err := s.store.Recovery(r.Context(), h.login)
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
	st.mu.Lock()
	st.sweep(time.Now())
	if len(st.resets) >= maxResets {
		st.mu.Unlock()
		writeErr(w, http.StatusServiceUnavailable, providerapi.CodeRateLimited, "too many recoveries in progress, try again")
		return
	}
	st.resets[hex.EncodeToString(hashToken(token))] = &resetToken{login: h.login, expires: expires}
	st.mu.Unlock()
	s.log.Info("recovery code proved", "login", h.login)
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
	key := hex.EncodeToString(hashToken(tok))
	st := s.recovery()
	st.mu.Lock()
	rt := st.resets[key]
	delete(st.resets, key) // one use
	st.mu.Unlock()
	if rt == nil || time.Now().After(rt.expires) {
		writeErr(w, http.StatusUnauthorized, providerapi.CodeUnauthorized, "unknown, used or expired reset token")
		return
	}
	if err := s.store.UpdateCredentials(r.Context(), rt.login, req.Credentials, nil); err != nil {
		s.internal(w, "recovery reset", err)
		return
	}
	token, se, err := s.newSession(r.Context(), rt.login, deviceOf(req.Device))
	if err != nil {
		s.internal(w, "session", err)
		return
	}
	s.log.Info("password reset with the recovery code; every other session ended", "login", rt.login)
	writeJSON(w, http.StatusOK, providerapi.RecoveryResetResponse{Token: token, Expires: se.Expires, Address: s.Address(rt.login)})
}
