package mx_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/provider/mx"
)

// fill queues n bytes for login straight into the store, as earlier mail.
func (w *world) fill(login string, n int) string {
	w.t.Helper()
	id, _, err := w.p.Store.PutIncoming(context.Background(), login, make([]byte, n))
	if err != nil {
		w.t.Fatal(err)
	}
	return id
}

// TestMailboxFull: with 20,000 bytes of quota per user, a full account
// gets 452 4.2.2 at RCPT while the other recipient of the message gets
// it; a SIZE= larger than the room left gets 452 4.2.2 too; a message
// that does not fit (no SIZE) gets 552 5.2.2 after DATA when it was the
// only recipient, and 452 4.2.2 when another recipient got it (the
// sender's retry does not duplicate that copy); nothing is stored for
// the full account.
func TestMailboxFull(t *testing.T) {
	w := newWorld(t, worldOptions{quota: httpapi.Quota{IncomingBytes: 20000}})
	w.addUser("alice", true)
	w.addUser("bob", true)
	filler := w.fill("alice", 20000)

	r := dialRaw(t, "tcp", w.addr)
	r.cmd(250, "EHLO client.example")
	r.cmd(250, "MAIL FROM:<x@pass.example>")
	if msg := r.cmd(452, "RCPT TO:<alice@example.test>"); !strings.HasPrefix(msg, "4.2.2 ") {
		t.Errorf("RCPT of a full account: 452 %q, want 4.2.2", msg)
	}
	r.cmd(250, "RCPT TO:<bob@example.test>")
	if code, msg, err := r.data([]byte(plainMsg)); err != nil {
		t.Fatalf("DATA for bob: %d %q %v", code, msg, err)
	}
	if n := len(w.items("alice")); n != 1 {
		t.Errorf("alice has %d items, want only the filler", n)
	}
	if n := len(w.items("bob")); n != 1 {
		t.Errorf("bob has %d items, want 1", n)
	}

	// 15,000 of 20,000 used: SIZE=8000 does not fit.
	if err := w.p.Store.DeleteIncoming(context.Background(), "alice", filler); err != nil {
		t.Fatal(err)
	}
	w.fill("alice", 15000)
	r.cmd(250, "MAIL FROM:<x@pass.example> SIZE=8000")
	if msg := r.cmd(452, "RCPT TO:<alice@example.test>"); !strings.HasPrefix(msg, "4.2.2 ") {
		t.Errorf("RCPT with a SIZE over the room left: 452 %q, want 4.2.2", msg)
	}
	r.cmd(250, "RSET")

	// Without SIZE, RCPT passes and DATA finds the message too big.
	big := "Subject: big\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n", 125)
	r.cmd(250, "MAIL FROM:<x@pass.example>")
	r.cmd(250, "RCPT TO:<alice@example.test>")
	if code, msg, _ := r.data([]byte(big)); code != 552 || !strings.HasPrefix(msg, "5.2.2 ") {
		t.Errorf("DATA too big for the only recipient's quota: %d %q, want 552 5.2.2", code, msg)
	}
	for range 2 { // the sender retries: bob's copy is not stored twice
		r.cmd(250, "MAIL FROM:<x@pass.example>")
		r.cmd(250, "RCPT TO:<alice@example.test>")
		r.cmd(250, "RCPT TO:<bob@example.test>")
		if code, msg, _ := r.data([]byte(big)); code != 452 || !strings.HasPrefix(msg, "4.2.2 ") {
			t.Errorf("DATA too big for one of two recipients: %d %q, want 452 4.2.2", code, msg)
		}
	}
	if n := len(w.items("alice")); n != 1 {
		t.Errorf("alice has %d items, want only the filler", n)
	}
	if n := len(w.items("bob")); n != 2 {
		t.Errorf("bob has %d items, want 2 (no duplicate)", n)
	}

	// Local delivery (the submission service) refuses the copy whole.
	err := w.mx.DeliverLocal(context.Background(), mx.LocalMessage{From: "bob@example.test", Recipients: []string{"bob@example.test", "alice@example.test"}, Data: []byte(big), AuthUser: "bob@example.test"})
	wantReply(t, err, 552, "5.2.2")
	if n := len(w.items("bob")); n != 2 {
		t.Errorf("bob has %d items after a refused local delivery, want 2", n)
	}
}

// TestMailboxFullLMTP: over LMTP, the recipient whose quota the message
// does not fit in gets its own 552 5.2.2 after DATA, the other its 250.
func TestMailboxFullLMTP(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "lmtp.sock")
	w := newWorld(t, worldOptions{lmtp: sock, quota: httpapi.Quota{IncomingBytes: 20000}})
	w.addUser("alice", true)
	w.addUser("bob", true)
	w.fill("alice", 15000)
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("front.example.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("carol@pass.example", nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"alice@example.test", "bob@example.test"} {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatalf("RCPT %s: %v", r, err)
		}
	}
	wc, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(wc, "Subject: big\r\n\r\n"+strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n", 125))
	resp, err := wc.CloseWithLMTPResponse()
	var le smtp.LMTPDataError
	if !errors.As(err, &le) {
		t.Fatalf("got %v, want a per-recipient error", err)
	}
	wantReply(t, le["alice@example.test"], 552, "5.2.2")
	if resp["bob@example.test"] == nil {
		t.Errorf("bob: no 250 (%v)", le["bob@example.test"])
	}
	if n := len(w.items("alice")); n != 1 {
		t.Errorf("alice has %d items, want only the filler", n)
	}
	if n := len(w.items("bob")); n != 1 {
		t.Errorf("bob has %d items, want 1", n)
	}
}
