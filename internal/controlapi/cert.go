package controlapi

import (
	"context"
	"net/http"
	"strings"
)

// CertResponse is GET /v1/cert: the certificate bitmaskd's local IMAP
// and SMTP offer (no key), for a mail client or a certificate store to
// import, and its fingerprint.
type CertResponse struct {
	SHA256 string `json:"sha256"` // lowercase hex of the DER's SHA-256
	PEM    string `json:"pem"`
}

// Cert is the local certificate (GET /v1/cert).
func (c *Client) Cert(ctx context.Context) (CertResponse, error) {
	return call[CertResponse](ctx, c, http.MethodGet, "/v1/cert", nil)
}

// ColonFingerprint is a hex fingerprint as mail clients and certificate
// viewers show it: upper case, in pairs separated by colons
// ("AB:CD:..."). Anything that is not an even run of hex digits comes
// back as it was.
func ColonFingerprint(hex string) string {
	if len(hex) == 0 || len(hex)%2 != 0 || strings.Trim(hex, "0123456789abcdefABCDEF") != "" {
		return hex
	}
	var b strings.Builder
	for i := 0; i < len(hex); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strings.ToUpper(hex[i : i+2]))
	}
	return b.String()
}
