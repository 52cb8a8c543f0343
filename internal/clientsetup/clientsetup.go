// Package clientsetup renders a mail client's settings for bitmaskd's
// local IMAP and SMTP in the forms clients take: Mozilla's autoconfig XML
// (clientConfig 1.1, what Thunderbird reads), an Apple configuration
// profile (.mobileconfig, com.apple.mail.managed), and plain text. The
// control API serves them (GET /v1/mail/config, and the autoconfig paths).
package clientsetup

import (
	"bytes"
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"strings"
	"text/template"

	"github.com/bitmask-go/bitmask/internal/controlapi"
)

// xmlText is s escaped as XML character data (and attribute values).
func xmlText(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// Where bitmaskd's local services are unless told otherwise (bitmaskd's
// defaults): what leapd's autoconfig points every client at.
const (
	DefaultHost     = "127.0.0.1"
	DefaultIMAPPort = 1984
	DefaultSMTPPort = 2013
)

// EmailAddressPlaceholder is what autoconfig's clients (Thunderbird)
// replace with the address the user typed.
const EmailAddressPlaceholder = "%EMAILADDRESS%"

// ClientConfig is Mozilla's autoconfig document (clientConfig version
// 1.1) as far as bitmask writes it: one provider, one IMAP and one SMTP
// server.
type ClientConfig struct {
	XMLName  xml.Name      `xml:"clientConfig"`
	Version  string        `xml:"version,attr"`
	Provider EmailProvider `xml:"emailProvider"`
}

// EmailProvider is the clientConfig's emailProvider.
type EmailProvider struct {
	ID          string   `xml:"id,attr"`
	Comment     string   `xml:",comment"`
	Domains     []string `xml:"domain"`
	DisplayName string   `xml:"displayName"`
	ShortName   string   `xml:"displayShortName"`
	Incoming    Server   `xml:"incomingServer"`
	Outgoing    Server   `xml:"outgoingServer"`
}

// Server is an incomingServer (Type "imap") or outgoingServer (Type
// "smtp").
type Server struct {
	Type           string `xml:"type,attr"`
	Hostname       string `xml:"hostname"`
	Port           int    `xml:"port"`
	SocketType     string `xml:"socketType"`     // "STARTTLS"
	Authentication string `xml:"authentication"` // "password-cleartext"
	Username       string `xml:"username"`
}

// autoconfig is the document for domain, naming the servers of mc and
// its user name, with comment (no "--" in it) for people who read it.
func autoconfig(domain, displayName string, mc controlapi.MailConfig, comment string) []byte {
	server := func(typ, host string, port int) Server {
		return Server{Type: typ, Hostname: host, Port: port, SocketType: "STARTTLS", Authentication: "password-cleartext", Username: mc.Username}
	}
	doc := ClientConfig{Version: "1.1", Provider: EmailProvider{
		ID: domain, Comment: " " + strings.ReplaceAll(comment, "--", "- -") + " ", Domains: []string{domain},
		DisplayName: displayName, ShortName: "Bitmask",
		Incoming: server("imap", mc.IMAPHost, mc.IMAPPort),
		Outgoing: server("smtp", mc.SMTPHost, mc.SMTPPort),
	}}
	b, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil { // only strings and ints: cannot fail
		panic(err)
	}
	return append(append([]byte(xml.Header), b...), '\n')
}

// ThunderbirdXML is the autoconfig document for mc. It carries no
// password: Thunderbird asks for it (the local token). A comment gives
// the local certificate's fingerprint.
func ThunderbirdXML(mc controlapi.MailConfig) []byte {
	domain := mc.Address[strings.LastIndexByte(mc.Address, '@')+1:]
	return autoconfig(domain, "Bitmask ("+mc.Address+")", mc,
		"bitmaskd on this computer. The password is its local token for this account (bitmaskctl mail config), not the account password. "+
			certLine(mc.TLSFingerprint))
}

// ProviderAutoconfig is the autoconfig document a provider serves for
// its domain (leapd): every address of the domain reads its mail through
// bitmaskd on the user's own computer, on its default addresses, with
// the address as the user name.
func ProviderAutoconfig(domain, name string) []byte {
	mc := controlapi.MailConfig{Username: EmailAddressPlaceholder,
		IMAPHost: DefaultHost, IMAPPort: DefaultIMAPPort, SMTPHost: DefaultHost, SMTPPort: DefaultSMTPPort}
	return autoconfig(domain, "Bitmask ("+name+")", mc,
		"Mail of this domain is end-to-end encrypted: the mail client talks to bitmaskd on the same computer. "+
			"The password is bitmaskd's local token for the account (bitmaskctl mail config, or the setup page), not the account password; "+
			"the certificate is bitmaskd's own, shown there too.")
}

// ParseAutoconfig reads an autoconfig document as ClientConfig.
func ParseAutoconfig(b []byte) (ClientConfig, error) {
	var c ClientConfig
	err := xml.Unmarshal(b, &c)
	return c, err
}

// certLine says which certificate bitmaskd offers, when it is known.
func certLine(fingerprint string) string {
	if fingerprint == "" {
		return ""
	}
	return "Its certificate is self-signed for localhost, SHA-256 " + controlapi.ColonFingerprint(fingerprint) + "."
}

var appleTmpl = template.Must(template.New("apple").Parse(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>PayloadContent</key>
  <array>
    <dict>
      <key>EmailAccountDescription</key><string>Bitmask {{.Address}}</string>
      <key>EmailAccountType</key><string>EmailTypeIMAP</string>
      <key>EmailAddress</key><string>{{.Address}}</string>
      <key>IncomingMailServerAuthentication</key><string>EmailAuthPassword</string>
      <key>IncomingMailServerHostName</key><string>{{.IMAPHost}}</string>
      <key>IncomingMailServerPortNumber</key><integer>{{.IMAPPort}}</integer>
      <key>IncomingMailServerUseSSL</key><false/>
      <key>IncomingMailServerUsername</key><string>{{.Username}}</string>
      <key>IncomingPassword</key><string>{{.Password}}</string>
      <key>OutgoingMailServerAuthentication</key><string>EmailAuthPassword</string>
      <key>OutgoingMailServerHostName</key><string>{{.SMTPHost}}</string>
      <key>OutgoingMailServerPortNumber</key><integer>{{.SMTPPort}}</integer>
      <key>OutgoingMailServerUseSSL</key><false/>
      <key>OutgoingMailServerUsername</key><string>{{.Username}}</string>
      <key>OutgoingPassword</key><string>{{.Password}}</string>
      <key>PayloadDisplayName</key><string>Bitmask mail</string>
      <key>PayloadIdentifier</key><string>org.bitmask.mail.{{.UUID}}</string>
      <key>PayloadType</key><string>com.apple.mail.managed</string>
      <key>PayloadUUID</key><string>{{.UUID}}</string>
      <key>PayloadVersion</key><integer>1</integer>
    </dict>
  </array>
  <key>PayloadDescription</key><string>Mail of {{.Address}} through bitmaskd on this computer. {{.Cert}}</string>
  <key>PayloadDisplayName</key><string>Bitmask {{.Address}}</string>
  <key>PayloadIdentifier</key><string>org.bitmask.profile.{{.UUID2}}</string>
  <key>PayloadRemovalDisallowed</key><false/>
  <key>PayloadType</key><string>Configuration</string>
  <key>PayloadUUID</key><string>{{.UUID2}}</string>
  <key>PayloadVersion</key><integer>1</integer>
</dict>
</plist>
`))

func uuid4() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// AppleProfile is a .mobileconfig for mc (with the local token: the
// file is a credential).
func AppleProfile(mc controlapi.MailConfig) []byte {
	var b bytes.Buffer
	_ = appleTmpl.Execute(&b, map[string]any{
		"Address": xmlText(mc.Address), "Username": xmlText(mc.Username), "Password": xmlText(mc.Password),
		"IMAPHost": xmlText(mc.IMAPHost), "IMAPPort": mc.IMAPPort, "SMTPHost": xmlText(mc.SMTPHost), "SMTPPort": mc.SMTPPort,
		"UUID": uuid4(), "UUID2": uuid4(), "Cert": xmlText(certLine(mc.TLSFingerprint)),
	})
	return b.Bytes()
}

// TextConfig is mc for people.
func TextConfig(mc controlapi.MailConfig) string {
	return fmt.Sprintf(`Account   %s
IMAP      %s port %d, STARTTLS (or no encryption: it is this computer), normal password
SMTP      %s port %d, STARTTLS (or no encryption), normal password
User name %s
Password  %s   (the local token; not your account password)
TLS cert  self-signed for localhost, SHA-256 %s
          (bitmaskctl cert export writes it, to trust in the mail client)
`, mc.Address, mc.IMAPHost, mc.IMAPPort, mc.SMTPHost, mc.SMTPPort, mc.Username, mc.Password, controlapi.ColonFingerprint(mc.TLSFingerprint))
}
