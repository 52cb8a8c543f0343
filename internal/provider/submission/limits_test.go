package submission_test

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/provider/submission"
)

// TestSubmissionLimits: the per-address cap (10 connections from one
// address, the 11th 421 4.7.0 while another address is served), a SIZE
// over the limit refused at MAIL with 552 5.3.4, and a message past the
// in-memory part (spooled to disk) queued byte for byte.
func TestSubmissionLimits(t *testing.T) {
	w := newWorld(t, worldOptions{cfg: submission.Config{MaxSize: 4 << 20}})
	w.addUser("alice", true)

	var held []net.Conn
	for i := range 11 {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 10 * time.Second}
		c, err := d.Dial("tcp", w.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if i < 10 {
			if !strings.HasPrefix(line, "220 ") {
				t.Fatalf("connection %d: %q", i+1, line)
			}
			held = append(held, c)
			continue
		}
		if line != "421 4.7.0 too many connections from your address, try again later\r\n" {
			t.Errorf("11th connection from one address: %q", line)
		}
	}

	c, err := w.dial("alice", w.tokens["alice"])
	if err != nil {
		t.Fatal(err)
	}
	err = c.Mail("alice@"+domain, &smtp.MailOptions{Size: 4<<20 + 1})
	wantReply(t, err, 552, "5.3.4")

	body := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n", (3<<20)/64)
	msg := message("alice", "bob@remote.example", "big") + body
	if err := w.submit("alice", "alice@"+domain, []string{"bob@remote.example"}, msg); err != nil {
		t.Fatalf("3 MiB message from another address: %v", err)
	}
	q := w.queue()
	if len(q) != 1 {
		t.Fatalf("queued %d items, want 1", len(q))
	}
	got, err := w.p.Store.OutboundMessage(context.Background(), q[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != msg {
		t.Errorf("queued message of %d bytes differs from the %d sent", len(got), len(msg))
	}
	for _, c := range held {
		c.Close()
	}
}
