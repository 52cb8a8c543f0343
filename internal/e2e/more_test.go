package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

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

// TestIncomingBadInput: malformed MIME, binary garbage, 8-bit headers, a
// 1 MB header, broken PGP blocks and a 30 MB message are stored and
// readable over IMAP, and the daemon keeps running.
func TestIncomingBadInput(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	a := signup(t, p, "oona")
	to := a.acct.Address
	cases := map[string][]byte{
		"malformed MIME": []byte("From: a@b.test\r\nSubject: bad mime\r\nContent-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--x\r\nbroken"),
		"binary garbage": append([]byte("Subject: garbage\r\n\r\n"), bytes.Repeat([]byte{0, 0xff, 0x80, 0x1b}, 1000)...),
		"8-bit headers":  []byte("From: \xe9t\xe9 <a@b.test>\r\nSubject: caf\xe9 \xff\xfe\r\n\r\nbody\r\n"),
		"1 MB header":    []byte("Subject: long\r\nX-Long: " + strings.Repeat("a", 1<<20) + "\r\n\r\nbody\r\n"),
		"broken PGP":     []byte("From: a@b.test\r\nSubject: broken pgp\r\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=b\r\n\r\n--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA+garbage==\r\n-----END PGP MESSAGE-----\r\n--b--\r\n"),
		"inline broken":  []byte("Subject: inline\r\n\r\n-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\ntext\r\n-----BEGIN PGP SIGNATURE-----\r\n\r\nnot base64 at all\r\n-----END PGP SIGNATURE-----\r\n"),
		"30 MB message":  append([]byte("Subject: thirty megabytes\r\n\r\n"), bytes.Repeat([]byte("0123456789012345678901234567890123456789012345678901234567890123456789\r\n"), 30<<20/72)...),
	}
	c := dialMX(t, p)
	for name, m := range cases {
		if err := c.SendMail("s@sender.test", []string{to}, bytes.NewReader(m)); err != nil {
			t.Fatalf("%s: MX refused: %v", name, err)
		}
	}
	c.Close()
	waitMessages(t, a, "INBOX", len(cases))
	got := fetchAll(t, a.imap(t, nil), "INBOX")
	if len(got) != len(cases) {
		t.Fatalf("%d messages, want %d", len(got), len(cases))
	}
	total := 0
	for _, m := range got {
		total += len(m)
		if header(m, "X-Leap-Encryption") == "" {
			t.Fatalf("a message without our header:\n%.300s", m)
		}
	}
	if total < 30<<20 {
		t.Fatalf("only %d bytes readable", total)
	}
	// Still serving.
	deliver(t, p, "s@sender.test", to, plainMessage("s@sender.test", to, "after", "still here"))
	waitMessages(t, a, "INBOX", len(cases)+1)
}
