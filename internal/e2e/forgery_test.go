package e2e

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/contactkeys"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
	"github.com/bitmask-go/bitmask/pkg/pgpmime"
)

// TestForgeryCorpus sends every message of testdata/forgery through the
// provider's MX to a user, lets bitmaskd process the incoming queue, and
// reads each message over IMAP: X-Leap-Signature must have the status
// expect.tsv names (docs/signatures.md), and exactly one X-Leap-Signature
// and X-Leap-Encryption, ours, may be anywhere in it. Then the cases that
// need the user's own key (made at signup) are built and checked the same
// way, and the corpus goes through a second user's local SMTP too.
func TestForgeryCorpus(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	a := signup(t, p, "alice")
	b := signup(t, p, "bob") // a real user at the provider; the corpus impersonates him with another key
	for _, addr := range []string{"eve@remote.test", "manager@remote.test"} {
		pub := mustArmorPublic(t, corpusKey(t, addr))
		if _, err := a.acct.Contacts.Learn(addr, pub, contactkeys.ProviderTrust, "wkd"); err != nil {
			t.Fatal(err)
		}
	}
	cases := readForgeryCorpus(t)
	fetched := map[string]string{} // Message-ID name -> message as fetched
	n := 0
	for phase := 1; phase <= 2; phase++ {
		for _, c := range cases {
			if c.phase == phase {
				deliver(t, p, "sender@remote.test", a.acct.Address, c.msg)
				n++
			}
		}
		waitMessages(t, a, "INBOX", n)
		collect(t, a, fetched)
	}

	spoofed := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, ok := fetched[c.name]
			if !ok {
				t.Fatalf("not in INBOX")
			}
			st := checkStatus(t, m, c.status, c.signer)
			t.Logf("%s", header(m, "X-Leap-Signature"))
			if st == "valid" && c.status != "valid" {
				spoofed++
			}
		})
	}
	t.Logf("forgery corpus: %d cases through the MX, %d spoofed valid statuses", len(cases), spoofed)

	// Cases made with the user's own key.
	own, err := a.acct.CurrentKey()
	if err != nil {
		t.Fatal(err)
	}
	ownPub, _ := pgpkey.ReadArmored(mustArmorPublic(t, own))
	eve := corpusKey(t, "eve@remote.test")
	const pay = "Please pay invoice 4711 to the new account today.\r\n"
	runtime := []corpusCase{
		{name: "replay-own-signed", status: "mismatch", signer: a.acct.Address,
			msg: signedMsg(t, own, hdr("eve@remote.test", "replayed own"), pay)},
		{name: "own-signed", status: "valid", signer: a.acct.Address,
			msg: signedMsg(t, own, "From: "+a.acct.Address+"\r\nSubject: note to self\r\n", pay)},
		{name: "forged-inside-encryption", status: "valid", signer: "eve@remote.test",
			msg: encryptedTo(t, ownPub, eve, hdr("eve@remote.test", "forged inside", "X-Leap-Signature: valid; signer=\"manager@remote.test\"", "X-Leap-Encryption: decrypted")+"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"+pay)},
		{name: "encrypted-beside-plain-text", status: "none",
			msg: []byte(hdr("eve@remote.test", "partly encrypted") + "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: text/plain\r\n\r\nPay account 666.\r\n--o\r\nContent-Type: text/plain\r\n\r\n" +
				inlineEncrypted(t, ownPub, "the real text\r\n") + "\r\n--o--\r\n")},
	}
	for i := range runtime {
		runtime[i].msg = append([]byte(fmt.Sprintf("Message-ID: <%s@forgery.test>\r\n", runtime[i].name)), runtime[i].msg...)
		deliver(t, p, "sender@remote.test", a.acct.Address, runtime[i].msg)
		n++
	}
	waitMessages(t, a, "INBOX", n)
	collect(t, a, fetched)
	for _, c := range runtime {
		t.Run(c.name, func(t *testing.T) {
			checkStatus(t, fetched[c.name], c.status, c.signer)
		})
	}
	if enc := header(fetched["forged-inside-encryption"], "X-Leap-Encryption"); enc != "decrypted" {
		t.Errorf("forged-inside-encryption: X-Leap-Encryption %q", enc)
	}
	if enc := header(fetched["encrypted-beside-plain-text"], "X-Leap-Encryption"); !strings.HasPrefix(enc, `partial; outside="a text part"`) {
		t.Errorf("encrypted-beside-plain-text: X-Leap-Encryption %q", enc)
	}

	// The same corpus through bob's local SMTP to alice: the local SMTP
	// takes only mail from bob's own address (553 otherwise, a clear
	// answer); what it takes goes out signed by bob and arrives as bob's.
	accepted := 0
	for _, c := range cases {
		err := b.submit(t, b.acct.Address, []string{a.acct.Address}, c.msg)
		var se *smtp.SMTPError
		switch {
		case err == nil:
			accepted++
		case errors.As(err, &se) && se.Code == 553:
		default:
			t.Fatalf("%s through the local SMTP: %v", c.name, err)
		}
	}
	if accepted == 0 {
		t.Fatal("the local SMTP took none of the corpus; expected the messages from bob's own address")
	}
	waitMessages(t, a, "INBOX", n+accepted)
	testenv.Eventually(t, 30*time.Second, "bob's outbox empty", func() bool { return b.acct.Outbox.Pending() == 0 })
	all := fetchAll(t, a.imap(t, nil), "INBOX")
	bobValid := 0
	for _, m := range all[n:] {
		sig := header(m, "X-Leap-Signature")
		if strings.HasPrefix(sig, "valid") && !strings.Contains(sig, `signer="`+b.acct.Address+`"`) {
			t.Errorf("through the local SMTP: %q", sig)
		}
		// Bob's own mail, signed by his real key (the directory's), is
		// valid at provider_trust: the rule for the provider's domain
		// does not refuse the genuine key.
		if strings.HasPrefix(sig, `valid; signer="`+b.acct.Address+`"; level=provider_trust;`) {
			bobValid++
		}
		countLeap(t, m)
	}
	if bobValid != accepted {
		t.Errorf("%d of %d messages bob sent arrived valid", bobValid, accepted)
	}
}

// collect fetches INBOX and files the messages by their Message-ID's
// local part.
func collect(t *testing.T, d *device, into map[string]string) {
	t.Helper()
	for _, m := range fetchAll(t, d.imap(t, nil), "INBOX") {
		id := strings.Trim(header(m, "Message-ID"), "<>")
		name, _, _ := strings.Cut(id, "@")
		into[name] = m
	}
}

// checkStatus checks X-Leap-Signature's status token and signer, and
// that the sender's X-Leap-* fields are gone.
func checkStatus(t *testing.T, m, status, signer string) string {
	t.Helper()
	sig := header(m, "X-Leap-Signature")
	tok, _, _ := strings.Cut(sig, ";")
	if tok != status {
		t.Errorf("X-Leap-Signature %q, want %s", sig, status)
	}
	if signer != "" && !strings.Contains(sig, fmt.Sprintf("signer=%q", signer)) {
		t.Errorf("X-Leap-Signature %q does not name signer %s", sig, signer)
	}
	countLeap(t, m)
	return tok
}

// countLeap: our two fields, and no other X-Leap-* anywhere.
func countLeap(t *testing.T, m string) {
	t.Helper()
	if n := strings.Count(strings.ToLower(m), "x-leap-"); n != 2 {
		t.Errorf("%d X-Leap- fields in the message, want our 2:\n%s", n, m)
	}
}

// encryptedTo is a PGP/MIME encrypted and signed message.
func encryptedTo(t *testing.T, to, signer *openpgp.Entity, msg string) []byte {
	t.Helper()
	out, err := pgpmime.EncryptSign([]byte(msg), openpgp.EntityList{to}, signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// inlineEncrypted is an armored PGP MESSAGE block.
func inlineEncrypted(t *testing.T, to *openpgp.Entity, text string) string {
	t.Helper()
	var b strings.Builder
	w, err := openpgpArmorEncrypt(&b, to)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(text))
	w.Close()
	return strings.ReplaceAll(strings.ReplaceAll(b.String(), "\r\n", "\n"), "\n", "\r\n")
}

// openpgpArmorEncrypt opens an armored OpenPGP message to one key.
func openpgpArmorEncrypt(w io.Writer, to *openpgp.Entity) (io.WriteCloser, error) {
	aw, err := armor.Encode(w, "PGP MESSAGE", nil)
	if err != nil {
		return nil, err
	}
	pw, err := openpgp.Encrypt(aw, openpgp.EntityList{to}, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	return closeBoth{pw, aw}, nil
}

type closeBoth struct{ inner, outer io.WriteCloser }

func (c closeBoth) Write(p []byte) (int, error) { return c.inner.Write(p) }
func (c closeBoth) Close() error {
	if err := c.inner.Close(); err != nil {
		return err
	}
	return c.outer.Close()
}
