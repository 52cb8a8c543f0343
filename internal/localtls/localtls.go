// Package localtls is the certificate bitmaskd offers on its local IMAP
// and SMTP (STARTTLS, or implicit TLS): self-signed for localhost,
// 127.0.0.1 and ::1, made on the first start and kept in the data
// directory (localhost.crt, and localhost.key with mode 0600). A mail
// client asks once to accept it; its fingerprint is in `bitmaskctl mail
// config`.
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

// Load is the server TLS configuration with the certificate kept in
// dataDir, made first if there is none, and the certificate's SHA-256
// fingerprint (lowercase hex of the DER).
func Load(dataDir string) (*tls.Config, string, error) {
	certPath, keyPath := filepath.Join(dataDir, "localhost.crt"), filepath.Join(dataDir, "localhost.key")
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if errors.Is(err, os.ErrNotExist) {
		cert, err = makeLocalCert(certPath, keyPath)
	}
	if err != nil {
		return nil, "", fmt.Errorf("local TLS certificate: %w", err)
	}
	sum := sha256.Sum256(cert.Certificate[0])
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, hex.EncodeToString(sum[:]), nil
}

// makeLocalCert writes a self-signed certificate for the loopback names,
// valid for ten years, and reads it back as tls wants it.
func makeLocalCert(certPath, keyPath string) (tls.Certificate, error) {
	_, err := certfile.Issue(certPath, keyPath, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost", Organization: []string{"bitmaskd on this computer"}},
		NotBefore:   time.Now().Add(-time.Hour),
		NotAfter:    time.Now().AddDate(10, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}, nil, nil)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.LoadX509KeyPair(certPath, keyPath)
}
