package certfile

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestIssueWritesAPairLoadReads(t *testing.T) {
	dir := t.TempDir()
	caCrt, caKey := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if _, err := Load(caCrt, caKey); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load of nothing: %v, want os.ErrNotExist", err)
	}
	ca, err := Issue(caCrt, caKey, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Cert.CheckSignatureFrom(ca.Cert); err != nil {
		t.Fatalf("CA is not self-signed: %v", err)
	}
	fi, err := os.Stat(caKey)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v, want 0600", fi.Mode(), err)
	}

	leafCrt, leafKey := filepath.Join(dir, "leaf.crt"), filepath.Join(dir, "leaf.key")
	leaf, err := Issue(leafCrt, leafKey, &x509.Certificate{
		Subject:   pkix.Name{CommonName: "leaf"},
		NotBefore: time.Now().Add(-time.Hour),
		NotAfter:  time.Now().Add(time.Hour),
		DNSNames:  []string{"leaf.example"},
	}, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.Cert.CheckSignatureFrom(ca.Cert); err != nil {
		t.Fatalf("leaf is not signed by the CA: %v", err)
	}
	if leaf.Cert.SerialNumber.Cmp(ca.Cert.SerialNumber) == 0 {
		t.Fatal("two certificates got the same serial number")
	}

	back, err := Load(leafCrt, leafKey)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Cert.Equal(leaf.Cert) || !back.Key.Equal(leaf.Key) || string(back.CertPEM) != string(leaf.CertPEM) {
		t.Fatal("Load did not read back what Issue wrote")
	}
}
