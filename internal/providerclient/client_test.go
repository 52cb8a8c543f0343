package providerclient_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

const password = "correct horse battery staple"

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func fpHex(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// otherCA is a provider CA that is not the test provider's.
func otherCA(t *testing.T) *httpapi.TLSFiles {
	t.Helper()
	tf, err := httpapi.LoadOrCreateTLS(t.TempDir(), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	return tf
}

// fake serves a doctored provider.json and ca.crt over TLS with the real
// provider's certificate chain, so a client that pinned the real CA
// connects to it.
type fake struct {
	*httptest.Server
	mu   sync.Mutex
	pj   []byte
	ca   []byte
	code int
}

func newFake(t *testing.T, p *testenv.Provider) *fake {
	t.Helper()
	f := &fake{code: http.StatusOK}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /provider.json", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		w.WriteHeader(f.code)
		_, _ = w.Write(f.pj)
	})
	mux.HandleFunc("GET /ca.crt", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		_, _ = w.Write(f.ca)
	})
	f.Server = httptest.NewUnstartedServer(mux)
	f.Server.TLS = &tls.Config{Certificates: []tls.Certificate{p.TLSFiles().ServerCert}}
	f.Server.StartTLS()
	t.Cleanup(f.Server.Close)
	return f
}

// honest is the real provider's provider.json as the fake serves it.
func (f *fake) honest(p *testenv.Provider) providerapi.ProviderJSON {
	pj := p.ProviderJSON()
	pj.APIURI = f.URL
	pj.CACertURI = f.URL + "/ca.crt"
	return pj
}

func (f *fake) serve(t *testing.T, pj any, ca []byte) {
	t.Helper()
	var b []byte
	switch v := pj.(type) {
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	f.mu.Lock()
	f.pj, f.ca, f.code = b, ca, http.StatusOK
	f.mu.Unlock()
}

// describe is a short form of a bootstrap result for failure messages.
func describe(pr *providerclient.Provider) string {
	if pr == nil {
		return "no provider"
	}
	fp := "no CA"
	if blk, _ := pem.Decode(pr.CAPEM); blk != nil {
		fp = "CA " + fpHex(blk.Bytes)
	}
	return fmt.Sprintf("provider %s (api %s, names %s, %s)", pr.JSON.Domain, pr.JSON.APIURI, pr.JSON.CACertFingerprint, fp)
}

func TestBootstrapPinsTheCA(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	realHex := fpHex(p.TLSFiles().CACert.Raw)

	// The pin in every form a user might paste.
	colons := func(s string) string {
		var parts []string
		for i := 0; i < len(s); i += 2 {
			parts = append(parts, s[i:i+2])
		}
		return strings.Join(parts, ":")
	}
	for _, pin := range []string{p.Fingerprint, "sha256:" + strings.ToUpper(colons(realHex)), realHex, "  SHA256:" + realHex + "\n"} {
		pr, err := providerclient.Bootstrap(ctx(t), p.URL, pin, testenv.CloseIdle(t))
		if err != nil {
			t.Fatalf("bootstrap pinned with %q: %v", pin, err)
		}
		if pr.JSON.Domain != testenv.Domain || pr.JSON.APIURI != p.URL || pr.JSON.CACertFingerprint != p.Fingerprint {
			t.Fatalf("bootstrapped provider.json: %+v", pr.JSON)
		}
		blk, _ := pem.Decode(pr.CAPEM)
		if blk == nil || fpHex(blk.Bytes) != realHex {
			t.Fatalf("bootstrapped CA is not the provider's")
		}
	}

	// A wrong pin is refused, on the fingerprint.
	other := otherCA(t)
	for _, pin := range []string{httpapi.Fingerprint(other.CACert.Raw), strings.Repeat("ab", 32)} {
		pr, err := providerclient.Bootstrap(ctx(t), p.URL, pin, testenv.CloseIdle(t))
		if err == nil || !strings.Contains(err.Error(), "fingerprint") {
			t.Errorf("bootstrap with the wrong pin %s: %s, %v; want a fingerprint error", pin, describe(pr), err)
		}
	}
	// A malformed pin, or a provider that is not https, never gets as far
	// as a connection.
	for _, c := range []struct{ base, pin string }{
		{p.URL, "SHA256: abcd"},
		{p.URL, "not a fingerprint"},
		{strings.Replace(p.URL, "https://", "http://", 1), p.Fingerprint},
		{"ftp://" + p.Addr, p.Fingerprint},
	} {
		if pr, err := providerclient.Bootstrap(ctx(t), c.base, c.pin, testenv.CloseIdle(t)); err == nil {
			t.Errorf("bootstrap of %s pinned %q: %s, want an error", c.base, c.pin, describe(pr))
		}
	}

	// What bootstrap pinned is all a client trusts: the same
	// provider.json pointed at another provider (another CA) fails.
	pr, err := providerclient.Bootstrap(ctx(t), p.URL, p.Fingerprint, testenv.CloseIdle(t))
	if err != nil {
		t.Fatal(err)
	}
	p2 := testenv.StartProvider(t, testenv.Options{})
	wrong := *pr
	wrong.JSON.APIURI = p2.URL
	c, err := providerclient.New(&wrong, testenv.CloseIdle(t))
	if err != nil {
		t.Fatal(err)
	}
	var uae x509.UnknownAuthorityError
	if _, err := c.LookupKey(ctx(t), "x@"+testenv.Domain); !errors.As(err, &uae) {
		t.Errorf("request to a provider with another CA: %v, want an unknown-authority error", err)
	}
	// And the right one works.
	c, err = providerclient.New(pr, testenv.CloseIdle(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.LookupKey(ctx(t), "x@"+testenv.Domain); !providerclient.IsCode(err, providerapi.CodeNotFound) {
		t.Errorf("lookup at the pinned provider: %v, want not found", err)
	}
	if _, err := providerclient.New(&providerclient.Provider{JSON: pr.JSON, CAPEM: []byte("not PEM")}, providerclient.Options{}); err == nil {
		t.Error("client.New accepted a CA that is not PEM")
	}
}

func TestBootstrapRefusesADoctoredProvider(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	f := newFake(t, p)
	realCA := p.TLSFiles().CACertPEM
	other := otherCA(t)

	// The fake is a faithful copy to begin with.
	f.serve(t, f.honest(p), realCA)
	if _, err := providerclient.Bootstrap(ctx(t), f.URL, p.Fingerprint, testenv.CloseIdle(t)); err != nil {
		t.Fatalf("bootstrap of the honest copy: %v", err)
	}

	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.TLSFiles().ServerCert.Certificate[0]})
	for _, c := range []struct {
		what string
		pj   func(*providerapi.ProviderJSON)
		ca   []byte
		pin  string
		want string
	}{
		{"provider.json names another CA, pinned the real one",
			func(pj *providerapi.ProviderJSON) { pj.CACertFingerprint = httpapi.Fingerprint(other.CACert.Raw) }, realCA, p.Fingerprint, "not the pinned"},
		{"provider.json names another CA, pinned that one",
			func(pj *providerapi.ProviderJSON) { pj.CACertFingerprint = httpapi.Fingerprint(other.CACert.Raw) }, realCA, httpapi.Fingerprint(other.CACert.Raw), "fingerprint"},
		{"another CA served at ca.crt",
			func(pj *providerapi.ProviderJSON) {}, other.CACertPEM, p.Fingerprint, "fingerprint mismatch"},
		{"ca.crt not PEM",
			func(pj *providerapi.ProviderJSON) {}, []byte("hello"), p.Fingerprint, "not PEM"},
		{"ca.crt a PEM key",
			func(pj *providerapi.ProviderJSON) {}, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), p.Fingerprint, "not PEM"},
		{"ca.crt is the leaf, pinned as the CA",
			func(pj *providerapi.ProviderJSON) {
				pj.CACertFingerprint = httpapi.Fingerprint(p.TLSFiles().ServerCert.Certificate[0])
			}, leafPEM, httpapi.Fingerprint(p.TLSFiles().ServerCert.Certificate[0]), "not a CA"},
	} {
		pj := f.honest(p)
		c.pj(&pj)
		f.serve(t, pj, c.ca)
		pr, err := providerclient.Bootstrap(ctx(t), f.URL, c.pin, testenv.CloseIdle(t))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %s, %v; want an error about %q", c.what, describe(pr), err, c.want)
		}
	}
}

func TestBootstrapRefusesABadProviderJSON(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	f := newFake(t, p)
	realCA := p.TLSFiles().CACertPEM
	edit := func(fn func(*providerapi.ProviderJSON)) providerapi.ProviderJSON {
		pj := f.honest(p)
		fn(&pj)
		return pj
	}
	big := edit(func(pj *providerapi.ProviderJSON) {
		pj.Description = map[string]string{"en": strings.Repeat("x", 70<<10)}
	})
	for _, c := range []struct {
		what string
		pj   any
		want string
	}{
		{"not JSON", "<html>welcome</html>", "JSON"},
		{"empty", "", "JSON"},
		{"a JSON list", "[1,2]", "JSON"},
		{"missing domain", edit(func(pj *providerapi.ProviderJSON) { pj.Domain = "" }), "domain"},
		{"missing api_uri", edit(func(pj *providerapi.ProviderJSON) { pj.APIURI = "" }), "api_uri"},
		{"missing ca_cert_uri", edit(func(pj *providerapi.ProviderJSON) { pj.CACertURI = "" }), "ca_cert_uri"},
		{"missing fingerprint", edit(func(pj *providerapi.ProviderJSON) { pj.CACertFingerprint = "" }), "ca_cert_fingerprint"},
		{"short fingerprint", edit(func(pj *providerapi.ProviderJSON) { pj.CACertFingerprint = "SHA256: abcd" }), "fingerprint"},
		{"api_version 2", edit(func(pj *providerapi.ProviderJSON) { pj.APIVersion = "2" }), "api_version"},
		{"no api_version", edit(func(pj *providerapi.ProviderJSON) { pj.APIVersion = "" }), "api_version"},
		{"http api_uri", edit(func(pj *providerapi.ProviderJSON) { pj.APIURI = strings.Replace(pj.APIURI, "https:", "http:", 1) }), "api_uri"},
		{"http ca_cert_uri", edit(func(pj *providerapi.ProviderJSON) { pj.CACertURI = strings.Replace(pj.CACertURI, "https:", "http:", 1) }), "ca_cert_uri"},
		{"over 64 KiB", big, "bytes"},
	} {
		f.serve(t, c.pj, realCA)
		pr, err := providerclient.Bootstrap(ctx(t), f.URL, p.Fingerprint, testenv.CloseIdle(t))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %s, %v; want an error about %q", c.what, describe(pr), err, c.want)
		}
	}
	// Not there at all.
	f.serve(t, "", realCA)
	f.mu.Lock()
	f.code = http.StatusNotFound
	f.mu.Unlock()
	if pr, err := providerclient.Bootstrap(ctx(t), f.URL, p.Fingerprint, testenv.CloseIdle(t)); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("provider.json 404: %s, %v", describe(pr), err)
	}
	// Just under the limit is fine.
	ok := edit(func(pj *providerapi.ProviderJSON) {
		pj.Description = map[string]string{"en": strings.Repeat("x", 60<<10)}
	})
	f.serve(t, ok, realCA)
	if _, err := providerclient.Bootstrap(ctx(t), f.URL, p.Fingerprint, testenv.CloseIdle(t)); err != nil {
		t.Errorf("a 60 KiB provider.json: %v", err)
	}
}

// Without a pin, the system's roots vouch for provider.json (as in LEAP)
// and the CA served must still have provider.json's fingerprint. The
// system roots are made to hold the test CA through SSL_CERT_FILE, which
// works only if nothing in this test binary loaded the system roots
// before; no other test here bootstraps without a pin.
func TestBootstrapWithoutPinChecksTheServedCA(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, p.TLSFiles().CACertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", caFile)
	pr, err := providerclient.Bootstrap(ctx(t), p.URL, "", testenv.CloseIdle(t))
	if err != nil {
		var uae x509.UnknownAuthorityError
		if errors.As(err, &uae) {
			t.Skip("the system roots were loaded before SSL_CERT_FILE was set")
		}
		t.Fatalf("unpinned bootstrap of a provider the system trusts: %v", err)
	}
	if pr.JSON.CACertFingerprint != p.Fingerprint {
		t.Fatalf("bootstrap: %+v", pr.JSON)
	}

	f := newFake(t, p)
	other := otherCA(t)
	pj := f.honest(p)
	pj.CACertFingerprint = httpapi.Fingerprint(other.CACert.Raw)
	f.serve(t, pj, p.TLSFiles().CACertPEM)
	if pr, err := providerclient.Bootstrap(ctx(t), f.URL, "", testenv.CloseIdle(t)); err == nil || !strings.Contains(err.Error(), "fingerprint mismatch") {
		t.Errorf("provider.json naming another CA than it serves: %s, %v", describe(pr), err)
	}
	f.serve(t, f.honest(p), other.CACertPEM)
	if pr, err := providerclient.Bootstrap(ctx(t), f.URL, "", testenv.CloseIdle(t)); err == nil || !strings.Contains(err.Error(), "fingerprint mismatch") {
		t.Errorf("another CA served than provider.json names: %s, %v", describe(pr), err)
	}

	// A server the system does not trust is refused without a pin.
	untrusted := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(p.ProviderJSON())
	}))
	defer untrusted.Close()
	if pr, err := providerclient.Bootstrap(ctx(t), untrusted.URL, "", testenv.CloseIdle(t)); err == nil {
		t.Errorf("unpinned bootstrap of an untrusted server: %s", describe(pr))
	}
}

func TestNormalizeFingerprint(t *testing.T) {
	hexFP := strings.Repeat("0123456789abcdef", 4)
	upperColons := strings.ToUpper(strings.Join(func() []string {
		var out []string
		for i := 0; i < len(hexFP); i += 2 {
			out = append(out, hexFP[i:i+2])
		}
		return out
	}(), ":"))
	for _, in := range []string{
		"SHA256: " + hexFP,
		"sha256:" + hexFP,
		"sha256:" + upperColons,
		"SHA256 : " + upperColons,
		"Sha256:" + strings.ToUpper(hexFP),
		hexFP,
		upperColons,
		"  " + hexFP + "\n",
		"SHA256: " + hexFP[:32] + " " + hexFP[32:],
	} {
		got, err := providerclient.NormalizeFingerprint(in)
		if err != nil || got != hexFP {
			t.Errorf("NormalizeFingerprint(%q) = %q, %v; want %s", in, got, err, hexFP)
		}
	}
	for _, in := range []string{
		"",
		"SHA256:",
		"SHA256: abcd",
		"sha256:AB:CD",
		hexFP[:62],
		hexFP + "00",
		"SHA256: " + hexFP[:63] + "g",
		"md5:" + hexFP,
		"sha1:" + hexFP,
		"SHA256: " + hexFP[:63],
	} {
		if got, err := providerclient.NormalizeFingerprint(in); err == nil {
			t.Errorf("NormalizeFingerprint(%q) = %q, want an error", in, got)
		}
	}
}

func TestSignupAndLogin(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	kdf, err := seal.FastKDFParams()
	if err != nil {
		t.Fatal(err)
	}
	c := testenv.NewClient(t, p)
	secret, cr, tok, _, err := c.SignupAccount(ctx(t), "alice", []byte(password), kdf, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) == 0 || tok == "" || !bytes.Equal(cr.KDF.Salt, kdf.Salt) {
		t.Fatalf("signup: secret %d bytes, token %q, kdf %+v", len(secret), tok, cr.KDF)
	}
	// The provider holds the verifier and the wrapped secret, never the
	// password or the secret.
	u, err := p.Store.User(ctx(t), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(u.WrappedSecret, secret) || bytes.Contains(u.SRPVerifier, []byte(password)) || !bytes.Equal(u.SRPVerifier, cr.SRPVerifier) {
		t.Fatal("the provider's record of alice holds the secret or lacks the verifier")
	}

	// A taken login is a clear error.
	var ae *providerclient.APIError
	if _, _, _, _, err := testenv.NewClient(t, p).SignupAccount(ctx(t), "alice", []byte(password), kdf, ""); !errors.As(err, &ae) || ae.Status != http.StatusConflict || ae.Code != providerapi.CodeExists {
		t.Errorf("second signup of alice: %v", err)
	}

	// Wrong password, twice (the provider's answer and the client's
	// mapping of it).
	lc := testenv.NewClient(t, p)
	for _, pw := range []string{"wrong password", password + " "} {
		if s, err := lc.Login(ctx(t), "alice", []byte(pw)); !errors.Is(err, providerclient.ErrWrongPassword) {
			t.Errorf("login with %q: session %v, %v; want ErrWrongPassword", pw, s != nil, err)
		}
	}
	if lc.Token() != "" {
		t.Errorf("a failed login left a token")
	}
	s, err := lc.Login(ctx(t), "alice", []byte(password))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.Secret, secret) || s.Address != "alice@"+testenv.Domain || s.Token == "" || s.Token == tok || lc.Token() != s.Token {
		t.Errorf("login: address %q, secret matches %v, token %v (signup's %v, client's %v)",
			s.Address, bytes.Equal(s.Secret, secret), s.Token != "", s.Token == tok, lc.Token() == s.Token)
	}
	if sec, err := lc.Secret(ctx(t)); err != nil || !bytes.Equal(sec.WrappedSecret, cr.WrappedSecret) {
		t.Errorf("secret with the login's session: %v", err)
	}

	// The offline unlock of the same wrapped secret.
	if got, err := providerclient.UnwrapOffline("alice", []byte(password), s.KDF, s.WrappedSecret); err != nil || !bytes.Equal(got, secret) {
		t.Errorf("offline unlock: %v", err)
	}
	if _, err := providerclient.UnwrapOffline("alice", []byte("wrong password"), s.KDF, s.WrappedSecret); !errors.Is(err, providerclient.ErrWrongPassword) {
		t.Errorf("offline unlock with a wrong password: %v", err)
	}
	// The wrapped secret is bound to its login.
	if _, err := providerclient.UnwrapOffline("mallory", []byte(password), s.KDF, s.WrappedSecret); err == nil {
		t.Error("alice's wrapped secret opened as mallory's")
	}

	// A hostile handshake id is refused before any request is made.
	for _, hs := range []string{"../users/self", "a?b", strings.Repeat("a", 65), "x#y"} {
		if _, err := lc.LoginFinish(ctx(t), hs, []byte{1}); err == nil || providerclient.IsCode(err, providerapi.CodeUnauthorized) {
			t.Errorf("LoginFinish with handshake %q: %v, want a client-side refusal", hs, err)
		}
	}

	// Logout ends the session.
	if err := lc.Logout(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.Secret(ctx(t)); !providerclient.IsCode(err, providerapi.CodeUnauthorized) {
		t.Errorf("secret after logout: %v, want unauthorized", err)
	}
}
