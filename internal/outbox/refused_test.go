package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/testlog"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
)

// nested is a message whose MIME structure is depth multiparts deep.
func nested(to string, depth int) []byte {
	var b strings.Builder
	b.WriteString("From: " + sender + "\r\nTo: " + to + "\r\nSubject: deep\r\nMIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: multipart/mixed; boundary=\"n0\"\r\n\r\n")
	for i := range depth - 1 {
		fmt.Fprintf(&b, "--n%d\r\nContent-Type: multipart/mixed; boundary=\"n%d\"\r\n\r\n", i, i+1)
	}
	fmt.Fprintf(&b, "--n%d\r\nContent-Type: text/plain\r\n\r\nbody of the bottom\r\n", depth-1)
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--n%d--\r\n", i)
	}
	return []byte(b.String())
}

// TestRefusedMessageIsBounced: a message of which pgpmime makes no copy
// (nested 1,000 levels deep; a header field name in 8 bits) becomes a
// bounce in INBOX at the first pass, for every recipient (one with a
// key, one without, a Bcc without), saying why; nothing is relayed and
// the outbox is empty, also after a restart. The log holds neither the
// message nor an address.
func TestRefusedMessageIsBounced(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  func(to string) []byte
		why  string
	}{
		{"1000 levels of nesting", func(to string) []byte { return nested(to, 1000) }, "pgpmime: MIME structure nested too deeply"},
		{"8-bit field name", func(to string) []byte {
			return []byte("From: " + sender + "\r\nTo: " + to + "\r\nSubject: 8 bits\r\nX-\xff\xfe: a field\r\n\r\nbody of the message\r\n")
		}, "pgpmime: malformed header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAccount(t)
			signer, err := pgpkey.Generate(sender, 24*time.Hour, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			known, err := pgpkey.Generate("kim@remote.test", 24*time.Hour, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			var logs testlog.Buffer
			relayed := 0
			cfg := Config{
				Store: a.st, Mail: a.mail, Address: sender,
				Signer: func() (*openpgp.Entity, error) { return signer, nil },
				Keys: keyFunc(func(addr string) (*openpgp.Entity, error) {
					if addr == "kim@remote.test" {
						return known, nil
					}
					return nil, ErrNoKey
				}),
				Relay: relayFunc(func(string, []string, []byte) error {
					relayed++
					return nil
				}),
				Log: slog.New(slog.NewTextHandler(&logs, nil)),
			}
			o := New(cfg)
			rcpts := []string{"kim@remote.test", "lee@remote.test", "max@remote.test"} // max: Bcc
			raw := tc.msg("kim@remote.test, lee@remote.test")
			if _, err := o.Enqueue(sender, rcpts, raw); err != nil {
				t.Fatal(err)
			}
			if next := o.Flush(context.Background(), false); !next.IsZero() {
				t.Errorf("a retry is due at %v", next)
			}
			if relayed != 0 {
				t.Errorf("%d copies relayed", relayed)
			}
			if n := o.Pending(); n != 0 {
				t.Fatalf("%d messages left in the outbox", n)
			}
			bounces := a.inbox()
			if len(bounces) != 1 {
				t.Fatalf("%d messages in INBOX, want one bounce", len(bounces))
			}
			b := string(bounces[0])
			if !strings.Contains(b, "Subject: Undelivered Mail Returned to Sender") || !strings.Contains(b, "message/rfc822") ||
				!strings.Contains(b, string(raw)) {
				t.Fatalf("bounce:\n%.2000s", b)
			}
			for _, r := range rcpts {
				if !strings.Contains(b, "\r\n  "+r+"\r\n") || !strings.Contains(b, r+": "+whyRefused) {
					t.Errorf("the bounce does not say why %s got nothing:\n%.2000s", r, b)
				}
			}
			if !strings.Contains(b, whyRefused+tc.why+"\r\n") {
				t.Errorf("the bounce does not say %q in one line:\n%.2000s", tc.why, b)
			}
			log := logs.String()
			if !strings.Contains(log, "no signed or encrypted copy") || !strings.Contains(log, "recipients=3") {
				t.Errorf("log:\n%s", log)
			}
			for _, secret := range []string{"remote.test", "body of", sender, "deep", "8 bits"} {
				if strings.Contains(log, secret) {
					t.Errorf("the log holds %q:\n%s", secret, log)
				}
			}

			// A restart over the same store: nothing is sent or bounced again.
			a.close()
			a.open()
			cfg.Store, cfg.Mail = a.st, a.mail
			o = New(cfg)
			o.Flush(context.Background(), true)
			if relayed != 0 || o.Pending() != 0 || len(a.inbox()) != 1 {
				t.Fatalf("after the restart: %d relayed, %d in the outbox, %d in INBOX", relayed, o.Pending(), len(a.inbox()))
			}
		})
	}
}

// TestTemporaryFailuresAreRetried: when a copy cannot be made for a reason
// that may pass (no signing key yet, the account's key cannot sign, a
// key lookup that could not ask, a recipient key that cannot be used, a
// 4xx from the relay), the message waits for a retry: no bounce, nothing
// relayed. Its next pass, once the cause is gone, sends it.
func TestTemporaryFailuresAreRetried(t *testing.T) {
	good, err := pgpkey.Generate(sender, 24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	expired, err := pgpkey.Generate(sender, time.Hour, time.Now().Add(-3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	goodKim, err := pgpkey.Generate("kim@remote.test", 24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	expiredKim, err := pgpkey.Generate("kim@remote.test", time.Hour, time.Now().Add(-3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	offline := errors.New("dial tcp: network is unreachable")
	for _, tc := range []struct {
		name   string
		to     string
		signer func() (*openpgp.Entity, error)
		key    func() (*openpgp.Entity, error)
		relay  error
	}{
		{name: "no signing key yet", to: "lee@remote.test",
			signer: func() (*openpgp.Entity, error) { return nil, pgpkey.ErrNoKey }},
		{name: "no signing key, nil", to: "lee@remote.test",
			signer: func() (*openpgp.Entity, error) { return nil, nil }},
		{name: "signing key expired, no recipient key", to: "lee@remote.test",
			signer: func() (*openpgp.Entity, error) { return expired, nil }},
		{name: "signing key expired, recipient key", to: "kim@remote.test",
			signer: func() (*openpgp.Entity, error) { return expired, nil }},
		{name: "key lookup offline", to: "kim@remote.test",
			key: func() (*openpgp.Entity, error) { return nil, offline }},
		{name: "recipient key expired", to: "kim@remote.test",
			key: func() (*openpgp.Entity, error) { return expiredKim, nil }},
		{name: "relay 4xx", to: "lee@remote.test",
			relay: &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAccount(t)
			signer := tc.signer
			if signer == nil {
				signer = func() (*openpgp.Entity, error) { return good, nil }
			}
			key := tc.key
			if key == nil {
				key = func() (*openpgp.Entity, error) { return goodKim, nil }
			}
			var sent [][]string
			relayErr := tc.relay
			cfg := Config{
				Store: a.st, Mail: a.mail, Address: sender,
				Signer: func() (*openpgp.Entity, error) { return signer() },
				Keys: keyFunc(func(addr string) (*openpgp.Entity, error) {
					if addr == "kim@remote.test" {
						return key()
					}
					return nil, ErrNoKey
				}),
				Relay: relayFunc(func(_ string, to []string, msg []byte) error {
					if relayErr != nil {
						return relayErr
					}
					sent = append(sent, to)
					return nil
				}),
				Log: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)),
			}
			o := New(cfg)
			if _, err := o.Enqueue(sender, []string{tc.to}, outgoing(tc.to, "wait")); err != nil {
				t.Fatal(err)
			}
			if next := o.Flush(context.Background(), false); next.IsZero() {
				t.Error("no retry is due")
			}
			if len(sent) != 0 || o.Pending() != 1 || len(a.inbox()) != 0 {
				t.Fatalf("%d relayed, %d in the outbox, %d in INBOX; want 0, 1, 0", len(sent), o.Pending(), len(a.inbox()))
			}
			its, err := o.items()
			if err != nil || len(its) != 1 || its[0].LastError == "" || strings.Contains(its[0].LastError, whyRefused) {
				t.Fatalf("outbox: %v, %+v", err, its)
			}

			// The cause is gone: the next pass sends it.
			signer = func() (*openpgp.Entity, error) { return good, nil }
			key = func() (*openpgp.Entity, error) { return goodKim, nil }
			relayErr = nil
			o.Flush(context.Background(), true)
			if len(sent) != 1 || o.Pending() != 0 || len(a.inbox()) != 0 {
				t.Fatalf("then: %d relayed, %d in the outbox, %d in INBOX; want 1, 0, 0", len(sent), o.Pending(), len(a.inbox()))
			}
		})
	}
}
