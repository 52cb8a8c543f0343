package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/bitmask-go/bitmask/internal/provider"
	"github.com/bitmask-go/bitmask/internal/provider/submission"
)

// dnsTTL is the TTL of every record printed.
const dnsTTL = 3600

// printDNS is `leapd dns`: every DNS record the domain needs, in zone
// file syntax with a comment on each, made from the same flags and
// config file as leapd and from what is in the data directory (the DKIM
// keys, made there if missing, as leapd would at its start; the MX's
// certificate). Names are absolute, so the output parses on its own.
func printDNS(args []string, stdout io.Writer) error {
	fc, err := parseConfig(args)
	if err != nil {
		return err
	}
	d := fc.Domain
	if err := os.MkdirAll(fc.Data, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	keys, err := submission.LoadOrCreateDKIMKeys(fc.Data, "")
	if err != nil {
		return err
	}
	_, stsID, err := mtaSTSPolicy(fc).Text(d)
	if err != nil {
		return err
	}
	reports := fc.Reports
	if reports == "" {
		reports = "postmaster@" + d
	}
	if strings.ContainsAny(reports, ";,!\" \t\r\n") || !strings.Contains(reports, "@") {
		return fmt.Errorf("reports %q is not a plain mail address", reports)
	}
	mx := mxHost(fc)
	w := &zoneWriter{w: stdout}
	w.comment("DNS records for %s, printed by leapd dns. Names are absolute; TTL %d s.", d, dnsTTL)
	if fc.PublicName == "" {
		w.comment("No -public-name: the certificates are the provider's own CA's. DANE (TLSA) works with them;")
		w.comment("MTA-STS, WKD and autoconfig need a certificate from a public CA (-public-name takes one by ACME).")
	}

	w.section("Mail for the domain goes to leapd's MX (-mx, port 25).")
	w.rr(d, "MX", "10 "+fqdn(mx))
	w.hostAddrs(mx, fc.MXListen, "the MX host")

	w.section("SPF (RFC 7208): only the MX host's addresses send the domain's mail (the relay runs beside the MX).")
	w.txt(d, "v=spf1 mx -all")

	for _, k := range keys {
		r, err := k.Record(d)
		if err != nil {
			return err
		}
		what := "ed25519 (RFC 8463)"
		if strings.Contains(r.Value, "k=rsa") {
			what = "RSA-2048, for receivers that ignore ed25519"
		}
		w.section("DKIM (RFC 6376), selector %s: %s; key in the data directory.", k.Selector, what)
		w.txt(r.Name, r.Value)
	}

	w.section("DMARC (RFC 7489): mail that fails both SPF and DKIM alignment is refused; aggregate reports to %s.", reports)
	w.comment("Start with p=none while you check the reports, if other systems send mail for the domain.")
	w.txt("_dmarc."+d, "v=DMARC1; p=reject; rua=mailto:"+reports)

	https := httpsHost(fc)
	w.section("MTA-STS (RFC 8461): mode %s, mx %s. The id changes whenever the policy does (run leapd dns again then).", mtaSTSMode(fc), mx)
	w.txt("_mta-sts."+d, "v=STSv1; id="+stsID)
	w.comment("The policy is served by leapd at https://mta-sts.%s/.well-known/mta-sts.txt (HTTPS on port 443).", d)
	if _, port, err := net.SplitHostPort(fc.Listen); err == nil && port != "443" {
		w.comment("leapd's HTTPS listens on port %s (-listen): the names below need it on port 443.", port)
	}
	w.alias("mta-sts."+d, https)

	w.section("TLS reporting (RFC 8460): senders' reports on TLS to the MX go to %s.", reports)
	w.txt("_smtp._tls."+d, "v=TLSRPTv1; rua=mailto:"+reports)

	w.section("DANE (RFC 7672): TLSA 3 1 1 (the MX certificate's public key, SHA-256) for SMTP to the MX; needs a DNSSEC-signed zone.")
	certs, note := mxCerts(fc)
	if note != "" {
		w.comment("%s", note)
	}
	for _, c := range certs {
		sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
		w.rr("_25._tcp."+mx, "TLSA", "3 1 1 "+hex.EncodeToString(sum[:]))
	}

	w.section("WKD (draft-koch-openpgp-webkey-service), advanced method: the users' public keys, served by leapd's HTTPS.")
	w.alias("openpgpkey."+d, https)
	w.section("Mail client autoconfig: Thunderbird finds bitmaskd's local IMAP and SMTP for an address of the domain.")
	w.alias("autoconfig."+d, https)

	w.section("RFC 6186/8314 service records: mail clients talk to bitmaskd on the user's own computer, never to the")
	w.comment("provider (its submission service is for bitmaskd, which finds it in provider.json), so none is offered here.")
	for _, s := range []string{"_imap._tcp.", "_imaps._tcp.", "_submission._tcp.", "_submissions._tcp."} {
		w.rr(s+d, "SRV", "0 0 0 .")
	}
	return w.err
}

// mtaSTSMode is the mode as served.
func mtaSTSMode(fc fileConfig) string {
	if fc.MTASTSMode == "" {
		return "enforce"
	}
	return fc.MTASTSMode
}

// httpsHost is where leapd's HTTPS listener is found by name: the
// public name, else the API URL's host.
func httpsHost(fc fileConfig) string {
	if fc.PublicName != "" {
		return fc.PublicName
	}
	if u, err := url.Parse(fc.APIURL); err == nil && u.Hostname() != "" {
		return strings.ToLower(u.Hostname())
	}
	return fc.Domain
}

// mxCerts are the certificates the MX serves, or a note saying why
// there is none yet: with a public name, the ACME certificates kept in
// DATA/acme (ECDSA, and RSA for clients that offer only RSA); else the
// provider's server.crt.
func mxCerts(fc fileConfig) ([]*x509.Certificate, string) {
	if fc.PublicName != "" {
		dir := filepath.Join(fc.Data, provider.ACMECacheDir)
		var certs []*x509.Certificate
		for _, f := range []string{fc.PublicName, fc.PublicName + "+rsa"} {
			c, err := firstCert(filepath.Join(dir, f))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Sprintf("The ACME certificate %s: %v", f, err)
			}
			certs = append(certs, c)
		}
		if len(certs) == 0 {
			return nil, "No ACME certificate for " + fc.PublicName + " yet: start leapd, connect once (e.g. to https://" + fc.PublicName + "/), and run leapd dns again."
		}
		return certs, "autocert renews the certificate with the same key, so this record stays valid; if it ever changes, publish both."
	}
	c, err := firstCert(filepath.Join(fc.Data, "server.crt"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, "No certificate in the data directory yet: start leapd once, then run leapd dns again."
	}
	if err != nil {
		return nil, "The certificate server.crt: " + err.Error()
	}
	return []*x509.Certificate{c}, "leapd issues server.crt again, with a new key, 30 days before it expires (" + c.NotAfter.Format("2006-01-02") + "): publish the new record beside this one then."
}

// firstCert is the first CERTIFICATE block of a PEM file (autocert's
// cache holds the key first, then the chain).
func firstCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no certificate in it")
		}
		if blk.Type == "CERTIFICATE" {
			return x509.ParseCertificate(blk.Bytes)
		}
	}
}

// zoneWriter writes records and comments, keeping the first error.
type zoneWriter struct {
	w   io.Writer
	err error
}

func (z *zoneWriter) printf(format string, a ...any) {
	if z.err == nil {
		_, z.err = fmt.Fprintf(z.w, format, a...)
	}
}

func (z *zoneWriter) comment(format string, a ...any) {
	z.printf("; "+format+"\n", a...)
}

// section starts a group of records with a blank line and a comment.
func (z *zoneWriter) section(format string, a ...any) {
	z.printf("\n")
	z.comment(format, a...)
}

func (z *zoneWriter) rr(name, typ, rdata string) {
	z.printf("%s\t%d\tIN\t%s\t%s\n", fqdn(name), dnsTTL, typ, rdata)
}

// txt writes a TXT record, its value in quoted strings of at most 255
// bytes (an RSA key is longer than one).
func (z *zoneWriter) txt(name, value string) {
	var parts []string
	for len(value) > 255 {
		parts = append(parts, quoteTXT(value[:255]))
		value = value[255:]
	}
	parts = append(parts, quoteTXT(value))
	z.rr(name, "TXT", strings.Join(parts, " "))
}

func quoteTXT(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// alias points name at target: a CNAME to a host name, A or AAAA for an
// address (then the address must be the public one).
func (z *zoneWriter) alias(name, target string) {
	if name == target {
		return
	}
	if ip := net.ParseIP(target); ip != nil {
		z.addr(name, ip)
		return
	}
	z.rr(name, "CNAME", fqdn(target))
}

func (z *zoneWriter) addr(name string, ip net.IP) {
	if ip.IsLoopback() || ip.IsUnspecified() || ip.IsPrivate() || ip.IsLinkLocalUnicast() {
		z.comment("%s is not a public address: replace it with this machine's public one.", ip)
	}
	if ip.To4() != nil {
		z.rr(name, "A", ip.String())
	} else {
		z.rr(name, "AAAA", ip.String())
	}
}

// hostAddrs writes host's address records when leapd listens on one
// public address (listen); else says what to do.
func (z *zoneWriter) hostAddrs(host, listen, what string) {
	h, _, err := net.SplitHostPort(listen)
	ip := net.ParseIP(h)
	if err != nil || ip == nil || ip.IsUnspecified() || ip.IsLoopback() || ip.IsPrivate() {
		z.comment("%s (%s) needs A/AAAA records with this machine's public addresses (leapd listens on %q).", what, host, listen)
		return
	}
	z.addr(host, ip)
}

func fqdn(name string) string { return strings.TrimSuffix(name, ".") + "." }
