package controlserver

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/daemon"
)

// Devices and account deletion (docs/control-api.md).

func init() {
	extraRoutes = append(extraRoutes, func(s *server, mux *http.ServeMux) {
		mux.HandleFunc("GET /v1/devices", s.hDevices)
		mux.HandleFunc("POST /v1/devices/revoke", s.hRevokeDevice)
		mux.HandleFunc("GET /v1/delete", s.hDeleteSummary)
		mux.HandleFunc("POST /v1/delete", s.hDelete)
	})
}

// revokeAdvice is what the user is told after a revocation.
const revokeAdvice = "The device can no longer sync with the provider. It was logged in, so it had the account's " +
	"storage secret and may keep a copy of what it synced, readable by whoever holds it and knows the password " +
	"or its local token. Change your password now (bitmaskctl user passwd): that ends every other session and " +
	"keeps whoever learned the old password from logging in again. It does not change the storage secret, so it " +
	"does not make unreadable what the device already holds or could have copied."

func wireDevice(d daemon.Device) controlapi.DeviceInfo {
	return controlapi.DeviceInfo{ID: d.ID, Name: d.Name, Created: d.Created, LastSync: d.LastSync, Sessions: d.Sessions, Current: d.Current}
}

// address is the request's account: the one named, else the only one
// logged in. It answers 400 when that is unclear.
func (s *server) address(w http.ResponseWriter, addr string) (string, bool) {
	addr = strings.ToLower(strings.TrimSpace(addr))
	if addr != "" {
		return addr, true
	}
	if as := s.d.Accounts(); len(as) == 1 {
		return as[0].Address, true
	}
	ctlErr(w, http.StatusBadRequest, errors.New("say which account (address=...)"))
	return "", false
}

func (s *server) hDevices(w http.ResponseWriter, r *http.Request) {
	addr, ok := s.address(w, r.URL.Query().Get("address"))
	if !ok {
		return
	}
	ds, err := s.d.Devices(r.Context(), addr)
	if err != nil {
		ctlErr(w, statusOf(err), err)
		return
	}
	out := controlapi.DevicesResponse{Address: addr, Devices: []controlapi.DeviceInfo{}}
	for _, d := range ds {
		out.Devices = append(out.Devices, wireDevice(d))
	}
	ctlJSON(w, http.StatusOK, out)
}

func (s *server) hRevokeDevice(w http.ResponseWriter, r *http.Request) {
	var req controlapi.RevokeRequest
	if !readCtl(w, r, &req) {
		return
	}
	addr, ok := s.address(w, req.Address)
	if !ok {
		return
	}
	if strings.TrimSpace(req.Device) == "" {
		ctlErr(w, http.StatusBadRequest, errors.New("say which device (its name or id)"))
		return
	}
	d, err := s.d.RevokeDevice(r.Context(), addr, req.Device)
	switch {
	case errors.Is(err, daemon.ErrNoDevice):
		ctlErr(w, http.StatusNotFound, err)
		return
	case errors.Is(err, daemon.ErrAmbiguousDevice), errors.Is(err, daemon.ErrCurrentDevice):
		ctlErr(w, http.StatusConflict, err)
		return
	case err != nil:
		ctlErr(w, statusOf(err), err)
		return
	}
	ctlJSON(w, http.StatusOK, controlapi.RevokeResponse{Address: addr, Device: wireDevice(d), Advice: revokeAdvice})
}

func (s *server) hDeleteSummary(w http.ResponseWriter, r *http.Request) {
	addr, ok := s.address(w, r.URL.Query().Get("address"))
	if !ok {
		return
	}
	sum, err := s.d.DeletionSummary(r.Context(), addr)
	if err != nil {
		ctlErr(w, statusOf(err), err)
		return
	}
	ctlJSON(w, http.StatusOK, controlapi.DeleteSummary(sum))
}

func (s *server) hDelete(w http.ResponseWriter, r *http.Request) {
	var req controlapi.DeleteRequest
	if !readCtl(w, r, &req) {
		return
	}
	addr := strings.ToLower(strings.TrimSpace(req.Address))
	if addr == "" || strings.ToLower(strings.TrimSpace(req.Confirm)) != addr {
		ctlErr(w, http.StatusBadRequest, fmt.Errorf("to delete an account, confirm with its address (confirm=%q); nothing was deleted", addr))
		return
	}
	if err := s.d.DeleteAccount(r.Context(), addr, []byte(req.Password)); err != nil {
		ctlErr(w, statusOf(err), err)
		return
	}
	ctlJSON(w, http.StatusOK, struct{}{})
}
