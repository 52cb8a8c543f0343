package mx_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// TestRequireTLS: the MX advertises REQUIRETLS only inside TLS, refuses
// MAIL FROM ... REQUIRETLS in plaintext (530 5.7.10), takes it inside
// TLS, and records it in the Received field of the stored copy.
func TestRequireTLS(t *testing.T) {
	w := newWorld(t, worldOptions{tls: true})
	w.addUser("alice", true)

	plain := w.dial()
	if ok, _ := plain.Extension("REQUIRETLS"); ok {
		t.Fatal("REQUIRETLS advertised outside TLS")
	}
	r := dialRaw(t, "tcp", w.addr)
	r.cmd(250, "EHLO client.example")
	r.cmd(530, "MAIL FROM:<x@pass.example> REQUIRETLS")

	pool := x509.NewCertPool()
	pool.AddCert(w.p.TLSFiles().CACert)
	c, err := smtp.DialStartTLS(w.addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("REQUIRETLS"); !ok {
		t.Fatal("REQUIRETLS not advertised inside TLS")
	}
	if err := c.Mail("x@pass.example", &smtp.MailOptions{RequireTLS: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("alice@example.test", nil); err != nil {
		t.Fatal(err)
	}
	wc, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(wc, plainMsg); err != nil {
		t.Fatal(err)
	}
	if err := wc.Close(); err != nil {
		t.Fatal(err)
	}
	_, received, _ := ours(t, w.only("alice"))
	if !strings.Contains(received, "(REQUIRETLS)") {
		t.Errorf("Received does not record REQUIRETLS:\n%s", received)
	}

	// Without the parameter, the Received field says nothing of it.
	if err := sendOn(c, "x@pass.example", []string{"alice@example.test"}, plainMsg); err != nil {
		t.Fatal(err)
	}
	items := w.items("alice")
	if got := decrypt(t, items[len(items)-1], w.keys["alice"]); strings.Contains(got, "REQUIRETLS") {
		t.Errorf("a message without REQUIRETLS is marked:\n%s", got)
	}
}
