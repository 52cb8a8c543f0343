package submission

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func mkCert(t *testing.T, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, ca bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		BasicConstraintsValid: true, IsCA: ca,
	}
	if !ca {
		tmpl.DNSNames = []string{name}
	} else {
		tmpl.KeyUsage = x509.KeyUsageCertSign
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func TestVerifyDANE(t *testing.T) {
	root, rootKey := mkCert(t, "root", nil, nil, true)
	inter, interKey := mkCert(t, "intermediate", root, rootKey, true)
	mx, _ := mkCert(t, "mx.example.org", inter, interKey, false)
	self, _ := mkCert(t, "self", nil, nil, false)
	chain := []*x509.Certificate{mx, inter, root}

	sha := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	sha5 := func(b []byte) string { s := sha512.Sum512(b); return hex.EncodeToString(s[:]) }
	rec := func(u, s, m uint8, data string) *dns.TLSA {
		return &dns.TLSA{Usage: u, Selector: s, MatchingType: m, Certificate: data}
	}
	names := []string{"mx.example.org", "example.org"}
	for _, tc := range []struct {
		name  string
		certs []*x509.Certificate
		recs  []*dns.TLSA
		names []string
		ok    bool
	}{
		{"3 1 1", chain, []*dns.TLSA{rec(3, 1, 1, sha(mx.RawSubjectPublicKeyInfo))}, names, true},
		{"3 0 1", chain, []*dns.TLSA{rec(3, 0, 1, sha(mx.Raw))}, names, true},
		{"3 1 2", chain, []*dns.TLSA{rec(3, 1, 2, sha5(mx.RawSubjectPublicKeyInfo))}, names, true},
		{"3 0 0", chain, []*dns.TLSA{rec(3, 0, 0, hex.EncodeToString(mx.Raw))}, names, true},
		{"3 1 1 of a self-signed cert, any name", []*x509.Certificate{self}, []*dns.TLSA{rec(3, 1, 1, sha(self.RawSubjectPublicKeyInfo))}, names, true},
		{"3 1 1 of another key", chain, []*dns.TLSA{rec(3, 1, 1, sha(self.RawSubjectPublicKeyInfo))}, names, false},
		{"3 1 1 of the intermediate", chain, []*dns.TLSA{rec(3, 1, 1, sha(inter.RawSubjectPublicKeyInfo))}, names, false},
		{"2 0 1 root in chain", chain, []*dns.TLSA{rec(2, 0, 1, sha(root.Raw))}, names, true},
		{"2 1 1 intermediate", chain, []*dns.TLSA{rec(2, 1, 1, sha(inter.RawSubjectPublicKeyInfo))}, names, true},
		{"2 0 1 root not sent", chain[:2], []*dns.TLSA{rec(2, 0, 1, sha(root.Raw))}, names, false},
		{"2 0 1 wrong name", chain, []*dns.TLSA{rec(2, 0, 1, sha(root.Raw))}, []string{"other.example"}, false},
		{"mismatch then match", chain, []*dns.TLSA{rec(3, 1, 1, "00"), rec(2, 0, 1, sha(root.Raw))}, names, true},
		{"no certificates", nil, []*dns.TLSA{rec(3, 1, 1, sha(mx.RawSubjectPublicKeyInfo))}, names, false},
		{"bad hex", chain, []*dns.TLSA{rec(3, 1, 1, "zz")}, names, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verifyDANE(tc.certs, tc.recs, tc.names)
			if (err == nil) != tc.ok {
				t.Fatalf("verifyDANE = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
