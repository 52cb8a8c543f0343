// Package certfile makes and reads the certificate/key pairs bitmask keeps
// on disk as PEM files: a P-256 ECDSA key ("EC PRIVATE KEY", mode 0600,
// since it is a secret) beside its certificate ("CERTIFICATE", mode 0644).
// bitmaskd's self-signed localhost certificate (internal/localtls) and
// leapd's CA and server certificate (internal/provider/httpapi) are both
// made here; the caller only says what goes in the certificate.
package certfile

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
)

// Pair is a certificate with its private key, as written to (or read
// from) disk.
type Pair struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
}

// Issue makes a fresh P-256 key, gives tmpl a random 127-bit serial
// number, has it signed by parent with parentKey (or by itself when parent
// is nil: a self-signed certificate, such as a CA's) and writes the pair to
// certPath and keyPath.
func Issue(certPath, keyPath string, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = sn
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, fmt.Errorf("signing the certificate: %w", err)
	}
	certPEM, err := write(certPath, keyPath, der, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the new certificate: %w", err)
	}
	return &Pair{Cert: cert, Key: key, CertPEM: certPEM}, nil
}

// Load reads a pair Issue wrote. A missing file is an error that
// errors.Is(err, os.ErrNotExist), so that callers can tell "make one"
// from "broken".
func Load(certPath, keyPath string) (*Pair, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("%s or %s is not PEM", certPath, keyPath)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	return &Pair{Cert: cert, Key: key, CertPEM: certPEM}, nil
}

// write stores the key first (mode 0600), then the certificate, and
// returns the certificate's PEM.
func write(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) ([]byte, error) {
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the key: %w", err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		return nil, err
	}
	return certPEM, nil
}

// serial is a random positive serial number below 2^127, as RFC 5280
// section 4.1.2.2 asks (unique per issuer, at most 20 octets).
func serial() (*big.Int, error) {
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("making a serial number: %w", err)
	}
	return sn, nil
}
