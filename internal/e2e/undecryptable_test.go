package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
)

// TestUndecryptableKept: an incoming item none of the account's keys can
// open is kept in INBOX with a header that says why; nothing is dropped.
func TestUndecryptableKept(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	a := signup(t, p, "lena")
	other, _ := pgpkey.Generate("someone@else.test", 0, time.Now())
	ct := encryptTo(t, other, []byte("From: x@y.test\r\nSubject: for someone else\r\n\r\nnot for lena\r\n"))
	if err := p.Deliver(context.Background(), "lena", ct); err != nil {
		t.Fatal(err)
	}
	if err := p.Deliver(context.Background(), "lena", []byte("\x00\x01 binary garbage, not OpenPGP at all")); err != nil {
		t.Fatal(err)
	}
	waitMessages(t, a, "INBOX", 2)
	for _, m := range fetchAll(t, a.imap(t, nil), "INBOX") {
		if !strings.HasPrefix(header(m, "X-Leap-Encryption"), "failed") || !strings.Contains(m, "BEGIN PGP MESSAGE") {
			t.Fatalf("not kept with a reason:\n%s", m)
		}
	}
}
