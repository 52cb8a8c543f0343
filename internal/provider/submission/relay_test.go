package submission_test

import (
	"context"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/foxcpp/go-mockdns"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/provider/submission"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

const wait = 10 * time.Second

func TestRemoteDelivery(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tls     bool
		wantTLS bool
	}{
		{"STARTTLS offered", true, true},
		{"no STARTTLS", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r *remoteServer
			if tc.tls {
				// Any certificate will do for opportunistic TLS.
				r = startRemote(t, "127.0.0.1:0", leaf(t, nil, "whatever.example"))
			} else {
				r = startRemote(t, "127.0.0.1:0", nil)
			}
			w := newWorld(t, worldOptions{cfg: submission.Config{Port: r.port}})
			w.addUser("alice", true)
			w.addUser("bob", true)
			to := []string{"dave@" + remote, "bob@" + domain, "Erin@Remote.Test"}
			msg := message("alice", "dave@"+remote, "remote")
			if err := w.submit("alice", "alice@"+domain, to, msg); err != nil {
				t.Fatal(err)
			}
			// The local recipient has it at once.
			if got := w.incoming("bob"); len(got) != 1 {
				t.Fatalf("bob has %d messages", len(got))
			}
			testenv.Eventually(t, wait, "remote delivery", func() bool { return len(r.received()) > 0 })
			testenv.Eventually(t, wait, "an empty queue", func() bool { return len(w.queue()) == 0 })
			got := r.received()
			if len(got) != 1 {
				t.Fatalf("remote got %d messages, want 1", len(got))
			}
			m := got[0]
			if m.from != "alice@"+domain || len(m.to) != 2 || m.to[0] != "dave@"+remote || m.to[1] != "Erin@remote.test" {
				t.Errorf("envelope %q -> %q", m.from, m.to)
			}
			if m.tls != tc.wantTLS {
				t.Errorf("TLS used: %v, want %v", m.tls, tc.wantTLS)
			}
			if p, v := w.deliveredWith(t); p != "opportunistic" || (v == "none") == tc.wantTLS {
				t.Errorf("delivered under policy %q with TLS %q", p, v)
			}
			if m.helo != hostname {
				t.Errorf("EHLO %q, want %q", m.helo, hostname)
			}
			if err := w.dkimVerify(m.data); err != nil {
				t.Errorf("DKIM: %v\n%s", err, m.data)
			}
			pm, err := mail.ReadMessage(strings.NewReader(string(m.data)))
			if err != nil {
				t.Fatal(err)
			}
			if rcv := pm.Header.Get("Received"); !strings.Contains(rcv, "by "+hostname+" (leapd) with ESMTPSA") || strings.Contains(rcv, "127.0.0.1") {
				t.Errorf("Received: %q", rcv)
			}
			if !strings.HasSuffix(string(m.data), "Hello, this is remote.\r\n") {
				t.Errorf("body changed:\n%s", m.data)
			}
		})
	}
}

func TestRemoteDownThenUp(t *testing.T) {
	// A port nobody listens on, until the remote MX comes up there.
	ln := listen(t, "127.0.0.1:0")
	addr := ln.Addr().String()
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	w := newWorld(t, worldOptions{cfg: submission.Config{Port: port}})
	w.addUser("alice", true)
	if err := w.submit("alice", "alice@"+domain, []string{"dave@" + remote}, message("alice", "dave@"+remote, "later")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, "retries", func() bool {
		q := w.queue()
		return len(q) == 1 && q[0].Attempts >= 3
	})
	it := w.queue()[0]
	if r := it.Recipients[0]; r.State != "" || !strings.HasPrefix(r.Status, "4.") {
		t.Fatalf("recipient after failed attempts: %+v", r)
	}
	r := startRemote(t, addr, leaf(t, nil, remoteMX))
	testenv.Eventually(t, wait, "delivery", func() bool { return len(r.received()) == 1 })
	testenv.Eventually(t, wait, "an empty queue", func() bool { return len(w.queue()) == 0 })
	// Stop the queue worker: it returns once every delivery it began has
	// ended, so with the queue empty nothing is in flight and the count
	// is final.
	w.stop()
	if n := len(r.received()); n != 1 {
		t.Fatalf("delivered %d times, want once", n)
	}
	if got := w.incoming("alice"); len(got) != 0 {
		t.Fatalf("alice got a bounce for a delivered message:\n%s", got[0])
	}
}

// TestQueueSurvivesRestart: a queued message outlives the provider.
func TestQueueSurvivesRestart(t *testing.T) {
	ln := listen(t, "127.0.0.1:0")
	addr := ln.Addr().String()
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	p := startProvider(t, testenv.Options{})
	w := newWorld(t, worldOptions{provider: p, cfg: submission.Config{Port: port, RetryBase: time.Hour}})
	w.addUser("alice", true)
	if err := w.submit("alice", "alice@"+domain, []string{"dave@" + remote}, message("alice", "dave@"+remote, "durable")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, "a failed attempt", func() bool {
		q := w.queue()
		return len(q) == 1 && q[0].Attempts == 1
	})
	w.stop()
	p.Stop()

	p2 := startProvider(t, testenv.Options{Dir: p.Dir, Addr: p.Addr})
	r := startRemote(t, addr, nil)
	// The next attempt is an hour away; make it due now, as time would.
	ctx := context.Background()
	items, err := p2.Store.ListDueOutbound(ctx, time.Now().Add(2*time.Hour), 10)
	if err != nil || len(items) != 1 {
		t.Fatalf("after restart: %d items, %v", len(items), err)
	}
	items[0].NextAttempt = time.Now()
	if err := p2.Store.UpdateOutbound(ctx, items[0]); err != nil {
		t.Fatal(err)
	}
	w2 := newWorld(t, worldOptions{provider: p2, cfg: submission.Config{Port: port}})
	testenv.Eventually(t, wait, "delivery after restart", func() bool { return len(r.received()) == 1 })
	testenv.Eventually(t, wait, "an empty queue", func() bool { return len(w2.queue()) == 0 })
	if err := w2.dkimVerify(r.received()[0].data); err != nil {
		t.Errorf("DKIM after restart (same key expected): %v", err)
	}
}

func TestPermanentFailureBounces(t *testing.T) {
	r := startRemote(t, "127.0.0.1:0", nil)
	r.mu.Lock()
	r.rcptErr = func(to string) error {
		if strings.HasPrefix(to, "gone@") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
		}
		return nil
	}
	r.mu.Unlock()
	w := newWorld(t, worldOptions{cfg: submission.Config{Port: r.port}})
	w.addUser("alice", true)
	msg := message("alice", "gone@"+remote, "bounce")
	if err := w.submit("alice", "alice@"+domain, []string{"gone@" + remote, "dave@" + remote}, msg); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, "a bounce", func() bool { return len(w.incoming("alice")) == 1 })
	testenv.Eventually(t, wait, "an empty queue", func() bool { return len(w.queue()) == 0 })
	if got := r.received(); len(got) != 1 || len(got[0].to) != 1 || got[0].to[0] != "dave@"+remote {
		t.Fatalf("remote got %+v, want the message for dave only", got)
	}
	dsn := w.incoming("alice")[0]
	for _, want := range []string{
		"Authentication-Results: " + hostname + "; none\r\n",
		"From: Mail Delivery System <MAILER-DAEMON@" + domain + ">\r\n",
		"Content-Type: multipart/report; report-type=delivery-status;",
		"Content-Type: message/delivery-status\r\n",
		"Reporting-MTA: dns; " + hostname + "\r\n",
		"Final-Recipient: rfc822; gone@" + remote + "\r\n",
		"Action: failed\r\n",
		"Status: 5.1.1\r\n",
		"Remote-MTA: dns; " + remoteMX + "\r\n",
		"Diagnostic-Code: smtp; 550 5.1.1 No such user here\r\n",
		"Content-Type: text/rfc822-headers\r\n",
		"Subject: bounce\r\n",
	} {
		if !strings.Contains(dsn, want) {
			t.Errorf("DSN lacks %q:\n%s", want, dsn)
		}
	}
	if strings.Contains(dsn, "dave@") {
		t.Errorf("DSN reports the delivered recipient:\n%s", dsn)
	}
	if strings.Contains(dsn, "Hello, this is bounce.") {
		t.Errorf("DSN carries the body:\n%s", dsn)
	}
}

func TestNullMX(t *testing.T) {
	zones := remoteZones()
	zones["nomail.test."] = mockdns.Zone{MX: []net.MX{{Host: ".", Pref: 0}}}
	zones["nxdomain.test."] = mockdns.Zone{Err: &net.DNSError{Err: "no such host", Name: "nxdomain.test", IsNotFound: true}}
	w := newWorld(t, worldOptions{zones: zones})
	w.addUser("alice", true)
	if err := w.submit("alice", "alice@"+domain, []string{"x@nomail.test", "y@nxdomain.test"}, message("alice", "x@nomail.test", "nullmx")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, "a bounce", func() bool { return len(w.incoming("alice")) == 1 })
	testenv.Eventually(t, wait, "an empty queue", func() bool { return len(w.queue()) == 0 })
	dsn := w.incoming("alice")[0]
	for _, want := range []string{"Final-Recipient: rfc822; x@nomail.test\r\n", "Status: 5.1.10\r\n", "Final-Recipient: rfc822; y@nxdomain.test\r\n", "Status: 5.1.2\r\n"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("DSN lacks %q:\n%s", want, dsn)
		}
	}
}

func TestGiveUp(t *testing.T) {
	ln := listen(t, "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	w := newWorld(t, worldOptions{cfg: submission.Config{Port: port, GiveUp: 400 * time.Millisecond, RetryMax: 100 * time.Millisecond}})
	w.addUser("alice", true)
	if err := w.submit("alice", "alice@"+domain, []string{"dave@" + remote}, message("alice", "dave@"+remote, "expired")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, "a bounce", func() bool { return len(w.incoming("alice")) == 1 })
	testenv.Eventually(t, wait, "an empty queue", func() bool { return len(w.queue()) == 0 })
	dsn := w.incoming("alice")[0]
	for _, want := range []string{"Final-Recipient: rfc822; dave@" + remote + "\r\n", "Action: failed\r\n", "Status: 4.4.7\r\n", "gave up after"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("DSN lacks %q:\n%s", want, dsn)
		}
	}
}

// TestOutboundStore: the queue's storage on bbolt.
func TestOutboundStore(t *testing.T) {
	p := startProvider(t, testenv.Options{})
	ctx := context.Background()
	st := p.Store
	now := time.Now().UTC().Truncate(time.Millisecond)
	mk := func(at time.Time, body string) string {
		it := &storage.OutboundItem{Login: "alice", From: "alice@" + domain, Created: now, NextAttempt: at, Message: []byte(body)}
		it.Recipients = append(it.Recipients, storage.OutboundRecipient{Address: "x@" + remote})
		if err := st.PutOutbound(ctx, it); err != nil {
			t.Fatal(err)
		}
		if it.ID == "" {
			t.Fatal("no id assigned")
		}
		return it.ID
	}
	late := mk(now.Add(time.Hour), "late")
	early := mk(now.Add(-time.Minute), "early")
	due := mk(now, "due")

	got, err := st.ListDueOutbound(ctx, now, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != early || got[1].ID != due {
		t.Fatalf("due now: %v", ids(got))
	}
	if got[0].Message != nil {
		t.Error("ListDueOutbound returned the message")
	}
	if b, err := st.OutboundMessage(ctx, late); err != nil || string(b) != "late" {
		t.Fatalf("message: %q %v", b, err)
	}
	// Moving an item moves it in the index.
	got[0].NextAttempt = now.Add(2 * time.Hour)
	got[0].Attempts = 3
	got[0].Recipients[0].State = "sent"
	if err := st.UpdateOutbound(ctx, got[0]); err != nil {
		t.Fatal(err)
	}
	all, _ := st.ListDueOutbound(ctx, now.Add(3*time.Hour), 10)
	if len(all) != 3 || all[0].ID != due || all[1].ID != late || all[2].ID != early {
		t.Fatalf("after update: %v", ids(all))
	}
	if all[2].Attempts != 3 || all[2].Recipients[0].State != "sent" {
		t.Fatalf("update lost: %+v", all[2])
	}
	if b, _ := st.OutboundMessage(ctx, early); string(b) != "early" {
		t.Fatalf("update changed the message: %q", b)
	}
	if got, _ := st.ListDueOutbound(ctx, now, 1); len(got) != 1 || got[0].ID != due {
		t.Fatalf("limit 1: %v", ids(got))
	}
	for _, id := range []string{early, late, due, "nonexistent"} {
		if err := st.DeleteOutbound(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if all, _ := st.ListDueOutbound(ctx, now.Add(3*time.Hour), 10); len(all) != 0 {
		t.Fatalf("after delete: %v", ids(all))
	}
	if _, err := st.OutboundMessage(ctx, early); err == nil {
		t.Fatal("message outlived its item")
	}
	if err := st.UpdateOutbound(ctx, &storage.OutboundItem{ID: early}); err == nil {
		t.Fatal("updating a deleted item succeeded")
	}
}

func ids(items []*storage.OutboundItem) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.ID)
	}
	return out
}
