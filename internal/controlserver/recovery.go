package controlserver

import (
	"errors"
	"net/http"
	"strings"

	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/daemon"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// The recovery code's endpoints (docs/control-api.md, "Recovery code").

func init() {
	extraRoutes = append(extraRoutes, func(s *server, mux *http.ServeMux) {
		mux.HandleFunc("POST /v1/recovery-code", s.hRecoveryCode)
		mux.HandleFunc("POST /v1/recover", s.hRecover)
	})
}

// recoveryStatus is the HTTP status of a failed recovery flow: 400 for a
// malformed code (nothing was sent), 401 for a wrong code or password,
// 429 when the provider limits the attempts, else as statusOf.
func recoveryStatus(err error) int {
	switch {
	case errors.Is(err, seal.ErrRecoveryCode):
		return http.StatusBadRequest
	case errors.Is(err, providerclient.ErrWrongRecoveryCode):
		return http.StatusUnauthorized
	case providerclient.IsCode(err, providerapi.CodeRateLimited):
		return http.StatusTooManyRequests
	}
	return statusOf(err)
}

func (s *server) hRecoveryCode(w http.ResponseWriter, r *http.Request) {
	var req controlapi.RecoveryCodeRequest
	if !readCtl(w, r, &req) {
		return
	}
	addr := strings.ToLower(strings.TrimSpace(req.Address))
	code, err := s.d.NewRecoveryCode(r.Context(), addr, []byte(req.Password))
	if err != nil {
		ctlErr(w, recoveryStatus(err), err)
		return
	}
	ctlJSON(w, http.StatusOK, controlapi.RecoveryCodeResponse{Address: addr, RecoveryCode: code})
}

func (s *server) hRecover(w http.ResponseWriter, r *http.Request) {
	var req controlapi.RecoverRequest
	if !readCtl(w, r, &req) {
		return
	}
	a, err := s.d.Recover(r.Context(), req.Address, req.RecoveryCode, []byte(req.NewPassword), daemon.ProviderRef(req.ProviderRef))
	if err != nil {
		ctlErr(w, recoveryStatus(err), err)
		return
	}
	ctlJSON(w, http.StatusOK, s.accountStatus(a.Address))
}

// TakeSignupRecoveryCode is the local page's: the code made when
// address signed up, once.
func (b pageBackend) TakeSignupRecoveryCode(address string) string {
	return b.d.TakeSignupRecoveryCode(strings.ToLower(strings.TrimSpace(address)))
}
