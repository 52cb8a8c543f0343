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

// ThunderbirdXML is the autoconfig document for mc. It carries no
// password: Thunderbird asks for it (the local token).
func ThunderbirdXML(mc controlapi.MailConfig) []byte {
	domain := mc.Address[strings.LastIndexByte(mc.Address, '@')+1:]
	return fmt.Appendf(nil, `<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="%[1]s">
    <domain>%[1]s</domain>
    <displayName>Bitmask (%[2]s)</displayName>
    <displayShortName>Bitmask</displayShortName>
    <incomingServer type="imap">
      <hostname>%[3]s</hostname>
      <port>%[4]d</port>
      <socketType>STARTTLS</socketType>
      <authentication>password-cleartext</authentication>
      <username>%[2]s</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>%[5]s</hostname>
      <port>%[6]d</port>
      <socketType>STARTTLS</socketType>
      <authentication>password-cleartext</authentication>
      <username>%[2]s</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>
`, xmlText(domain), xmlText(mc.Address), xmlText(mc.IMAPHost), mc.IMAPPort, xmlText(mc.SMTPHost), mc.SMTPPort)
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
		"UUID": uuid4(), "UUID2": uuid4(),
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
`, mc.Address, mc.IMAPHost, mc.IMAPPort, mc.SMTPHost, mc.SMTPPort, mc.Username, mc.Password, mc.TLSFingerprint)
}
