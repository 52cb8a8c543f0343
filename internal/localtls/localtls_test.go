package localtls

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// A new certificate is valid for less than 825 days (Apple's limit), is
// not a CA, and names the loopback addresses; it is kept until 30 days
// before its end, then replaced.
func TestCertKeptThenRenewed(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	c, err := LoadCert(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	leaf := c.TLS.Certificates[0].Leaf
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d > 825*24*time.Hour {
		t.Errorf("valid for %v, over 825 days", d)
	}
	if leaf.IsCA || !leaf.BasicConstraintsValid {
		t.Errorf("IsCA %v, basic constraints %v", leaf.IsCA, leaf.BasicConstraintsValid)
	}
	if err := leaf.VerifyHostname("::1"); err != nil {
		t.Error(err)
	}
	if b, _ := pem.Decode(c.PEM); b == nil || b.Type != "CERTIFICATE" || !bytes.Equal(b.Bytes, leaf.Raw) {
		t.Fatalf("PEM is not the certificate: %q", c.PEM)
	}
	if bytes.Contains(c.PEM, []byte("PRIVATE")) {
		t.Fatal("PEM holds the key")
	}
	kept, err := LoadCert(dir, c.NotAfter.Add(-RenewBefore-time.Hour))
	if err != nil || kept.SHA256 != c.SHA256 {
		t.Fatalf("before renewal: %v, fingerprint %s want %s", err, kept.SHA256, c.SHA256)
	}
	renewed, err := LoadCert(dir, c.NotAfter.Add(-RenewBefore+time.Hour))
	if err != nil || renewed.SHA256 == c.SHA256 {
		t.Fatalf("renewal: %v, fingerprint %s, old %s", err, renewed.SHA256, c.SHA256)
	}
	again, err := LoadCert(dir, c.NotAfter.Add(-RenewBefore+time.Hour))
	if err != nil || again.SHA256 != renewed.SHA256 {
		t.Fatalf("after renewal: %v, fingerprint %s want %s", err, again.SHA256, renewed.SHA256)
	}
	for _, p := range []string{CertFile + ".new", KeyFile + ".new"} {
		if _, err := os.Stat(filepath.Join(dir, p)); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", p, err)
		}
	}
}

// A replacement a crash interrupted is finished when it was complete
// and dropped when it was not; the kept certificate stays in the latter
// case.
func TestCertReplaceInterrupted(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(dir string) // from a kept pair and a complete new pair in .new files
		want    string           // "old" or "new"
	}{
		{"before renames", func(string) {}, "new"},
		{"key renamed", func(dir string) {
			must(t, os.Rename(filepath.Join(dir, KeyFile+".new"), filepath.Join(dir, KeyFile)))
		}, "new"},
		{"certificate half written", func(dir string) {
			must(t, os.WriteFile(filepath.Join(dir, CertFile+".new"), []byte("-----BEGIN CERT"), 0o644))
		}, "old"},
		{"key only", func(dir string) {
			must(t, os.Remove(filepath.Join(dir, CertFile+".new")))
		}, "old"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, side := t.TempDir(), t.TempDir()
			old, err := LoadCert(dir, time.Now())
			must(t, err)
			nw, err := LoadCert(side, time.Now())
			must(t, err)
			must(t, os.Rename(filepath.Join(side, CertFile), filepath.Join(dir, CertFile+".new")))
			must(t, os.Rename(filepath.Join(side, KeyFile), filepath.Join(dir, KeyFile+".new")))
			tc.prepare(dir)
			got, err := LoadCert(dir, time.Now())
			must(t, err)
			want := map[string]string{"old": old.SHA256, "new": nw.SHA256}[tc.want]
			if got.SHA256 != want {
				t.Fatalf("fingerprint %s, want the %s one %s", got.SHA256, tc.want, want)
			}
			for _, p := range []string{CertFile + ".new", KeyFile + ".new"} {
				if _, err := os.Stat(filepath.Join(dir, p)); !os.IsNotExist(err) {
					t.Errorf("%s left: %v", p, err)
				}
			}
		})
	}
}

// A key that does not match the certificate is refused with what to do.
func TestLoadRefusesMismatch(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	_, err := LoadCert(dir, time.Now())
	must(t, err)
	_, err = LoadCert(other, time.Now())
	must(t, err)
	must(t, os.Rename(filepath.Join(other, KeyFile), filepath.Join(dir, KeyFile)))
	if _, err := LoadCert(dir, time.Now()); err == nil || !strings.Contains(err.Error(), "remove") {
		t.Fatalf("mismatched pair: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
