package clientsetup

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"

	"github.com/bitmask-go/bitmask/internal/controlapi"
)

var mc = controlapi.MailConfig{
	Address: "ann&co@example.org", Username: "ann&co@example.org", Password: "tok<en>",
	IMAPHost: "127.0.0.1", IMAPPort: 1984, SMTPHost: "127.0.0.1", SMTPPort: 2013,
	Security: "STARTTLS", TLSFingerprint: "abcd",
}

// wellFormed parses doc as XML to its end.
func wellFormed(t *testing.T, doc []byte) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(string(doc)))
	for {
		if _, err := d.Token(); err != nil {
			if err == io.EOF {
				return
			}
			t.Fatalf("not well-formed: %v\n%s", err, doc)
		}
	}
}

func TestThunderbirdXML(t *testing.T) {
	doc := ThunderbirdXML(mc)
	wellFormed(t, doc)
	for _, want := range []string{`<emailProvider id="example.org">`, "<hostname>127.0.0.1</hostname>", "<port>1984</port>", "<port>2013</port>", "<username>ann&amp;co@example.org</username>"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("lacks %s:\n%s", want, doc)
		}
	}
	if strings.Contains(string(doc), "tok&lt;en&gt;") || strings.Contains(string(doc), "tok<en>") {
		t.Error("the autoconfig document holds the token")
	}
}

func TestAppleProfile(t *testing.T) {
	a, b := AppleProfile(mc), AppleProfile(mc)
	wellFormed(t, a)
	for _, want := range []string{"com.apple.mail.managed", "<string>tok&lt;en&gt;</string>", "<integer>1984</integer>"} {
		if !strings.Contains(string(a), want) {
			t.Errorf("lacks %s:\n%s", want, a)
		}
	}
	if string(a) == string(b) {
		t.Error("two profiles share their payload UUIDs")
	}
}

func TestTextConfig(t *testing.T) {
	s := TextConfig(mc)
	for _, want := range []string{"127.0.0.1 port 1984", "127.0.0.1 port 2013", "tok<en>", "SHA-256 AB:CD"} {
		if !strings.Contains(s, want) {
			t.Errorf("lacks %s:\n%s", want, s)
		}
	}
}

// The local certificate's fingerprint is in every format.
func TestFingerprintInEveryFormat(t *testing.T) {
	mc := mc
	mc.TLSFingerprint = "00ff10"
	for name, doc := range map[string]string{"thunderbird": string(ThunderbirdXML(mc)), "apple": string(AppleProfile(mc)), "text": TextConfig(mc)} {
		if !strings.Contains(doc, "00:FF:10") {
			t.Errorf("%s lacks the fingerprint:\n%s", name, doc)
		}
	}
}

// ParseAutoconfig reads back what ThunderbirdXML wrote; the provider's
// document names the default local addresses with the placeholder user.
func TestAutoconfigRoundTrip(t *testing.T) {
	c, err := ParseAutoconfig(ThunderbirdXML(mc))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Provider
	if c.Version != "1.1" || p.ID != "example.org" || len(p.Domains) != 1 || p.Domains[0] != "example.org" ||
		p.Incoming != (Server{"imap", "127.0.0.1", 1984, "STARTTLS", "password-cleartext", mc.Address}) ||
		p.Outgoing != (Server{"smtp", "127.0.0.1", 2013, "STARTTLS", "password-cleartext", mc.Address}) {
		t.Fatalf("%+v", c)
	}
	doc := ProviderAutoconfig("example.net", "Example -- mail")
	wellFormed(t, doc)
	c, err = ParseAutoconfig(doc)
	if err != nil {
		t.Fatal(err)
	}
	p = c.Provider
	if p.ID != "example.net" || p.Incoming != (Server{"imap", DefaultHost, DefaultIMAPPort, "STARTTLS", "password-cleartext", "%EMAILADDRESS%"}) ||
		p.Outgoing != (Server{"smtp", DefaultHost, DefaultSMTPPort, "STARTTLS", "password-cleartext", "%EMAILADDRESS%"}) {
		t.Fatalf("%+v", c)
	}
}
