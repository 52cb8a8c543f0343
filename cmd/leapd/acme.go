package main

import "github.com/bitmask-go/bitmask/internal/provider"

// acmeConfig is the ACME side of the configuration: with a public name,
// leapd takes certificates for it (the MX host) and for the names its
// HTTPS listener answers beside the API, mta-sts., openpgpkey. and
// autoconfig. of the domain (internal/provider/acme.go). The
// certificates and the account key are kept in DATA/acme; autocert
// renews them before they expire while leapd runs.
func acmeConfig(fc fileConfig) *provider.ACME {
	if fc.PublicName == "" {
		return nil
	}
	return &provider.ACME{
		Names:        acmeNames(fc),
		DirectoryURL: fc.ACMEDir,
		Email:        fc.ACMEEmail,
	}
}

// acmeNames are the names that get an ACME certificate, the public name
// first.
func acmeNames(fc fileConfig) []string {
	names := []string{fc.PublicName}
	for _, n := range []string{"mta-sts.", "openpgpkey.", "autoconfig."} {
		if n+fc.Domain != fc.PublicName {
			names = append(names, n+fc.Domain)
		}
	}
	return names
}
