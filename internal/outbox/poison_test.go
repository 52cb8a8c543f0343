package outbox

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/bitmask-go/bitmask/internal/testlog"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
	"github.com/bitmask-go/bitmask/pkg/seal"
	"github.com/bitmask-go/bitmask/pkg/seal/sealtest"
)

const sender = "me@bitmask.test"

// account is a local store and mail store (no provider: bounces go to
// the local INBOX), reopened as a restart would.
type account struct {
	t    *testing.T
	path string
	keys *seal.Keys
	st   *localstore.Store
	mail *mailstore.Store
}

func newAccount(t *testing.T) *account {
	t.Helper()
	k := sealtest.Keys(t)
	a := &account{t: t, path: filepath.Join(t.TempDir(), "store.db"), keys: k}
	a.open()
	t.Cleanup(a.close)
	return a
}

func (a *account) open() {
	a.t.Helper()
	st, err := localstore.Open(a.path, a.keys)
	if err != nil {
		a.t.Fatal(err)
	}
	ms, err := mailstore.Open(docsync.New(st, nil, a.keys, sender, nil), st, a.keys, nil, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	a.st, a.mail = st, ms
}

func (a *account) close() {
	if a.st != nil {
		a.mail.Close()
		a.st.Close()
		a.st = nil
	}
}

// inbox is the content of every message in INBOX.
func (a *account) inbox() [][]byte {
	a.t.Helper()
	msgs, err := a.mail.Messages("INBOX")
	if err != nil {
		a.t.Fatal(err)
	}
	var out [][]byte
	for _, m := range msgs {
		raw, err := a.mail.Raw(context.Background(), m.ID)
		if err != nil {
			a.t.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}

// relayFunc is a Relay.
type relayFunc func(from string, to []string, msg []byte) error

func (f relayFunc) Send(_ context.Context, from string, to []string, msg []byte) error {
	return f(from, to, msg)
}

// keyFunc is a KeyFinder.
type keyFunc func(address string) (*openpgp.Entity, error)

func (f keyFunc) Find(_ context.Context, address string) (*openpgp.Entity, error) { return f(address) }

func outgoing(to, subject string) []byte {
	return []byte("From: " + sender + "\r\nTo: " + to + "\r\nSubject: " + subject + "\r\n\r\nbody of " + subject + "\r\n")
}

// TestPoisonMessagesAreBounced: a message whose relaying panics and one
// whose key lookup panics do not stop the worker: the message after them
// goes out, each of them becomes a bounce in INBOX that says why, the
// outbox is empty, and the next start sends and bounces nothing again.
// The log says what panicked and where, never what the message held.
func TestPoisonMessagesAreBounced(t *testing.T) {
	a := newAccount(t)
	signer, err := pgpkey.Generate(sender, 24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var logs testlog.Buffer
	sent := make(chan []string, 10)
	cfg := Config{
		Store: a.st, Mail: a.mail, Address: sender,
		Signer: func() (*openpgp.Entity, error) { return signer, nil },
		Keys: keyFunc(func(addr string) (*openpgp.Entity, error) {
			if addr == "lookup-crash@remote.test" {
				var e *openpgp.Entity
				_ = e.PrimaryKey.KeyId // a nil dereference, as a broken key would make
			}
			return nil, ErrNoKey
		}),
		Relay: relayFunc(func(_ string, to []string, msg []byte) error {
			if bytes.Contains(msg, []byte("Subject: relay crash")) {
				panic("relay choked on Subject: relay crash for " + strings.Join(to, ","))
			}
			sent <- to
			return nil
		}),
		Log: slog.New(slog.NewTextHandler(&logs, nil)),
	}
	o := New(cfg)
	for _, m := range []struct{ to, subject string }{
		{"ann@remote.test", "relay crash"},
		{"lookup-crash@remote.test", "lookup crash"},
		{"bea@remote.test", "hello"},
	} {
		if _, err := o.Enqueue(sender, []string{m.to}, outgoing(m.to, m.subject)); err != nil {
			t.Fatal(err)
		}
	}
	events, stop := a.mail.Watch("INBOX")
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); o.Run(ctx) }()

	// (The time limits only turn a hang into a failure.)
	select {
	case to := <-sent:
		if len(to) != 1 || to[0] != "bea@remote.test" {
			t.Fatalf("sent to %v", to)
		}
	case <-time.After(time.Minute):
		t.Fatal("the message after the broken ones was not sent")
	}
	for added := 0; added < 2; {
		select {
		case ev := <-events:
			if ev.Kind == mailstore.EventAdded {
				added++
			}
		case <-time.After(time.Minute):
			t.Fatalf("%d bounces in INBOX, want 2", added)
		}
	}
	cancel()
	<-done

	bounces := a.inbox()
	if len(bounces) != 2 {
		t.Fatalf("%d messages in INBOX, want 2 bounces", len(bounces))
	}
	for i, want := range []string{"ann@remote.test", "lookup-crash@remote.test"} {
		b := string(bounces[i])
		if !strings.Contains(b, "Subject: Undelivered Mail Returned to Sender") || !strings.Contains(b, whyBroken) ||
			!strings.Contains(b, "could not be delivered to:\r\n  "+want) || !strings.Contains(b, "message/rfc822") {
			t.Fatalf("bounce %d:\n%s", i, b)
		}
	}
	if n := o.Pending(); n != 0 {
		t.Fatalf("%d messages left in the outbox", n)
	}
	log := logs.String()
	if strings.Count(log, "broke delivery") != 2 || !strings.Contains(log, "stack=") || !strings.Contains(log, "nil pointer dereference") {
		t.Fatalf("log:\n%s", log)
	}
	for _, secret := range []string{"crash", "remote.test", "body of", sender} {
		if strings.Contains(log, secret) {
			t.Fatalf("the log holds %q:\n%s", secret, log)
		}
	}

	// A restart over the same store: nothing is sent or bounced again.
	a.close()
	a.open()
	cfg.Store, cfg.Mail = a.st, a.mail
	cfg.Relay = relayFunc(func(string, []string, []byte) error {
		t.Error("a message was sent again after the restart")
		return nil
	})
	o = New(cfg)
	o.Flush(context.Background(), true)
	if n := o.Pending(); n != 0 {
		t.Fatalf("%d messages in the outbox after the restart", n)
	}
	if n := len(a.inbox()); n != 2 {
		t.Fatalf("%d messages in INBOX after the restart, want the 2 bounces", n)
	}
}

// TestBrokenMessageIsOnlyBounced: a message marked broken whose bounce
// was not stored yet (the daemon stopped in between, or storing failed)
// is not sent at the next pass: only its bounce is made.
func TestBrokenMessageIsOnlyBounced(t *testing.T) {
	a := newAccount(t)
	o := New(Config{
		Store: a.st, Mail: a.mail, Address: sender,
		Signer: func() (*openpgp.Entity, error) { return nil, errors.New("not needed") },
		Keys:   keyFunc(func(string) (*openpgp.Entity, error) { return nil, ErrNoKey }),
		Relay: relayFunc(func(string, []string, []byte) error {
			t.Error("a broken message was sent")
			return nil
		}),
	})
	it := &item{ID: "broken1", From: sender, Pending: []string{"cy@remote.test"}, Raw: outgoing("cy@remote.test", "x"),
		Created: time.Now().UTC(), NextTry: time.Now().UTC(), Broken: true}
	if err := o.put(it); err != nil {
		t.Fatal(err)
	}
	o.Flush(context.Background(), false)
	if n := o.Pending(); n != 0 {
		t.Fatalf("%d messages left in the outbox", n)
	}
	if b := a.inbox(); len(b) != 1 || !strings.Contains(string(b[0]), whyBroken) {
		t.Fatalf("INBOX: %q", b)
	}
}
