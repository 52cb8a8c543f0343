// Package e2e holds the end-to-end tests: the real leapd (API and MX),
// real bitmaskd daemons serving IMAP and SMTP on loopback, and real
// protocol clients (go-imap, go-smtp).
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/contactkeys"
	"github.com/bitmask-go/bitmask/internal/daemon"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
	"github.com/bitmask-go/bitmask/pkg/pgpmime"
)

const password = "correct horse battery staple"

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return c
}

// device is one bitmaskd with one account logged in.
type device struct {
	*testenv.Running
	acct *daemon.Account
}

func signup(t *testing.T, p *testenv.Provider, login string) *device {
	t.Helper()
	r := testenv.StartDaemon(t, testenv.DaemonOptions{})
	a, err := r.CreateUser(ctx(t), login+"@"+testenv.Domain, []byte(password), p.Ref(), "")
	if err != nil {
		t.Fatal(err)
	}
	return &device{r, a}
}

func login(t *testing.T, p *testenv.Provider, login string) *device {
	t.Helper()
	r := testenv.StartDaemon(t, testenv.DaemonOptions{})
	a, err := r.Login(ctx(t), login+"@"+testenv.Domain, []byte(password), p.Ref())
	if err != nil {
		t.Fatal(err)
	}
	return &device{r, a}
}

// imap logs a go-imap client in to the device's IMAP server.
func (d *device) imap(t testing.TB, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(d.IMAPAddr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(d.acct.Address, d.acct.LocalToken()).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// deliver sends a message to the provider's MX with a plain SMTP client.
func deliver(t *testing.T, p *testenv.Provider, from, to string, msg []byte) {
	t.Helper()
	c, err := smtp.Dial(p.MXAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("sender.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail(from, []string{to}, bytes.NewReader(msg)); err != nil {
		t.Fatalf("MX refused: %v", err)
	}
}

func plainMessage(from, to, subject, body string) []byte {
	return []byte(fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%d@sender.test>\r\n\r\n%s\r\n",
		from, to, subject, time.Now().UTC().Format(time.RFC1123Z), time.Now().UnixNano(), body))
}

// fetchAll returns the full text of every message in INBOX.
func fetchAll(t *testing.T, c *imapclient.Client, mbox string) []string {
	t.Helper()
	sel, err := c.Select(mbox, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		for _, b := range m.BodySection {
			out = append(out, string(b.Bytes))
		}
	}
	return out
}

func waitMessages(t *testing.T, d *device, mbox string, n int) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, fmt.Sprintf("%d messages in %s of %s", n, mbox, d.acct.Address), func() bool {
		msgs, err := d.acct.Mail.Messages(mbox)
		return err == nil && len(msgs) >= n
	})
}

func header(msg, name string) string {
	head, _, _ := strings.Cut(msg, "\r\n\r\n")
	for _, l := range strings.Split(head, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestReceive: a plain SMTP client delivers to the MX; a go-imap client on
// the daemon finds it in INBOX, decrypted, with X-Leap-Encryption; the
// same message shows up on the user's second device; leapd's storage holds
// none of it in clear.
func TestReceive(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	a := signup(t, p, "alice")
	b := login(t, p, "alice")
	subject := "Lunch on the terrace, secret plan 8c1f"
	msg := plainMessage("carol@sender.test", a.acct.Address, subject, "Bring the blue folder. body-marker-55aa")
	msg = append([]byte("X-Leap-Encryption: decrypted\r\nX-Leap-Signature: valid\r\n"), msg...) // forged by the sender
	deliver(t, p, "carol@sender.test", a.acct.Address, msg)

	for _, d := range []*device{a, b} {
		waitMessages(t, d, "INBOX", 1)
		c := d.imap(t, &imapclient.Options{DebugWriter: debugWriter(t)})
		got := fetchAll(t, c, "INBOX")
		if len(got) != 1 {
			t.Fatalf("%d messages in INBOX", len(got))
		}
		m := got[0]
		if header(m, "Subject") != subject || !strings.Contains(m, "body-marker-55aa") {
			t.Fatalf("message not as sent:\n%s", m)
		}
		if header(m, "X-Leap-Encryption") != "false" || header(m, "X-Leap-Signature") != "none" {
			t.Fatalf("X-Leap headers: %q %q", header(m, "X-Leap-Encryption"), header(m, "X-Leap-Signature"))
		}
		if strings.Count(m, "X-Leap-Encryption") != 1 {
			t.Fatal("the sender's X-Leap-Encryption survived")
		}
		if !strings.Contains(m, "Authentication-Results:") {
			t.Fatal("no Authentication-Results from the MX")
		}
	}
	// Taken from the queue only after it was synced.
	testenv.Eventually(t, 30*time.Second, "incoming queue empty", func() bool {
		items, _, err := p.Store.ListIncoming(context.Background(), "alice", 10)
		return err == nil && len(items) == 0
	})
	// Neither device's disk holds it in clear (store, blob files,
	// account.json, anything in the data folder).
	for _, d := range []*device{a, b} {
		d.Close()
		scanDir(t, d.Dir, subject, "body-marker-55aa", "carol@sender.test")
	}
	// The provider stores none of it in clear.
	p.Stop()
	db := readFile(t, p.Dir+"/leapd.db")
	for _, s := range []string{subject, "body-marker-55aa", "carol@sender.test"} {
		if bytes.Contains(db, []byte(s)) {
			t.Errorf("leapd's storage holds %q in clear", s)
		}
	}
}

// TestIdle: an open IDLE session is told of new mail.
func TestIdle(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	a := signup(t, p, "bob")
	exists := make(chan uint32, 10)
	c := a.imap(t, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(data *imapclient.UnilateralDataMailbox) {
			if data.NumMessages != nil {
				exists <- *data.NumMessages
			}
		},
	}})
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, p, "dave@sender.test", a.acct.Address, plainMessage("dave@sender.test", a.acct.Address, "ping", "hello"))
	select {
	case n := <-exists:
		if n != 1 {
			t.Fatalf("EXISTS %d", n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("IDLE was not told of the new message")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestReceivePGPMIME: a PGP/MIME message encrypted and signed by a sender
// whose key is known arrives marked decrypted and valid; a signed message
// tampered with on the way arrives marked invalid.
func TestReceivePGPMIME(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	a := signup(t, p, "erin")
	bobKey, err := pgpkey.Generate("bob@elsewhere.test", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bobPub, _ := pgpkey.ArmorPublic(bobKey)
	if _, err := a.acct.Contacts.Learn("bob@elsewhere.test", bobPub, contactkeys.ProviderTrust, "test"); err != nil {
		t.Fatal(err)
	}
	erinKey, err := a.acct.CurrentKey()
	if err != nil {
		t.Fatal(err)
	}
	erinPub, _ := pgpkey.ReadArmored(mustArmorPublic(t, erinKey))

	secret := plainMessage("bob@elsewhere.test", a.acct.Address, "The real subject 77e1", "inner-body-marker-9d2c")
	enc, err := pgpmime.EncryptSign(secret, openpgp.EntityList{erinPub}, bobKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, p, "bob@elsewhere.test", a.acct.Address, enc)

	signed, err := pgpmime.Sign(plainMessage("bob@elsewhere.test", a.acct.Address, "signed but altered", "the original text"), bobKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(signed, []byte("the original text"), []byte("the altered text!"), 1)
	if bytes.Equal(tampered, signed) {
		t.Fatal("tampering did not change the message")
	}
	deliver(t, p, "bob@elsewhere.test", a.acct.Address, tampered)

	waitMessages(t, a, "INBOX", 2)
	got := fetchAll(t, a.imap(t, nil), "INBOX")
	bySubject := map[string]string{}
	for _, m := range got {
		bySubject[header(m, "Subject")] = m
	}
	m := bySubject["The real subject 77e1"]
	if m == "" || !strings.Contains(m, "inner-body-marker-9d2c") {
		t.Fatalf("encrypted message not decrypted with its protected subject; have %v", keysOf(bySubject))
	}
	if header(m, "X-Leap-Encryption") != "decrypted" {
		t.Fatalf("X-Leap-Encryption: %q", header(m, "X-Leap-Encryption"))
	}
	want := fmt.Sprintf("valid; signer=\"bob@elsewhere.test\"; level=provider_trust; pubkey=%q", pgpkey.Fingerprint(bobKey))
	if header(m, "X-Leap-Signature") != want {
		t.Fatalf("X-Leap-Signature: %q, want %q", header(m, "X-Leap-Signature"), want)
	}
	if m := bySubject["signed but altered"]; !strings.HasPrefix(header(m, "X-Leap-Signature"), "invalid;") {
		t.Fatalf("tampered message: X-Leap-Signature %q", header(m, "X-Leap-Signature"))
	}
}

func mustArmorPublic(t *testing.T, e *openpgp.Entity) string {
	s, err := pgpkey.ArmorPublic(e)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
