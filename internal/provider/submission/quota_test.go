package submission_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// TestSubmitToAFullMailbox: a local recipient whose storage quota is
// full gets 452 4.2.2 at RCPT (the other recipient goes on); a message
// that does not fit in a local recipient's room gets 552 5.2.2 after
// DATA and no local copy is stored.
func TestSubmitToAFullMailbox(t *testing.T) {
	p := startProvider(t, testenv.Options{Config: httpapi.Config{Quota: httpapi.Quota{IncomingBytes: 20000}}})
	w := newWorld(t, worldOptions{provider: p})
	w.addUser("alice", true)
	w.addUser("bob", true)
	w.addUser("carol", true)
	ctx := context.Background()
	if _, _, err := p.Store.PutIncoming(ctx, "bob", make([]byte, 20000)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Store.PutIncoming(ctx, "carol", make([]byte, 15000)); err != nil {
		t.Fatal(err)
	}
	c, err := w.dial("alice", w.tokens["alice"])
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("alice@"+domain, nil); err != nil {
		t.Fatal(err)
	}
	wantReply(t, c.Rcpt("bob@"+domain, nil), 452, "4.2.2")
	if err := c.Rcpt("carol@"+domain, nil); err != nil {
		t.Fatalf("RCPT carol (room left): %v", err)
	}
	wc, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	big := message("alice", "carol@"+domain, "big") + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n", 125)
	if _, err := io.WriteString(wc, big); err != nil {
		t.Fatal(err)
	}
	wantReply(t, wc.Close(), 552, "5.2.2")
	if n := queued(t, w, "carol"); n != 1 {
		t.Errorf("carol has %d messages, want only the filler", n)
	}
	// A small one still fits.
	if err := w.submit("alice", "alice@"+domain, []string{"carol@" + domain}, message("alice", "carol@"+domain, "small")); err != nil {
		t.Fatalf("a message that fits: %v", err)
	}
	if n := queued(t, w, "carol"); n != 2 {
		t.Errorf("carol has %d messages, want 2", n)
	}
}

// queued is how many items login's incoming queue holds.
func queued(t *testing.T, w *world, login string) int {
	t.Helper()
	list, _, err := w.p.Store.ListIncoming(context.Background(), login, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}
