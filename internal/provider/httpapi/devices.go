package httpapi

import (
	"encoding/hex"
	"net/http"
	"sort"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
)

// Devices (docs/provider-api.md §4.8): a user's devices are made from
// their live sessions, each of which names the device it belongs to.
// Revoking a device ends all its sessions at once; its next request is
// answered 401 session_revoked and its event stream closes.

func init() {
	extraRoutes = append(extraRoutes, func(s *Server, mux *http.ServeMux, v string) {
		mux.HandleFunc("GET "+v+"/devices", s.auth(s.handleDevices))
		mux.HandleFunc("DELETE "+v+"/devices/{id}", s.auth(s.handleRevokeDevice))
	})
}

// deviceKey is the id a session's device is listed under: the id it
// gave, or for a session without one, "session-" and the first 8 bytes
// of the token's hash in hex.
func deviceKey(se *storage.Session) string {
	if se.DeviceID != "" {
		return se.DeviceID
	}
	return "session-" + hex.EncodeToString(se.TokenHash[:8])
}

// devices groups sessions into devices, the oldest first; current is the
// token hash of the session asking.
func devices(sessions []storage.Session, current []byte) []providerapi.DeviceInfo {
	byID := map[string]*providerapi.DeviceInfo{}
	var cur string
	for i := range sessions {
		se := &sessions[i]
		id := deviceKey(se)
		if string(se.TokenHash) == string(current) {
			cur = id
		}
		d := byID[id]
		if d == nil {
			d = &providerapi.DeviceInfo{ID: id, Name: se.DeviceName, Created: se.Created}
			if d.Name == "" {
				d.Name = "unnamed device"
			}
			byID[id] = d
		}
		d.Sessions++
		if !se.Created.IsZero() && (d.Created.IsZero() || se.Created.Before(d.Created)) {
			d.Created = se.Created
		}
		if se.LastSync.After(d.LastSync) {
			d.LastSync = se.LastSync
		}
		if se.Expires.After(d.Expires) {
			d.Expires = se.Expires
			if se.DeviceName != "" {
				d.Name = se.DeviceName // the latest session's name
			}
		}
	}
	out := make([]providerapi.DeviceInfo, 0, len(byID))
	for id, d := range byID {
		d.Current = id == cur
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func (s *Server) handleDevices(w http.ResponseWriter, r *http.Request, a authed) {
	ss, err := s.store.Sessions(r.Context(), a.login)
	if err != nil {
		s.internal(w, "devices", err)
		return
	}
	writeJSON(w, http.StatusOK, providerapi.DevicesResponse{Devices: devices(ss, a.tokenHash)})
}

func (s *Server) handleRevokeDevice(w http.ResponseWriter, r *http.Request, a authed) {
	id := r.PathValue("id")
	if id == "" || len(id) > providerapi.MaxDeviceIDLen {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, "invalid device id")
		return
	}
	if deviceKey(a.session) == id {
		writeErr(w, http.StatusConflict, providerapi.CodeCurrentDevice, "that is the device making this request; log out instead")
		return
	}
	ended, err := s.endSessions(r.Context(), a.login, func(se *storage.Session) bool { return deviceKey(se) == id }, providerapi.CodeSessionRevoked)
	if err != nil {
		s.internal(w, "revoke device", err)
		return
	}
	if len(ended) == 0 {
		writeErr(w, http.StatusNotFound, providerapi.CodeNotFound, "no such device")
		return
	}
	s.log.Info("device revoked", "login", a.login, "sessions", len(ended))
	writeJSON(w, http.StatusOK, providerapi.RevokeResponse{Device: devices(ended, nil)[0]})
}
