package localtls

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// The first Load makes the certificate (the key file 0600), later ones
// reuse it; the fingerprint is the certificate's SHA-256.
func TestLoadMakesThenReuses(t *testing.T) {
	dir := t.TempDir()
	cfg, fp, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	der := cfg.Certificates[0].Certificate[0]
	sum := sha256.Sum256(der)
	if fp != hex.EncodeToString(sum[:]) {
		t.Fatalf("fingerprint %s is not the certificate's", fp)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.VerifyHostname("localhost"); err != nil {
		t.Error(err)
	}
	if err := cert.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "localhost.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
	_, again, err := Load(dir)
	if err != nil || again != fp {
		t.Fatalf("second load: %s %v, want %s", again, err, fp)
	}
}

// A damaged certificate is an error, not a new certificate.
func TestLoadRefusesDamaged(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := Load(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "localhost.crt"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(dir); err == nil {
		t.Fatal("a damaged certificate loaded")
	}
}
