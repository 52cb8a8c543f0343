package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/bitmask-go/bitmask/internal/provider"
)

// parseZone parses leapd dns's output with miekg/dns's zone parser:
// every line must parse.
func parseZone(t *testing.T, out string) map[string][]dns.RR {
	t.Helper()
	rrs := map[string][]dns.RR{}
	zp := dns.NewZoneParser(strings.NewReader(out), "", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		if h.Ttl != dnsTTL || h.Class != dns.ClassINET {
			t.Errorf("record %s", rr)
		}
		k := h.Name + " " + dns.TypeToString[h.Rrtype]
		rrs[k] = append(rrs[k], rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("zone does not parse: %v\n%s", err, out)
	}
	return rrs
}

func one(t *testing.T, rrs map[string][]dns.RR, key string) dns.RR {
	t.Helper()
	if len(rrs[key]) != 1 {
		t.Fatalf("%d records %s, want 1", len(rrs[key]), key)
	}
	return rrs[key][0]
}

func txt(t *testing.T, rrs map[string][]dns.RR, name string) string {
	t.Helper()
	return strings.Join(one(t, rrs, name+" TXT").(*dns.TXT).Txt, "")
}

// leapd dns prints, for a running leapd's data directory, records that
// parse and say what that leapd does: the DKIM keys it signs with, the
// MTA-STS policy it serves (the id is that text's), and the TLSA record
// of the certificate its MX presents.
func TestDNSRecordsMatchTheRunningProvider(t *testing.T) {
	dir := t.TempDir()
	args := []string{
		"-data", dir, "-domain", "Example.ORG", "-hostname", "mail.example.org",
		"-listen", "127.0.0.1:0", "-mx", "127.0.0.1:0", "-submission", "127.0.0.1:0",
		"-api-url", "https://api.example.org", "-mta-sts-mode", "testing",
	}
	fc, err := parseConfig(args)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := providerConfig(fc, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p, err := provider.Start(context.Background(), pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })

	var out bytes.Buffer
	if err := run(context.Background(), append([]string{"dns"}, args...), &out); err != nil {
		t.Fatal(err)
	}
	rrs := parseZone(t, out.String())

	if mx := one(t, rrs, "example.org. MX").(*dns.MX); mx.Mx != "mail.example.org." || mx.Preference != 10 {
		t.Errorf("MX %s", mx)
	}
	if v := txt(t, rrs, "example.org."); v != "v=spf1 mx -all" {
		t.Errorf("SPF %q", v)
	}
	recs, err := p.Submission.DKIMRecords()
	if err != nil || len(recs) != 2 {
		t.Fatalf("DKIM records %v %v", recs, err)
	}
	for _, r := range recs {
		if got := txt(t, rrs, r.Name+"."); got != r.Value {
			t.Errorf("DKIM %s: printed %q, signing key's %q", r.Name, got, r.Value)
		}
	}
	if v := txt(t, rrs, "_dmarc.example.org."); v != "v=DMARC1; p=reject; rua=mailto:postmaster@example.org" {
		t.Errorf("DMARC %q", v)
	}
	if v := txt(t, rrs, "_smtp._tls.example.org."); v != "v=TLSRPTv1; rua=mailto:postmaster@example.org" {
		t.Errorf("TLSRPT %q", v)
	}

	// The policy the running leapd serves, and its id.
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, p.Addrs.API)
		},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	resp, err := hc.Get("https://mta-sts.example.org/.well-known/mta-sts.txt")
	if err != nil {
		t.Fatal(err)
	}
	policy, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(policy), "mode: testing\r\nmx: mail.example.org\r\n") {
		t.Fatalf("policy %d %q", resp.StatusCode, policy)
	}
	sum := sha256.Sum256(policy)
	if v := txt(t, rrs, "_mta-sts.example.org."); v != "v=STSv1; id="+hex.EncodeToString(sum[:16]) {
		t.Errorf("MTA-STS record %q for the policy served:\n%s", v, policy)
	}

	// The certificate the MX presents after STARTTLS.
	c, err := smtp.Dial(p.Addrs.MX)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartTLS(&tls.Config{ServerName: "mail.example.org", InsecureSkipVerify: true}); err != nil {
		t.Fatal(err)
	}
	cs, _ := c.TLSConnectionState()
	spki := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
	tlsa := one(t, rrs, "_25._tcp.mail.example.org. TLSA").(*dns.TLSA)
	if tlsa.Usage != 3 || tlsa.Selector != 1 || tlsa.MatchingType != 1 || tlsa.Certificate != hex.EncodeToString(spki[:]) {
		t.Errorf("TLSA %s, the MX's key hashes to %x", tlsa, spki)
	}

	for _, n := range []string{"mta-sts", "openpgpkey", "autoconfig"} {
		if cn := one(t, rrs, n+".example.org. CNAME").(*dns.CNAME); cn.Target != "api.example.org." {
			t.Errorf("%s: %s", n, cn)
		}
	}
	for _, s := range []string{"_imap", "_imaps", "_submission", "_submissions"} {
		if srv := one(t, rrs, s+"._tcp.example.org. SRV").(*dns.SRV); srv.Target != "." {
			t.Errorf("%s", srv)
		}
	}
}

// Before leapd ever ran, leapd dns makes the DKIM keys leapd will use
// and says the TLSA record needs a first start; a bad mode or report
// address is an error and prints nothing.
func TestDNSBeforeFirstStartAndBadInput(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"dns", "-data", dir, "-domain", "example.org"}, &out); err != nil {
		t.Fatal(err)
	}
	rrs := parseZone(t, out.String())
	if len(rrs["_25._tcp.example.org. TLSA"]) != 0 || !strings.Contains(out.String(), "start leapd once") {
		t.Errorf("TLSA before a certificate exists:\n%s", out.String())
	}
	for _, f := range []string{"dkim.key", "dkim-rsa.key"} {
		if _, err := os.Stat(dir + "/" + f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	for _, bad := range [][]string{{"-mta-sts-mode", "strict"}, {"-reports", "a@b; rua=mailto:x@y"}, {"-reports", "nobody"}} {
		out.Reset()
		err := run(context.Background(), append([]string{"dns", "-data", dir, "-domain", "example.org"}, bad...), &out)
		if err == nil || out.Len() != 0 {
			t.Errorf("%q: %v\n%s", bad, err, out.String())
		}
	}
}

// The example config names only keys leapd knows, and leapd dns prints
// its records: the MX host is the public name, and the MTA-STS,
// WKD and autoconfig names point at it.
func TestDNSExampleConfig(t *testing.T) {
	b, err := os.ReadFile("../../configs/leapd.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var fc fileConfig
	if err := dec.Decode(&fc); err != nil {
		t.Fatalf("configs/leapd.json: %v", err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"dns", "-config", "../../configs/leapd.json", "-data", t.TempDir()}, &out); err != nil {
		t.Fatal(err)
	}
	rrs := parseZone(t, out.String())
	if mx := one(t, rrs, "example.org. MX").(*dns.MX); mx.Mx != "mail.example.org." {
		t.Errorf("MX %s", mx)
	}
	if cn := one(t, rrs, "mta-sts.example.org. CNAME").(*dns.CNAME); cn.Target != "mail.example.org." {
		t.Errorf("%s", cn)
	}
	if !strings.Contains(out.String(), "No ACME certificate for mail.example.org yet") {
		t.Errorf("no word on the missing certificate:\n%s", out.String())
	}
}
