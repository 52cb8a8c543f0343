package httpapi

import (
	"net"
	"net/http"
	"strings"

	"github.com/bitmask-go/bitmask/internal/clientsetup"
)

// Mozilla autoconfig for the provider's domain, so that a mail client
// (Thunderbird) fills in a new account from the address alone: it asks
// https://autoconfig.DOMAIN/mail/config-v1.1.xml?emailaddress=ADDR and
// https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=ADDR.
// The answer points at bitmaskd on the user's own computer (IMAP
// 127.0.0.1:1984 and SMTP 127.0.0.1:2013, STARTTLS, the address as the
// user name and bitmaskd's local token as the password); it holds
// nothing about any account, so it says the same to everyone.

const (
	autoconfigPath      = "/mail/config-v1.1.xml"
	wellKnownAutoconfig = "/.well-known/autoconfig/mail/config-v1.1.xml"
)

// handleAutoconfig serves the document. The /mail/ form answers only on
// the autoconfig.DOMAIN host; emailaddress, when given, must be an
// address of the domain (another domain: 404, not an address: 400).
func (s *Server) handleAutoconfig(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == autoconfigPath && requestHost(r) != "autoconfig."+s.cfg.Domain {
		http.NotFound(w, r)
		return
	}
	if addr := r.URL.Query().Get("emailaddress"); addr != "" {
		at := strings.LastIndexByte(addr, '@')
		if at <= 0 || at == len(addr)-1 || strings.ContainsAny(addr, " \t\r\n<>\"") {
			http.Error(w, "emailaddress is not a mail address", http.StatusBadRequest)
			return
		}
		if !strings.EqualFold(strings.TrimSuffix(addr[at+1:], "."), s.cfg.Domain) {
			http.Error(w, "this provider serves the domain "+s.cfg.Domain+" only", http.StatusNotFound)
			return
		}
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=3600")
	_, _ = w.Write(clientsetup.ProviderAutoconfig(s.cfg.Domain, s.cfg.Name))
}

// requestHost is the request's host name, lower case, without the port
// or a final dot.
func requestHost(r *http.Request) string {
	h := r.Host
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}
