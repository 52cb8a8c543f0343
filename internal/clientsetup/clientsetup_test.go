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
	if strings.Contains(string(doc), "tok") {
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
	for _, want := range []string{"127.0.0.1 port 1984", "127.0.0.1 port 2013", "tok<en>", "SHA-256 abcd"} {
		if !strings.Contains(s, want) {
			t.Errorf("lacks %s:\n%s", want, s)
		}
	}
}
