package submission_test

import (
	"crypto/tls"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/provider/submission"
)

func TestSubmitLocal(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.addUser("alice", true)
	w.addUser("bob", true)
	w.addUser("carol", true)
	// A forged Authentication-Results field claiming our name goes.
	msg := "Authentication-Results: " + hostname + "; dkim=pass header.d=bank.example\r\n" + message("alice", "bob@"+domain, "local")
	if err := w.submit("alice", "alice@"+domain, []string{"bob@" + domain, "Carol+tag@EXAMPLE.test"}, msg); err != nil {
		t.Fatal(err)
	}
	for _, login := range []string{"bob", "carol"} {
		got := w.incoming(login)
		if len(got) != 1 {
			t.Fatalf("%s has %d messages, want 1", login, len(got))
		}
		m := got[0]
		for _, want := range []string{
			"Authentication-Results: " + hostname + "; auth=pass smtp.auth=alice@" + domain + "\r\n",
			"Received: by " + hostname + " (leapd) with ESMTPSA\r\n\t(authenticated as alice@" + domain + ")",
			"Subject: local\r\n",
			"Hello, this is local.\r\n",
		} {
			if !strings.Contains(m, want) {
				t.Errorf("%s's copy lacks %q:\n%s", login, want, m)
			}
		}
		if strings.Contains(m, "bank.example") {
			t.Errorf("%s's copy kept the forged Authentication-Results:\n%s", login, m)
		}
	}
	if q := w.queue(); len(q) != 0 {
		t.Fatalf("local mail went to the outbound queue: %d items", len(q))
	}
}

func TestSubmitImplicitTLS(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.addUser("alice", true)
	w.addUser("bob", true)
	c, err := smtp.DialTLS(w.tlsAddr, w.clientTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice@"+domain, w.tokens["alice"])); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("alice@"+domain, []string{"bob@" + domain}, strings.NewReader(message("alice", "bob@"+domain, "implicit"))); err != nil {
		t.Fatal(err)
	}
	if got := w.incoming("bob"); len(got) != 1 || !strings.Contains(got[0], "Subject: implicit") {
		t.Fatalf("bob got %q", got)
	}
}

func TestSubmitLocalRecipientRefused(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.addUser("alice", true)
	w.addUser("nokey", false)
	c, err := w.dial("alice", w.tokens["alice"])
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("alice@"+domain, nil); err != nil {
		t.Fatal(err)
	}
	wantReply(t, c.Rcpt("nobody@"+domain, nil), 550, "5.1.1")
	wantReply(t, c.Rcpt("nokey@"+domain, nil), 450, "4.7.1")
	wantReply(t, c.Rcpt("x@[192.0.2.1]", nil), 550, "5.1.2")
}

func TestAuth(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.addUser("alice", true)
	w.addUser("bob", true)

	t.Run("wrong token", func(t *testing.T) {
		_, err := w.dial("alice", "00"+w.tokens["alice"][2:])
		wantReply(t, err, 535, "5.7.8")
	})
	t.Run("another user's token", func(t *testing.T) {
		_, err := w.dial("alice", w.tokens["bob"])
		wantReply(t, err, 535, "5.7.8")
	})
	t.Run("expired token", func(t *testing.T) {
		_, err := w.dial("alice", w.newSession("alice", -time.Minute))
		wantReply(t, err, 535, "5.7.8")
	})
	t.Run("other domain", func(t *testing.T) {
		_, err := w.dial("alice@other.example", w.tokens["alice"])
		wantReply(t, err, 535, "5.7.8")
	})
	t.Run("login@domain", func(t *testing.T) {
		if _, err := w.dial("Alice@Example.Test", w.tokens["alice"]); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no auth", func(t *testing.T) {
		c, _ := w.dial("", "")
		wantReply(t, c.Mail("alice@"+domain, nil), 530, "5.7.0")
	})
	t.Run("before STARTTLS", func(t *testing.T) {
		conn, err := net.Dial("tcp", w.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		tp := textproto.NewConn(conn)
		expect := func(code int) string {
			t.Helper()
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, msg, err := tp.ReadResponse(code)
			if err != nil {
				t.Fatalf("want %d, got %d %q: %v", code, got, msg, err)
			}
			return msg
		}
		expect(220)
		_ = tp.PrintfLine("EHLO client.example")
		ehlo := expect(250)
		if strings.Contains(ehlo, "AUTH") || !strings.Contains(ehlo, "STARTTLS") {
			t.Fatalf("EHLO before TLS offers %q", ehlo)
		}
		// PLAIN with alice's real token, in the clear: refused.
		ir := sasl.NewPlainClient("", "alice", w.tokens["alice"])
		_, resp, _ := ir.Start()
		_ = tp.PrintfLine("AUTH PLAIN %s", b64(resp))
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		code, msg, _ := tp.ReadResponse(235)
		if code == 235 || code < 500 {
			t.Fatalf("AUTH before STARTTLS got %d %q", code, msg)
		}
		_ = tp.PrintfLine("MAIL FROM:<alice@%s>", domain)
		expect(530)
	})
}

func TestSender(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.addUser("alice", true)
	w.addUser("bob", true)

	t.Run("MAIL FROM someone else", func(t *testing.T) {
		c, err := w.dial("alice", w.tokens["alice"])
		if err != nil {
			t.Fatal(err)
		}
		wantReply(t, c.Mail("bob@"+domain, nil), 553, "5.7.1")
		wantReply(t, c.Mail("alice@elsewhere.example", nil), 553, "5.7.1")
		wantReply(t, c.Mail("", nil), 553, "5.7.1")
		if err := c.Mail("ALICE@"+strings.ToUpper(domain), nil); err != nil {
			t.Fatalf("MAIL FROM in upper case: %v", err)
		}
	})
	t.Run("From field someone else", func(t *testing.T) {
		msg := strings.Replace(message("alice", "bob@"+domain, "forged"), "alice@", "bob@", 1)
		wantReply(t, w.submit("alice", "alice@"+domain, []string{"bob@" + domain}, msg), 550, "5.7.1")
		if got := w.incoming("bob"); len(got) != 0 {
			t.Fatalf("bob got %d messages", len(got))
		}
	})
	t.Run("no From field", func(t *testing.T) {
		wantReply(t, w.submit("alice", "alice@"+domain, []string{"bob@" + domain}, "Subject: x\r\n\r\nbody\r\n"), 550, "5.6.0")
	})
}

func TestTooBig(t *testing.T) {
	w := newWorld(t, worldOptions{cfg: submission.Config{MaxSize: 2048}})
	w.addUser("alice", true)
	w.addUser("bob", true)
	msg := message("alice", "bob@"+domain, "big") + strings.Repeat("x", 2048) + "\r\n"
	wantReply(t, w.submit("alice", "alice@"+domain, []string{"bob@" + domain, "carol@" + remote}, msg), 552, "5.3.4")
	if got := w.incoming("bob"); len(got) != 0 {
		t.Fatal("a refused message was delivered")
	}
	if q := w.queue(); len(q) != 0 {
		t.Fatal("a refused message was queued")
	}
}

// TestServerTLSConfig: the listeners use the provider's certificate, so
// bitmaskd pinning the provider CA can verify them.
func TestServerTLSConfig(t *testing.T) {
	w := newWorld(t, worldOptions{})
	conn, err := tls.Dial("tcp", w.tlsAddr, w.clientTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := conn.ConnectionState().PeerCertificates[0]; got.CheckSignatureFrom(w.p.TLSFiles().CACert) != nil {
		t.Fatal("implicit TLS does not serve the provider's certificate")
	}
}
