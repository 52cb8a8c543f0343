package controlserver

import (
	"net/http"
	"strings"

	"github.com/bitmask-go/bitmask/internal/clientsetup"
)

// Mozilla autoconfig for logged-in accounts at
// /mail/config-v1.1.xml?emailaddress=ADDR (and the .well-known path),
// served on the control API's address without the token: the document
// holds no secret.

func isAutoconfigPath(path string) bool {
	return path == "/mail/config-v1.1.xml" || path == "/.well-known/autoconfig/mail/config-v1.1.xml"
}

func (s *server) autoconfig(w http.ResponseWriter, r *http.Request) {
	addr := strings.ToLower(r.URL.Query().Get("emailaddress"))
	a, ok := s.d.Account(addr)
	if !ok {
		http.Error(w, "no such account logged in", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	_, _ = w.Write(clientsetup.ThunderbirdXML(mailConfig(s.d, a)))
}
