package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/testenv"
)

// TestBounce: a permanent failure (the provider has no such user) becomes
// a bounce in the sender's INBOX.
func TestBounce(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	a := signup(t, p, "max")
	to := "nobody-here@" + testenv.Domain
	if err := a.submit(t, a.acct.Address, []string{to}, plainMessage(a.acct.Address, to, "to nobody", "x")); err != nil {
		t.Fatal(err)
	}
	// The outbox stores the bounce, then lets the message go: once it
	// has gone, the bounce is there (checking the outbox as soon as the
	// bounce appears raced with that second step).
	testenv.Eventually(t, 30*time.Second, "the failed message leaves the outbox", func() bool { return a.acct.Outbox.Pending() == 0 })
	got := fetchAll(t, a.imap(t, nil), "INBOX")
	if len(got) != 1 {
		t.Fatalf("%d messages in INBOX, want the bounce", len(got))
	}
	if m := got[0]; !strings.Contains(header(m, "Subject"), "Undelivered") || !strings.Contains(m, to) {
		t.Fatalf("not a bounce:\n%s", m)
	}
}
