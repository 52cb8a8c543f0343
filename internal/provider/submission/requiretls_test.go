package submission_test

import (
	"io"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/provider/submission"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// submitRequireTLS sends msg as login with MAIL FROM ... REQUIRETLS.
func (w *world) submitRequireTLS(login string, to []string, msg string) {
	w.t.Helper()
	c, err := w.dial(login, w.tokens[login])
	if err != nil {
		w.t.Fatal(err)
	}
	if ok, _ := c.Extension("REQUIRETLS"); !ok {
		w.t.Fatal("submission does not advertise REQUIRETLS inside TLS")
	}
	if err := c.Mail(login+"@"+domain, &smtp.MailOptions{RequireTLS: true}); err != nil {
		w.t.Fatal(err)
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			w.t.Fatal(err)
		}
	}
	wc, err := c.Data()
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := io.WriteString(wc, msg); err != nil {
		w.t.Fatal(err)
	}
	if err := wc.Close(); err != nil {
		w.t.Fatal(err)
	}
	_ = c.Quit()
}

// TestRequireTLSSubmission: submission advertises REQUIRETLS only inside
// TLS and keeps the flag: on the queued item, and in the Received field
// of a local recipient's copy.
func TestRequireTLSSubmission(t *testing.T) {
	// The remote MX is DANE-protected but down: the item stays queued.
	ln := listen(t, "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	w := newWorld(t, worldOptions{cfg: submission.Config{
		Port: port, DNSSECResolverAddr: secureZone(t, tlsa311(leaf(t, nil, remoteMX))).addr,
	}})
	w.addUser("alice", true)
	w.addUser("bob", true)

	conn, err := net.Dial("tcp", w.addr)
	if err != nil {
		t.Fatal(err)
	}
	plain := smtp.NewClient(conn)
	defer plain.Close()
	if err := plain.Hello("client.example"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := plain.Extension("REQUIRETLS"); ok {
		t.Fatal("REQUIRETLS advertised outside TLS")
	}

	w.submitRequireTLS("alice", []string{"bob@" + domain, "dave@" + remote}, message("alice", "bob@"+domain, "requiretls"))
	if got := w.incoming("bob"); len(got) != 1 || !strings.Contains(got[0], "(REQUIRETLS)") {
		t.Fatalf("bob's copy does not record REQUIRETLS: %q", got)
	}
	q := w.queue()
	if len(q) != 1 || !q[0].RequireTLS {
		t.Fatalf("queued item does not keep REQUIRETLS: %+v", q)
	}
}

// TestRequireTLSRelay: a REQUIRETLS message goes only over TLS a DANE or
// MTA-STS policy authenticates, to a server that advertises REQUIRETLS,
// with the flag passed on; otherwise it is returned at once with 5.7.30.
func TestRequireTLSRelay(t *testing.T) {
	ca := newCA(t)
	cert := leaf(t, nil, remoteMX)
	withRequireTLS := func(s *smtp.Server) { s.EnableREQUIRETLS = true }
	for _, tc := range []struct {
		name      string
		remoteRTL bool   // the remote advertises REQUIRETLS
		policy    string // "dane", "mta-sts" or "" (opportunistic)
		delivered bool
	}{
		{name: "DANE, next hop has REQUIRETLS", remoteRTL: true, policy: "dane", delivered: true},
		{name: "MTA-STS enforce, next hop has REQUIRETLS", remoteRTL: true, policy: "mta-sts", delivered: true},
		{name: "DANE, next hop without REQUIRETLS", policy: "dane"},
		{name: "no policy (opportunistic TLS)", remoteRTL: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cert
			if tc.policy == "mta-sts" {
				c = leaf(t, ca, remoteMX)
			}
			var configure func(*smtp.Server)
			if tc.remoteRTL {
				configure = withRequireTLS
			}
			r := startRemoteWith(t, "127.0.0.1:0", c, configure)
			o := worldOptions{cfg: submission.Config{Port: r.port}}
			switch tc.policy {
			case "dane":
				o.cfg.DNSSECResolverAddr = secureZone(t, tlsa311(cert)).addr
			case "mta-sts":
				o.zones = stsZones()
				o.cfg.MTASTSClient, o.cfg.RootCAs = stsServer(t, ca, enforce), ca.pool
			}
			w := newWorld(t, o)
			w.addUser("alice", true)
			w.submitRequireTLS("alice", []string{"dave@" + remote}, message("alice", "dave@"+remote, "rtls"))
			if tc.delivered {
				testenv.Eventually(t, wait, "delivery", func() bool { return len(r.received()) == 1 })
				got := r.received()[0]
				if !got.tls || !got.requireTLS {
					t.Fatalf("delivered with TLS %v, REQUIRETLS %v; want both", got.tls, got.requireTLS)
				}
				if p, _ := w.deliveredWith(t); p != tc.policy {
					t.Errorf("delivered under policy %q, want %q", p, tc.policy)
				}
				return
			}
			testenv.Eventually(t, wait, "a bounce", func() bool { return len(w.incoming("alice")) == 1 })
			testenv.Eventually(t, wait, "an empty queue", func() bool { return len(w.queue()) == 0 })
			if n := r.mailCount(); n != 0 {
				t.Fatalf("MAIL sent %d times", n)
			}
			dsn := w.incoming("alice")[0]
			for _, want := range []string{"Final-Recipient: rfc822; dave@" + remote + "\r\n", "Action: failed\r\n", "Status: 5.7.30\r\n", "REQUIRETLS"} {
				if !strings.Contains(dsn, want) {
					t.Errorf("DSN lacks %q:\n%s", want, dsn)
				}
			}
		})
	}
}
