// Package localtls is the certificate bitmaskd offers on its local IMAP
// and SMTP (STARTTLS, or implicit TLS): self-signed for localhost,
// 127.0.0.1 and ::1, made on the first start and kept in the data
// directory (localhost.crt, and localhost.key with mode 0600). A mail
// client asks once to accept it, or the user trusts the exported file
// (`bitmaskctl cert export`); its SHA-256 fingerprint is in `bitmaskctl
// mail config` and `bitmaskctl status`.
//
// The certificate is kept: a restart or an upgrade of bitmaskd loads the
// same files, and a later change of what a new certificate holds never
// replaces one that is kept. It is replaced only when it is 30 days from
// its end (a new one is valid for 820 days: Apple's systems refuse a TLS
// server certificate valid for longer than 825 days, even one the user
// trusts). A new certificate is written beside the old one and renamed
// over it, key first; Load finishes a replacement a crash interrupted.
package localtls

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/bitmask-go/bitmask/internal/certfile"
)

// File names in the data directory.
const (
	CertFile = "localhost.crt"
	KeyFile  = "localhost.key"
)

// Validity is how long a new certificate is valid; RenewBefore is how
// long before its end a kept certificate is replaced.
const (
	Validity    = 820 * 24 * time.Hour
	RenewBefore = 30 * 24 * time.Hour
)

// Cert is the local certificate as the daemon serves and shows it.
type Cert struct {
	// TLS is the server configuration with the certificate.
	TLS *tls.Config
	// PEM is the certificate (without the key), as a mail client or a
	// system's certificate store imports it.
	PEM []byte
	// SHA256 is the SHA-256 of the certificate's DER, lowercase hex: the
	// fingerprint mail clients show (as colon-separated pairs).
	SHA256 string
	// NotAfter is when the certificate ends.
	NotAfter time.Time
}

// Load is the server TLS configuration with the certificate kept in
// dataDir, made first if there is none, and the certificate's SHA-256
// fingerprint (lowercase hex of the DER).
func Load(dataDir string) (*tls.Config, string, error) {
	c, err := LoadCert(dataDir, time.Now())
	if err != nil {
		return nil, "", err
	}
	return c.TLS, c.SHA256, nil
}

// LoadCert is the certificate kept in dataDir: made when there is none,
// replaced when it ends within RenewBefore of now. A damaged certificate
// or key is an error that says how to start again, never silently a new
// certificate (the user trusted the old one).
func LoadCert(dataDir string, now time.Time) (*Cert, error) {
	certPath, keyPath := filepath.Join(dataDir, CertFile), filepath.Join(dataDir, KeyFile)
	if err := finishReplace(certPath, keyPath); err != nil {
		return nil, fmt.Errorf("local TLS certificate: %w", err)
	}
	c, err := read(certPath, keyPath)
	if errors.Is(err, os.ErrNotExist) || err == nil && now.Add(RenewBefore).After(c.NotAfter) {
		if err := replace(certPath, keyPath, now); err != nil {
			return nil, fmt.Errorf("local TLS certificate: %w", err)
		}
		c, err = read(certPath, keyPath)
	}
	if err != nil {
		return nil, fmt.Errorf("local TLS certificate: %w (to start with a new certificate, stop bitmaskd and remove %s and %s; mail clients then ask to trust the new one)", err, certPath, keyPath)
	}
	return c, nil
}

// read loads the pair at certPath and keyPath.
func read(certPath, keyPath string) (*Cert, error) {
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, err
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(pair.Certificate[0])
	return &Cert{
		TLS:      &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		PEM:      certPEM,
		SHA256:   hex.EncodeToString(sum[:]),
		NotAfter: pair.Leaf.NotAfter,
	}, nil
}

// replace makes a new certificate beside the kept one (.new files,
// synced) and renames it over it, key first.
func replace(certPath, keyPath string, now time.Time) error {
	newCert, newKey := certPath+".new", keyPath+".new"
	_, err := certfile.Issue(newCert, newKey, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"bitmaskd on this computer"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(Validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, // and not a CA: trusting it trusts nothing else
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}, nil, nil)
	if err != nil {
		return err
	}
	for _, p := range []string{newKey, newCert} {
		if err := syncFile(p); err != nil {
			return err
		}
	}
	return finishReplace(certPath, keyPath)
}

// finishReplace renames a complete new pair (.new files, or a new
// certificate whose key was already renamed) over the kept one, and
// removes the remains of an incomplete one.
func finishReplace(certPath, keyPath string) error {
	newCert, newKey := certPath+".new", keyPath+".new"
	if _, err := os.Stat(newCert); errors.Is(err, os.ErrNotExist) {
		// Nothing pending beyond, perhaps, a key without its certificate.
		if err := os.Remove(newKey); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	key := newKey
	if _, err := os.Stat(newKey); errors.Is(err, os.ErrNotExist) {
		key = keyPath // the key was renamed already
	}
	if _, err := tls.LoadX509KeyPair(newCert, key); err != nil {
		// Interrupted while writing: the kept pair stays.
		for _, p := range []string{newCert, newKey} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		return nil
	}
	if key == newKey {
		if err := os.Rename(newKey, keyPath); err != nil {
			return err
		}
	}
	return os.Rename(newCert, certPath)
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
