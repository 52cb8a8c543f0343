package controlserver

import (
	"net/http"

	"github.com/bitmask-go/bitmask/internal/controlapi"
)

// hCert is GET /v1/cert: the local certificate (no key) and its
// fingerprint. With format=pem the answer is the PEM file itself.
func (s *server) hCert(w http.ResponseWriter, r *http.Request) {
	ls := s.d.LocalServices()
	if r.URL.Query().Get("format") == "pem" {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Header().Set("Content-Disposition", `attachment; filename="bitmask-localhost.crt"`)
		_, _ = w.Write(ls.TLSCertPEM)
		return
	}
	ctlJSON(w, http.StatusOK, controlapi.CertResponse{SHA256: ls.TLSFingerprint, PEM: string(ls.TLSCertPEM)})
}
