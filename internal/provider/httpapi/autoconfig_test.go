package httpapi_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitmask-go/bitmask/internal/clientsetup"
	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// thunderbirdClient asks as Thunderbird does, by host name, but every
// name reaches the test provider at addr. (Thunderbird would want a
// certificate a public CA issued for those names; the provider's own
// TLS is tested elsewhere.)
func thunderbirdClient(addr string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
}

// leapd answers both URLs Thunderbird asks for a new account's address
// with a document that parses and names bitmaskd's local IMAP and SMTP
// as clientsetup writes them for that address (the password being the
// local token, which only bitmaskd knows).
func TestAutoconfigAsThunderbirdAsks(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	hc := thunderbirdClient(p.Addr)
	addr := "kim@" + testenv.Domain
	_, port, _ := net.SplitHostPort(p.Addr)
	want, err := clientsetup.ParseAutoconfig(clientsetup.ThunderbirdXML(controlapi.MailConfig{
		Address: addr, Username: addr, IMAPHost: clientsetup.DefaultHost, IMAPPort: clientsetup.DefaultIMAPPort,
		SMTPHost: clientsetup.DefaultHost, SMTPPort: clientsetup.DefaultSMTPPort,
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{
		"https://autoconfig." + testenv.Domain + ":" + port + "/mail/config-v1.1.xml?emailaddress=" + url.QueryEscape(addr),
		"https://" + testenv.Domain + ":" + port + "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=" + url.QueryEscape(addr),
		"https://AutoConfig." + strings.ToUpper(testenv.Domain) + ":" + port + "/mail/config-v1.1.xml",
	} {
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/xml") {
			t.Fatalf("%s: %d %s\n%s", u, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		got, err := clientsetup.ParseAutoconfig(body)
		if err != nil {
			t.Fatalf("%s: %v\n%s", u, err, body)
		}
		g, w := got.Provider, want.Provider
		if g.ID != testenv.Domain || len(g.Domains) != 1 || g.Domains[0] != testenv.Domain {
			t.Errorf("%s: provider %q, domains %q", u, g.ID, g.Domains)
		}
		for _, s := range []*clientsetup.Server{&g.Incoming, &g.Outgoing} {
			if s.Username != clientsetup.EmailAddressPlaceholder {
				t.Errorf("%s: user name %q", u, s.Username)
			}
			s.Username = addr // what Thunderbird puts there
		}
		if g.Incoming != w.Incoming || g.Outgoing != w.Outgoing {
			t.Errorf("%s:\n got %+v %+v\nwant %+v %+v", u, g.Incoming, g.Outgoing, w.Incoming, w.Outgoing)
		}
		if g.Incoming.Hostname != "127.0.0.1" || g.Incoming.Port != 1984 || g.Outgoing.Port != 2013 ||
			g.Incoming.SocketType != "STARTTLS" || g.Outgoing.Authentication != "password-cleartext" {
			t.Errorf("%s: %+v", u, g)
		}
	}
	// Wrong host for the /mail/ form, another domain, not an address.
	for u, status := range map[string]int{
		"https://" + testenv.Domain + ":" + port + "/mail/config-v1.1.xml?emailaddress=" + addr:                                                          404,
		"https://autoconfig." + testenv.Domain + ":" + port + "/mail/config-v1.1.xml?emailaddress=kim@example.org":                                       404,
		"https://" + testenv.Domain + ":" + port + "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=no-at-sign":                                400,
		"https://" + testenv.Domain + ":" + port + "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=" + url.QueryEscape("a b@"+testenv.Domain): 400,
	} {
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Errorf("%s: %d, want %d", u, resp.StatusCode, status)
		}
	}
}

// FuzzAutoconfig asks for the autoconfig document with any host and
// address: never a 5xx, and every 200 is a document for the domain.
func FuzzAutoconfig(f *testing.F) {
	dir := f.TempDir()
	tlsFiles, err := httpapi.LoadOrCreateTLS(dir, []string{"localhost"})
	if err != nil {
		f.Fatal(err)
	}
	st, err := storage.OpenBolt(filepath.Join(dir, "leapd.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	srv, err := httpapi.New(httpapi.Config{Domain: "example.test", APIURL: "https://localhost", Logger: slog.New(slog.DiscardHandler)}, st, tlsFiles)
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()
	f.Add("autoconfig.example.test", "kim@example.test")
	f.Add("example.test:443", "")
	f.Fuzz(func(t *testing.T, host, address string) {
		for _, path := range []string{"/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml"} {
			req := httptest.NewRequest(http.MethodGet, path+"?emailaddress="+url.QueryEscape(address), nil)
			req.Host = host
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%s host %q address %q: %d", path, host, address, rec.Code)
			}
			if rec.Code == 200 {
				c, err := clientsetup.ParseAutoconfig(rec.Body.Bytes())
				if err != nil || c.Provider.ID != "example.test" {
					t.Fatalf("%s host %q address %q: %v %+v", path, host, address, err, c)
				}
			}
		}
	})
}
