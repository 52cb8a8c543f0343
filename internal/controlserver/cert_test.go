package controlserver_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"net"
	"net/smtp"
	"strings"
	"testing"

	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// GET /v1/cert is the certificate IMAP and SMTP offer: a client that
// trusts the exported file (and nothing else) completes STARTTLS on
// both. Status and GET /v1/cert?format=pem carry the same certificate,
// and a restart of the daemon on its data directory keeps it.
func TestCertIsWhatIMAPAndSMTPOffer(t *testing.T) {
	dir := t.TempDir()
	r := testenv.StartDaemon(t, testenv.DaemonOptions{Dir: dir})
	c := controlapi.NewLocalClient(r.ControlAddr, dir)
	ctx := context.Background()
	cert, err := c.Cert(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode([]byte(cert.PEM))
	if b == nil || b.Type != "CERTIFICATE" || strings.Contains(cert.PEM, "PRIVATE") {
		t.Fatalf("PEM: %q", cert.PEM)
	}
	if sum := sha256.Sum256(b.Bytes); hex.EncodeToString(sum[:]) != cert.SHA256 {
		t.Fatalf("sha256 %s is not the PEM's", cert.SHA256)
	}
	tok, err := controlapi.ReadToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := do(t, "GET", "http://"+r.ControlAddr+"/v1/cert?format=pem", "", "Bearer "+tok, ""); status != 200 || body != strings.TrimSpace(cert.PEM) {
		t.Fatalf("format=pem: %d\n%s", status, body)
	}
	st, err := c.Status(ctx)
	if err != nil || st.TLSFingerprint != cert.SHA256 {
		t.Fatalf("status fingerprint %q (%v), want %s", st.TLSFingerprint, err, cert.SHA256)
	}

	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(cert.PEM)) {
		t.Fatal("the PEM does not load as a trust anchor")
	}
	trusting := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	for _, name := range []string{"localhost", "127.0.0.1"} {
		cfg := trusting.Clone()
		cfg.ServerName = name
		if got := imapSTARTTLS(t, r.IMAPAddr, cfg); got != cert.SHA256 {
			t.Errorf("IMAP as %s offers %s, want %s", name, got, cert.SHA256)
		}
	}
	sc, err := smtp.Dial(r.SMTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.StartTLS(trusting.Clone()); err != nil {
		t.Fatalf("SMTP STARTTLS trusting the exported certificate: %v", err)
	}
	st2, _ := sc.TLSConnectionState()
	if sum := sha256.Sum256(st2.PeerCertificates[0].Raw); hex.EncodeToString(sum[:]) != cert.SHA256 {
		t.Errorf("SMTP offers another certificate")
	}
	sc.Close()

	r.Stop()
	r.Daemon.Close()
	again := testenv.StartDaemon(t, testenv.DaemonOptions{Dir: dir})
	if fp := again.LocalServices().TLSFingerprint; fp != cert.SHA256 {
		t.Fatalf("after a restart the fingerprint is %s, was %s", fp, cert.SHA256)
	}
}

// imapSTARTTLS connects to IMAP, upgrades with cfg and returns the
// SHA-256 of the certificate the server offered.
func imapSTARTTLS(t *testing.T, addr string, cfg *tls.Config) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "* OK") {
		t.Fatalf("greeting %q %v", line, err)
	}
	if _, err := conn.Write([]byte("a STARTTLS\r\n")); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "a ") {
			if !strings.HasPrefix(line, "a OK") {
				t.Fatalf("STARTTLS: %q", line)
			}
			break
		}
	}
	tc := tls.Client(conn, cfg)
	if err := tc.Handshake(); err != nil {
		t.Fatalf("IMAP STARTTLS trusting the exported certificate: %v", err)
	}
	sum := sha256.Sum256(tc.ConnectionState().PeerCertificates[0].Raw)
	return hex.EncodeToString(sum[:])
}
