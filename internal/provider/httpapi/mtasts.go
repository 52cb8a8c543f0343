package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MTA-STS (RFC 8461): leapd serves its domain's policy at
// https://mta-sts.DOMAIN/.well-known/mta-sts.txt, so that senders which
// honour it deliver to the domain's MX only over TLS with a certificate
// a public CA issued for the MX's name. The _mta-sts TXT record that
// announces the policy carries an id made from the policy's text
// (MTASTSPolicy.Text), so it changes when the policy does; `leapd dns`
// prints it.

const mtaSTSPath = "/.well-known/mta-sts.txt"

// MTA-STS modes.
const (
	MTASTSEnforce = "enforce"
	MTASTSTesting = "testing"
	MTASTSNone    = "none"
)

// DefaultMTASTSMaxAge is how long senders keep the policy: a week.
const DefaultMTASTSMaxAge = 7 * 24 * time.Hour

// maxMTASTSMaxAge is RFC 8461's upper bound (31557600 s, a year).
const maxMTASTSMaxAge = 31557600 * time.Second

// MTASTSPolicy is the domain's MTA-STS policy.
type MTASTSPolicy struct {
	// Mode is enforce (the default), testing or none.
	Mode string
	// MX are the names the domain's MX records point at (a "*." prefix
	// matches one label); default: the domain.
	MX []string
	// MaxAge is how long a sender keeps the policy (default a week,
	// at most a year); whole seconds.
	MaxAge time.Duration
}

// Text is the policy file for domain, with its defaults filled in, and
// its id: the first 32 hex digits of the text's SHA-256, which the
// _mta-sts TXT record announces. A bad mode, MX name or max_age is an
// error.
func (p MTASTSPolicy) Text(domain string) (text []byte, id string, err error) {
	mode := p.Mode
	if mode == "" {
		mode = MTASTSEnforce
	}
	switch mode {
	case MTASTSEnforce, MTASTSTesting, MTASTSNone:
	default:
		return nil, "", fmt.Errorf("MTA-STS mode %q is not enforce, testing or none", p.Mode)
	}
	age := p.MaxAge
	if age == 0 {
		age = DefaultMTASTSMaxAge
	}
	if age < time.Second || age > maxMTASTSMaxAge || age%time.Second != 0 {
		return nil, "", fmt.Errorf("MTA-STS max_age %v is not a whole number of seconds from 1 s to a year", p.MaxAge)
	}
	mxs := p.MX
	if len(mxs) == 0 {
		mxs = []string{domain}
	}
	var b strings.Builder
	b.WriteString("version: STSv1\r\nmode: " + mode + "\r\n")
	for _, mx := range mxs {
		name := strings.TrimSuffix(strings.ToLower(mx), ".")
		if !validMXPattern(name) {
			return nil, "", fmt.Errorf("MTA-STS mx %q is not a host name or *.name", mx)
		}
		b.WriteString("mx: " + name + "\r\n")
	}
	b.WriteString("max_age: " + strconv.FormatInt(int64(age/time.Second), 10) + "\r\n")
	sum := sha256.Sum256([]byte(b.String()))
	return []byte(b.String()), hex.EncodeToString(sum[:16]), nil
}

// validMXPattern: a host name of letters, digits and hyphens in labels
// of 1 to 63, at least two labels, optionally with "*." in front.
func validMXPattern(name string) bool {
	name = strings.TrimPrefix(name, "*.")
	if len(name) > 253 || !strings.Contains(name, ".") {
		return false
	}
	for _, l := range strings.Split(name, ".") {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func init() {
	extraRoutes = append(extraRoutes, func(s *Server, mux *http.ServeMux, _ string) {
		mux.HandleFunc("GET "+mtaSTSPath, s.handleMTASTS)
	})
}

// handleMTASTS serves the policy on the mta-sts.DOMAIN host only.
func (s *Server) handleMTASTS(w http.ResponseWriter, r *http.Request) {
	if requestHost(r) != "mta-sts."+s.cfg.Domain {
		http.NotFound(w, r)
		return
	}
	text, _, err := s.cfg.MTASTS.Text(s.cfg.Domain)
	if err != nil {
		s.internal(w, "MTA-STS policy", err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=3600")
	_, _ = w.Write(text)
}
