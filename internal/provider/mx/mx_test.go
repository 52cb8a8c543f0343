package mx_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/provider/mx"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
)

const plainMsg = "From: Carol <carol@pass.example>\r\n" +
	"To: alice@example.test\r\n" +
	"Subject: the quarterly figures\r\n" +
	"Message-ID: <1@pass.example>\r\n" +
	"\r\n" +
	"Hello Alice,\r\n" +
	".a line that starts with a dot\r\n" +
	"the figures are attached.\r\n"

const otherMsg = "From: Carol <carol@pass.example>\r\nTo: alice@example.test, bob@example.test\r\n" +
	"Subject: lunch\r\nMessage-ID: <2@pass.example>\r\n\r\nNoon?\r\n"

func TestDeliverEncryptsWholeMessage(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.addUser("alice", true)
	before, err := w.p.Store.IncomingCounter(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.send("carol@pass.example", []string{"alice@example.test"}, plainMsg); err != nil {
		t.Fatal(err)
	}

	its := w.items("alice")
	if len(its) != 1 {
		t.Fatalf("%d items, want 1", len(its))
	}
	if got, want := recipientKeyIDs(t, its[0]), []uint64{encryptionKeyID(t, w.keys["alice"])}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("encrypted to key IDs %x, want only alice's %x", got, want)
	}
	got := decrypt(t, its[0], w.keys["alice"])
	ar, received, rest := ours(t, got)
	if rest != plainMsg {
		t.Errorf("stored message is not exactly ours + the original:\n%q\nwant the original:\n%q", rest, plainMsg)
	}
	for _, want := range []string{"spf=pass", "smtp.mailfrom=carol@pass.example", "dkim=none", "dmarc=pass", "header.from=pass.example"} {
		if !strings.Contains(ar, want) {
			t.Errorf("Authentication-Results lacks %q:\n%s", want, ar)
		}
	}
	for _, want := range []string{"from client.example ([127.0.0.1])", "by " + hostname + " (leapd) with ESMTP", "for <alice@example.test>;"} {
		if !strings.Contains(received, want) {
			t.Errorf("Received lacks %q:\n%s", want, received)
		}
	}
	if strings.Contains(string(its[0]), "quarterly") || strings.Contains(string(its[0]), "carol") {
		t.Error("ciphertext contains plaintext")
	}

	// The devices are woken: the queue's counter moved.
	after, err := w.p.Store.IncomingCounter(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if after != before+1 {
		t.Errorf("incoming counter %d -> %d, want +1", before, after)
	}
}

func TestRecipientReplies(t *testing.T) {
	w := newWorld(t, worldOptions{cfg: mx.Config{MaxRecipients: 3}})
	w.addUser("alice", true)
	w.addUser("newbie", false) // signed up, no key published yet
	w.addUser("broken", false)
	if err := w.p.Store.PutKey(context.Background(), "broken@example.test", []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nbm90IGEga2V5\n-----END PGP PUBLIC KEY BLOCK-----\n")); err != nil {
		t.Fatal(err)
	}
	w.addUser("expired", false)
	old, err := newExpiredKey("expired@example.test")
	if err != nil {
		t.Fatal(err)
	}
	w.publish("expired", old)

	c := w.dial()
	if err := c.Mail("carol@pass.example", nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rcpt string
		code int
		enh  string
	}{
		{"nobody@example.test", 550, "5.1.1"},
		{"newbie@example.test", 450, "4.7.1"},
		{"broken@example.test", 450, "4.7.1"},
		{"expired@example.test", 450, "4.7.1"},
		{"alice@elsewhere.example", 550, "5.7.1"},
		{"alice@example.test.evil.example", 550, "5.7.1"},
		{"alice", 501, "5.5.2"}, // go-smtp wants a domain, even for <postmaster>
		{"+tag@example.test", 550, "5.1.1"},
	} {
		t.Run(tc.rcpt, func(t *testing.T) { wantReply(t, c.Rcpt(tc.rcpt, nil), tc.code, tc.enh) })
	}
	// Case and subaddress map to the login; a recipient limit holds.
	for _, rcpt := range []string{"Alice@EXAMPLE.test", "alice+lists@example.test", "ALICE+X@example.test."} {
		if err := c.Rcpt(rcpt, nil); err != nil {
			t.Fatalf("RCPT %s: %v", rcpt, err)
		}
	}
	wantReply(t, c.Rcpt("alice@example.test", nil), 452, "4.5.3")
	wc, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(wc, plainMsg)
	if err := wc.Close(); err != nil {
		t.Fatal(err)
	}
	// Three RCPTs for one account: one copy.
	if got := w.only("alice"); !strings.Contains(got, "for <Alice@EXAMPLE.test>;") {
		t.Errorf("Received names the wrong recipient:\n%s", got)
	}
	for _, login := range []string{"newbie", "broken", "expired"} {
		if n := len(w.items(login)); n != 0 {
			t.Errorf("%s got %d items", login, n)
		}
	}
}

// newExpiredKey makes a key that expired an hour ago.
func newExpiredKey(address string) (*openpgp.Entity, error) {
	return pgpkey.Generate(address, time.Hour, time.Now().Add(-2*time.Hour))
}

func TestTooBigIsRefusedAndNothingStored(t *testing.T) {
	const limit = 32 << 10
	w := newWorld(t, worldOptions{cfg: mx.Config{MaxSize: limit}})
	w.addUser("alice", true)
	c := w.dial()
	// go-smtp needs its limit one above ours to take a message of
	// exactly the limit (see serve).
	if size, ok := c.MaxMessageSize(); !ok || size != limit+1 {
		t.Errorf("EHLO announces SIZE %d %v, want %d", size, ok, limit+1)
	}

	big := "Subject: big\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", limit/64+10)
	wantReply(t, sendOn(c, "carol@pass.example", []string{"alice@example.test"}, big), 552, "5.3.4")
	// Exactly at the limit is fine, on the same connection.
	exact := "Subject: exact\r\n\r\n" + strings.Repeat("x", limit-len("Subject: exact\r\n\r\n")-2) + "\r\n"
	if err := sendOn(c, "carol@pass.example", []string{"alice@example.test"}, exact); err != nil {
		t.Fatalf("a message of exactly MaxSize: %v", err)
	}
	if _, _, rest := ours(t, w.only("alice")); rest != exact {
		t.Error("the message at the limit was not stored as sent")
	}
	// SIZE= over the limit is refused at MAIL.
	r := dialRaw(t, "tcp", w.addr)
	r.cmd(250, "EHLO client.example")
	r.cmd(552, "MAIL FROM:<carol@pass.example> SIZE=%d", limit+2)
}

func TestEachRecipientGetsOwnCopy(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.addUser("alice", true)
	w.addUser("bob", true)
	if err := w.send("carol@pass.example", []string{"alice@example.test", "bob@example.test"}, plainMsg); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ login, other string }{{"alice", "bob"}, {"bob", "alice"}} {
		its := w.items(tc.login)
		if len(its) != 1 {
			t.Fatalf("%s: %d items", tc.login, len(its))
		}
		if got, want := recipientKeyIDs(t, its[0]), []uint64{encryptionKeyID(t, w.keys[tc.login])}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s's copy is encrypted to %x, want only %x", tc.login, got, want)
		}
		if _, err := tryDecrypt(its[0], w.keys[tc.other]); err == nil {
			t.Errorf("%s's key opens %s's copy", tc.other, tc.login)
		}
		_, received, rest := ours(t, decrypt(t, its[0], w.keys[tc.login]))
		if rest != plainMsg {
			t.Errorf("%s's copy differs from the message", tc.login)
		}
		if !strings.Contains(received, "for <"+tc.login+"@example.test>") {
			t.Errorf("%s's Received: %s", tc.login, received)
		}
	}
}

func TestNoPlaintextInTheDatabase(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.addUser("alice", true)
	secrets := []string{"Zanzibar-rendezvous-at-noon", "the-secret-body-line-7781", "whistleblower@sender.example"}
	msg := "From: Source <" + secrets[2] + ">\r\nTo: alice@example.test\r\nSubject: " + secrets[0] + "\r\n\r\n" +
		strings.Repeat(secrets[1]+"\r\n", 50)
	if err := w.send("bounce@pass.example", []string{"alice@example.test"}, msg); err != nil {
		t.Fatal(err)
	}
	if _, _, rest := ours(t, w.only("alice")); rest != msg {
		t.Fatal("stored message differs")
	}
	w.cancel()
	w.p.Stop()
	db, err := os.ReadFile(filepath.Join(w.p.Dir, "leapd.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append(secrets, "bounce@pass.example", "Authentication-Results", hostname) {
		if bytes.Contains(db, []byte(s)) || bytes.Contains(bytes.ToLower(db), []byte(strings.ToLower(s))) {
			t.Errorf("leapd.db contains %q in clear", s)
		}
	}
}

// authResults parses our Authentication-Results field.
func authResults(t *testing.T, field string) map[string][]authres.Result {
	t.Helper()
	v := strings.TrimPrefix(field, "Authentication-Results: ")
	v = strings.NewReplacer("\r\n", "", "\t", " ").Replace(v)
	id, results, err := authres.Parse(v)
	if err != nil {
		t.Fatalf("parse %q: %v", v, err)
	}
	if id != hostname {
		t.Fatalf("authserv-id %q", id)
	}
	out := map[string][]authres.Result{}
	for _, r := range results {
		switch r.(type) {
		case *authres.SPFResult:
			out["spf"] = append(out["spf"], r)
		case *authres.DKIMResult:
			out["dkim"] = append(out["dkim"], r)
		case *authres.DMARCResult:
			out["dmarc"] = append(out["dmarc"], r)
		default:
			out["other"] = append(out["other"], r)
		}
	}
	return out
}

func spfOf(rs map[string][]authres.Result) authres.ResultValue {
	if len(rs["spf"]) != 1 {
		return "missing"
	}
	return rs["spf"][0].(*authres.SPFResult).Value
}

func dmarcOf(rs map[string][]authres.Result) authres.ResultValue {
	if len(rs["dmarc"]) != 1 {
		return "missing"
	}
	return rs["dmarc"][0].(*authres.DMARCResult).Value
}

func dkimOf(rs map[string][]authres.Result) string {
	var vs []string
	for _, r := range rs["dkim"] {
		d := r.(*authres.DKIMResult)
		vs = append(vs, string(d.Value)+":"+d.Domain)
	}
	return strings.Join(vs, ",")
}

// signed signs msg with the test DKIM key as d=domain s=sel.
func signed(t *testing.T, domain, msg string) string {
	t.Helper()
	var b bytes.Buffer
	err := dkim.Sign(&b, strings.NewReader(msg), &dkim.SignOptions{
		Domain: domain, Selector: "sel", Signer: dkimKey, Hash: crypto.SHA256,
		HeaderKeys: []string{"From", "To", "Subject", "Message-ID"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestSPFDKIMDMARCAreRecorded(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.addUser("alice", true)
	msgFrom := func(from string) string {
		return "From: " + from + "\r\nTo: alice@example.test\r\nSubject: hi\r\nMessage-ID: <2@x>\r\n\r\nbody\r\n"
	}
	tampered := strings.Replace(signed(t, "pass.example", msgFrom("a@pass.example")), "body\r\n", "b0dy\r\n", 1)
	for _, tc := range []struct {
		name, mailFrom, msg string
		spf                 authres.ResultValue
		dkim                string
		dmarc               authres.ResultValue
	}{
		{"spf pass aligned", "x@pass.example", msgFrom("a@pass.example"), "pass", "none:", "pass"},
		{"spf fail", "x@fail.example", msgFrom("a@fail.example"), "fail", "none:", "fail"},
		{"spf softfail no dmarc", "x@soft.example", msgFrom("a@soft.example"), "softfail", "none:", "none"},
		{"spf none", "x@unknown.example", msgFrom("a@unknown.example"), "none", "none:", "none"},
		{"spf temperror", "x@temp.example", msgFrom("a@temp.example"), "temperror", "none:", "temperror"},
		{"spf permerror", "x@broken.example", msgFrom("a@broken.example"), "permerror", "none:", "none"},
		{"null sender uses helo", "", msgFrom("a@client.example"), "pass", "none:", "none"},
		{"dkim pass aligned, spf fail", "x@fail.example", signed(t, "pass.example", msgFrom("a@pass.example")), "fail", "pass:pass.example", "pass"},
		{"dkim relaxed alignment via org domain", "x@fail.example", signed(t, "pass.example", msgFrom("a@news.pass.example")), "fail", "pass:pass.example", "pass"},
		{"dkim pass unaligned", "x@fail.example", signed(t, "pass.example", msgFrom("a@fail.example")), "fail", "pass:pass.example", "fail"},
		{"dkim tampered body", "x@fail.example", tampered, "fail", "fail:pass.example", "fail"},
		{"dkim key unavailable", "x@fail.example", signed(t, "temp.example", msgFrom("a@fail.example")), "fail", "temperror:temp.example", "fail"},
		{"dkim key missing", "x@fail.example", signed(t, "missing.example", msgFrom("a@fail.example")), "fail", "permerror:missing.example", "fail"},
		{"strict alignment", "x@strict.example", msgFrom("a@sub.strict.example"), "pass", "none:", "fail"},
		{"no From", "x@pass.example", "Subject: no author\r\n\r\nbody\r\n", "pass", "none:", "permerror"},
		{"two From", "x@pass.example", "From: a@pass.example\r\nFrom: b@fail.example\r\n\r\nbody\r\n", "pass", "none:", "permerror"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := w.send(tc.mailFrom, []string{"alice@example.test"}, tc.msg); err != nil {
				t.Fatal(err)
			}
			its := w.items("alice")
			got := decrypt(t, its[len(its)-1], w.keys["alice"])
			ar, _, rest := ours(t, got)
			if rest != tc.msg {
				t.Errorf("message changed:\n%q\nwant\n%q", rest, tc.msg)
			}
			rs := authResults(t, ar)
			if v := spfOf(rs); v != tc.spf {
				t.Errorf("spf=%s, want %s\n%s", v, tc.spf, ar)
			}
			if v := dkimOf(rs); v != tc.dkim {
				t.Errorf("dkim=%s, want %s\n%s", v, tc.dkim, ar)
			}
			if v := dmarcOf(rs); v != tc.dmarc {
				t.Errorf("dmarc=%s, want %s\n%s", v, tc.dmarc, ar)
			}
		})
	}
}

func TestForgedAuthenticationResultsAreRemoved(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.addUser("alice", true)
	theirs := "Authentication-Results: relay.other.example;\r\n\tspf=pass smtp.mailfrom=x@pass.example\r\n"
	msg := "Authentication-Results: " + hostname + "; dkim=pass header.d=bank.example\r\n" +
		theirs +
		"authentication-results: (we are the bank)\r\n MX.Example.TEST 1; dmarc=pass header.from=bank.example\r\n" +
		"Authentication-Results: \"" + hostname + "\"; spf=pass\r\n" +
		"From: Bank <security@bank.example>\r\n" +
		"Subject: verify your account\r\n" +
		"\r\n" +
		"Authentication-Results: " + hostname + "; this one is in the body and stays\r\n"
	if err := w.send("x@fail.example", []string{"alice@example.test"}, msg); err != nil {
		t.Fatal(err)
	}
	ar, _, rest := ours(t, w.only("alice"))
	want := theirs + "From: Bank <security@bank.example>\r\nSubject: verify your account\r\n\r\n" +
		"Authentication-Results: " + hostname + "; this one is in the body and stays\r\n"
	if rest != want {
		t.Errorf("after removal:\n%q\nwant\n%q", rest, want)
	}
	if strings.Contains(ar, "bank.example") && !strings.Contains(ar, "header.from=bank.example") {
		t.Errorf("our field repeats the forgery: %s", ar)
	}
}

// keyToggle hides a login's key when told to, as if it was removed
// between RCPT and DATA; and fails deliveries to a login when told to.
type keyToggle struct {
	mx.Provider
	hide, fail atomic.Value // string: a login
}

func (k *keyToggle) PublicKey(ctx context.Context, address string) ([]byte, error) {
	if h, _ := k.hide.Load().(string); h != "" && address == h+"@example.test" {
		return nil, storage.ErrNotFound
	}
	return k.Provider.PublicKey(ctx, address)
}

func (k *keyToggle) Deliver(ctx context.Context, login string, ct []byte) error {
	if f, _ := k.fail.Load().(string); f == login {
		return errors.New("disk on fire")
	}
	return k.Provider.Deliver(ctx, login, ct)
}

func TestLMTPRepliesPerRecipient(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "lmtp.sock")
	var kt *keyToggle
	w := newWorld(t, worldOptions{lmtp: sock, wrap: func(p mx.Provider) mx.Provider {
		kt = &keyToggle{Provider: p}
		return kt
	}})
	w.addUser("alice", true)
	w.addUser("bob", true)
	w.addUser("carl", true)

	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("front.example.test"); err != nil {
		t.Fatal(err)
	}

	// Two valid recipients: two 250s.
	if err := sendOn(c, "carol@pass.example", []string{"alice@example.test", "bob@example.test"}, plainMsg); err != nil {
		t.Fatalf("two good recipients: %v", err)
	}
	// Unknown users fail at RCPT in LMTP too.
	if err := c.Mail("carol@pass.example", nil); err != nil {
		t.Fatal(err)
	}
	wantReply(t, c.Rcpt("nobody@example.test", nil), 550, "5.1.1")
	_ = c.Reset()

	// bob's key goes away between RCPT and DATA, carl's store fails:
	// alice still gets hers, and each gets its own reply.
	if err := c.Mail("carol@pass.example", nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"alice@example.test", "bob@example.test", "carl@example.test"} {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatal(err)
		}
	}
	kt.hide.Store("bob")
	kt.fail.Store("carl")
	wc, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(wc, plainMsg)
	resp, err := wc.CloseWithLMTPResponse()
	var le smtp.LMTPDataError
	if !errors.As(err, &le) {
		t.Fatalf("got %v, want per-recipient errors", err)
	}
	if resp["alice@example.test"] == nil {
		t.Errorf("alice: no 250 (%v)", le["alice@example.test"])
	}
	wantReply(t, le["bob@example.test"], 450, "4.7.1")
	wantReply(t, le["carl@example.test"], 451, "4.3.0")
	kt.hide.Store("")
	kt.fail.Store("")

	if n := len(w.items("alice")); n != 2 {
		t.Errorf("alice has %d items, want 2", n)
	}
	if n := len(w.items("bob")); n != 1 {
		t.Errorf("bob has %d items, want 1", n)
	}
	if n := len(w.items("carl")); n != 0 {
		t.Errorf("carl has %d items, want 0", n)
	}
	// Over LMTP the client address is the front MTA's: no SPF, and the
	// Received field names LMTP.
	its := w.items("bob")
	ar, received, rest := ours(t, decrypt(t, its[0], w.keys["bob"]))
	if strings.Contains(ar, "spf=") || !strings.Contains(received, "with LMTP") || rest != plainMsg {
		t.Errorf("LMTP copy:\n%s%s", ar, received)
	}
}

func TestSMTPFailsWholeMessageWhenOneRecipientCannotBeStored(t *testing.T) {
	var kt *keyToggle
	w := newWorld(t, worldOptions{wrap: func(p mx.Provider) mx.Provider {
		kt = &keyToggle{Provider: p}
		return kt
	}})
	w.addUser("alice", true)
	w.addUser("bob", true)

	// A key gone at DATA time: 451, and nobody's copy is stored, so the
	// retry makes no duplicate.
	c := w.dial()
	if err := c.Mail("carol@pass.example", nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"alice@example.test", "bob@example.test"} {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatal(err)
		}
	}
	kt.hide.Store("bob")
	wc, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(wc, plainMsg)
	wantReply(t, wc.Close(), 451, "4.3.0")
	kt.hide.Store("")
	if n := len(w.items("alice")) + len(w.items("bob")); n != 0 {
		t.Fatalf("%d items stored after a 451", n)
	}

	// A failed store: 451 too; the sender retries.
	kt.fail.Store("bob")
	wantReply(t, sendOn(c, "carol@pass.example", []string{"bob@example.test"}, plainMsg), 451, "4.3.0")
	kt.fail.Store("")
	if err := sendOn(c, "carol@pass.example", []string{"alice@example.test", "bob@example.test"}, plainMsg); err != nil {
		t.Fatalf("the retry: %v", err)
	}
	if len(w.items("alice")) != 1 || len(w.items("bob")) != 1 {
		t.Fatal("the retry did not deliver one copy each")
	}

	// Alice's copy stored, Bob's not: 451; the sender's retry of the
	// same message stores Bob's and not Alice's again.
	kt.fail.Store("bob")
	wantReply(t, sendOn(c, "carol@pass.example", []string{"alice@example.test", "bob@example.test"}, otherMsg), 451, "4.3.0")
	if len(w.items("alice")) != 2 || len(w.items("bob")) != 1 {
		t.Fatalf("after a partial failure: alice %d, bob %d items", len(w.items("alice")), len(w.items("bob")))
	}
	kt.fail.Store("")
	if err := sendOn(c, "carol@pass.example", []string{"alice@example.test", "bob@example.test"}, otherMsg); err != nil {
		t.Fatalf("the retry: %v", err)
	}
	if len(w.items("alice")) != 2 || len(w.items("bob")) != 2 {
		t.Fatalf("after the retry: alice %d, bob %d items, want 2 each", len(w.items("alice")), len(w.items("bob")))
	}
	// The same message sent again later (a new message as far as SMTP
	// knows) is delivered again.
	if err := sendOn(c, "carol@pass.example", []string{"alice@example.test"}, otherMsg); err != nil {
		t.Fatal(err)
	}
	if len(w.items("alice")) != 3 {
		t.Fatalf("a resend after success: alice %d items, want 3", len(w.items("alice")))
	}
}

func TestKeyRotationBetweenRcptAndData(t *testing.T) {
	w := newWorld(t, worldOptions{})
	old := w.addUser("alice", true)
	c := w.dial()
	if err := c.Mail("carol@pass.example", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("alice@example.test", nil); err != nil {
		t.Fatal(err)
	}
	w.publish("alice", newKey(t, "alice@example.test"))
	wc, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(wc, plainMsg)
	if err := wc.Close(); err != nil {
		t.Fatal(err)
	}
	its := w.items("alice")
	if _, err := tryDecrypt(its[0], old); err == nil {
		t.Error("encrypted to the replaced key")
	}
	w.only("alice") // opens with the current key
}

func TestBadInputIsStoredOrRefusedAndTheMXKeepsServing(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.addUser("alice", true)
	garbage := make([]byte, 64<<10)
	if _, err := rand.Read(garbage); err != nil {
		t.Fatal(err)
	}
	// No CRLF-dot sequences the test's stuffing and the server's
	// unstuffing would see differently.
	garbage = bytes.ReplaceAll(garbage, []byte("\r"), []byte("R"))
	for _, tc := range []struct {
		name string
		msg  []byte
		// noHeader: stored after an empty line, as a body.
		noHeader bool
	}{
		{"8-bit header fields", []byte("From: Jürgen Groß <j@pass.example>\r\nSubject: Grüße, 日本語 \xff\xfe\r\n\r\nbody\r\n"), false},
		{"binary body", append([]byte("Subject: bin\r\n\r\n"), garbage...), false},
		{"1 MB header line", []byte("X-Long: " + strings.Repeat("a", 1<<20) + "\r\nSubject: long\r\n\r\nbody\r\n"), false},
		{"no header section", []byte("just a body line\r\nand another\r\n"), true},
		{"empty header section", []byte("\r\nbody after an empty line\r\n"), false},
		{"header without body", []byte("Subject: nothing else\r\n"), false},
		{"continuation first", []byte(" folded: first\r\n\r\nx\r\n"), true},
		{"nul bytes and bare LF", []byte("Subject: a\x00b\nFrom: <@>\n\nbody\x00\n"), false},
		{"garbage DKIM signature", []byte("DKIM-Signature: v=1; a=; b=%%%; bh=; d=; h=From; s=\r\nFrom: a@pass.example\r\n\r\nx\r\n"), false},
		{"lone dot lines", []byte("Subject: dots\r\n\r\n.\r\n..\r\n...\r\n"), false},
		{"empty message", []byte(""), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(w.items("alice"))
			r := dialRaw(t, "tcp", w.addr)
			r.cmd(250, "EHLO client.example")
			r.cmd(250, "MAIL FROM:<x@pass.example>")
			r.cmd(250, "RCPT TO:<alice@example.test>")
			code, msg, err := r.data(tc.msg)
			if err != nil {
				// A clear refusal is acceptable, nothing stored.
				t.Logf("refused: %d %s %v", code, msg, err)
				if n := len(w.items("alice")); n != before {
					t.Errorf("refused, yet %d items were stored", n-before)
				}
			} else {
				its := w.items("alice")
				if len(its) != before+1 {
					t.Fatalf("250, but %d new items", len(its)-before)
				}
				_, _, rest := ours(t, decrypt(t, its[len(its)-1], w.keys["alice"]))
				want := asReceived(tc.msg)
				if tc.noHeader {
					want = "\r\n" + want
				}
				if tc.name == "empty message" {
					want = "\r\n"
				}
				if rest != want {
					t.Errorf("stored %q...,\nwant %q...", head(rest), head(want))
				}
			}
			// The MX keeps serving.
			if err := w.send("x@pass.example", []string{"alice@example.test"}, plainMsg); err != nil {
				t.Fatalf("next connection: %v", err)
			}
		})
	}
}

func head(s string) string {
	if len(s) > 200 {
		return s[:200]
	}
	return s
}

func TestHostileCommands(t *testing.T) {
	w := newWorld(t, worldOptions{cfg: mx.Config{MaxSize: 1 << 20}})
	w.addUser("alice", true)
	r := dialRaw(t, "tcp", w.addr)
	r.cmd(250, "EHLO client.example")
	r.cmd(523, "AUTH PLAIN AGFsaWNlAHNlY3JldA==") // no AUTH, and none without TLS
	r.cmd(502, "STARTTLS")                        // no TLS configured
	r.cmd(502, "DATA")
	r.cmd(502, "RCPT TO:<alice@example.test>")
	r.cmd(501, "MAIL FROM:alice")
	r.cmd(250, "MAIL FROM:<\"we\\\"ird; (x)\"@pass.example>")
	r.cmd(250, "RCPT TO:<\"alice\"@example.test>")
	code, _, err := r.data([]byte(plainMsg))
	if err != nil {
		t.Fatalf("quoted local parts: %d %v", code, err)
	}
	// A command line longer than any line allowed ends the connection
	// with a reply; the next connection is served.
	if err := r.tp.PrintfLine("NOOP %s", strings.Repeat("x", 2<<20)); err == nil {
		_, _, err = r.tp.ReadResponse(250)
		if err == nil {
			t.Error("an over-long command line was taken")
		}
	}
	if err := w.send("x@pass.example", []string{"alice@example.test"}, plainMsg); err != nil {
		t.Fatalf("next connection: %v", err)
	}
	// The quoted sender is recorded without breaking the field.
	its := w.items("alice")
	ar, _, _ := ours(t, decrypt(t, its[0], w.keys["alice"]))
	authResults(t, ar)
}

func TestConnectionLimit(t *testing.T) {
	w := newWorld(t, worldOptions{cfg: mx.Config{MaxConnections: 2}})
	w.addUser("alice", true)
	a := dialRaw(t, "tcp", w.addr)
	b := dialRaw(t, "tcp", w.addr)
	c, err := net.Dial("tcp", w.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	line := make([]byte, 64)
	n, _ := c.Read(line)
	if !strings.HasPrefix(string(line[:n]), "421 4.7.0") {
		t.Errorf("third connection got %q, want 421", line[:n])
	}
	a.cmd(221, "QUIT")
	b.cmd(221, "QUIT")
	a.c.Close()
	b.c.Close()
	// Slots come back.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := w.send("x@pass.example", []string{"alice@example.test"}, plainMsg)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection slot came back: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSTARTTLS(t *testing.T) {
	w := newWorld(t, worldOptions{tls: true})
	w.addUser("alice", true)
	pool := x509.NewCertPool()
	pool.AddCert(w.p.TLSFiles().CACert)
	c, err := smtp.DialStartTLS(w.addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := sendOn(c, "x@pass.example", []string{"alice@example.test"}, plainMsg); err != nil {
		t.Fatal(err)
	}
	_, received, rest := ours(t, w.only("alice"))
	if !strings.Contains(received, "with ESMTPS") || !strings.Contains(received, "version=TLS 1.3") || rest != plainMsg {
		t.Errorf("over TLS: %s", received)
	}
}

func TestShutdownFinishesDataAndClosesIdle(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.addUser("alice", true)
	idle := w.dial()
	busy := w.dial()
	if err := busy.Mail("x@pass.example", nil); err != nil {
		t.Fatal(err)
	}
	if err := busy.Rcpt("alice@example.test", nil); err != nil {
		t.Fatal(err)
	}
	wc, err := busy.Data()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(wc, plainMsg[:40])
	w.cancel() // the MX is told to stop while the message is on its way

	// Wait until the listener is closed: new connections are refused.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", w.addr)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener stayed open")
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Fprint(wc, plainMsg[40:])
	if err := wc.Close(); err != nil {
		t.Fatalf("the message in DATA at shutdown: %v", err)
	}
	if _, _, rest := ours(t, w.only("alice")); rest != plainMsg {
		t.Error("stored message differs")
	}
	select {
	case err := <-w.done:
		w.done <- err // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatal("ServeSMTP did not return")
	}
	if err := idle.Noop(); err == nil {
		t.Error("the idle connection is still served")
	}
}

func TestEventsWakeTheDevice(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.addUser("alice", true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tok := make([]byte, 32)
	_, _ = rand.Read(tok)
	token := hex.EncodeToString(tok)
	sum := sha256.Sum256([]byte(token))
	if err := w.p.Store.CreateSession(ctx, &storage.Session{TokenHash: sum[:], Login: "alice", Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	pr, err := providerclient.Bootstrap(ctx, w.p.URL, w.p.Fingerprint, providerclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := providerclient.New(pr, providerclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cl.SetToken(token)
	events := make(chan providerapi.Event, 16)
	go func() { _ = cl.Events(ctx, func(ev providerapi.Event) { events <- ev }) }()
	next := func() providerapi.Event {
		select {
		case ev := <-events:
			return ev
		case <-time.After(30 * time.Second):
			t.Fatal("no event")
		}
		return providerapi.Event{}
	}
	if ev := next(); ev.Incoming != 0 {
		t.Fatalf("first event %+v", ev)
	}
	if err := w.send("x@pass.example", []string{"alice@example.test"}, plainMsg); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.Incoming != 1 {
		t.Fatalf("after delivery: %+v, want incoming 1", ev)
	}
}

func TestBDAT(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.addUser("alice", true)
	r := dialRaw(t, "tcp", w.addr)
	r.cmd(250, "EHLO client.example")
	r.cmd(250, "MAIL FROM:<x@pass.example> BODY=8BITMIME")
	r.cmd(250, "RCPT TO:<alice@example.test>")
	// CHUNKING (RFC 3030): no dot-stuffing, no end marker; a line may
	// span chunks.
	first, last := "From: a@pass.example\r\nSubject: chu", "nked\r\n\r\n.a dot line\r\nno final line break"
	if _, err := fmt.Fprintf(r.c, "BDAT %d\r\n%s", len(first), first); err != nil {
		t.Fatal(err)
	}
	r.expect(250)
	if _, err := fmt.Fprintf(r.c, "BDAT %d LAST\r\n%s", len(last), last); err != nil {
		t.Fatal(err)
	}
	r.expect(250)
	if _, _, rest := ours(t, w.only("alice")); rest != first+last {
		t.Errorf("stored %q, want %q", rest, first+last)
	}
}
