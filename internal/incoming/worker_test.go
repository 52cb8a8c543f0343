package incoming_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/incoming"
	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// TestPoisonItem: a queue item whose processing panics, and one whose
// storing panics, are each kept as they arrived (still encrypted, in a
// note that says what happened) between two ordinary messages; the worker
// goes on, every item leaves the provider's queue (so the next start does
// not meet them again), and the daemon keeps serving.
func TestPoisonItem(t *testing.T) {
	for _, where := range []string{"process", "store"} {
		t.Run(where, func(t *testing.T) {
			const marker = "poison-marker-71c3"
			var restore func()
			if where == "process" {
				restore = incoming.SetTestHooks(func(plain []byte) {
					if bytes.Contains(plain, []byte(marker)) {
						var parts []string
						_ = parts[len(plain)] // a real runtime panic: index out of range
					}
				}, nil)
			} else {
				restore = incoming.SetTestHooks(nil, func(batch []mailstore.NewMessage) {
					for _, m := range batch {
						if bytes.Contains(m.Raw, []byte(marker)) {
							panic("storing " + marker) // a panic value that carries content
						}
					}
				})
			}
			t.Cleanup(restore)
			p := testenv.StartProvider(t, testenv.Options{})
			r := testenv.StartDaemon(t, testenv.DaemonOptions{})
			a := testenv.NewUser(t, r.Daemon, p, "poison@"+testenv.Domain)
			for i, body := range []string{"first ordinary message", "carries the " + marker, "second ordinary message"} {
				msg := fmt.Sprintf("From: sender@remote.test\r\nTo: %s\r\nSubject: item %d\r\nMessage-ID: <%d@remote.test>\r\n\r\n%s\r\n", a.Address, i, i, body)
				c, err := smtp.Dial(p.MXAddr)
				if err != nil {
					t.Fatal(err)
				}
				if err := c.SendMail("sender@remote.test", []string{a.Address}, strings.NewReader(msg)); err != nil {
					t.Fatal(err)
				}
				c.Close()
			}
			testenv.Eventually(t, 30*time.Second, "three items taken from the queue", func() bool { return a.Incoming.Processed() == 3 })
			msgs, err := a.Mail.Messages("INBOX")
			if err != nil || len(msgs) != 3 {
				t.Fatalf("%d messages in INBOX (%v)", len(msgs), err)
			}
			var aside, ordinary int
			for _, m := range msgs {
				raw, err := a.Mail.Raw(t.Context(), m.ID)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case bytes.Contains(raw, []byte("Subject: A message could not be processed")):
					aside++
					if !bytes.Contains(raw, []byte("X-Leap-Encryption: failed; reason=")) || !bytes.Contains(raw, []byte("-----BEGIN PGP MESSAGE-----")) {
						t.Errorf("set-aside item:\n%s", raw)
					}
					if bytes.Contains(raw, []byte(marker)) {
						t.Error("the set-aside item is not kept as it arrived (encrypted)")
					}
				case bytes.Contains(raw, []byte("ordinary message")):
					ordinary++
				}
			}
			if aside != 1 || ordinary != 2 {
				t.Fatalf("%d set aside, %d ordinary", aside, ordinary)
			}
			left, _, err := p.Store.ListIncoming(t.Context(), a.Login, 10)
			if err != nil || len(left) != 0 {
				t.Fatalf("queue after processing: %d items (%v)", len(left), err)
			}
		})
	}
}
