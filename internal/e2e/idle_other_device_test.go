package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/bitmask-go/bitmask/internal/testenv"
)

// TestIdleSeesOtherDevice: changes made on one device (APPEND over IMAP,
// flags, expunge) reach an IDLE session on the other device by sync.
func TestIdleSeesOtherDevice(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	a := signup(t, p, "nina")
	b := login(t, p, "nina")
	exists := make(chan uint32, 10)
	expunged := make(chan uint32, 10)
	cb := b.imap(t, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
		Expunge: func(seq uint32) { expunged <- seq },
	}})
	if _, err := cb.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := cb.Idle()
	if err != nil {
		t.Fatal(err)
	}
	ca := a.imap(t, nil)
	msg := plainMessage("x@y.test", a.acct.Address, "appended on A", "hello")
	cmd := ca.Append("INBOX", int64(len(msg)), nil)
	cmd.Write(msg)
	cmd.Close()
	if _, err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-exists:
		if n != 1 {
			t.Fatalf("EXISTS %d", n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("B's IDLE did not hear of A's APPEND")
	}
	msgs, _ := a.acct.Mail.Messages("INBOX")
	if _, err := a.acct.Mail.StoreFlags(context.Background(), "INBOX", []uint32{msgs[0].UID}, 1, []string{`\Deleted`}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.acct.Mail.Expunge(context.Background(), "INBOX", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-expunged:
	case <-time.After(30 * time.Second):
		t.Fatal("B's IDLE did not hear of A's EXPUNGE")
	}
	idle.Close()
	idle.Wait()
}
