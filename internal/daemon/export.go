package daemon

import (
	"context"
	"crypto/tls"
	"log/slog"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// What the daemon's servers outside this package (the control API, the
// local mail services) read of it besides the flows in daemon.go.

// LocalServices says where the local mail services listen and which
// certificate they offer: what a mail client is told to use.
type LocalServices struct {
	IMAPAddr, SMTPAddr string
	// TLSFingerprint is the local certificate's SHA-256 (lowercase hex
	// of the DER); TLSCertPEM is the certificate itself (no key), for
	// a mail client or a certificate store to import.
	TLSFingerprint string
	TLSCertPEM     []byte
}

// LocalServices is the daemon's configured local mail services.
func (d *Daemon) LocalServices() LocalServices {
	return LocalServices{IMAPAddr: d.cfg.IMAPAddr, SMTPAddr: d.cfg.SMTPAddr,
		TLSFingerprint: d.cert.SHA256, TLSCertPEM: d.cert.PEM}
}

// LocalTLS is the server TLS configuration of the local IMAP and SMTP.
func (d *Daemon) LocalTLS() *tls.Config { return d.cert.TLS }

// Logger is the daemon's logger.
func (d *Daemon) Logger() *slog.Logger { return d.log }

// DiscoverKey runs the account's key discovery for address (the local
// cache, the provider's nicknym for its own domain, then WKD), keeping
// what it finds among the contacts' keys.
func (a *Account) DiscoverKey(ctx context.Context, address string) (*openpgp.Entity, error) {
	return a.discovery.Find(ctx, address)
}

// IsOffline tells an error of a provider that could not be reached (a
// network error, a timeout, an HTTP status of 500 or more) from an
// answer.
func IsOffline(err error) bool { return isOffline(err) }

// DataDir is the daemon's data directory.
func (d *Daemon) DataDir() string { return d.cfg.DataDir }
