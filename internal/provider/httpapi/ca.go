package httpapi

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

// TLSFiles are the provider's CA and server certificate. LEAP providers
// run their own CA; clients pin it by its SHA-256 fingerprint, published
// in provider.json.
type TLSFiles struct {
	CACert     *x509.Certificate
	CACertPEM  []byte
	ServerCert tls.Certificate // chain: leaf, CA
}

// Fingerprint is the provider.json form of a CA fingerprint.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "SHA256: " + hex.EncodeToString(sum[:])
}

// LoadOrCreateTLS reads ca.crt, ca.key, server.crt and server.key from dir,
// creating the CA and a server certificate for hosts on first start. A
// certificate that is missing one of hosts, or expires within 30 days, is
// reissued from the same CA.
func LoadOrCreateTLS(dir string, hosts []string) (*TLSFiles, error) {
	caCertPath, caKeyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	srvCertPath, srvKeyPath := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")

	ca, err := certfile.Load(caCertPath, caKeyPath)
	if errors.Is(err, os.ErrNotExist) {
		ca, err = createCA(caCertPath, caKeyPath)
	}
	if err != nil {
		return nil, fmt.Errorf("provider: CA: %w", err)
	}
	leaf, err := certfile.Load(srvCertPath, srvKeyPath)
	if err == nil && !certCovers(leaf.Cert, ca.Cert, hosts) {
		err = os.ErrNotExist
	}
	if errors.Is(err, os.ErrNotExist) {
		leaf, err = createLeaf(srvCertPath, srvKeyPath, ca, hosts)
	}
	if err != nil {
		return nil, fmt.Errorf("provider: server certificate: %w", err)
	}
	return &TLSFiles{
		CACert:    ca.Cert,
		CACertPEM: ca.CertPEM,
		ServerCert: tls.Certificate{
			Certificate: [][]byte{leaf.Cert.Raw, ca.Cert.Raw},
			PrivateKey:  leaf.Key,
			Leaf:        leaf.Cert,
		},
	}, nil
}

func certCovers(leaf, ca *x509.Certificate, hosts []string) bool {
	if leaf.CheckSignatureFrom(ca) != nil || time.Until(leaf.NotAfter) < 30*24*time.Hour {
		return false
	}
	for _, h := range hosts {
		if leaf.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

func createCA(certPath, keyPath string) (*certfile.Pair, error) {
	return certfile.Issue(certPath, keyPath, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "leapd provider CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}, nil, nil)
}

func createLeaf(certPath, keyPath string, ca *certfile.Pair, hosts []string) (*certfile.Pair, error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: hosts[0]},
		NotBefore:   time.Now().Add(-time.Hour),
		NotAfter:    time.Now().AddDate(1, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return certfile.Issue(certPath, keyPath, tmpl, ca.Cert, ca.Key)
}
