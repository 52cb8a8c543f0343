package smtpserver

import "strings"

// NormDomain is the form in which the MX and submission compare domain
// names (DNS names are case-insensitive, RFC 4343, and "example.org."
// is the same absolute name as "example.org"): blanks around it
// removed, lower case, no final dot. It does not convert between
// U-labels and A-labels (IDNA) as internal/incoming does for the
// addresses a reader sees: the services compare names as written.
func NormDomain(d string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
}
