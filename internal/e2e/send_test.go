package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/foxcpp/go-mockdns"

	"github.com/bitmask-go/bitmask/internal/outbox"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
	"github.com/bitmask-go/bitmask/pkg/pgpmime"
)

// submit sends through the device's local SMTP, logged in with the
// account's local token.
func (d *device) submit(t testing.TB, from string, to []string, msg []byte) error {
	t.Helper()
	return submitAs2(t, d.SMTPAddr, d.acct.Address, d.acct.LocalToken(), from, to, msg)
}

func submitAs(t testing.TB, addr, user, token, to string, msg []byte) error {
	return submitAs2(t, addr, user, token, user, []string{to}, msg)
}

func submitAs2(t testing.TB, addr, user, token, from string, to []string, msg []byte) error {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.localhost"); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", user, token)); err != nil {
		t.Fatal(err)
	}
	return c.SendMail(from, to, bytes.NewReader(msg))
}

// TestSendEncrypted: account A to account B on the same provider, through
// both daemons: B reads the plaintext marked decrypted with a valid
// signature; the Subject is nowhere at the provider in clear.
func TestSendEncrypted(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	a := signup(t, p, "alice")
	b := signup(t, p, "bob")
	subject := "Quarterly secret subject 41d7"
	msg := plainMessage(a.acct.Address, b.acct.Address, subject, "send-body-marker-e2e0")
	if err := a.submit(t, a.acct.Address, []string{b.acct.Address}, msg); err != nil {
		t.Fatal(err)
	}
	waitMessages(t, b, "INBOX", 1)
	got := fetchAll(t, b.imap(t, nil), "INBOX")
	m := got[0]
	if header(m, "Subject") != subject || !strings.Contains(m, "send-body-marker-e2e0") {
		t.Fatalf("not the plaintext:\n%s", m)
	}
	if header(m, "X-Leap-Encryption") != "decrypted" {
		t.Fatalf("X-Leap-Encryption %q", header(m, "X-Leap-Encryption"))
	}
	ak, _ := a.acct.CurrentKey()
	if want := fmt.Sprintf("valid; signer=%q; level=provider_trust; pubkey=%q", a.acct.Address, pgpkey.Fingerprint(ak)); header(m, "X-Leap-Signature") != want {
		t.Fatalf("X-Leap-Signature %q, want %q", header(m, "X-Leap-Signature"), want)
	}
	testenv.Eventually(t, 20*time.Second, "outbox empty", func() bool { return a.acct.Outbox.Pending() == 0 })
	p.Stop()
	db := readFile(t, p.Dir+"/leapd.db")
	for _, s := range []string{subject, "send-body-marker-e2e0"} {
		if bytes.Contains(db, []byte(s)) {
			t.Errorf("leapd's storage holds %q", s)
		}
	}
}

// outsideMX is a test MTA on loopback standing in for another provider.
type outsideMX struct {
	mu   sync.Mutex
	msgs []received
	addr string
}

type received struct {
	from string
	to   []string
	data []byte
}

func startOutsideMX(t *testing.T) *outsideMX {
	o := &outsideMX{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &outSession{o: o}, nil }))
	srv.Domain = "mx.outside.test"
	srv.AllowInsecureAuth = true
	ln, err := newLocalListener()
	if err != nil {
		t.Fatal(err)
	}
	o.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return o
}

func (o *outsideMX) received() []received {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]received(nil), o.msgs...)
}

type outSession struct {
	o    *outsideMX
	from string
	to   []string
}

func (s *outSession) Reset()        { s.from, s.to = "", nil }
func (s *outSession) Logout() error { return nil }
func (s *outSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *outSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *outSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.o.mu.Lock()
	s.o.msgs = append(s.o.msgs, received{s.from, s.to, b})
	s.o.mu.Unlock()
	return nil
}

func outsideProvider(t *testing.T) (*testenv.Provider, *outsideMX) {
	o := startOutsideMX(t)
	_, port := splitPort(t, o.addr)
	p := testenv.StartProvider(t, testenv.Options{
		DNS: map[string]mockdns.Zone{
			"outside.test.":    {MX: []net_MX{{Host: "mx.outside.test.", Pref: 10}}},
			"mx.outside.test.": {A: []string{"127.0.0.1"}},
		},
		OutboundPort: port,
	})
	return p, o
}

// TestSendOutside: A to an outside address: a signed message with an
// Autocrypt header arrives, and GnuPG verifies the signature.
func TestSendOutside(t *testing.T) {
	p, o := outsideProvider(t)
	a := signup(t, p, "alice")
	msg := plainMessage(a.acct.Address, "zoe@outside.test", "hello outside", "plain but signed")
	if err := a.submit(t, a.acct.Address, []string{"zoe@outside.test"}, msg); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "delivery to the outside MX", func() bool { return len(o.received()) == 1 })
	got := o.received()[0].data
	if !bytes.Contains(got, []byte("multipart/signed")) || header(string(got), "Autocrypt") == "" {
		t.Fatalf("not a signed message with an Autocrypt header:\n%s", got)
	}
	if !bytes.Contains(got, []byte("DKIM-Signature:")) {
		t.Fatal("no DKIM signature from the provider's relay")
	}
	ak, _ := a.acct.CurrentKey()
	pub, _ := pgpkey.ArmorPublic(ak)
	gpgVerifySigned(t, got, pub)
	// The message also verifies for our own reader.
	res, err := pgpmime.Process(got, nil, nil, time.Now())
	if err != nil || res.Signature != pgpmime.SigUnknownKey {
		t.Fatalf("Process: %v %v", err, res.Signature)
	}
}

// relayTap records the copies a device relays.
type relayTap struct {
	next outbox.Relay
	mu   sync.Mutex
	sent []received
}

func (r *relayTap) Send(ctx context.Context, from string, to []string, msg []byte) error {
	err := r.next.Send(ctx, from, to, msg)
	if err == nil {
		r.mu.Lock()
		r.sent = append(r.sent, received{from, to, msg})
		r.mu.Unlock()
	}
	return err
}

func (r *relayTap) copies() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.sent...)
}

func signupTapped(t *testing.T, p *testenv.Provider, login string) (*device, *relayTap) {
	tap := &relayTap{}
	r := testenv.StartDaemon(t, testenv.DaemonOptions{WrapRelay: func(next outbox.Relay) outbox.Relay { tap.next = next; return tap }})
	a, err := r.CreateUser(ctx(t), login+"@"+testenv.Domain, []byte(password), p.Ref(), "")
	if err != nil {
		t.Fatal(err)
	}
	return &device{r, a}, tap
}

// recipientKeyIDs lists the key IDs of the encrypted part of a PGP/MIME
// copy (0 for a hidden recipient).
func recipientKeyIDs(t *testing.T, msg []byte) []uint64 {
	t.Helper()
	i := bytes.Index(msg, []byte("-----BEGIN PGP MESSAGE-----"))
	j := bytes.Index(msg, []byte("-----END PGP MESSAGE-----"))
	if i < 0 || j < 0 {
		t.Fatalf("no OpenPGP message in the copy:\n%s", msg)
	}
	blk, err := armor.Decode(bytes.NewReader(msg[i : j+len("-----END PGP MESSAGE-----")]))
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	pr := packet.NewReader(blk.Body)
	for {
		pk, err := pr.Next()
		if err != nil {
			t.Fatal(err)
		}
		ek, ok := pk.(*packet.EncryptedKey)
		if !ok {
			return ids
		}
		ids = append(ids, ek.KeyId)
	}
}

func encKeyID(t *testing.T, d *device) uint64 {
	e, err := d.acct.CurrentKey()
	if err != nil {
		t.Fatal(err)
	}
	k, ok := e.EncryptionKey(time.Now())
	if !ok {
		t.Fatal("no encryption key")
	}
	return k.PublicKey.KeyId
}

// TestBcc: the Bcc copy and the To copy do not reveal each other, not
// even through key IDs.
func TestBcc(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	a, tap := signupTapped(t, p, "alice")
	b := signup(t, p, "bob")
	c := signup(t, p, "carol")
	msg := []byte(fmt.Sprintf("From: %s\r\nTo: %s\r\nBcc: %s\r\nSubject: with a secret bcc\r\n\r\nhello\r\n", a.acct.Address, b.acct.Address, c.acct.Address))
	if err := a.submit(t, a.acct.Address, []string{b.acct.Address, c.acct.Address}, msg); err != nil {
		t.Fatal(err)
	}
	waitMessages(t, b, "INBOX", 1)
	waitMessages(t, c, "INBOX", 1)
	// The tap records a copy when its Send has returned, which may be
	// after the copy reached its recipient.
	testenv.Eventually(t, 30*time.Second, "both copies relayed", func() bool { return len(tap.copies()) >= 2 })
	copies := tap.copies()
	if len(copies) != 2 {
		t.Fatalf("%d copies relayed, want 2", len(copies))
	}
	aID, bID, cID := encKeyID(t, a), encKeyID(t, b), encKeyID(t, c)
	for _, cp := range copies {
		if len(cp.to) != 1 {
			t.Fatalf("a copy for %v", cp.to)
		}
		ids := recipientKeyIDs(t, cp.data)
		switch cp.to[0] {
		case b.acct.Address:
			if slices.Contains(ids, cID) || bytes.Contains(cp.data, []byte("carol")) {
				t.Fatal("the To copy reveals the Bcc recipient")
			}
			if !slices.Contains(ids, bID) || !slices.Contains(ids, aID) {
				t.Fatalf("the To copy is for %x", ids)
			}
		case c.acct.Address:
			for _, id := range ids {
				if id != 0 {
					t.Fatalf("the Bcc copy names key %x", id)
				}
			}
		}
	}
	// What B reads names nobody but B.
	for _, m := range fetchAll(t, b.imap(t, nil), "INBOX") {
		if strings.Contains(m, "carol") {
			t.Fatal("B's message mentions the Bcc recipient")
		}
	}
	if got := fetchAll(t, c.imap(t, nil), "INBOX"); len(got) != 1 || header(got[0], "X-Leap-Encryption") != "decrypted" {
		t.Fatal("C did not get a decryptable copy")
	}
}

// TestRelayDown: the provider's submission service is down while A sends
// 50 messages: all 50 are delivered, once each, after it is back.
func TestRelayDown(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	a := signup(t, p, "alice")
	b := signup(t, p, "bob")
	p.StopSubmission()
	const n = 50
	for i := range n {
		msg := plainMessage(a.acct.Address, b.acct.Address, fmt.Sprintf("queued %02d", i), "while the relay is down")
		if err := a.submit(t, a.acct.Address, []string{b.acct.Address}, msg); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if got := a.acct.Outbox.Pending(); got != n {
		t.Fatalf("%d in the outbox, want %d", got, n)
	}
	// A delivery pass while the relay is down: every message fails once
	// and stays.
	a.acct.Outbox.Flush(ctx(t), true)
	if got := a.acct.Outbox.Pending(); got != n {
		t.Fatalf("%d in the outbox after a failed pass, want %d", got, n)
	}
	p.StartSubmission(t)
	a.acct.Outbox.Kick()
	waitMessages(t, b, "INBOX", n)
	testenv.Eventually(t, 30*time.Second, "outbox empty", func() bool { return a.acct.Outbox.Pending() == 0 })
	// The outbox sends nothing more; once bob's queue is empty all it
	// sent is in his INBOX, duplicates included.
	waitIncomingDrained(t, p, "bob")
	seen := map[string]int{}
	for _, m := range fetchAll(t, b.imap(t, nil), "INBOX") {
		seen[header(m, "Subject")]++
	}
	if len(seen) != n {
		t.Fatalf("%d distinct messages, want %d", len(seen), n)
	}
	for s, k := range seen {
		if k != 1 {
			t.Fatalf("%q delivered %d times", s, k)
		}
	}
}

// TestSendBadInput: a clear SMTP error or correct delivery, never a crash.
func TestSendBadInput(t *testing.T) {
	p, o := outsideProvider(t)
	a := signup(t, p, "alice")
	b := signup(t, p, "bob")
	me, bob := a.acct.Address, b.acct.Address
	expectCode := func(err error, code int) {
		t.Helper()
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != code {
			t.Fatalf("got %v, want SMTP %d", err, code)
		}
	}
	expectCode(a.submit(t, me, []string{bob}, []byte("To: "+bob+"\r\nSubject: no from\r\n\r\nx\r\n")), 553)
	expectCode(a.submit(t, me, []string{bob}, plainMessage("mallory@example.test", bob, "spoof", "x")), 553)
	expectCode(a.submit(t, "mallory@example.test", []string{bob}, plainMessage(me, bob, "spoof", "x")), 553)

	garbage := append([]byte("From: "+me+"\r\nTo: "+bob+"\r\nSubject: \xff\xfe 8-bit \xc3\x28\r\n\r\n"), bytes.Repeat([]byte{0xff, 0x00, 0x80, 'x', '\r', '\n'}, 500)...)
	if err := a.submit(t, me, []string{bob}, garbage); err != nil {
		t.Fatalf("8-bit garbage: %v", err)
	}
	big := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/\r\n"), 30<<20/66)
	att := []byte(fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n--x\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n--x--\r\n", me, bob, big))
	if err := a.submit(t, me, []string{bob}, att); err != nil {
		t.Fatalf("30 MB: %v", err)
	}
	var many []string
	for i := range 1000 {
		many = append(many, fmt.Sprintf("r%04d@outside.test", i))
	}
	if err := a.submit(t, me, many, plainMessage(me, "undisclosed-recipients:;", "to many", "hello all")); err != nil {
		t.Fatalf("1000 recipients: %v", err)
	}
	// The race detector makes the 30 MB message slow: wait longer.
	testenv.Eventually(t, 3*time.Minute, "both messages for bob", func() bool {
		info, err := b.acct.Mail.Mailbox("INBOX")
		return err == nil && info.Messages >= 2
	})
	testenv.Eventually(t, 3*time.Minute, "1000 recipients delivered", func() bool {
		n := 0
		for _, r := range o.received() {
			n += len(r.to)
		}
		return n == 1000
	})
	sizes := 0
	for _, m := range fetchAll(t, b.imap(t, nil), "INBOX") {
		sizes += len(m)
	}
	if sizes < 30<<20 {
		t.Fatalf("the 30 MB message did not arrive whole (%d bytes in INBOX)", sizes)
	}
}
